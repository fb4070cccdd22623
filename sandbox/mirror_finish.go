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

// Finish finds what the command changed in the copy and, when apply is
// set, applies each change to the repository under the rules of <write>;
// a change that breaks a rule is refused, with the reason. What is not
// applied (refused, or every change when apply is not set) is taken out
// of the copy, so that the next Sync puts the repository's version back.
// The changes come sorted by path.
func (x *Mirror) Finish(apply bool) ([]Change, error) {
	items, err := x.diff()
	if err != nil {
		return nil, err
	}
	var changes []Change
	var undo []string
	refuse := func(rel, action string, err error) {
		c := Change{Path: rel, Action: action}
		if err != nil {
			c.Reason = reason(err)
		}
		changes = append(changes, c)
		undo = append(undo, rel)
	}
	// Deletions first, deepest first, so that a directory is empty when
	// its turn comes and a file replaced by a directory is gone.
	for i := len(items) - 1; i >= 0; i-- {
		it := &items[i]
		if !it.gone {
			continue
		}
		if !apply {
			refuse(it.rel, ChangeDiscarded, nil)
			continue
		}
		if inGit(it.rel) {
			refuse(it.rel, ChangeRefused, errors.New(gitRefusal))
			continue
		}
		if err := x.ws.remove(it.rel, it.e.Src); err != nil {
			refuse(it.rel, ChangeRefused, err)
			continue
		}
		x.changes.Add(1)
		delete(x.m.Entries, it.rel)
		changes = append(changes, Change{Path: it.rel, Action: ChangeDeleted})
	}
	for i := range items {
		it := &items[i]
		if it.gone {
			continue
		}
		if !apply {
			refuse(it.rel, ChangeDiscarded, nil)
			continue
		}
		if it.why != "" {
			refuse(it.rel, ChangeRefused, errors.New(it.why))
			continue
		}
		if it.e != nil && kind(it.e.Src.Mode) != kind(it.st.Mode) {
			// Replaced by another kind of object: the old one goes first.
			if err := x.ws.remove(it.rel, it.e.Src); err != nil {
				refuse(it.rel, ChangeRefused, err)
				continue
			}
			x.changes.Add(1)
			delete(x.m.Entries, it.rel)
			changes = append(changes, Change{Path: it.rel, Action: ChangeDeleted})
			it.e = nil
		}
		if c, ok := x.apply(it); ok {
			if c.Action != "" {
				changes = append(changes, c)
			}
		} else {
			refuse(it.rel, ChangeRefused, errors.New(c.Reason))
		}
	}
	x.undo(undo)
	x.markHostTools(changes)
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, nil
}

// markHostTools marks the applied changes to files of
// Limits.HostToolFiles (those the rules let land: in deny mode they are
// refused).
func (x *Mirror) markHostTools(changes []Change) {
	for i := range changes {
		switch changes[i].Action {
		case ChangeCreated, ChangeUpdated, ChangeDeleted:
			changes[i].HostTool = x.ws.HostTool(strings.TrimSuffix(changes[i].Path, "/"))
		}
	}
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

// diff finds what changed in the copy since the last look, sorted by path.
func (x *Mirror) diff() ([]item, error) {
	var items []item
	os.Chmod(x.Tree(), 0o755) // the command owns it, and may have locked it
	w := x.newWalk(dstSide)
	if w.goes("") {
		w.do(func() error { return x.diffDir(w, x.tree, "", nil, "", &items, false) }, -1, -1)
	}
	if err := w.wait(); err != nil {
		x.broken = true // the next run starts the copy afresh
		return nil, err
	}
	for _, rel := range w.gone() {
		items = append(items, item{rel: rel, e: x.m.Entries[rel], gone: true})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].rel < items[j].rel })
	return items, nil
}

// Check takes out of the copy whatever differs from the record (nothing a
// command changed is ever applied but by Finish), so that the next Sync
// copies the repository's version; it returns how many paths differed.
// The first Check of a run walks the whole copy: a run opens it with
// Check, then Sync.
func (x *Mirror) Check() (int, error) {
	items, err := x.diff()
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

// reason is the message of a refusal.
func reason(err error) string {
	var se *Error
	if errors.As(err, &se) {
		return se.Message
	}
	return err.Error()
}

// apply applies one creation or update. It returns the change, with no
// action when there was nothing to do, and false when it was refused.
func (x *Mirror) apply(it *item) (Change, bool) {
	switch kind(it.st.Mode) {
	case unix.S_IFDIR:
		if it.e != nil {
			return Change{}, true // a directory's mode and times are not applied
		}
		st, err := x.ws.makeDir(it.rel)
		if err != nil {
			return Change{Reason: reason(err)}, false
		}
		x.changes.Add(1)
		x.m.Entries[it.rel] = &entry{Src: stampOf(&st), Dst: stampOf(&it.st)}
		return Change{Path: it.rel + "/", Action: ChangeCreated}, true
	case unix.S_IFREG:
		dir, name := splitRel(it.rel)
		dfd, err := x.openTreeDir(dir)
		if err != nil {
			return Change{Reason: reason(err)}, false
		}
		fd, err := openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
		unix.Close(dfd)
		if err != nil {
			return Change{Reason: reason(err)}, false
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Ino != it.st.Ino || kind(st.Mode) != unix.S_IFREG {
			return Change{Reason: "it changed while its change was applied"}, false
		}
		// Permissions as git keeps them: executable or not. A mode the
		// command did not change stays the repository's.
		perm := uint32(0o644)
		if st.Mode&0o111 != 0 {
			perm = 0o755
		}
		keep := it.e != nil && st.Mode&0o7777 == it.e.Dst.Mode&0o7777
		var want *stamp
		if it.e != nil {
			want = &it.e.Src
		}
		same, rst, err := x.ws.putFile(it.rel, f, st.Size, perm, keep, want)
		if err != nil {
			return Change{Reason: reason(err)}, false
		}
		x.changes.Add(1)
		x.m.Entries[it.rel] = &entry{Src: stampOf(&rst), Dst: stampOf(&st)}
		switch {
		case same:
			return Change{}, true
		case it.e == nil:
			return Change{Path: it.rel, Action: ChangeCreated}, true
		}
		return Change{Path: it.rel, Action: ChangeUpdated}, true
	}
	return Change{Reason: "unreachable"}, false
}

// undo takes the paths out of the copy and the record (with everything
// under them), so that the next Sync copies the repository's version.
func (x *Mirror) undo(paths []string) {
	if len(paths) == 0 {
		return
	}
	set := make(map[string]bool, len(paths))
	for _, p := range paths {
		set[p] = true
	}
	under := func(rel string) bool { return underAny(rel, set) }
	for rel := range x.m.Entries {
		if under(rel) {
			x.changes.Add(1)
			delete(x.m.Entries, rel)
		}
	}
	// The repository's version comes back with the next Sync, which lists
	// these directories again.
	for _, p := range paths {
		x.watch.touch(srcSide, parentOf(p))
	}
	sort.Strings(paths)
	for i, p := range paths {
		if i > 0 && under(parentOf(p)) {
			continue // went with its directory
		}
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
	x.watch.add(dstSide, fd, rel)
	list, err := readNames(fd)
	if err != nil {
		return err
	}
	es := w.lookup(rel, list)
	var found []item
	defer func() {
		w.mu.Lock()
		*out = append(*out, found...)
		w.mu.Unlock()
	}()
	for i, name := range list {
		r := join(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		e := es[i]
		// What the command made unreadable to its owner is made readable
		// again, to be looked at (its mode is not applied).
		if k := kind(st.Mode); (k == unix.S_IFDIR && st.Mode&0o700 != 0o700) || (k == unix.S_IFREG && st.Mode&0o400 == 0) {
			add := uint32(0o400)
			if k == unix.S_IFDIR {
				add = 0o700
			}
			if chmodEntry(fd, name, st.Mode&0o7777|add) == nil {
				unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		if pat, ok := x.ws.excl.matchLast(names, name); ok {
			// Never copied: whatever is there is the command's.
			found = append(found, item{rel: r, st: st, why: fmt.Sprintf("%s is excluded (security.excluded_paths: %q)", r, pat)})
			continue
		}
		why, under := refusal, refusal
		if strings.EqualFold(name, ".git") {
			why, under = gitRefusal, gitRefusal
			if e == nil {
				found = append(found, item{rel: r, st: st, why: why})
				continue
			}
		}
		if s := special(&st); s != "" {
			found = append(found, item{rel: r, st: st, e: e, why: s})
			continue
		}
		switch kind(st.Mode) {
		case unix.S_IFDIR:
			isNew := e == nil || kind(e.Src.Mode) != unix.S_IFDIR
			if isNew {
				found = append(found, item{rel: r, st: st, e: e, why: why})
			} else if !w.goes(r) {
				continue // no event under it
			}
			sub, err := openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				continue
			}
			subNames := append(names[:len(names):len(names)], name)
			w.do(func() error { return x.diffDir(w, sub, r, subNames, under, out, isNew) }, sub, -1)
		case unix.S_IFREG:
			if e == nil || kind(e.Src.Mode) != unix.S_IFREG || e.Dst != stampOf(&st) {
				found = append(found, item{rel: r, st: st, e: e, why: why})
			}
		case unix.S_IFLNK:
			link, err := readlinkAt(fd, name)
			if err == nil && e != nil && kind(e.Src.Mode) == unix.S_IFLNK && e.Link == link {
				continue
			}
			found = append(found, item{rel: r, st: st, e: e, why: "a symbolic link (to " + printableLink(link) + "); a write cannot make one"})
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
