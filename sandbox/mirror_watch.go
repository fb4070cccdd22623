package sandbox

// What changed in the repository since the last Sync, from inotify: a
// walk of a repository of 10,000 files costs ~35 ms of system calls here,
// while between two commands a handful of directories change. Every
// directory of the repository is watched, and a Sync lists again only the
// directories with events since the last one (and goes down to them
// through their parents); a new directory is walked whole.
//
// A Sync is whole again whenever the events cannot be trusted to say
// everything: the queue overflowed, a directory was renamed or moved (the
// paths of what is under it changed), a watch could not be added (the
// user's inotify limit), or an event names a watch we do not know. The
// first Sync of a run is whole.
//
// The copy is never judged by events: a process that writes a file
// through a second name (a hard link, made and removed by the command)
// raises events in the directory of that name only, so what a command
// changed is found by a whole walk of the copy, on stamps a process cannot
// set back (the change time; see Mirror.Finish). In the repository, which
// hostile code does not write, a file with more than one link is looked
// at by every Sync all the same, since something outside the repository
// may write it through its other name.

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

const watchMask = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_CREATE | unix.IN_DELETE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// watcher holds the inotify watches of the repository's directories and
// what their events said since the last Sync.
type watcher struct {
	mu    sync.Mutex
	fd    int  // -1: none now, every Sync is whole
	off   bool // for good: inotify is unavailable, or the watches are over their bound
	max   int  // the most watches held (maxWatches)
	wds   map[int32]string
	full  bool
	dirty map[string]bool
}

func newWatcher() *watcher {
	return &watcher{fd: -1, full: true, max: maxWatches(), wds: map[int32]string{}, dirty: map[string]bool{}}
}

// maxWatches is the most watches one mirror holds: an eighth of the user's
// inotify limit (fs.inotify.max_user_watches, shared by every program of
// the user: editors, file watchers, other runs), between 1,024 and 65,536.
// A repository with more directories is walked whole by every Sync.
func maxWatches() int {
	n := 8192
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_user_watches"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			n = v
		}
	}
	return min(max(n/8, 1024), 65536)
}

// close releases the watches: the next Sync is whole, and watches again.
func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.release()
}

// release closes the inotify instance, which releases every watch, and
// makes the next walk whole.
func (w *watcher) release() {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
	w.wds, w.dirty, w.full = map[int32]string{}, map[string]bool{}, true
}

// disable turns watching off for good: every Sync is whole from now on.
func (w *watcher) disable() {
	w.release()
	w.off = true
}

// Watches is how many directories are watched now.
func (w *watcher) watches() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.wds)
}

// add watches the directory fd (any descriptor of it), which is rel.
// Adding a watch to a directory watched already returns its watch again,
// and the path is brought up to date.
func (w *watcher) add(fd int, rel string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd < 0 {
		return
	}
	if len(w.wds) >= w.max {
		w.disable() // over the bound: the next Sync is whole, and so is every later one
		return
	}
	wd, err := unix.InotifyAddWatch(w.fd, "/proc/self/fd/"+strconv.Itoa(fd), watchMask)
	if err != nil {
		w.disable() // ENOSPC: the user's limit of watches
		return
	}
	w.wds[int32(wd)] = rel
}

// drain reads the events that are waiting.
func (w *watcher) drain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	var buf [64 << 10]byte
	for w.fd >= 0 {
		n, err := unix.Read(w.fd, buf[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if n <= 0 || err != nil {
			return // EAGAIN: no more
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			w.event(ev)
		}
	}
}

func (w *watcher) event(ev *unix.InotifyEvent) {
	if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
		w.full = true
		return
	}
	rel, ok := w.wds[ev.Wd]
	switch {
	case ev.Mask&unix.IN_IGNORED != 0:
		delete(w.wds, ev.Wd) // its directory is gone: its parent had the event
	case !ok:
		w.full = true
	case ev.Mask&unix.IN_MOVE_SELF != 0, ev.Mask&unix.IN_ISDIR != 0 && ev.Mask&(unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0:
		w.full = true // paths under it changed
	case ev.Mask&unix.IN_DELETE_SELF != 0:
		if rel == "" {
			w.full = true
		}
	default:
		w.dirty[rel] = true
	}
}

// plan is what a walk visits.
type plan struct {
	full  bool
	dirty map[string]bool     // directories listed again
	kids  map[string][]string // for each directory on the way to a dirty one, its children on the way
}

// whole is the plan of a whole walk.
func whole() plan { return plan{full: true} }

// take drains the events and returns the plan of a Sync, starting afresh:
// what happens from now on is for the next one. A released watcher
// watches again from this Sync on, which is whole.
func (w *watcher) take() plan {
	w.drain()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd < 0 && !w.off {
		if fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC); err == nil {
			w.fd = fd
		} else {
			w.disable()
		}
		w.full = true
	}
	p := plan{full: w.full || w.fd < 0, dirty: w.dirty, kids: map[string][]string{}}
	w.full, w.dirty = false, map[string]bool{}
	if p.full {
		return p
	}
	seen := map[string]bool{}
	for d := range p.dirty {
		for d != "" {
			parent, name := splitRel(d)
			if seen[d] {
				break
			}
			seen[d] = true
			p.kids[parent] = append(p.kids[parent], name)
			d = parent
		}
	}
	return p
}

// touch marks directories to be listed again by the next Sync: what was
// taken out of the copy there must be copied again.
func (w *watcher) touch(dirs ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range dirs {
		w.dirty[d] = true
	}
}

// wholeAgain makes the next Sync whole.
func (w *watcher) wholeAgain() {
	w.mu.Lock()
	w.full = true
	w.mu.Unlock()
}

// prefixes is a set of paths (never the root), to ask whether a path is
// one of them or under one in O(log n) whatever its depth: the topmost
// paths, as keys that sort component by component ("a/b" before "a-b"),
// so that everything under a path sorts right after it.
type prefixes []string

func newPrefixes(paths []string) prefixes {
	keys := make([]string, len(paths))
	for i, p := range paths {
		keys[i] = strings.ReplaceAll(p, "/", "\x00")
	}
	slices.Sort(keys)
	out := keys[:0]
	for _, k := range keys {
		if n := len(out); n > 0 && (k == out[n-1] || strings.HasPrefix(k, out[n-1]+"\x00")) {
			continue
		}
		out = append(out, k)
	}
	return prefixes(out)
}

// holds says whether rel is one of the paths, or under one.
func (p prefixes) holds(rel string) bool {
	k := strings.ReplaceAll(rel, "/", "\x00")
	i, found := slices.BinarySearch(p, k)
	return found || i > 0 && strings.HasPrefix(k, p[i-1]+"\x00")
}
