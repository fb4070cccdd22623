package journal

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
	"unicode/utf8"
)

// ErrDamaged is wrapped by the errors that report a damaged log or object:
// damage a crash cannot leave, such as a changed byte.
var ErrDamaged = errors.New("journal: damaged")

// Version is the log's format version, in its first record.
const Version = 1

const (
	frameHeader = 8
	maxRecord   = 64 << 20 // a changeset of 100,000 paths is ~30 MB
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frame appends the frame of payload to b.
func frame(b, payload []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, castagnoli))
	return append(b, payload...)
}

// wholeAt returns the length of the whole frame at b[off:], or 0 when
// there is none.
func wholeAt(b []byte, off int) int {
	if len(b)-off < frameHeader {
		return 0
	}
	n := int(binary.LittleEndian.Uint32(b[off:]))
	if n == 0 || n > maxRecord || n > len(b)-off-frameHeader {
		return 0
	}
	payload := b[off+frameHeader : off+frameHeader+n]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[off+4:]) {
		return 0
	}
	return frameHeader + n
}

// frames calls fn with the payload and offset of each whole frame of b in
// turn, and returns the length of b up to the end of the last one. A bad
// frame followed by no whole frame is a torn tail, left out; one followed
// by a whole frame is damage (ErrDamaged), base being b's offset in the
// log, for the message.
func frames(b []byte, base int64, fn func(payload []byte, off int64) error) (int64, error) {
	off := 0
	for off < len(b) {
		n := wholeAt(b, off)
		if n == 0 {
			for later := off + 1; later < len(b); later++ {
				if wholeAt(b, later) > 0 {
					return int64(off), fmt.Errorf("%w: the log's record at offset %d is broken and whole records follow it (not a crash's cut): move the journal's log aside to start a new one", ErrDamaged, base+int64(off))
				}
			}
			return int64(off), nil
		}
		if err := fn(b[off+frameHeader:off+n], base+int64(off)); err != nil {
			return int64(off), err
		}
		off += n
	}
	return int64(off), nil
}

// records calls fn with each whole record of b in turn, decoded, with
// its frame's offset in the log and its payload: frames, each decoded. A
// record that does not decode is an error (see decode).
func records(b []byte, base int64, fn func(r *record, off int64, payload []byte) error) (int64, error) {
	return frames(b, base, func(payload []byte, off int64) error {
		r, err := decode(payload, off)
		if err != nil {
			return err
		}
		return fn(&r, off, payload)
	})
}

// crcOf is the CRC-32C of the frame at b[i:] as its header gives it.
func crcOf(b []byte, i int64) uint32 { return binary.LittleEndian.Uint32(b[i+4:]) }

// record is one record of the log, every kind's fields together (see the
// package doc).
type record struct {
	Type       string    `json:"type"`
	Version    int       `json:"version,omitempty"`
	Checkpoint int       `json:"checkpoint,omitempty"`
	Intent     uint64    `json:"intent,omitempty"`
	Session    string    `json:"session,omitempty"`
	FrontEnd   string    `json:"front_end,omitempty"`
	Name       string    `json:"name,omitempty"`
	Time       time.Time `json:"time,omitzero"`
	PID        int       `json:"pid,omitempty"`
	Start      uint64    `json:"start,omitempty"`
	Changes    []Change  `json:"changes,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Resolved   bool      `json:"resolved,omitempty"`
}

const (
	recLog    = "log"
	recBegin  = "begin"
	recIntent = "intent"
	recDone   = "done"
	recAbort  = "abort"
	recEnd    = "end"
)

// decode reads a record's payload.
func decode(payload []byte, off int64) (record, error) {
	var r record
	if err := json.Unmarshal(payload, &r); err != nil {
		return r, fmt.Errorf("%w: the log's record at offset %d has a valid checksum but does not decode (%v): a newer llm-runtime may have written it", ErrDamaged, off, err)
	}
	if r.Type == recLog && r.Version > Version {
		return r, fmt.Errorf("journal: the log is of version %d, newer than this llm-runtime's (%d): update llm-runtime", r.Version, Version)
	}
	return r, nil
}

// wireState is a State as the log holds it.
type wireState struct {
	Kind     string `json:"kind"`
	Mode     uint32 `json:"mode,omitempty"`
	Size     int64  `json:"size,omitempty"`
	Sum      string `json:"sum,omitempty"`
	Target   string `json:"target,omitempty"`
	Target64 []byte `json:"target64,omitempty"`
	Data     []byte `json:"data,omitempty"`  // inline content, base64
	ZData    []byte `json:"zdata,omitempty"` // inline content, compressed with zstd, base64
	Later    bool   `json:"later,omitempty"` // content held by the intent's done record
}

type wireChange struct {
	Path   string    `json:"path,omitempty"`
	Path64 []byte    `json:"path64,omitempty"`
	Before wireState `json:"before"`
	After  wireState `json:"after"`
}

// MarshalJSON writes a path or target that is not valid UTF-8 as its
// bytes, in base64, which JSON keeps exactly.
func (c Change) MarshalJSON() ([]byte, error) {
	w := wireChange{Before: toWire(c.Before), After: toWire(c.After)}
	if utf8.ValidString(c.Path) {
		w.Path = c.Path
	} else {
		w.Path64 = []byte(c.Path)
	}
	return json.Marshal(w)
}

func (c *Change) UnmarshalJSON(b []byte) error {
	var w wireChange
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	before, err := fromWire(w.Before)
	if err != nil {
		return err
	}
	after, err := fromWire(w.After)
	if err != nil {
		return err
	}
	*c = Change{Path: w.Path, Before: before, After: after}
	if w.Path64 != nil {
		c.Path = string(w.Path64)
	}
	return nil
}

func toWire(s State) wireState {
	w := wireState{Kind: s.Kind, Mode: s.Mode, Size: s.Size, Sum: s.Sum, Data: s.Data, Later: s.Later}
	if len(s.body) > 0 && s.body[0] == objZstd {
		w.Data, w.ZData = nil, s.body[1:]
	}
	if utf8.ValidString(s.Target) {
		w.Target = s.Target
	} else {
		w.Target64 = []byte(s.Target)
	}
	return w
}

func fromWire(w wireState) (State, error) {
	s := State{Kind: w.Kind, Mode: w.Mode, Size: w.Size, Sum: w.Sum, Target: w.Target, Data: w.Data, Later: w.Later}
	if w.Target64 != nil {
		s.Target = string(w.Target64)
	}
	if w.ZData != nil {
		data, err := decoder().DecodeAll(w.ZData, nil)
		if err != nil {
			return s, fmt.Errorf("inline content that does not decode: %w", err)
		}
		s.Data = data
	}
	return s, nil
}
