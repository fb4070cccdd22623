package sandbox

// The mirror: a copy of what the rules let a command see, which exec
// containers mount in place of the repository. A command reads and writes
// the copy; when it ends, what it changed is a changeset, applied to the
// repository through the rules of <write> (or, for a read-only exec,
// discarded), and the copy is put back to match the repository. So nothing
// a command leaves behind reaches the repository unless a write could have
// put it there, and nothing an excluded path holds is ever in the copy.
//
// The copy is kept between commands and between runs: before each command
// it is brought up to date by a walk of the repository that copies only
// what changed since (by inode, size, modification and change time, as
// git's index decides; inotify says which directories to look at), and
// after each command a walk of the whole copy finds what the command
// changed: every object whose inode, size or times differ from those
// recorded when it was made. The change time cannot be set back by a
// process, and no command starts before the clock of file times has
// passed every one recorded (settle), so no change escapes, whichever name
// it was made through (a hard link made and removed by the command raises
// no event in the directory of the file it changed). A run that ends
// without saving the record (a crash) leaves a marker, and the next run
// starts the copy afresh.
//
// Both walks are on descriptors and never follow a symbolic link; the copy
// is read as untrusted input (what a hostile command left there), never
// opening anything but regular files and directories, and never blocking
// on a FIFO.

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Change is one file a command changed, and what became of the change.
type Change struct {
	Path   string `json:"path"`
	Action string `json:"action"` // created, updated, deleted, refused or discarded
	Reason string `json:"reason,omitempty"`
	// HostTool is the pattern of Limits.HostToolFiles an applied change's
	// path matches: a file tools on the host run or obey.
	HostTool string `json:"host_tool_file,omitempty"`
}

// Actions of a Change.
const (
	ChangeCreated   = "created"
	ChangeUpdated   = "updated"
	ChangeDeleted   = "deleted"
	ChangeRefused   = "refused"   // broke a rule: not applied
	ChangeDiscarded = "discarded" // exec.writable is false: not applied
)

// stamp is what tells that a file changed: its identity, size, mode and
// times.
type stamp struct {
	Ino, Size    int64
	Mode         uint32
	Mtime, Ctime int64
}

func stampOf(st *unix.Stat_t) stamp {
	return stamp{Ino: int64(st.Ino), Size: st.Size, Mode: st.Mode, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
}

// noteStamp keeps the latest change time of the copy's record.
func (x *Mirror) noteStamp(e *entry) {
	for {
		old := x.newest.Load()
		if e.Dst.Ctime <= old || x.newest.CompareAndSwap(old, e.Dst.Ctime) {
			return
		}
	}
}

// settle waits until the clock that file times come from has passed t
// (ns), so that whatever is changed from now on gets a change time other
// than every one recorded until t: that clock advances a tick (1-10 ms) at
// a time, and a file written twice within one tick could keep its size
// and times. A command starts well after its copy was brought up to date,
// so this rarely waits; it never waits more than a second (a clock set
// back).
func settle(t int64) {
	deadline := time.Now().Add(time.Second)
	for {
		var ts unix.Timespec
		if unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &ts) != nil || ts.Nano() > t || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// entry is one object of the copy: what it was copied from, and what the
// copy was when made.
type entry struct {
	Src, Dst stamp
	Link     string // a symbolic link's target
	Disk     int64  // a file's copy: the bytes it holds on disk
	gen      uint64 // the last walk that saw it
}

// diskOf is what a file holds on disk (its holes hold nothing).
func diskOf(st *unix.Stat_t) int64 { return st.Blocks * 512 }

func kind(mode uint32) uint32 { return mode & unix.S_IFMT }

// manifest is the record of the copy, saved between runs.
type manifest struct {
	Version int
	Root    string // the repository it copies
	Entries map[string]*entry
}

const manifestVersion = 2

// Mirror is the copy of a repository for exec. It is not safe for
// concurrent use: one command at a time.
type Mirror struct {
	ws     *Workspace
	dir    string // the mirror's own directory: tree, manifest, lock
	tree   int    // O_PATH descriptor of dir/tree
	lockFD int
	m      manifest
	saved  bool // m is what the manifest file holds
	gen    uint64
	stop   atomic.Bool
	intr   atomic.Bool // Interrupt: the Sync in progress stops
	broken bool        // a Finish failed: the copy may not match the record
	watch  *watcher
	skip   map[FileID]bool
	// linked holds the repository's files with more than one link: a
	// process may write one through a name the watches do not see, so
	// every Sync looks at them. Guarded by the walk's mu during a walk.
	linked map[string]bool
	// newest is the latest change time of the copy's record (ns): the
	// next command starts once the clock of file times has passed it
	// (settle).
	newest atomic.Int64
	// changes counts what Sync and Finish changed in the record (Changes).
	changes atomic.Uint64
	bounds  Bounds
	// excluded holds, by directory, the names Sync left out by the rules,
	// and whether each is a directory: copy mode's replica has an empty
	// stand-in of each, so that its answers count them as the
	// repository's do. Kept in memory only: the first Sync of a run walks
	// every directory.
	excluded map[string]map[string]bool
}

// Bounds bound one command's changeset: past them, none of it is applied
// (Finish).
type Bounds struct {
	// MaxChanges is the most paths a changeset may hold: files and
	// directories made, changed or removed (0: DefaultMaxChanges).
	MaxChanges int
	// MaxDepth is the most components of a path a command may make: a
	// deeper one is applied as none (0: DefaultMaxDepth).
	MaxDepth int
	// MaxSize is the most the copy may hold on disk (0: no bound): a Sync
	// that would copy more fails with RESOURCE_LIMIT.
	MaxSize int64
}

// Defaults of Bounds (exec.max_changes, exec.max_depth).
const (
	DefaultMaxChanges = 20000
	DefaultMaxDepth   = 64
)

// SetBounds sets the bounds of the changesets of later commands.
func (x *Mirror) SetBounds(b Bounds) { x.bounds = b }

// Bounds returns the bounds in force, defaults filled in.
func (x *Mirror) Bounds() Bounds {
	b := x.bounds
	if b.MaxChanges <= 0 {
		b.MaxChanges = DefaultMaxChanges
	}
	if b.MaxDepth <= 0 {
		b.MaxDepth = DefaultMaxDepth
	}
	return b
}

// overError is a changeset past its bounds.
type overError struct{ msg string }

func (e *overError) Error() string { return e.msg }

// over is the error of a changeset past its bounds: a path depth deep
// (0: more changes than MaxChanges).
func (w *walk) over(depth int) error {
	if depth > 0 {
		return &overError{fmt.Sprintf("the command made a path %d levels deep, more than exec.max_depth (%d)", depth, w.bounds.MaxDepth)}
	}
	return &overError{fmt.Sprintf("the command changed more than %d files and directories (exec.max_changes)", w.bounds.MaxChanges)}
}

// MirrorStats says what a Sync or a Finish cost.
type MirrorStats struct {
	Walked, Copied, Removed int
}

// OpenMirror opens, or creates, the mirror in dir of the workspace w's
// repository, and locks it for this process (flock: another process waits
// for it, or takes another dir). Directories whose identity is in skip
// are never copied (the mirror's own, when the repository holds it). The
// copy is brought up to date by Sync.
func OpenMirror(w *Workspace, dir, root string, skip []FileID) (*Mirror, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lock, err := unix.Open(filepath.Join(dir, "lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(dir, "lock"), Err: err}
	}
	if err := unix.Flock(lock, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(lock)
		return nil, ErrMirrorBusy
	}
	x := &Mirror{ws: w, dir: dir, lockFD: lock, tree: -1, skip: map[FileID]bool{}, watch: newWatcher(), linked: map[string]bool{}}
	for _, id := range skip {
		x.skip[FileID{Dev: id.Dev, Ino: id.Ino}] = true
	}
	if id, err := IDOf(dir); err == nil {
		x.skip[id] = true
	}
	fail := func(err error) (*Mirror, error) { x.Close(); return nil, err }
	x.load(root)
	if !x.saved {
		// No record, a crash, or another repository's: start afresh.
		if err := os.RemoveAll(filepath.Join(dir, "tree")); err != nil {
			return fail(err)
		}
		x.m = manifest{Version: manifestVersion, Root: root, Entries: map[string]*entry{}}
	}
	// The record is stale from here on until Close saves it.
	if err := os.Remove(filepath.Join(dir, "manifest")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tree"), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fail(err)
	}
	x.tree, err = unix.Open(filepath.Join(dir, "tree"), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(&os.PathError{Op: "open", Path: filepath.Join(dir, "tree"), Err: err})
	}
	return x, nil
}

// RemoveMirror removes the mirror in dir, unless a process holds it
// (ErrMirrorBusy).
func RemoveMirror(dir string) error {
	lock, err := unix.Open(filepath.Join(dir, "lock"), unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err == nil {
		defer unix.Close(lock)
		if unix.Flock(lock, unix.LOCK_EX|unix.LOCK_NB) != nil {
			return ErrMirrorBusy
		}
	}
	return RemoveAll(dir)
}

// RemoveAll removes path and everything under it, never following a
// link, and making what a command left unreadable or unwritable
// removable first.
func RemoveAll(path string) error {
	fd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	defer unix.Close(fd)
	removeAllAt(fd, filepath.Base(path))
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s could not be removed", path)
	}
	return nil
}

// ErrMirrorBusy is OpenMirror's error when another process holds the
// mirror.
var ErrMirrorBusy = errors.New("the mirror is in use by another process")

// Rest releases the inotify watches on the repository's directories, which
// count against a limit the user's other programs share: its owner calls
// it when no command has come for a while. The next Sync is whole, and
// watches again.
func (x *Mirror) Rest() { x.watch.close() }

// Watches says how many of the repository's directories are watched.
func (x *Mirror) Watches() int { return x.watch.watches() }

// Tree is the directory that holds the copy: what exec containers mount.
func (x *Mirror) Tree() string { return filepath.Join(x.dir, "tree") }

func (x *Mirror) load(root string) {
	f, err := os.Open(filepath.Join(x.dir, "manifest"))
	if err != nil {
		return
	}
	defer f.Close()
	var m manifest
	if gob.NewDecoder(f).Decode(&m) != nil || m.Version != manifestVersion || m.Root != root || m.Entries == nil {
		return
	}
	x.m, x.saved = m, true
}

// Close saves the record of the copy, so that the next run copies only
// what changed, and unlocks the mirror.
func (x *Mirror) Close() error {
	var err error
	if x.tree >= 0 {
		if !x.broken {
			err = x.save()
		}
		unix.Close(x.tree)
		x.tree = -1
	}
	if x.lockFD >= 0 {
		unix.Close(x.lockFD)
		x.lockFD = -1
	}
	x.watch.close()
	return err
}

func (x *Mirror) save() error {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(&x.m); err != nil {
		return err
	}
	tmp := filepath.Join(x.dir, "manifest.tmp")
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(x.dir, "manifest"))
}

// Sync brings the copy up to date with the repository: what the rules
// exclude is left out, at any depth; regular files, directories and
// symbolic links are copied; other objects (FIFOs, sockets, devices) are
// left out.
func (x *Mirror) Sync() (MirrorStats, error) {
	var s MirrorStats
	x.intr.Store(false)
	for rel := range x.linked {
		x.watch.touch(parentOf(rel)) // a file with other names: looked at again
	}
	w := x.newWalk(x.watch.take())
	w.interruptible, w.linked, w.bounds = true, len(x.linked) > 0, x.Bounds()
	if w.bounds.MaxSize > 0 {
		var held int64
		for _, e := range x.m.Entries {
			held += e.Disk
		}
		w.disk.Store(held)
	}
	if w.goes("") {
		w.do(func() error { return x.syncDir(w, x.ws.rootFD, x.tree, "", nil, &s, false) }, -1, -1)
	}
	if err := w.wait(); err != nil {
		x.watch.wholeAgain()
		return s, err
	}
	for _, rel := range w.gone() {
		x.drop(rel)
		s.Removed++
	}
	settle(x.newest.Load())
	return s, nil
}

// walk runs the work on directories in parallel, on as many goroutines as
// the runtime has processors: a walk is a system call per file, and a
// repository of 10,000 files costs ~35 ms of them on one core.
type walk struct {
	x      *Mirror
	gen    uint64
	plan   plan
	listed map[string]bool // the directories listed, under mu
	sem    chan struct{}
	// interruptible: Interrupt stops it (a Sync).
	interruptible bool
	// linked: the repository had files of more than one link.
	linked bool
	// replaced: recorded directories found to be something else now (under mu).
	replaced []string
	// descend: a look at the copy goes into the directories the command
	// made, counting what it finds against bounds.
	descend bool
	bounds  Bounds
	counted atomic.Int64
	disk    atomic.Int64 // a Sync: what the copy holds on disk, as far as it knows
	stopped atomic.Bool  // err is set
	wg      sync.WaitGroup
	mu      sync.Mutex // guards x.m.Entries and err during the walk
	err     error
}

func (x *Mirror) newWalk(p plan) *walk {
	x.gen++
	return &walk{x: x, gen: x.gen, sem: make(chan struct{}, runtime.GOMAXPROCS(0)), plan: p, listed: map[string]bool{}}
}

// whole says whether the walk lists the directory rel, whose parent it
// listed whole (or which is new): everything is, in a whole walk.
func (w *walk) whole(rel string, parentWhole bool) bool {
	return parentWhole || w.plan.full || w.plan.dirty[rel]
}

// goes says whether the walk goes into the directory rel at all.
func (w *walk) goes(rel string) bool {
	return w.plan.full || w.plan.dirty[rel] || w.plan.kids[rel] != nil
}

func (w *walk) list(rel string) {
	w.mu.Lock()
	w.listed[rel] = true
	w.mu.Unlock()
}

// gone returns the recorded paths the walk found missing, deepest first:
// not seen in a directory it listed, or under one of those, or under a
// directory it found replaced (by a file: what it held was not listed,
// and is gone all the same).
func (w *walk) gone() []string {
	var gone []string
	for rel, e := range w.x.m.Entries {
		if e.gen != w.gen && (w.plan.full || w.listed[parentOf(rel)]) {
			gone = append(gone, rel)
		}
	}
	if len(gone)+len(w.replaced) > 0 && !w.plan.full {
		under := newPrefixes(append(w.replaced, gone...))
		for rel, e := range w.x.m.Entries {
			if e.gen != w.gen && !w.listed[parentOf(rel)] && under.holds(parentOf(rel)) {
				gone = append(gone, rel)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(gone)))
	return gone
}

// do runs fn on a goroutine of its own if one is free, or here; then it
// closes the descriptors (-1: none).
func (w *walk) do(fn func() error, fd1, fd2 int) {
	run := func() {
		err := fn()
		if fd1 >= 0 {
			unix.Close(fd1)
		}
		if fd2 >= 0 {
			unix.Close(fd2)
		}
		if err != nil {
			w.fail(err)
		}
	}
	select {
	case w.sem <- struct{}{}:
		w.wg.Add(1)
		go func() {
			defer func() { <-w.sem; w.wg.Done() }()
			run()
		}()
	default:
		run()
	}
}

func (w *walk) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.stopped.Store(true)
}

var errStopped = errors.New("stopped: the mirror is closing")

// Stop makes a Sync or Finish in progress, and every later one, stop
// early with an error; what they did so far stays recorded. It is safe to
// call at any time, from any goroutine.
func (x *Mirror) Stop() { x.stop.Store(true) }

// Interrupt makes a Sync in progress stop early with an error, as Stop
// does, but not a Finish, nor any later Sync: the copy is brought up to
// date again by the next one. It is what a cancelled command does: the
// mirror outlives it, and its changes are still taken out of the copy.
func (x *Mirror) Interrupt() { x.intr.Store(true) }

func (w *walk) wait() error { w.wg.Wait(); return w.err }

// lookup returns the records of the names in the directory rel, marking
// them seen.
func (w *walk) lookup(rel string, list []string) []*entry {
	es := make([]*entry, len(list))
	w.mu.Lock()
	for i, name := range list {
		if e := w.x.m.Entries[join(rel, name)]; e != nil {
			e.gen = w.gen
			es[i] = e
		}
	}
	w.mu.Unlock()
	return es
}

// setExcluded records the names a walk of the directory rel left out.
func (w *walk) setExcluded(rel string, names map[string]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.x.excluded[rel]
	same := len(old) == len(names)
	for n, dir := range names {
		if d, ok := old[n]; !ok || d != dir {
			same = false
		}
	}
	if same {
		return
	}
	w.x.changes.Add(1)
	if names == nil {
		delete(w.x.excluded, rel)
		return
	}
	if w.x.excluded == nil {
		w.x.excluded = map[string]map[string]bool{}
	}
	w.x.excluded[rel] = names
}

func (w *walk) set(rel string, e *entry) {
	e.gen = w.gen
	w.x.changes.Add(1)
	w.x.noteStamp(e)
	w.mu.Lock()
	w.x.m.Entries[rel] = e
	w.mu.Unlock()
}

func (w *walk) failed() bool {
	if w.x.stop.Load() || w.interruptible && w.x.intr.Load() {
		w.fail(errStopped)
		return true
	}
	return w.stopped.Load()
}

// drop removes rel from the copy and from the record.
func (x *Mirror) drop(rel string) {
	x.changes.Add(1)
	delete(x.m.Entries, rel)
	delete(x.linked, rel)
	dir, name := splitRel(rel)
	fd, err := x.openTreeDir(dir)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	removeAllAt(fd, name)
}

func splitRel(rel string) (dir, name string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// syncDir copies the directory src (of the repository) to dst (of the
// copy); rel is its path, names its components.
func (x *Mirror) syncDir(w *walk, src, dst int, rel string, names []string, s *MirrorStats, parentWhole bool) error {
	if w.failed() {
		return nil
	}
	whole := w.whole(rel, parentWhole)
	if !whole {
		// Only on the way to a directory with events: go down to it.
		for _, name := range w.plan.kids[rel] {
			r := join(rel, name)
			sfd, err := openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				continue // gone since: its parent had the event
			}
			var st unix.Stat_t
			unix.Fstat(sfd, &st)
			dfd, err := x.ensureDir(w, dst, name, r, &st, w.lookup(rel, []string{name})[0])
			if err != nil {
				unix.Close(sfd)
				return err
			}
			sub := append(names[:len(names):len(names)], name)
			w.do(func() error { return x.syncDir(w, sfd, dfd, r, sub, s, false) }, sfd, dfd)
		}
		return nil
	}
	w.list(rel)
	x.watch.add(src, rel)
	all, err := readNames(src)
	if err != nil {
		return err
	}
	list := all[:0]
	var excluded map[string]bool
	for _, name := range all {
		if _, ok := x.ws.excl.matchLast(names, name); !ok {
			list = append(list, name)
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			if excluded == nil {
				excluded = map[string]bool{}
			}
			excluded[name] = kind(st.Mode) == unix.S_IFDIR
		}
	}
	w.setExcluded(rel, excluded)
	es := w.lookup(rel, list)
	var walked, copied int
	links := map[string]bool{} // files with more than one link (and, when there were some, files with one)
	defer func() {
		w.mu.Lock()
		s.Walked += walked
		s.Copied += copied
		for r, many := range links {
			if many {
				x.linked[r] = true
			} else {
				delete(x.linked, r)
			}
		}
		w.mu.Unlock()
	}()
	for i, name := range list {
		r := join(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone meanwhile, or unreadable: not copied
		}
		walked++
		e := es[i]
		if e != nil && kind(e.Src.Mode) == unix.S_IFDIR && kind(st.Mode) != unix.S_IFDIR {
			w.mu.Lock()
			w.replaced = append(w.replaced, r)
			w.mu.Unlock()
		}
		switch kind(st.Mode) {
		case unix.S_IFDIR:
			if x.skip[idOf(&st)] {
				continue
			}
			sfd, err := openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				continue
			}
			isNew := e == nil || kind(e.Src.Mode) != unix.S_IFDIR
			if !isNew && !w.goes(r) {
				unix.Close(sfd)
				continue // no event under it
			}
			dfd, err := x.ensureDir(w, dst, name, r, &st, e)
			if err != nil {
				unix.Close(sfd)
				return err
			}
			sub := append(names[:len(names):len(names)], name)
			w.do(func() error { return x.syncDir(w, sfd, dfd, r, sub, s, isNew) }, sfd, dfd)
		case unix.S_IFREG:
			if st.Nlink > 1 || w.linked {
				links[r] = st.Nlink > 1
			}
			if e != nil && e.Src == stampOf(&st) {
				continue
			}
			if limit := w.bounds.MaxSize; limit > 0 {
				old := int64(0)
				if e != nil {
					old = e.Disk
				}
				if held := w.disk.Add(diskOf(&st) - old); held > limit {
					return Errorf(CodeResourceLimit, "exec's copy of the repository would hold more than %s on disk (sandbox_copy_max_size), with %s", FormatSize(limit), r)
				}
			}
			ne, err := copyFile(src, dst, name, &st)
			if err != nil {
				if errors.Is(err, errSkip) {
					continue
				}
				return fmt.Errorf("copying %s: %w", r, err)
			}
			w.set(r, ne)
			copied++
		case unix.S_IFLNK:
			link, err := readlinkAt(src, name)
			if err != nil {
				continue
			}
			if e != nil && e.Src == stampOf(&st) && e.Link == link {
				continue
			}
			removeAllAt(dst, name)
			if err := unix.Symlinkat(link, dst, name); err != nil {
				return fmt.Errorf("copying %s: %w", r, err)
			}
			var dt unix.Stat_t
			if err := unix.Fstatat(dst, name, &dt, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("copying %s: %w", r, err)
			}
			w.set(r, &entry{Src: stampOf(&st), Dst: stampOf(&dt), Link: link})
			copied++
		}
	}
	return nil
}

// ensureDir makes name in dst a directory of the copy, and returns it
// opened.
func (x *Mirror) ensureDir(w *walk, dst int, name, rel string, st *unix.Stat_t, e *entry) (int, error) {
	var dt unix.Stat_t
	err := unix.Fstatat(dst, name, &dt, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && kind(dt.Mode) != unix.S_IFDIR {
		removeAllAt(dst, name)
		err = unix.ENOENT
	}
	if err != nil {
		if err := unix.Mkdirat(dst, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("copying %s: %w", rel, err)
		}
		if err := unix.Fstatat(dst, name, &dt, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, fmt.Errorf("copying %s: %w", rel, err)
		}
	}
	fd, err := openat(dst, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return -1, fmt.Errorf("copying %s: %w", rel, err)
	}
	if e == nil || e.Dst.Ino != int64(dt.Ino) || kind(e.Src.Mode) != unix.S_IFDIR {
		w.set(rel, &entry{Src: stampOf(st), Dst: stampOf(&dt)})
	}
	return fd, nil
}

var errSkip = errors.New("not a regular file")

// copyFile copies the regular file name from src to dst, atomically, and
// returns its entry.
func copyFile(src, dst int, name string, st *unix.Stat_t) (*entry, error) {
	in, err := openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, errSkip // gone, swapped for a link, or unreadable
	}
	defer unix.Close(in)
	var ist unix.Stat_t
	if err := unix.Fstat(in, &ist); err != nil || kind(ist.Mode) != unix.S_IFREG {
		return nil, errSkip
	}
	tmp := ".llm-runtime-copy.tmp"
	unix.Unlinkat(dst, tmp, 0)
	out, err := openat(dst, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	if err := copyData(out, in, ist.Size); err != nil {
		unix.Close(out)
		unix.Unlinkat(dst, tmp, 0)
		return nil, err
	}
	unix.Fchmod(out, ist.Mode&0o777)
	unix.Close(out)
	if err := unix.Renameat(dst, tmp, dst, name); err != nil {
		// A directory of the same name, left by a command: replace it.
		removeAllAt(dst, name)
		if err := unix.Renameat(dst, tmp, dst, name); err != nil {
			unix.Unlinkat(dst, tmp, 0)
			return nil, err
		}
	}
	var dt unix.Stat_t
	if err := unix.Fstatat(dst, name, &dt, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	return &entry{Src: stampOf(&ist), Dst: stampOf(&dt), Disk: diskOf(&dt)}, nil
}

// copyData copies the first size bytes of in to out, at the same offsets,
// in the kernel where it can, and makes out size bytes long. Only what in
// holds is copied: its holes (SEEK_DATA, SEEK_HOLE) stay holes, so a
// sparse file costs its copy what it costs the original on disk.
func copyData(out, in int, size int64) error {
	for off := int64(0); off < size; {
		data, err := unix.Seek(in, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // holes to the end
		}
		end := size
		if err != nil {
			data = off // a file system that cannot tell: all of it
		} else if hole, err := unix.Seek(in, data, unix.SEEK_HOLE); err == nil {
			end = min(hole, size)
		}
		if data >= end {
			break
		}
		if err := copyRange(out, in, data, end-data); err != nil {
			return err
		}
		off = end
	}
	return unix.Ftruncate(out, size)
}

// copyRange copies n bytes of in at off to out at off.
func copyRange(out, in int, off, n int64) error {
	roff, woff := off, off
	for n > 0 {
		c, err := unix.CopyFileRange(in, &roff, out, &woff, int(min(n, 1<<30)), 0)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
				break // read and write it ourselves
			}
			return err
		}
		if c == 0 {
			return nil // in is shorter than it was
		}
		n -= int64(c)
	}
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		c, err := unix.Pread(in, buf[:min(n, int64(len(buf)))], roff)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if c == 0 {
			return nil
		}
		if err := writeAt(out, buf[:c], woff); err != nil {
			return err
		}
		roff, woff, n = roff+int64(c), woff+int64(c), n-int64(c)
	}
	return nil
}

// writeAt writes all of buf to fd at off.
func writeAt(fd int, buf []byte, off int64) error {
	for len(buf) > 0 {
		n, err := unix.Pwrite(fd, buf, off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		buf, off = buf[n:], off+int64(n)
	}
	return nil
}

// readNames lists the directory fd (any descriptor of it), sorted.
func readNames(fd int) ([]string, error) {
	d, err := openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(d)
	entries, err := readDirents(d)
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.name
	}
	sort.Strings(names)
	return names, err
}

// removeAllAt removes name in the directory dirfd, and everything under
// it, never following a link.
func removeAllAt(dirfd int, name string) {
	if unix.Unlinkat(dirfd, name, 0) == nil {
		return
	}
	chmodEntry(dirfd, name, 0o700) // a command may have left it unreadable
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return
	}
	names, _ := readNames(fd)
	for _, n := range names {
		removeAllAt(fd, n)
	}
	unix.Close(fd)
	unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// openTreeDir opens the directory rel of the copy, never following a
// link on the way.
func (x *Mirror) openTreeDir(rel string) (int, error) { return openDirBelow(x.tree, rel) }
