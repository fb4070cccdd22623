package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/llm-runtime/llm-runtime/parser"
)

// CheckpointVersion is the version of the checkpoint format that
// Checkpoint.WriteTo writes and ReadCheckpoints reads. The format is
// described in the package doc, under Checkpoints.
const CheckpointVersion = 1

// ErrCheckpointVersion is the error of a checkpoint of another version.
var ErrCheckpointVersion = errors.New("audit: a checkpoint of another format version")

// Head is what a checkpoint keeps of one session: its last record's
// sequence number and hash, which the chain makes a digest of every
// record before it.
type Head struct {
	Session string
	Count   uint64    // records in the session; in an intact chain, LastSeq
	LastSeq uint64    // the last record's sequence number
	Time    time.Time // the last record's time
	Hash    [32]byte  // the last record's hash
}

// key is the key of the head's record.
func (h Head) key() []byte {
	r := Record{Time: h.Time, Session: h.Session, Seq: h.LastSeq}
	return r.Key()
}

// Checkpoint is a digest of the store's sessions as they were: kept where
// nobody who could rewrite the store can rewrite it, it shows any later
// change, forgery or deletion of what it covers (see Reader.Check).
type Checkpoint struct {
	Time  time.Time // when it was taken
	Store string    // the store's directory, as its reader was given it
	Since time.Time // zero: it covers every session; else those with a record at or after Since
	Heads []Head    // one per session, by session id

	// Where it was read from: the line it starts at (ReadCheckpoints sets
	// it) and the file (the caller may set it), for messages.
	Line int
	File string
}

// Records is the number of records the checkpoint covers.
func (c *Checkpoint) Records() uint64 {
	var n uint64
	for _, h := range c.Heads {
		n += h.Count
	}
	return n
}

// name is how messages call it: "the checkpoint of TIME (FILE line N)".
func (c *Checkpoint) name() string {
	s := "the checkpoint of " + stamp(c.Time)
	switch {
	case c.File != "" && c.Line > 0:
		s += fmt.Sprintf(" (%s line %d)", parser.Printable(c.File), c.Line)
	case c.Line > 0:
		s += fmt.Sprintf(" (line %d)", c.Line)
	}
	return s
}

// Checkpoint returns a checkpoint of every session in the store, or with
// since non-zero, of the sessions with a record at or after since (each
// still covered from its first record). It checks every chain first, as
// Check does, and returns the first break instead of a checkpoint that
// would vouch for it. A session id that is not UTF-8 (llm-runtime's are
// ASCII) is refused too: the format could not keep it exactly.
func (r *Reader) Checkpoint(since time.Time) (*Checkpoint, error) {
	w, err := r.walk()
	if err != nil {
		return nil, err
	}
	if len(w.breaks) > 0 {
		return nil, slices.MinFunc(w.breaks, func(a, b *Break) int { return bytes.Compare(a.Key, b.Key) })
	}
	cp := &Checkpoint{Time: time.Now().UTC(), Store: r.dir, Since: since}
	for session, c := range w.chains {
		latest := c.links[0].time
		for _, l := range c.links {
			if l.time.After(latest) {
				latest = l.time
			}
		}
		if !since.IsZero() && latest.Before(since) {
			continue
		}
		l := c.links[len(c.links)-1]
		if !utf8.ValidString(session) {
			return nil, &Break{Key: l.key, Session: session, Seq: l.seq, Reason: "the session id is not UTF-8: not one llm-runtime wrote"}
		}
		cp.Heads = append(cp.Heads, Head{Session: session, Count: uint64(len(c.links)), LastSeq: l.seq, Time: l.time, Hash: l.hash})
	}
	slices.SortFunc(cp.Heads, func(a, b Head) int { return cmp.Compare(a.Session, b.Session) })
	return cp, nil
}

// The lines of the format.
type (
	headerLine struct {
		Version  int    `json:"llm_runtime_audit_checkpoint"`
		Time     string `json:"time"`
		Store    string `json:"store"`
		Since    string `json:"since,omitempty"`
		Sessions int    `json:"sessions"`
		Records  uint64 `json:"records"`
	}
	headLine struct {
		Session  string `json:"session"`
		Count    uint64 `json:"count"`
		LastSeq  uint64 `json:"last_seq"`
		LastTime string `json:"last_time"`
		HeadHash string `json:"head_hash"`
	}
	trailerLine struct {
		SHA256 string `json:"checkpoint_sha256"`
	}
)

// WriteTo writes the checkpoint in the format of the package doc, in one
// Write: a header line, a line per session, and a line with the SHA-256
// of the lines before it.
func (c *Checkpoint) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	h := headerLine{Version: CheckpointVersion, Time: stamp(c.Time), Store: c.Store, Sessions: len(c.Heads), Records: c.Records()}
	if !c.Since.IsZero() {
		h.Since = stamp(c.Since)
	}
	enc.Encode(h)
	for _, h := range c.Heads {
		enc.Encode(headLine{Session: h.Session, Count: h.Count, LastSeq: h.LastSeq, LastTime: stamp(h.Time), HeadHash: hex.EncodeToString(h.Hash[:])})
	}
	// Escaped as the other JSON of the audit is: a forged session id can
	// hold a character that would drive a terminal. The digest is of the
	// lines as written.
	lines := bytes.NewBuffer(parser.PrintableJSON(b.Bytes()))
	sum := sha256.Sum256(lines.Bytes())
	json.NewEncoder(lines).Encode(trailerLine{SHA256: hex.EncodeToString(sum[:])})
	n, err := w.Write(lines.Bytes())
	return int64(n), err
}

// CheckpointError is a damaged checkpoint, or lines of a checkpoint file
// that belong to none.
type CheckpointError struct {
	Line   int // where the checkpoint, or the stray lines, start
	At     int // the line found wrong
	Reason string
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("audit: checkpoint damaged at line %d: %s", e.At, e.Reason)
}

// ReadCheckpoints reads every checkpoint in r: a file may hold any number,
// one after another, as appending to it leaves them. The intact ones are
// returned in cps; the damaged ones (a line that does not parse or lacks
// a field, a digest that does not match, one cut short) and stray lines
// in damaged, each once, with the line it starts at. Blank lines between
// checkpoints are skipped. err is a read error, or ErrCheckpointVersion.
func ReadCheckpoints(r io.Reader) (cps []*Checkpoint, damaged []*CheckpointError, err error) {
	br := bufio.NewReader(r)
	var (
		cur    *Checkpoint      // the checkpoint being read
		bad    *CheckpointError // why cur is damaged, or stray lines
		sum    = sha256.New()
		header headerLine
		seen   map[string]bool
	)
	end := func() {
		if bad != nil {
			damaged = append(damaged, bad)
		}
		cur, bad = nil, nil
	}
	spoil := func(line int, format string, a ...any) {
		if bad == nil {
			start := line
			if cur != nil {
				start = cur.Line
			}
			bad = &CheckpointError{Line: start, At: line, Reason: fmt.Sprintf(format, a...)}
		}
	}
	for n := 1; ; n++ {
		text, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return cps, damaged, fmt.Errorf("audit: reading checkpoints: %w", rerr)
		}
		if len(text) == 0 && rerr == io.EOF {
			break
		}
		var fields map[string]json.RawMessage
		jerr := json.Unmarshal(text, &fields)
		switch {
		case len(bytes.TrimSpace(text)) == 0 && cur == nil:
			// a blank line between checkpoints
		case jerr != nil:
			if cur == nil {
				spoil(n, "not part of a checkpoint")
			} else {
				spoil(n, "not JSON")
				sum.Write(text)
			}
		case fields["llm_runtime_audit_checkpoint"] != nil:
			if cur != nil {
				spoil(n, "a new checkpoint starts before this one's checksum line (cut short)")
			}
			end()
			var v any
			json.Unmarshal(fields["llm_runtime_audit_checkpoint"], &v)
			if f, ok := v.(float64); ok && f != CheckpointVersion {
				return cps, damaged, fmt.Errorf("%w: line %d: version %v; this llm-runtime reads version %d", ErrCheckpointVersion, n, f, CheckpointVersion)
			}
			cur, seen = &Checkpoint{Line: n}, map[string]bool{}
			sum.Reset()
			sum.Write(text)
			header = headerLine{}
			if err := need(fields, "time", "store", "sessions", "records"); err != nil {
				spoil(n, "%v", err)
			} else if err := json.Unmarshal(text, &header); err != nil || header.Version != CheckpointVersion {
				spoil(n, "not a checkpoint header: %v", cmp.Or(err, fmt.Errorf("version %v", v)))
			} else if cur.Time, err = time.Parse(time.RFC3339Nano, header.Time); err != nil {
				spoil(n, "time: %v", err)
			} else if header.Since != "" {
				if cur.Since, err = time.Parse(time.RFC3339Nano, header.Since); err != nil {
					spoil(n, "since: %v", err)
				}
			}
			cur.Store = header.Store
		case fields["session"] != nil:
			if cur == nil {
				spoil(n, "a session line outside a checkpoint")
				continue
			}
			sum.Write(text)
			h, err := parseHead(text, fields)
			switch {
			case err != nil:
				spoil(n, "%v", err)
			case seen[h.Session]:
				spoil(n, "session %q a second time", h.Session)
			default:
				seen[h.Session] = true
				cur.Heads = append(cur.Heads, h)
			}
		case fields["checkpoint_sha256"] != nil:
			if cur == nil {
				spoil(n, "a checksum line outside a checkpoint")
				continue
			}
			var t trailerLine
			json.Unmarshal(text, &t)
			got := hex.EncodeToString(sum.Sum(nil))
			switch {
			case t.SHA256 != got:
				spoil(n, "the lines before do not match their checksum (sha256 %s, the line says %q)", got, t.SHA256)
			case header.Sessions != len(cur.Heads) || header.Records != cur.Records():
				spoil(n, "%d sessions and %d records where the header says %d and %d", len(cur.Heads), cur.Records(), header.Sessions, header.Records)
			}
			if bad == nil {
				slices.SortFunc(cur.Heads, func(a, b Head) int { return cmp.Compare(a.Session, b.Session) })
				cps = append(cps, cur)
			}
			end()
		default:
			if cur == nil {
				spoil(n, "not part of a checkpoint")
			} else {
				spoil(n, "neither a session nor a checksum line")
				sum.Write(text)
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if cur != nil {
		spoil(cur.Line, "no checksum line: the checkpoint is cut short")
	}
	end()
	return cps, damaged, nil
}

// need reports the first of keys missing from fields.
func need(fields map[string]json.RawMessage, keys ...string) error {
	for _, k := range keys {
		if fields[k] == nil {
			return fmt.Errorf("no %q", k)
		}
	}
	return nil
}

func parseHead(text []byte, fields map[string]json.RawMessage) (Head, error) {
	if err := need(fields, "session", "count", "last_seq", "last_time", "head_hash"); err != nil {
		return Head{}, err
	}
	var l headLine
	if err := json.Unmarshal(text, &l); err != nil {
		return Head{}, err
	}
	h := Head{Session: l.Session, Count: l.Count, LastSeq: l.LastSeq}
	var err error
	if h.Time, err = time.Parse(time.RFC3339Nano, l.LastTime); err != nil {
		return h, fmt.Errorf("last_time: %v", err)
	}
	b, err := hex.DecodeString(l.HeadHash)
	if err != nil || len(b) != len(h.Hash) {
		return h, fmt.Errorf("head_hash %q is not 64 hex digits", l.HeadHash)
	}
	copy(h.Hash[:], b)
	if h.Session == "" || h.LastSeq == 0 || h.Count != h.LastSeq {
		return h, fmt.Errorf("session %q, count %d, last_seq %d: want a session id and count = last_seq >= 1", h.Session, h.Count, h.LastSeq)
	}
	return h, nil
}
