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
// git's index decides), and after each command a walk of the copy finds
// what the command changed (the copy's own inode, size and times, recorded
// when it was made). A run that ends without saving the record (a crash)
// leaves a marker, and the next run starts the copy afresh.
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
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

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

// entry is one object of the copy: what it was copied from, and what the
// copy was when made.
type entry struct {
	Src, Dst stamp
	Link     string // a symbolic link's target
	gen      uint64 // the last walk that saw it
}

func kind(mode uint32) uint32 { return mode & unix.S_IFMT }

// manifest is the record of the copy, saved between runs.
type manifest struct {
	Version int
	Root    string // the repository it copies
	Entries map[string]*entry
}

const manifestVersion = 1

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
	// changes counts what Sync and Finish changed in the record (Changes).
	changes atomic.Uint64
	// excluded holds, by directory, the names Sync left out by the rules,
	// and whether each is a directory: copy mode's replica has an empty
	// stand-in of each, so that its answers count them as the
	// repository's do. Kept in memory only: the first Sync of a run walks
	// every directory.
	excluded map[string]map[string]bool
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
	x := &Mirror{ws: w, dir: dir, lockFD: lock, tree: -1, skip: map[FileID]bool{}, watch: newWatcher()}
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
	w := x.newWalk(srcSide)
	w.interruptible = true
	if w.goes("") {
		w.do(func() error { return x.syncDir(w, x.ws.rootFD, x.tree, "", nil, &s, false) }, -1, -1)
	}
	if err := w.wait(); err != nil {
		x.watch.wholeAgain(srcSide)
		return s, err
	}
	for _, rel := range w.gone() {
		x.drop(rel)
		s.Removed++
	}
	// What Sync wrote to the copy is not the command's.
	x.watch.discard(dstSide)
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
	wg            sync.WaitGroup
	mu            sync.Mutex // guards x.m.Entries and err during the walk
	err           error
}

func (x *Mirror) newWalk(s side) *walk {
	x.gen++
	return &walk{x: x, gen: x.gen, sem: make(chan struct{}, runtime.GOMAXPROCS(0)), plan: x.watch.take(s), listed: map[string]bool{}}
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

// gone returns the recorded paths the walk found missing: not seen in a
// directory it listed, or under one of those, deepest first.
func (w *walk) gone() []string {
	var gone []string
	set := map[string]bool{}
	for rel, e := range w.x.m.Entries {
		if e.gen != w.gen && (w.plan.full || w.listed[parentOf(rel)]) {
			gone = append(gone, rel)
			set[rel] = true
		}
	}
	if len(set) > 0 && !w.plan.full {
		for rel, e := range w.x.m.Entries {
			if e.gen != w.gen && !set[rel] && underAny(parentOf(rel), set) {
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
	w.mu.Lock()
	w.x.m.Entries[rel] = e
	w.mu.Unlock()
}

func (w *walk) failed() bool {
	if w.x.stop.Load() || w.interruptible && w.x.intr.Load() {
		w.fail(errStopped)
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

// drop removes rel from the copy and from the record.
func (x *Mirror) drop(rel string) {
	x.changes.Add(1)
	delete(x.m.Entries, rel)
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
	x.watch.add(srcSide, src, rel)
	x.watch.add(dstSide, dst, rel)
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
	defer func() {
		w.mu.Lock()
		s.Walked += walked
		s.Copied += copied
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
			if e != nil && e.Src == stampOf(&st) {
				continue
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
	return &entry{Src: stampOf(&ist), Dst: stampOf(&dt)}, nil
}

// copyData copies size bytes, or until EOF, from in to out, in the kernel
// where it can.
func copyData(out, in int, size int64) error {
	for size > 0 {
		n, err := unix.CopyFileRange(in, nil, out, nil, int(min(size, 1<<30)), 0)
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
				break
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return err
		}
		if n == 0 {
			return nil
		}
		size -= int64(n)
	}
	if size <= 0 {
		return nil
	}
	din, err := dupFD(in)
	if err != nil {
		return err
	}
	fin := os.NewFile(uintptr(din), "in")
	defer fin.Close()
	dout, err := dupFD(out)
	if err != nil {
		return err
	}
	fout := os.NewFile(uintptr(dout), "out")
	defer fout.Close()
	_, err = io.Copy(struct{ io.Writer }{fout}, fin)
	return err
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
