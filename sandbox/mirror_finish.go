package sandbox

// After a command: what it changed in the copy, applied to the repository
// through the rules of <write> or discarded, and the copy put back.

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// item is one difference between the copy and its record.
type item struct {
	rel  string
	st   unix.Stat_t // in the copy; zero when gone
	e    *entry      // the record; nil when new
	gone bool        // in the record, not in the copy
	why  string      // refused as found
}

// inGit says whether a component of rel is .git.
func inGit(rel string) bool {
	for _, c := range strings.Split(rel, "/") {
		if strings.EqualFold(c, ".git") {
			return true
		}
	}
	return false
}

// diff finds what changed in the copy since the last look, sorted so that
// a directory comes right before what it holds. With descend it goes into
// the directories the command made (to apply what they hold), under the
// bounds of a changeset (an *overError past them); without, it does not
// (what they hold goes with them). Either way it stops past MaxChanges
// differences.
func (x *Mirror) diff(descend bool) ([]item, error) {
	var items []item
	os.Chmod(x.Tree(), 0o755) // the command owns it, and may have locked it
	w := x.newWalk(whole())
	w.descend, w.bounds = descend, x.Bounds()
	w.do(func() error { return x.diffDir(w, x.tree, "", nil, "", &items, false) }, -1, -1)
	if err := w.wait(); err != nil {
		var over *overError
		if !errors.As(err, &over) {
			x.broken = true // the next run starts the copy afresh
		}
		return nil, err
	}
	for _, rel := range w.gone() {
		if len(items) >= w.bounds.MaxChanges {
			return nil, w.over(0)
		}
		items = append(items, item{rel: rel, e: x.m.Entries[rel], gone: true})
	}
	// By path, component by component ("a/b" before "a-b"), so that a
	// directory comes right before what it holds.
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = strings.ReplaceAll(it.rel, "/", "\x00")
	}
	sort.Sort(byKey{items, keys})
	return items, nil
}

// byKey sorts items by their keys.
type byKey struct {
	items []item
	keys  []string
}

func (b byKey) Len() int           { return len(b.items) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.items[i], b.items[j] = b.items[j], b.items[i]
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
}

// Check takes out of the copy whatever differs from the record (nothing a
// command changed is ever applied but by Finish), so that the next Sync
// copies the repository's version; it returns how many paths differed.
// A run opens the copy with Check, then Sync.
func (x *Mirror) Check() (int, error) {
	items, err := x.diff(false)
	var over *overError
	if errors.As(err, &over) {
		x.reset()
		return x.Bounds().MaxChanges, nil
	}
	if err != nil {
		return 0, err
	}
	paths := make([]string, len(items))
	for i, it := range items {
		paths[i] = it.rel
	}
	x.undo(paths)
	return len(items), nil
}

// reset empties the copy and its record: the next Sync copies the
// repository afresh.
func (x *Mirror) reset() {
	names, _ := readNames(x.tree)
	for _, n := range names {
		removeAllAt(x.tree, n)
	}
	x.m.Entries = map[string]*entry{}
	x.linked = map[string]bool{}
	x.changes.Add(1)
	x.watch.wholeAgain()
}

// reason is the message of a refusal.
func reason(err error) string {
	var se *Error
	if errors.As(err, &se) {
		return se.Message
	}
	return err.Error()
}

// setEntry records rel outside a walk.
func (x *Mirror) setEntry(rel string, e *entry) {
	x.changes.Add(1)
	x.noteStamp(e)
	x.m.Entries[rel] = e
}

// undo takes the paths out of the copy and the record (with everything
// under them), so that the next Sync copies the repository's version.
func (x *Mirror) undo(paths []string) {
	if len(paths) == 0 {
		return
	}
	under := newPrefixes(paths)
	for rel := range x.m.Entries {
		if under.holds(rel) {
			x.changes.Add(1)
			delete(x.m.Entries, rel)
		}
	}
	// The repository's version comes back with the next Sync, which lists
	// these directories again.
	for _, p := range paths {
		x.watch.touch(parentOf(p))
	}
	for _, k := range under {
		p := strings.ReplaceAll(k, "\x00", "/") // the topmost: the rest goes with them
		dir, name := splitRel(p)
		if fd, err := x.openTreeDir(dir); err == nil {
			removeAllAt(fd, name)
			unix.Close(fd)
		}
	}
}

func parentOf(rel string) string {
	dir, _ := splitRel(rel)
	return dir
}

// gitRefusal is why nothing a command does to a .git directory or file is
// applied, whether or not security.excluded_paths names .git: hooks,
// config and the gitdir pointer are run or followed by git on the host.
const gitRefusal = "git's own files (.git, at any depth) are never changed by exec: git on the host would run what they say"

// diffDir compares the directory fd of the copy, at rel, with the record.
// Every change found under it is refused with refusal, when set.
func (x *Mirror) diffDir(w *walk, fd int, rel string, names []string, refusal string, out *[]item, parentWhole bool) error {
	if w.failed() {
		return nil
	}
	if !w.whole(rel, parentWhole) {
		// Only on the way to a directory with events: go down to it.
		for _, name := range w.plan.kids[rel] {
			sub, err := openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				continue // gone, or no longer a directory: its parent had the event
			}
			r, subNames, under := join(rel, name), append(names[:len(names):len(names)], name), refusal
			if strings.EqualFold(name, ".git") {
				under = gitRefusal
			}
			w.do(func() error { return x.diffDir(w, sub, r, subNames, under, out, false) }, sub, -1)
		}
		return nil
	}
	w.list(rel)
	list, err := readNames(fd)
	if err != nil {
		return err
	}
	es := w.lookup(rel, list)
	var found []item
	depth := len(names) + 1
	add := func(it item) bool {
		switch {
		case w.counted.Add(1) > int64(w.bounds.MaxChanges):
			w.fail(w.over(0))
			return false
		case w.descend && it.e == nil && depth > w.bounds.MaxDepth:
			w.fail(w.over(depth))
			return false
		}
		found = append(found, it)
		return true
	}
	defer func() {
		w.mu.Lock()
		*out = append(*out, found...)
		w.mu.Unlock()
	}()
	for i, name := range list {
		if w.failed() {
			return nil
		}
		r := join(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		e := es[i]
		// What the command made unreadable to its owner is made readable
		// again, to be looked at (its mode is not applied).
		if k := kind(st.Mode); (k == unix.S_IFDIR && st.Mode&0o700 != 0o700) || (k == unix.S_IFREG && st.Mode&0o400 == 0) {
			bits := uint32(0o400)
			if k == unix.S_IFDIR {
				bits = 0o700
			}
			if chmodEntry(fd, name, st.Mode&0o7777|bits) == nil {
				unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if pat, ok := x.ws.excl.matchLast(names, name); ok {
			// Never copied: whatever is there is the command's.
			if !add(item{rel: r, st: st, why: fmt.Sprintf("%s is excluded (security.excluded_paths: %q)", r, pat)}) {
				return nil
			}
			continue
		}
		why, under := refusal, refusal
		if strings.EqualFold(name, ".git") {
			why, under = gitRefusal, gitRefusal
			if e == nil {
				if !add(item{rel: r, st: st, why: why}) {
					return nil
				}
				continue
			}
		}
		if s := special(&st); s != "" {
			if !add(item{rel: r, st: st, e: e, why: s}) {
				return nil
			}
			continue
		}
		switch kind(st.Mode) {
		case unix.S_IFDIR:
			isNew := e == nil || kind(e.Src.Mode) != unix.S_IFDIR
			if isNew {
				if !add(item{rel: r, st: st, e: e, why: why}) {
					return nil
				}
				if !w.descend {
					continue // what it holds goes with it
				}
			}
			sub, err := openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				continue
			}
			subNames := append(names[:len(names):len(names)], name)
			w.do(func() error { return x.diffDir(w, sub, r, subNames, under, out, isNew) }, sub, -1)
		case unix.S_IFREG:
			if e == nil || kind(e.Src.Mode) != unix.S_IFREG || e.Dst != stampOf(&st) {
				if !add(item{rel: r, st: st, e: e, why: why}) {
					return nil
				}
			}
		case unix.S_IFLNK:
			link, err := readlinkAt(fd, name)
			if err == nil && e != nil && kind(e.Src.Mode) == unix.S_IFLNK && e.Link == link {
				continue
			}
			if !add(item{rel: r, st: st, e: e, why: "a symbolic link (to " + printableLink(link) + "); a write cannot make one"}) {
				return nil
			}
		}
	}
	return nil
}

// chmodEntry changes the mode of name in dirfd, never through a link: on
// the object opened O_PATH|O_NOFOLLOW, by its /proc/self/fd name.
func chmodEntry(dirfd int, name string, mode uint32) error {
	fd, err := openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if k := kind(st.Mode); k != unix.S_IFDIR && k != unix.S_IFREG {
		return errSkip
	}
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

func printableLink(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// special returns why an object of the copy cannot be applied by its
// kind or mode, or "".
func special(st *unix.Stat_t) string {
	switch kind(st.Mode) {
	case unix.S_IFDIR, unix.S_IFREG, unix.S_IFLNK:
	default:
		return fileType(st.Mode) + "; a write makes only regular files and directories"
	}
	if kind(st.Mode) != unix.S_IFREG {
		return "" // a directory's mode is never applied
	}
	switch {
	case st.Mode&unix.S_ISUID != 0:
		return "has the setuid bit; a write cannot set it"
	case st.Mode&unix.S_ISGID != 0:
		return "has the setgid bit; a write cannot set it"
	case st.Mode&unix.S_ISVTX != 0:
		return "has the sticky bit; a write cannot set it"
	case st.Size > sparseFloor && st.Blocks*512 < st.Size/2:
		// A file of holes costs the command nothing and the repository its
		// whole size, written out: a write makes none.
		return fmt.Sprintf("a sparse file of %s with %s on disk; a write makes none", FormatSize(st.Size), FormatSize(st.Blocks*512))
	}
	return ""
}

// sparseFloor is the size under which a sparse file is not refused.
const sparseFloor = 1 << 20
