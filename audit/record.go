// Package audit is llm-runtime's append-only audit log, kept in Pebble:
// one record per operation, with its latency and phases, each record
// hash-chained to the one before it in its session.
//
// # Layout
//
// A store is a directory. Every writing process (one llm-runtime run, one
// session) appends to a Pebble database of its own under segments/, which it
// alone holds open; when it closes, it merges its segment into main/, the
// shared database, if nobody else holds that at the moment, and otherwise
// leaves it for the next reader or writer to merge. Readers merge closed
// segments into main, then read main and every live segment together (a live
// segment is copied and the copy opened, since Pebble locks its directory
// even for reading). So any number of runs can write at once, and a query
// works while they do.
//
// A merged segment is renamed into merged/, which nothing reads, before
// its files are removed, so a kill at any step of a merge leaves a store
// that reads whole (see mergeSegments).
//
// # Keys and records
//
// A key is 16 bytes: the record's time in big-endian Unix nanoseconds, a
// 32-bit hash of its session and its sequence number in the session, so a
// time range is a key range. A value starts with its encoding version (6;
// versions 1 to 5, which lack later fields, still decode and verify), then
// the fields in a fixed binary order (see Record.MarshalBinary).
//
// # The chain
//
// Each record carries the hash of the previous record of its session (a
// session's first record, the hash of the session id) and its own hash:
// SHA-256 of the previous hash and its encoding without the hash. Verify
// recomputes every chain, checks sequence numbers run 1, 2, 3... without a
// gap, and checks each record sits under the key its time and sequence
// give; so a changed value, a record deleted from the middle and a moved
// record are all found. A chain alone cannot show a record rewritten with
// every hash after it recomputed (anyone can compute SHA-256: the chain
// holds no secret), nor a session's last records or a whole session
// deleted. A checkpoint kept elsewhere can.
//
// # Checkpoints
//
// A checkpoint (Reader.Checkpoint) holds each session's record count, last
// sequence number and last record's hash: since that hash covers every
// record before it, a record of the session up to there cannot change
// without changing it, and records appended later leave it as it was.
// Reader.Check reports a session a checkpoint holds that is gone, ends
// before the checkpoint's last record, or whose record at that sequence
// number has another hash.
//
// A checkpoint is UTF-8 JSON Lines, one JSON object a line, in this order:
//
//	{"llm_runtime_audit_checkpoint":1,"time":T,"store":DIR,"since":T,"sessions":N,"records":M}
//	{"session":ID,"count":C,"last_seq":C,"last_time":T,"head_hash":HEX}    one line per session, by id
//	{"checkpoint_sha256":HEX}
//
// The first key names the format and its version (CheckpointVersion);
// times are RFC 3339 with nanoseconds, in UTC; "since" is there only when
// the checkpoint covers just the sessions with a record since then;
// "sessions" and "records" count the session lines and the sum of their
// counts; head_hash is the last record's hash, 64 lowercase hex digits.
// The last line is the SHA-256 of every byte of the lines before it, from
// the first line's first byte to the last session line's newline, so a
// damaged or cut checkpoint is reported as such (it is no signature:
// anyone can recompute it). A file may hold any number of checkpoints one
// after another, blank lines between them; readers ignore keys they do not
// know; a change that old readers could not ignore gets a new version.
//
// # Damage
//
// A file Pebble finds damaged (a block whose checksum does not match) is
// a *DamageError naming it, from any read; writers go on appending. But
// Pebble reads a damaged write-ahead log or MANIFEST as one a crash cut
// short: what follows the damage is silently missing (for a MANIFEST,
// whole files of records), which only a checkpoint shows.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"time"
)

// Outcomes.
const (
	OK     = "ok"
	Denied = "denied" // refused by a rule or a policy: nothing was done
	Error  = "error"  // attempted and failed
)

// Record is one operation.
type Record struct {
	Time     time.Time
	Session  string
	Seq      uint64 // 1, 2, 3... within the session
	PID      uint32 // the writing process
	Repo     string // the repository root
	Op       string // the command's kind (parser.Kinds): open, write, edit, list, search, exec
	Target   string // the path, query or command, as written (Resolved: the path touched)
	Outcome  string // ok, denied or error
	Code     string // the error code, if any
	BytesIn  int64  // content sent (a write's content)
	BytesOut int64  // content returned (a file, output, matches)

	Latency   time.Duration // the whole operation
	Wait      time.Duration // waiting for a container
	Policy    time.Duration // policy guests
	Sandbox   time.Duration // the operation in the sandbox
	Transform time.Duration // transform guests

	Container string // the container that ran it, if any
	Pooled    bool
	Decider   string // the policy that decided, once policies exist
	Reason    string
	// Changes are the files an exec changed, one a line: "created PATH",
	// "updated PATH", "deleted PATH", "refused PATH: why" or "discarded
	// PATH" (exec.writable false).
	Changes string
	// FrontEnd is what asked for the operation: "filter" (the text filter)
	// or "mcp" (the MCP server); Client is the MCP client's name and
	// version, as its initialize gave them.
	FrontEnd, Client string
	// Resolved is the repository-relative path an open, write, edit or
	// list touched, links, ".", ".." and "//" resolved, as the sandbox (or
	// the policies' resolution) gave it; "" when the operation touched
	// none (refused before, or not a path) and in records before version 4.
	Resolved string
	// HostTools are the files tools on the host run or obey that the
	// operation changed (security.host_tool_files, mode warn), one a line:
	// "PATH (PATTERN)"; "" for none and in records before version 4.
	HostTools string
	// Checkpoint is the journal of changes' checkpoint the operation's
	// changes were recorded in (journal.enabled), or an undo's own; 0 for
	// none and in records before version 5.
	Checkpoint uint64
	// Network is every connection an exec asked the egress proxy for
	// (exec.network: allowlist), one a line: "allowed HOST:PORT (ADDR)
	// sent N received M" or "refused HOST:PORT: why"; "" for none and in
	// records before version 6.
	Network string

	Prev [32]byte
	Hash [32]byte

	enc byte // the encoding version it was decoded from; 0: version
}

// version is the encoding of new records; versions 1 (no Changes), 2 (no
// FrontEnd or Client), 3 (no Resolved or HostTools), 4 (no Checkpoint)
// and 5 (no Network) still decode and verify.
const version = 6

// Key returns the record's key.
func (r *Record) Key() []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(r.Time.UnixNano()))
	h := fnv.New32a()
	h.Write([]byte(r.Session))
	binary.BigEndian.PutUint32(k[8:], h.Sum32())
	binary.BigEndian.PutUint32(k[12:], uint32(r.Seq))
	return k
}

// timeKey is the smallest key at or after t.
func timeKey(t time.Time) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	return k
}

// body encodes every field but Hash.
func (r *Record) body() []byte {
	b := make([]byte, 0, 128+len(r.Session)+len(r.Repo)+len(r.Target)+len(r.Changes)+len(r.FrontEnd)+len(r.Client)+len(r.Resolved)+len(r.HostTools)+len(r.Network))
	v := r.enc
	if v == 0 {
		v = version
	}
	b = append(b, v)
	b = binary.AppendVarint(b, r.Time.UnixNano())
	for _, s := range []string{r.Session, r.Repo, r.Op, r.Target, r.Outcome, r.Code, r.Container, r.Decider, r.Reason} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendUvarint(b, uint64(r.PID))
	for _, n := range []int64{r.BytesIn, r.BytesOut, int64(r.Latency), int64(r.Wait), int64(r.Policy), int64(r.Sandbox), int64(r.Transform)} {
		b = binary.AppendVarint(b, n)
	}
	if r.Pooled {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	if v >= 2 {
		b = binary.AppendUvarint(b, uint64(len(r.Changes)))
		b = append(b, r.Changes...)
	}
	if v >= 3 {
		for _, s := range []string{r.FrontEnd, r.Client} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	if v >= 4 {
		b = binary.AppendUvarint(b, uint64(len(r.Resolved)))
		b = append(b, r.Resolved...)
		b = binary.AppendUvarint(b, uint64(len(r.HostTools)))
		b = append(b, r.HostTools...)
	}
	if v >= 5 {
		b = binary.AppendUvarint(b, r.Checkpoint)
	}
	if v >= 6 {
		b = binary.AppendUvarint(b, uint64(len(r.Network)))
		b = append(b, r.Network...)
	}
	return append(b, r.Prev[:]...)
}

// MarshalBinary encodes the record with its hash.
func (r *Record) MarshalBinary() ([]byte, error) { return append(r.body(), r.Hash[:]...), nil }

// ErrCorrupt is the error of a value that does not decode.
var ErrCorrupt = errors.New("audit: corrupt record")

// UnmarshalBinary decodes a record.
func (r *Record) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	v := d.byte()
	if v < 1 || v > version {
		return fmt.Errorf("%w: encoding version %d, want 1 to %d", ErrCorrupt, v, version)
	}
	r.enc = 0
	if v != version {
		r.enc = v
	}
	r.Time = time.Unix(0, d.varint()).UTC()
	for _, s := range []*string{&r.Session, &r.Repo, &r.Op, &r.Target, &r.Outcome, &r.Code, &r.Container, &r.Decider, &r.Reason} {
		*s = d.string()
	}
	r.Seq = d.uvarint()
	r.PID = uint32(d.uvarint())
	for _, n := range []*int64{&r.BytesIn, &r.BytesOut, (*int64)(&r.Latency), (*int64)(&r.Wait), (*int64)(&r.Policy), (*int64)(&r.Sandbox), (*int64)(&r.Transform)} {
		*n = d.varint()
	}
	r.Pooled = d.byte() == 1
	if v >= 2 {
		r.Changes = d.string()
	}
	if v >= 3 {
		r.FrontEnd, r.Client = d.string(), d.string()
	}
	if v >= 4 {
		r.Resolved, r.HostTools = d.string(), d.string()
	}
	if v >= 5 {
		r.Checkpoint = d.uvarint()
	}
	if v >= 6 {
		r.Network = d.string()
	}
	copy(r.Prev[:], d.bytes(32))
	copy(r.Hash[:], d.bytes(32))
	if d.err != nil || len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes do not decode", ErrCorrupt, len(b))
	}
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if len(d.b) < n {
		d.fail()
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	return string(d.bytes(int(n)))
}

// genesis is the Prev of a session's first record.
func genesis(session string) [32]byte {
	return sha256.Sum256([]byte("llm-runtime audit v1 " + session))
}

// seal sets Hash from the other fields.
func (r *Record) seal() { r.Hash = r.computeHash() }

func (r *Record) computeHash() [32]byte { return sha256.Sum256(r.body()) }
