package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/llm-runtime/llm-runtime/parser"
)

// ErrDamaged is the error of a store with a file that Pebble finds damaged
// (a checksum that does not match, a block that does not decode): a disk
// fault or a hand that edited it. Every *DamageError is an ErrDamaged.
var ErrDamaged = errors.New("audit: the store is damaged")

// DamageError names the damaged file of a store, and the time range of the
// records it holds when Pebble says: those records cannot be read, the
// others still can (Filter.Since and Until keep a scan away from it).
type DamageError struct {
	File     string    // the damaged file, or the database's directory when Pebble does not name one
	From, To time.Time // the first and last record time the file holds; zero when unknown
	Err      error     // Pebble's error
}

func (e *DamageError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "audit: the store is damaged: %s", e.File)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %s", firstLine(e.Err))
	}
	switch {
	case !e.From.IsZero() && !e.To.IsZero():
		fmt.Fprintf(&b, "; it holds the records of %s to %s, which cannot be read", stamp(e.From), stamp(e.To))
	case !e.From.IsZero():
		fmt.Fprintf(&b, "; it holds records from %s on, which cannot be read", stamp(e.From))
	}
	return parser.Printable(b.String())
}

// Is makes a *DamageError an ErrDamaged.
func (e *DamageError) Is(target error) bool { return target == ErrDamaged }

func (e *DamageError) Unwrap() error { return e.Err }

// firstLine is an error's message up to its first newline: Pebble's errors
// carry more lines of detail (stack traces with %+v, a carrier of the
// corruption's details with %v).
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// asDamage returns err as a *DamageError when Pebble marked it as
// corruption, naming the file Pebble names, else dir; a file under copied,
// the copy of a live segment, is named under dir, the segment. Other
// errors pass unchanged.
func asDamage(err error, dir, copied string) error {
	if err == nil || !pebble.IsCorruptionError(err) {
		return err
	}
	d := &DamageError{File: dir, Err: err}
	if info := pebble.ExtractDataCorruptionInfo(err); info != nil {
		if info.Details != nil {
			d.Err = info.Details
		}
		if info.Path != "" {
			d.File = info.Path
			if copied != "" {
				if rel, err := filepath.Rel(copied, info.Path); err == nil && !strings.HasPrefix(rel, "..") {
					d.File = filepath.Join(dir, rel)
				}
			}
		}
		d.From, d.To = keyTime(info.Bounds.Start), keyTime(info.Bounds.End.Key)
	}
	return d
}

// keyTime is the record time a key starts with; zero for a shorter key.
func keyTime(k []byte) time.Time {
	if len(k) < 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC()
}

// damaged is asDamage for the error of the reader's database i.
func (r *Reader) damaged(i int, err error) error {
	return asDamage(err, r.dirs[i], r.copies[i])
}
