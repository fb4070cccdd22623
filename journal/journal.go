package journal

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/internal/private"
	"github.com/llm-runtime/llm-runtime/internal/proc"
)

// The kinds of a State.
const (
	None    = "none"
	File    = "file"
	Dir     = "dir"
	Symlink = "symlink"
)

// State is what a path held: nothing, a file (its mode, size and content's
// sum), a directory (its mode) or a symbolic link (its target).
type State struct {
	Kind   string // None, File, Dir or Symlink
	Mode   uint32 // permission bits, with setuid, setgid and sticky (07777)
	Size   int64  // a file's size
	Sum    string // a file's content, as Put named it
	Target string // a link's target, byte for byte
	// Data is a file's content, given to Intend to be journaled with the
	// intent itself (at most InlineMax bytes compressed; more is Put
	// first), and
	// given back by Changes for content the log holds. Sum names it
	// either way; Content reads a state's content wherever it is.
	Data []byte
	// Later, set by Intend on a state after, says that the intent names
	// its content by Sum only: the content is compressed after the change
	// is made, and held by the intent's done record, or, when a crash lost
	// that, by the disk, where recovery reads it (Resolve). Intend ignores
	// it as given.
	Later bool

	body []byte // Data as its object holds it (encodeObject), set by Intend
}

// InlineMax is the largest content an intent holds in the log itself,
// compressed: one fsync (the log's) makes it durable with the intent,
// where Put costs two of its own (the object's and its directory's). A
// 100 KiB source file compresses to a fifth of it or less.
const InlineMax = 64 << 10

// Change is one path's change. Path is relative to the repository,
// slash-separated, and kept byte for byte (it need not be UTF-8).
type Change struct {
	Path          string
	Before, After State
}

// Meta says who made a checkpoint.
type Meta struct {
	Session  string
	FrontEnd string // filter, daemon, mcp or cli
	Name     string // a name a client gave the checkpoint, or ""
	Time     time.Time
}

// Intent is a change (or a batch of changes) recorded before it was made.
type Intent struct {
	ID         uint64
	Checkpoint int
	Changes    []Change
	Time       time.Time
	PID        int // the process that made it
}

// Journal is one repository's journal, open. It is safe for concurrent
// use, and any number of processes may have the same journal open.
type Journal struct {
	dir string

	mu     sync.Mutex // held with the flock, or while closing
	lock   *os.File
	log    *os.File // O_APPEND
	off    int64    // the end of the last whole record read or written
	cp     int      // the last checkpoint number
	intent uint64   // the last intent number
	open   map[uint64]*openIntent
	idx    index // where each checkpoint begins
	dirty  bool  // records appended since the last fsync
	closed bool

	last lastContents // the last content a change left at each path
	tail tail         // the records left for after the changes
}

type openIntent struct {
	Intent
	start uint64 // its process's start time
}

// ErrClosed is returned by every method of a closed Journal.
var ErrClosed = errors.New("journal: closed")

// Open opens the journal in dir, making it when it is missing. dir must
// be this user's and writable by no one else, as its parents. Open reads
// the log through, cutting off a torn tail a crash left.
func Open(dir string) (*Journal, error) {
	if err := private.Dir(dir, true); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "objects"), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("journal: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{dir: dir, lock: lock}
	j.loadHead()
	err = j.locked(func() error {
		// A new log starts with its version.
		if j.off == 0 {
			return j.append(true, record{Type: recLog, Version: Version})
		}
		return nil
	})
	if err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

// Dir returns the journal's directory.
func (j *Journal) Dir() string { return j.dir }

func (j *Journal) logPath() string { return filepath.Join(j.dir, "log") }

// locked runs fn holding the journal's lock, with the state brought up to
// date with what this process left for its tail and other processes
// appended, and a torn tail cut off.
func (j *Journal) locked(fn func() error) error {
	j.tail.wait()
	return j.lockedNow(fn)
}

// lockedNow is locked without waiting for the tail: for the tail's own
// work, and for an intent, which waits only for what it needs.
func (j *Journal) lockedNow(fn func() error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if err := flock(j.lock, unix.LOCK_EX); err != nil {
		return fmt.Errorf("journal: locking %s: %w", j.lock.Name(), err)
	}
	defer flock(j.lock, unix.LOCK_UN)
	if err := j.catchUp(); err != nil {
		return err
	}
	return fn()
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// catchUp reads the records appended since j.off, and truncates a torn
// tail. A log replaced (as a Prune will) is read anew.
func (j *Journal) catchUp() error {
	st, err := os.Lstat(j.logPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	if j.log != nil {
		if cur, err := j.log.Stat(); err != nil || st == nil || !os.SameFile(cur, st) {
			j.log.Close()
			j.log = nil
		}
	}
	if j.log == nil {
		f, err := os.OpenFile(j.logPath(), os.O_RDWR|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		j.log, j.off, j.cp, j.intent, j.open, j.idx = f, 0, 0, 0, map[uint64]*openIntent{}, index{}
		if st, err = f.Stat(); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	size := st.Size()
	if size == j.off {
		return nil
	}
	if size < j.off {
		return fmt.Errorf("%w: the log shrank from %d to %d bytes under the lock: something other than llm-runtime changed it", ErrDamaged, j.off, size)
	}
	b := make([]byte, size-j.off)
	if _, err := j.log.ReadAt(b, j.off); err != nil && err != io.EOF {
		return fmt.Errorf("journal: reading the log: %w", err)
	}
	base := j.off
	end, err := records(b, base, func(r *record, off int64, _ []byte) error {
		j.apply(r, off, crcOf(b, off-base))
		return nil
	})
	if err != nil {
		return err
	}
	j.off += end
	if j.off < size {
		// A torn tail: a writer died in its write.
		if err := j.log.Truncate(j.off); err != nil {
			return fmt.Errorf("journal: cutting the log's torn tail at %d: %w", j.off, err)
		}
	}
	return nil
}

// apply brings the state up to date with one record, whose frame is at
// off in the log, its CRC crc.
func (j *Journal) apply(r *record, off int64, crc uint32) {
	j.idx.last, j.idx.lastCRC = off, crc
	switch r.Type {
	case recLog:
		j.cp = max(j.cp, r.Checkpoint)
		j.intent = max(j.intent, r.Intent)
	case recBegin:
		j.cp = max(j.cp, r.Checkpoint)
		j.idx.add(r.Checkpoint, off, r.Time)
	case recIntent:
		j.intent = max(j.intent, r.Intent)
		j.open[r.Intent] = &openIntent{Intent{ID: r.Intent, Checkpoint: r.Checkpoint, Changes: r.Changes, Time: r.Time, PID: r.PID}, r.Start}
	case recDone, recAbort:
		delete(j.open, r.Intent)
	}
}

// append writes records at the end of the log in one write, and fsyncs
// the log when sync is set. It runs under the lock.
func (j *Journal) append(sync bool, recs ...record) error {
	var b []byte
	at := make([]int64, len(recs)) // each frame's start in b
	for i := range recs {
		payload, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		if len(payload) > maxRecord {
			return fmt.Errorf("journal: a record of %d bytes is over the limit of %d: journal fewer changes at once", len(payload), maxRecord)
		}
		at[i] = int64(len(b))
		b = frame(b, payload)
	}
	if _, err := j.log.Write(b); err != nil {
		// Part of it may be there: cut it off now, so that it cannot end
		// up under records appended later.
		j.log.Truncate(j.off)
		return fmt.Errorf("journal: appending to the log: %w", err)
	}
	for i := range recs {
		j.apply(&recs[i], j.off+at[i], crcOf(b, at[i]))
	}
	j.off += int64(len(b))
	j.dirty = true
	if sync {
		if err := unix.Fdatasync(int(j.log.Fd())); err != nil {
			return fmt.Errorf("journal: syncing the log: %w", err)
		}
		j.dirty = false
	}
	return nil
}

// Close fsyncs what was appended lazily (Done, Abort, End) and closes the
// journal.
func (j *Journal) Close() error {
	terr := j.tail.flush()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	err := terr
	if j.log != nil {
		j.saveHead()
		if j.dirty {
			if serr := unix.Fdatasync(int(j.log.Fd())); err == nil {
				err = serr
			}
		}
		if cerr := j.log.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := j.lock.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("journal: closing: %w", err)
	}
	return nil
}

// Checkpoint is a checkpoint begun by this process. Its methods are safe
// for concurrent use.
type Checkpoint struct {
	j *Journal
	n int

	mu      sync.Mutex
	open    map[uint64][]later // its intents with no outcome yet, and their contents to come
	lazy    map[string][]byte  // the objects of inline contents, which End writes
	lazyLen int
}

// later is a content an intent names by sum only (State.Later), which its
// done record is to hold: its path, and its state with the content (a copy
// of the caller's).
type later struct {
	path string
	st   State
}

// lazyMin is the smallest object End writes for an inline content: one
// smaller would take a whole block of the disk for less, and the log
// holds it anyway. Such a content is inline again in each intent that
// names it.
const lazyMin = 4 << 10

// maxLazy bounds the inline contents a checkpoint holds until End writes
// their objects; past it, they are written at once.
const maxLazy = 8 << 20

// Begin starts the repository's next checkpoint.
func (j *Journal) Begin(meta Meta) (*Checkpoint, error) {
	if meta.Time.IsZero() {
		meta.Time = time.Now()
	}
	var n int
	// Without waiting for the tail: records of checkpoints interleave as
	// those of several processes do, and what the tail has left to append
	// of the one before belongs to it by number.
	err := j.lockedNow(func() error {
		n = j.cp + 1
		return j.append(false, record{Type: recBegin, Checkpoint: n, Session: meta.Session, FrontEnd: meta.FrontEnd,
			Name: meta.Name, Time: meta.Time.UTC(), PID: os.Getpid(), Start: proc.Self})
	})
	if err != nil {
		return nil, err
	}
	return &Checkpoint{j: j, n: n, open: map[uint64][]later{}}, nil
}

// Number is the checkpoint's number in the repository.
func (cp *Checkpoint) Number() int { return cp.n }

// Intend records changes about to be made, and returns when the record is
// on disk for good; only then may the caller make them, and then it says
// how that went with Done or Abort. Every file state's content must be
// given as its Data, or have been Put. An error means that nothing was
// recorded: the caller must not make the changes.
//
// The intent holds each content before (the change takes it away) and
// names each content after by its sum (State.Later): the change puts it
// on disk, and Done compresses it into the done record after the caller
// goes on. Intend keeps its own copy of it.
func (cp *Checkpoint) Intend(changes []Change) (uint64, error) {
	if len(changes) == 0 {
		return 0, errors.New("journal: an intent with no changes")
	}
	changes, contents, err := cp.j.inline(changes)
	if err != nil {
		return 0, err
	}
	for _, c := range changes {
		if err := c.Before.check(); err != nil {
			return 0, fmt.Errorf("journal: %q before: %w", c.Path, err)
		}
		if err := c.After.check(); err != nil {
			return 0, fmt.Errorf("journal: %q after: %w", c.Path, err)
		}
	}
	var id uint64
	err = cp.j.lockedNow(func() error {
		// Under the lock, since a Prune will remove objects under it.
		for i := range changes {
			for _, s := range []*State{&changes[i].Before, &changes[i].After} {
				if s.Kind != File || s.Sum == emptySum || s.Later {
					continue
				}
				if s.Data != nil {
					if cp.j.stored(s.Sum) {
						// Stored already (most often, what an earlier change
						// left): the intent names it. An object written
						// lazily is in the log too, inline, and a Prune that
						// drops that record writes the object durably first.
						s.Data, s.body = nil, nil
					}
					continue
				}
				if _, err := os.Stat(cp.j.objectPath(s.Sum)); err != nil {
					return fmt.Errorf("journal: %q: the content %s is not in the store (Put it first): %w", changes[i].Path, s.Sum, err)
				}
			}
		}
		id = cp.j.intent + 1
		return cp.j.append(true, record{Type: recIntent, Checkpoint: cp.n, Intent: id, Changes: changes,
			Time: time.Now().UTC(), PID: os.Getpid(), Start: proc.Self})
	})
	if err != nil {
		return 0, err
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.open[id] = contents
	for _, c := range changes {
		cp.keepLazy(c.Before)
	}
	return id, nil
}

// keepLazy keeps the object of an inline content for End to write (see
// lazyMin), or writes it now when the checkpoint holds too many. The log
// holds the content for good; the object is only a faster way to it,
// written without fsync (each would add its metadata to the log's next
// fsync): a crash may lose one, and Get then reads the log. cp.mu is
// held.
func (cp *Checkpoint) keepLazy(st State) {
	switch {
	case len(st.body) < lazyMin:
	case cp.lazyLen+len(st.body) > maxLazy:
		cp.j.putLazy(st.Sum, st.body)
	default:
		if cp.lazy == nil {
			cp.lazy = map[string][]byte{}
		}
		if _, ok := cp.lazy[st.Sum]; !ok {
			cp.lazy[st.Sum] = st.body
			cp.lazyLen += len(st.body)
		}
	}
}

// inline prepares an intent's file states: a state given with its Data
// gets its Sum (or has it checked). A state before is compressed for the
// log, unless it is stored already (Intend will name it, the lock held,
// if it still is); one over InlineMax compressed is Put and named by its
// sum only. A state after not stored is named by its sum (Later), and
// returned among the contents for its done record, with a copy of its
// data. It returns a copy of changes, which is not modified.
func (j *Journal) inline(changes []Change) ([]Change, []later, error) {
	out := slices.Clone(changes)
	var contents []later
	for i := range out {
		for _, st := range []*State{&out[i].Before, &out[i].After} {
			st.Later = false
			if st.Kind != File || st.Data == nil {
				continue
			}
			after := st == &out[i].After
			// What a change leaves, the next change of the path most often
			// finds: it is hashed and compressed once.
			p, known := j.last.find(out[i].Path, st.Data)
			if known && p.body == nil && !after && !j.stored(p.sum) {
				// Left by a change whose done record the tail has not
				// written yet: it compresses it, and is waited for.
				j.tail.wait()
				p, known = j.last.find(out[i].Path, st.Data)
			}
			if !known {
				p = prepared{data: st.Data, sum: Sum(st.Data)}
			}
			sum := p.sum
			if st.Sum != "" && st.Sum != sum {
				return nil, nil, fmt.Errorf("journal: %q: the content given is not the content %s names", out[i].Path, st.Sum)
			}
			st.Sum = sum
			switch {
			case len(st.Data) == 0:
				st.Data = nil // the empty content needs no store
			case len(st.Data) > MaxObject:
				return nil, nil, ErrTooLarge
			case after:
				if j.stored(sum) {
					st.Data = nil // named by Intend, the lock held, if it is still stored
					break
				}
				if !known {
					p.data = bytes.Clone(st.Data)
					j.last.keep(out[i].Path, p)
				}
				contents = append(contents, later{path: out[i].Path, st: State{Kind: File, Mode: st.Mode, Size: st.Size, Sum: sum, Data: p.data}})
				st.Data, st.Later = nil, true
			default:
				stored := j.stored(sum)
				if stored && len(st.Data) <= InlineMax {
					break // named by Intend, the lock held, if it is still stored
				}
				if !stored && p.body == nil {
					p.body = encodeObject(st.Data)
				}
				if stored || len(p.body) > InlineMax {
					// Too large for the log even compressed (or stored: put
					// touches it, for a Prune to spare): an object of its
					// own, durable before the intent names it.
					if _, err := j.put(sum, st.Data, p.body); err != nil {
						return nil, nil, err
					}
					st.Data = nil
					break
				}
				st.body = p.body
			}
		}
	}
	return out, contents, nil
}

func (s State) check() error {
	switch s.Kind {
	case None, Dir, Symlink:
	case File:
		if !validSum(s.Sum) {
			return fmt.Errorf("a file's sum %q is not a SHA-256 (64 lowercase hex digits)", s.Sum)
		}
	default:
		return fmt.Errorf("kind %q is not none, file, dir or symlink", s.Kind)
	}
	if s.Mode&^0o7777 != 0 {
		return fmt.Errorf("mode %o has bits beyond 07777", s.Mode)
	}
	return nil
}

// Done records that the intent's changes were made. It returns at once:
// the contents the changes left are compressed into the done record, and
// it is appended, by the journal's tail (see Flush). It is not fsynced:
// see the package doc for what a crash then leaves.
func (cp *Checkpoint) Done(id uint64) error {
	contents, err := cp.outcome(id)
	if err != nil {
		return err
	}
	cp.j.tail.add(func() error {
		r := record{Type: recDone, Checkpoint: cp.n, Intent: id}
		for _, c := range contents {
			st, err := cp.j.hold(c.path, c.st)
			if err != nil {
				return err
			}
			r.Changes = append(r.Changes, Change{Path: c.path, After: st})
			cp.mu.Lock()
			cp.keepLazy(st)
			cp.mu.Unlock()
		}
		return cp.j.appendLazily(r)
	})
	return nil
}

// hold prepares a content an intent named by sum only (Later) for the
// record that holds it: compressed, inline when that is at most
// InlineMax, else Put (durably: the record names it). The last content
// of path is given its compressed form, for the next change that finds
// it.
func (j *Journal) hold(path string, st State) (State, error) {
	body := encodeObject(st.Data)
	if len(body) > InlineMax {
		if _, err := j.put(st.Sum, st.Data, body); err != nil {
			return st, err
		}
		st.Data = nil
		return st, nil
	}
	st.body = body
	j.last.setBody(path, st.Sum, body)
	return st, nil
}

// Abort records that the intent's changes were not made, and why. Like
// Done, it is appended by the tail.
func (cp *Checkpoint) Abort(id uint64, reason string) error {
	if _, err := cp.outcome(id); err != nil {
		return err
	}
	cp.j.tail.add(func() error {
		return cp.j.appendLazily(record{Type: recAbort, Checkpoint: cp.n, Intent: id, Reason: reason})
	})
	return nil
}

// appendLazily appends r, not fsynced, for the tail (which must not wait
// for itself).
func (j *Journal) appendLazily(r record) error {
	return j.lockedNow(func() error { return j.append(false, r) })
}

// outcome takes intent id, of this checkpoint and with no outcome yet,
// off the open ones, with the contents its done record is to hold.
func (cp *Checkpoint) outcome(id uint64) ([]later, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	contents, ok := cp.open[id]
	if !ok {
		return nil, fmt.Errorf("journal: intent %d has an outcome already, or is not of checkpoint %d", id, cp.n)
	}
	delete(cp.open, id)
	return contents, nil
}

// End closes the checkpoint. It returns at once: the tail writes the
// objects of its inline contents and appends its end. A checkpoint never
// ended (its process died) is listed as such; its done changes count as
// any other's.
func (cp *Checkpoint) End() error {
	cp.j.tail.add(func() error {
		cp.mu.Lock()
		for sum, body := range cp.lazy {
			cp.j.putLazy(sum, body)
		}
		cp.lazy, cp.lazyLen = nil, 0
		cp.mu.Unlock()
		return cp.j.lockedNow(func() error {
			if err := cp.j.append(false, record{Type: recEnd, Checkpoint: cp.n}); err != nil {
				return err
			}
			if cp.j.off-cp.j.idx.saved > headEvery {
				cp.j.saveHead() // for a process that keeps the journal open (a daemon)
			}
			return nil
		})
	})
	return nil
}

// Pending lists, by number, the intents with no outcome whose process is
// gone: each must be resolved (see the package doc). An intent of a
// process still running is not pending, since it may be making the
// change now.
func (j *Journal) Pending() ([]Intent, error) {
	var list []Intent
	err := j.locked(func() error {
		for _, in := range j.open {
			if !proc.Same(in.PID, in.start) {
				list = append(list, in.Intent)
			}
		}
		return nil
	})
	slices.SortFunc(list, func(a, b Intent) int { return cmp.Compare(a.ID, b.ID) })
	return list, err
}

// Resolve records the verdict on a pending intent, once the caller has
// compared the disk with its changes: applied when the changes were made.
// An applied intent's contents after that the log does not hold (Later:
// its done record was lost) must be among found, as the caller read them
// from the disk; the record holds them. It is fsynced.
func (j *Journal) Resolve(id uint64, applied bool, found ...[]byte) error {
	return j.locked(func() error {
		in, ok := j.open[id]
		switch {
		case !ok:
			return fmt.Errorf("journal: intent %d has an outcome already, or is not there", id)
		case proc.Same(in.PID, in.start):
			return fmt.Errorf("journal: intent %d is not pending: its process (%d) is running", id, in.PID)
		}
		r := record{Type: recAbort, Checkpoint: in.Checkpoint, Intent: id, Resolved: true, Reason: "not applied, found after a crash"}
		if applied {
			r = record{Type: recDone, Checkpoint: in.Checkpoint, Intent: id, Resolved: true}
			byS := map[string][]byte{}
			for _, b := range found {
				byS[Sum(b)] = b
			}
			for _, c := range in.Changes {
				if !c.After.Later {
					continue
				}
				data, ok := byS[c.After.Sum]
				if !ok {
					return fmt.Errorf("journal: intent %d: %q was left with the content %s, which is not among those found: read it from the disk", id, c.Path, c.After.Sum)
				}
				st, err := j.hold(c.Path, State{Kind: File, Mode: c.After.Mode, Size: c.After.Size, Sum: c.After.Sum, Data: data})
				if err != nil {
					return err
				}
				if st.body != nil && len(st.body) >= lazyMin {
					j.putLazy(st.Sum, st.body)
				}
				r.Changes = append(r.Changes, Change{Path: c.Path, After: st})
			}
		}
		return j.append(true, r)
	})
}
