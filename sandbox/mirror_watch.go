package sandbox

// What changed since the last walk, from inotify: a walk of a repository
// of 10,000 files costs ~35 ms of system calls here, twice per command
// (the repository before it, the copy after it), while a command changes a
// handful of directories. Both trees are watched, every directory of them,
// and a walk lists again only the directories with events since the last
// one (and goes down to them through their parents); a new directory is
// walked whole.
//
// A walk is whole again whenever the events cannot be trusted to say
// everything: the queue overflowed, a directory was renamed or moved (the
// paths of what is under it changed), a watch could not be added (the
// user's inotify limit), or an event names a watch we do not know. The
// first walk of each side in a run is whole.
//
// Only the copy is written by hostile code. Every way a process changes a
// file raises an event in the directory that holds it (write, truncate,
// chmod, link, unlink, rename, mkdir, mknod...), but for writes through a
// shared memory mapping, which raise none; their file raises
// IN_CLOSE_WRITE when the last reference to the open file goes, at the
// latest when its process dies, and the agent has reaped every process of
// the container before the copy is looked at. What might still slip by
// (an open file kept alive in flight on a socket) stays in the copy and
// never reaches the repository unseen: it is found, and put to the rules,
// by the whole walk of the copy at the start of the next run.

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

type side int

const (
	srcSide side = iota // the repository
	dstSide             // the copy
)

const watchMask = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_CREATE | unix.IN_DELETE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// watcher holds the inotify watches of both trees and what their events
// said since each side's last walk. Each side has an inotify instance of
// its own: the copy's events (the first copy writes ~6 per file) can
// overflow its queue without costing the repository's its own.
type watcher struct {
	mu    sync.Mutex
	fd    [2]int // -1: off, every walk of that side is whole
	wds   [2]map[int32]string
	full  [2]bool
	dirty [2]map[string]bool
}

func newWatcher() *watcher {
	w := &watcher{fd: [2]int{-1, -1}, full: [2]bool{true, true}}
	for s := range w.fd {
		w.wds[s], w.dirty[s] = map[int32]string{}, map[string]bool{}
		if fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC); err == nil {
			w.fd[s] = fd
		}
	}
	return w
}

func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.off(srcSide)
	w.off(dstSide)
}

// off turns watching side s off for good: every walk of it is whole from
// now on.
func (w *watcher) off(s side) {
	if w.fd[s] >= 0 {
		unix.Close(w.fd[s])
		w.fd[s] = -1
	}
}

// add watches the directory fd (any descriptor of it), which is rel on
// side s. Adding a watch to a directory watched already returns its watch
// again, and the path is brought up to date.
func (w *watcher) add(s side, fd int, rel string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd[s] < 0 {
		return
	}
	wd, err := unix.InotifyAddWatch(w.fd[s], "/proc/self/fd/"+strconv.Itoa(fd), watchMask)
	if err != nil {
		w.off(s) // ENOSPC: the user's limit of watches
		return
	}
	w.wds[s][int32(wd)] = rel
}

// drain reads the events of side s that are waiting.
func (w *watcher) drain(s side) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var buf [64 << 10]byte
	for w.fd[s] >= 0 {
		n, err := unix.Read(w.fd[s], buf[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if n <= 0 || err != nil {
			return // EAGAIN: no more
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			w.event(s, ev)
		}
	}
}

func (w *watcher) event(s side, ev *unix.InotifyEvent) {
	if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
		w.full[s] = true
		return
	}
	rel, ok := w.wds[s][ev.Wd]
	switch {
	case ev.Mask&unix.IN_IGNORED != 0:
		delete(w.wds[s], ev.Wd) // its directory is gone: its parent had the event
	case !ok:
		w.full[s] = true
	case ev.Mask&unix.IN_MOVE_SELF != 0, ev.Mask&unix.IN_ISDIR != 0 && ev.Mask&(unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0:
		w.full[s] = true // paths under it changed
	case ev.Mask&unix.IN_DELETE_SELF != 0:
		if rel == "" {
			w.full[s] = true
		}
	default:
		w.dirty[s][rel] = true
	}
}

// plan is what a walk of one side visits.
type plan struct {
	full  bool
	dirty map[string]bool     // directories listed again
	kids  map[string][]string // for each directory on the way to a dirty one, its children on the way
}

// take drains the events and returns the plan of a walk of side s,
// starting s afresh: what happens from now on is for the next walk.
func (w *watcher) take(s side) plan {
	w.drain(s)
	w.mu.Lock()
	defer w.mu.Unlock()
	p := plan{full: w.full[s] || w.fd[s] < 0, dirty: w.dirty[s], kids: map[string][]string{}}
	w.full[s], w.dirty[s] = false, map[string]bool{}
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

// discard forgets what happened on side s: the writes were our own.
func (w *watcher) discard(s side) {
	w.drain(s)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dirty[s] = map[string]bool{}
	w.full[s] = w.fd[s] < 0
}

// touch marks directories of side s to be listed again: what was taken
// out of the copy there must be copied again.
func (w *watcher) touch(s side, dirs ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range dirs {
		w.dirty[s][d] = true
	}
}

// wholeAgain makes the next walk of side s whole.
func (w *watcher) wholeAgain(s side) {
	w.mu.Lock()
	w.full[s] = true
	w.mu.Unlock()
}

// underAny says whether rel or a directory above it is in set.
func underAny(rel string, set map[string]bool) bool {
	for r := rel; ; {
		if set[r] {
			return true
		}
		i := strings.LastIndexByte(r, '/')
		if i < 0 {
			return false
		}
		r = r[:i]
	}
}
