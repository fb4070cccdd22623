package audit

import (
	"bytes"
	"cmp"
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/llm-runtime/llm-runtime/internal/proc"
)

// ErrBusy is returned when the shared database stayed locked by other
// processes for longer than the retry allows.
var ErrBusy = errors.New("audit: the store is busy")

// Options configure opening a store. The zero value is quiet (what goes
// wrong comes back as an error, a damaged file as a DamageError that names
// it) and waits up to 10 s for the shared database.
type Options struct {
	// Verbose lets Pebble's errors through to Log (llm-runtime -v): a
	// damaged file, with Pebble's stack of where it was found. The error
	// itself is returned whether or not.
	Verbose bool
	// Debug lets Pebble's informational lines (its WALs, flushes and
	// compactions: "pebble: [JOB 1] WAL created...") through too: Pebble's
	// business, not a user's (llm-runtime -vv).
	Debug bool
	// Log gets Pebble's lines, each prefixed "pebble: "; nil: standard
	// error.
	Log io.Writer
	// Wait bounds how long to retry the shared database when another
	// process holds it. Default 10 s.
	Wait time.Duration
}

func (o Options) pebble(readOnly bool) *pebble.Options {
	w := o.Log
	if w == nil {
		w = os.Stderr
	}
	logger := &pebbleLog{w: w, errors: o.Verbose || o.Debug, debug: o.Debug}
	po := &pebble.Options{ReadOnly: readOnly, Logger: logger}
	// On a damaged file Pebble's default is Logger.Fatalf, from the read
	// that found it or from a compaction in the background. Pebble also
	// returns the error to that read, which is what a caller gets here
	// (see DamageError); so only log it.
	po.EventListener = &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) { logger.Errorf("%s", info) }}
	return po
}

// pebbleLog is Pebble's Logger: informational lines only when debugging,
// errors when verbose, and a fatal error written then raised as a panic
// (Pebble does not expect Fatalf to return).
type pebbleLog struct {
	mu     sync.Mutex // Pebble logs from its background goroutines too
	w      io.Writer
	errors bool
	debug  bool
}

func (l *pebbleLog) Infof(format string, a ...any) {
	if l.debug {
		l.print(format, a...)
	}
}

func (l *pebbleLog) Errorf(format string, a ...any) {
	if l.errors {
		l.print(format, a...)
	}
}

func (l *pebbleLog) Fatalf(format string, a ...any) {
	l.print(format, a...)
	panic("pebble: " + fmt.Sprintf(format, a...))
}

func (l *pebbleLog) print(format string, a ...any) {
	msg := strings.TrimSuffix(fmt.Sprintf(format, a...), "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "pebble: %s\n", strings.ReplaceAll(msg, "\n", "\npebble: "))
}

func mainDir(dir string) string     { return filepath.Join(dir, "main") }
func segmentsDir(dir string) string { return filepath.Join(dir, "segments") }

// Log is an open segment of the store, which the records of any number of
// sessions go to: a process that serves many sessions (llm-runtime serve)
// keeps one, so that their appends share its syncs. It is safe for
// concurrent use.
type Log struct {
	dir, seg string
	db       *pebble.DB
	opts     Options

	// mu is held shared by commits and exclusively by Close, so that
	// commits share syncs and none runs into a closed database.
	mu     sync.RWMutex
	closed bool

	merged chan struct{} // closed when the merge of earlier segments ended
}

// Writer appends one session's records, to a segment of its own (OpenWriter)
// or to a Log's (Log.Writer). It is safe for concurrent use.
type Writer struct {
	log *Log
	own bool // Close closes the log

	mu      sync.Mutex
	session string
	pid     uint32
	seq     uint64
	prev    [32]byte
	closed  bool
}

// NewSession returns a new session id: the start time and a random suffix.
func NewSession() string {
	var b [4]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// OpenWriter opens a new segment in the store at dir for session, and
// merges the closed segments of earlier writers into the shared database
// in the background (Close waits for that): a run merges its predecessors'
// records while its sandbox starts, instead of its own at its exit, which
// would cost ~10 ms of every run.
func OpenWriter(dir, session string, opts Options) (*Writer, error) {
	l, err := openLog(dir, session, opts)
	if err != nil {
		return nil, err
	}
	w := l.Writer(session)
	w.own = true
	return w, nil
}

// OpenLog opens a new segment in the store at dir for the sessions of
// Log.Writer, and merges the closed segments of earlier writers into the
// shared database in the background, as OpenWriter does. The segment is
// merged after Close, by the next writer or reader.
func OpenLog(dir string, opts Options) (*Log, error) {
	return openLog(dir, "log-"+NewSession(), opts)
}

func openLog(dir, name string, opts Options) (*Log, error) {
	seg := filepath.Join(segmentsDir(dir), fmt.Sprintf("%d-%d-%s", time.Now().UnixNano(), os.Getpid(), name))
	ownSegments.set(seg, true)
	if err := os.MkdirAll(seg, 0o700); err != nil {
		ownSegments.set(seg, false)
		return nil, fmt.Errorf("audit: %w", err)
	}
	db, err := pebble.Open(seg, opts.pebble(false))
	if err != nil {
		ownSegments.set(seg, false)
		return nil, fmt.Errorf("audit: opening %s: %w", seg, err)
	}
	l := &Log{dir: dir, seg: seg, db: db, opts: opts, merged: make(chan struct{})}
	go l.mergeEarlier()
	return l, nil
}

// Writer returns a writer of session's records to the log. Closing it ends
// the session; the log stays open.
func (l *Log) Writer(session string) *Writer {
	return &Writer{log: l, session: session, pid: uint32(os.Getpid()), prev: genesis(session)}
}

// mergeEarlier merges every closed segment into the shared database,
// unless another process holds it: then a later writer or reader will.
func (l *Log) mergeEarlier() {
	defer close(l.merged)
	os.MkdirAll(mainDir(l.dir), 0o700)
	if lock, err := pebble.LockDirectory(mainDir(l.dir), vfs.Default); err == nil {
		if db, err := openMain(l.dir, lock, l.opts); err == nil {
			mergeSegments(db, l.dir, l.opts)
			db.Close()
		}
	}
}

// Session returns the writer's session id.
func (w *Writer) Session() string { return w.session }

// Append fills in the record's session, pid, sequence number and chain
// hashes, and writes it durably: when Append returns nil the record is on
// disk (the write-ahead log is synced; concurrent appends share a sync,
// those of every session of a Log too).
func (w *Writer) Append(r *Record) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("audit: writer closed")
	}
	w.seq++
	r.Session, r.PID, r.Seq, r.Prev = w.session, w.pid, w.seq, w.prev
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	r.seal()
	w.prev = r.Hash
	v, _ := r.MarshalBinary()
	b := w.log.db.NewBatch()
	b.Set(r.Key(), v, nil)
	w.mu.Unlock()
	// Outside the lock, so that appends from several goroutines commit
	// together: Pebble syncs the log once for all batches waiting on it.
	if err := w.log.commit(b); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func (l *Log) commit(b *pebble.Batch) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		b.Close()
		return errors.New("log closed")
	}
	return b.Commit(pebble.Sync)
}

// Close ends the writer's session; a writer of OpenWriter closes its
// segment too (see Log.Close).
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	if w.own {
		return w.log.Close()
	}
	return nil
}

// Close closes the segment, which the next writer or reader merges into
// the shared database; readers see it meanwhile. It waits for the merge
// the open started. Appends racing with Close fail or land before it.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	err := l.db.Close()
	<-l.merged // it must not take our segment, which it would see closed
	ownSegments.set(l.seg, false)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// openMain opens the shared database under a lock the caller took; the
// database holds the lock until it is closed.
func openMain(dir string, lock *pebble.Lock, opts Options) (*pebble.DB, error) {
	po := opts.pebble(false)
	po.Lock = lock
	db, err := pebble.Open(mainDir(dir), po)
	lock.Close() // Open took its own reference
	if err != nil {
		if err := asDamage(err, mainDir(dir), ""); errors.Is(err, ErrDamaged) {
			return nil, err
		}
		return nil, fmt.Errorf("audit: opening %s: %w", mainDir(dir), err)
	}
	return db, nil
}

// lockMain takes the shared database's lock, retrying while other
// processes hold it, for up to opts.Wait.
func lockMain(dir string, opts Options) (*pebble.Lock, error) {
	m := mainDir(dir)
	if err := os.MkdirAll(m, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	wait := opts.Wait
	if wait == 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	for delay := time.Millisecond; ; delay = min(delay*2, 100*time.Millisecond) {
		lock, err := pebble.LockDirectory(m, vfs.Default)
		if err == nil {
			return lock, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s stayed locked for %s: %v", ErrBusy, m, wait, err)
		}
		time.Sleep(delay)
	}
}

// ownSegments are the segments this process's writers have open, or are
// opening.
var ownSegments = segmentSet{m: map[string]bool{}}

type segmentSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *segmentSet) set(path string, open bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if open {
		s.m[path] = true
	} else {
		delete(s.m, path)
	}
}

func (s *segmentSet) has(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[path]
}

// inUse tells whether a segment may still be written: this process has it
// open, or its writer's process (named in the segment's name,
// TIME-PID-SESSION) is alive. Such a segment may be one being created,
// not yet a database and not yet locked, so its lock alone cannot say.
// A closed segment of a live process waits for that process's exit; a
// reader sees it meanwhile.
func inUse(path string) bool {
	if ownSegments.has(path) {
		return true
	}
	parts := strings.SplitN(filepath.Base(path), "-", 3)
	if len(parts) != 3 {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return false // ours, and closed
	}
	return proc.Alive(pid)
}

// mergeSegments moves every closed segment into main. A segment is retired
// only after its records are synced into main, so a crash before that
// merges it again, and merging is idempotent: keys are unique. A damaged
// segment is left where it is, and the first such is returned once the
// others are merged. The steps, each of which a kill -9 may end (see
// TestAKillAtEveryStepOfAMergeLosesNothing):
//
//  1. open the segment, read-only, and read its records;
//  2. commit them to main, synced;
//  3. rename the segment into merged/, in one step, and sync both
//     directories: from then on it is no segment, and nothing reads it;
//  4. remove it from merged/, a file at a time; the next merge removes
//     whatever a kill left there.
//
// Earlier versions removed a merged segment in place, and a kill midway
// left a segment that was no database: it is salvaged (salvage).
func mergeSegments(db *pebble.DB, dir string, opts Options) error {
	removeMerged(dir)
	segs, _ := os.ReadDir(segmentsDir(dir))
	var damage error
	for _, s := range segs {
		path := filepath.Join(segmentsDir(dir), s.Name())
		if inUse(path) {
			continue
		}
		lock, err := pebble.LockDirectory(path, vfs.Default)
		if err != nil {
			continue // live: its writer holds it
		}
		if err := moveSegment(db, dir, path, lock, opts); errors.Is(err, ErrDamaged) {
			damage = cmp.Or(damage, err)
		} else if err != nil {
			return err
		}
	}
	return damage
}

// mergeHook, when set (by tests, never otherwise), is called at each step
// of a merge with its name, so that a test can kill the process there.
var mergeHook func(step string)

func mergeStep(name string) {
	if mergeHook != nil {
		mergeHook(name)
	}
}

func moveSegment(into *pebble.DB, dir, path string, lock *pebble.Lock, opts Options) error {
	po := opts.pebble(true)
	po.Lock = lock
	seg, err := pebble.Open(path, po)
	lock.Close()
	b := into.NewBatch()
	defer b.Close()
	switch {
	case err == nil:
		err = readSegment(seg, path, b)
		if incomplete(err) {
			b.Reset()
			err = salvage(path, b)
		}
	case empty(path):
		// Not a database (an empty directory left by a crash before the
		// first Open finished): nothing to keep.
		err = nil
	case incomplete(err):
		err = salvage(path, b)
	default:
		err = asDamage(err, path, "")
		if !errors.Is(err, ErrDamaged) {
			err = fmt.Errorf("audit: opening segment %s: %w", path, err)
		}
	}
	if err != nil {
		// A damaged segment stays, whole, for a reader to report: merging
		// what could be read and removing it would drop the rest unseen.
		return err
	}
	mergeStep("read " + filepath.Base(path))
	if !b.Empty() {
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("audit: merging %s: %w", path, err)
		}
		mergeStep("committed " + filepath.Base(path))
	}
	return retire(dir, path)
}

// readSegment adds every record of an open segment to b, and closes it.
func readSegment(seg *pebble.DB, path string, b *pebble.Batch) error {
	defer seg.Close()
	it, err := seg.NewIter(nil)
	if err != nil {
		return asDamage(err, path, "")
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			break // it.Error() says it
		}
		b.Set(it.Key(), v, nil) // Set copies
	}
	err = it.Error()
	it.Close()
	return asDamage(err, path, "")
}

// incomplete tells whether a segment failed to open or read because files
// of its database are missing, as a removal cut short leaves it, rather
// than damaged.
func incomplete(err error) bool {
	return err != nil && !pebble.IsCorruptionError(err) &&
		(errors.Is(err, fs.ErrNotExist) || errors.Is(err, pebble.ErrDBDoesNotExist) || errors.Is(err, pebble.ErrDBNotPristine))
}

// mergedDir holds the segments merged into main while they are removed:
// a directory nothing reads, so that a removal cut short leaves no
// half-removed segment among the segments.
func mergedDir(dir string) string { return filepath.Join(dir, "merged") }

// retire takes a segment whose records are synced into main out of
// segments/ in one step (a rename into merged/, synced), then removes it.
// A removal that fails or is cut short is finished by the next merge.
func retire(dir, path string) error {
	tomb := filepath.Join(mergedDir(dir), filepath.Base(path))
	if err := os.MkdirAll(mergedDir(dir), 0o700); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	removeTree(tomb) // a segment of that name retired before (salvaged twice)
	if err := os.Rename(path, tomb); err != nil {
		return fmt.Errorf("audit: retiring the merged segment %s: %w", path, err)
	}
	mergeStep("renamed " + filepath.Base(path))
	if err := errors.Join(syncDir(segmentsDir(dir)), syncDir(mergedDir(dir))); err != nil {
		return fmt.Errorf("audit: retiring the merged segment %s: %w", path, err)
	}
	mergeStep("synced " + filepath.Base(path))
	removeTree(tomb)
	return nil
}

// removeMerged removes what removals cut short left in merged/.
func removeMerged(dir string) {
	tombs, _ := os.ReadDir(mergedDir(dir))
	for _, t := range tombs {
		removeTree(filepath.Join(mergedDir(dir), t.Name()))
	}
}

// removeTree removes a retired segment a file at a time, then its
// directory; what it cannot remove stays, for the next merge.
func removeTree(path string) {
	entries, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	for _, e := range entries {
		os.RemoveAll(filepath.Join(path, e.Name()))
		mergeStep("removed " + filepath.Base(path) + "/" + e.Name())
	}
	os.Remove(path)
	mergeStep("removed " + filepath.Base(path))
}

func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

func empty(path string) bool {
	entries, err := os.ReadDir(path)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Name() != "LOCK" {
			return false
		}
	}
	return true
}

// Reader is a view of the whole store as it was when opened: main, which
// it holds (other readers wait for it), and a copy of every live segment.
type Reader struct {
	dir     string
	dbs     []*pebble.DB
	dirs    []string // each database's directory: main, or the segment copied
	copies  []string // where each database was copied to ("" for main)
	cleanup []string
}

// OpenReader merges closed segments into main and opens main and a copy of
// every live segment for reading. It waits (up to Options.Wait) while other
// processes hold main; writers never wait for it.
func OpenReader(dir string, opts Options) (*Reader, error) {
	lock, err := lockMain(dir, opts)
	if err != nil {
		return nil, err
	}
	db, err := openMain(dir, lock, opts)
	if err != nil {
		return nil, err
	}
	if err := mergeSegments(db, dir, opts); err != nil {
		db.Close()
		return nil, err
	}
	r := &Reader{dir: dir, dbs: []*pebble.DB{db}, dirs: []string{mainDir(dir)}, copies: []string{""}}
	segs, _ := os.ReadDir(segmentsDir(dir))
	for _, s := range segs {
		path := filepath.Join(segmentsDir(dir), s.Name())
		db, tmp, err := openLiveCopy(path, opts)
		if tmp != "" {
			r.cleanup = append(r.cleanup, tmp)
		}
		if err != nil {
			continue // finished and merged by its writer meanwhile, or not a database yet
		}
		r.dbs, r.dirs, r.copies = append(r.dbs, db), append(r.dirs, path), append(r.copies, tmp)
	}
	return r, nil
}

// openLiveCopy copies a segment that its writer holds open and opens the
// copy read-only. Pebble reads a write-ahead log cut mid-record as a crash
// would leave it, so the copy holds every record synced before the copy.
func openLiveCopy(path string, opts Options) (*pebble.DB, string, error) {
	tmp, err := os.MkdirTemp("", "llm-runtime-audit-")
	if err != nil {
		return nil, "", err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, tmp, err
	}
	for _, e := range entries {
		if e.Name() == "LOCK" || e.IsDir() {
			continue
		}
		if err := copyFile(filepath.Join(path, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
			return nil, tmp, err
		}
	}
	db, err := pebble.Open(tmp, opts.pebble(true))
	return db, tmp, err
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Close closes the reader.
func (r *Reader) Close() error {
	for _, db := range r.dbs {
		db.Close()
	}
	for _, d := range r.cleanup {
		os.RemoveAll(d)
	}
	return nil
}

// Scan calls fn for every record with a key in [from, to) (zero times mean
// unbounded), in key order (time order), or in reverse, until fn returns
// false. Records that do not decode are passed with a non-nil error. A
// file of the store that Pebble finds damaged ends the scan with a
// *DamageError naming it.
func (r *Reader) Scan(from, to time.Time, reverse bool, fn func(key []byte, rec *Record, err error) bool) error {
	var o pebble.IterOptions
	if !from.IsZero() {
		o.LowerBound = timeKey(from)
	}
	if !to.IsZero() {
		o.UpperBound = timeKey(to)
	}
	m := &merger{reverse: reverse}
	defer m.close()
	for i, db := range r.dbs {
		it, err := db.NewIter(&o)
		if err != nil {
			return r.damaged(i, err)
		}
		var ok bool
		if reverse {
			ok = it.Last()
		} else {
			ok = it.First()
		}
		if !ok {
			err := it.Error()
			it.Close()
			if err != nil {
				return r.damaged(i, err)
			}
			continue
		}
		m.its = append(m.its, cursor{it, i})
	}
	heap.Init(m)
	for m.Len() > 0 {
		it, db := m.its[0].it, m.its[0].db
		v, err := it.ValueAndErr()
		if err != nil {
			return r.damaged(db, err)
		}
		var rec Record
		err = rec.UnmarshalBinary(v)
		var recp *Record
		if err == nil {
			recp = &rec
		}
		if !fn(bytes.Clone(it.Key()), recp, err) {
			return nil
		}
		var ok bool
		if reverse {
			ok = it.Prev()
		} else {
			ok = it.Next()
		}
		if ok {
			heap.Fix(m, 0)
			continue
		}
		if err := it.Error(); err != nil {
			return r.damaged(db, err)
		}
		it.Close()
		heap.Pop(m)
	}
	return nil
}

// merger is a heap of iterators ordered by their current key.
type merger struct {
	its     []cursor
	reverse bool
}

// cursor is an iterator and the index in Reader.dbs of its database.
type cursor struct {
	it *pebble.Iterator
	db int
}

func (m *merger) Len() int { return len(m.its) }
func (m *merger) Less(i, j int) bool {
	c := bytes.Compare(m.its[i].it.Key(), m.its[j].it.Key())
	if m.reverse {
		return c > 0
	}
	return c < 0
}
func (m *merger) Swap(i, j int) { m.its[i], m.its[j] = m.its[j], m.its[i] }
func (m *merger) Push(x any)    { m.its = append(m.its, x.(cursor)) }
func (m *merger) Pop() any {
	c := m.its[len(m.its)-1]
	m.its = m.its[:len(m.its)-1]
	return c
}
func (m *merger) close() {
	for _, c := range m.its {
		c.it.Close()
	}
	m.its = nil
}
