package sandbox

// Delete and move, under the rules of a write, on descriptors.
//
// Both decide on the object they touch: what the walk found is moved aside
// (or into place) with renameat2(RENAME_NOREPLACE), and its identity is
// checked again under the name it then has, before anything is removed or
// kept. An object swapped in between the walk and the rename (a link to a
// protected file, another directory) is put back where it was and the
// operation is refused: nothing is deleted or replaced that was not
// decided on.
//
// A directory moved carries everything under it to new paths, so every
// entry under it is put to the rules of a write at the path it leaves and
// at the one it lands on (exclusions, llm-runtime's own files, protected
// paths and identities, host tool files in deny mode), at most
// MaxMoveEntries of them. A pattern of security.excluded_paths that names
// a path ("config/prod.yaml") would otherwise be escaped by moving its
// directory. The moved tree is checked again where it landed, and moved
// back if something that may not be there arrived meanwhile.

import (
	"cmp"
	"errors"
	"path"

	"golang.org/x/sys/unix"
)

// MaxMoveEntries bounds the entries under a directory that a move checks;
// a larger directory is refused (RESOURCE_LIMIT).
const MaxMoveEntries = 10000

// DeleteWith removes the file, link or empty directory at p, with the
// options o (Expect).
func (w *Workspace) DeleteWith(p string, o Options) (*DeleteResult, error) {
	t, err := w.entry(p, o, "deleted")
	if err != nil {
		return nil, err
	}
	defer t.close()
	err = record(o, func() ([]PathChange, error) {
		before, err := stateOf(t)
		return []PathChange{{Path: t.rel, Before: before, After: PathState{Kind: StateNone}}}, err
	}, func() error {
		err := removeEntry(t)
		if errors.Is(err, errNotEmpty) {
			return Errorf(CodeIsDirectory, "%s is a directory that is not empty: delete what is in it first; <list %s/**> shows what is in it", t.rel, t.rel)
		}
		if err == nil {
			syncDir(t.top())
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	res := &DeleteResult{Path: t.rel, Kind: kindOf(t.st.Mode), HostTool: w.HostTool(t.rel)}
	if res.Kind == "file" {
		res.Bytes = t.st.Size
	}
	return res, nil
}

// entry finds the entry at p that a delete or a move (what) is to touch,
// a link in the last component not followed, under the rules of a write
// and the options' Expect. The caller closes it.
func (w *Workspace) entry(p string, o Options, what string) (*target, error) {
	if err := w.refusedAsWritten(p); err != nil {
		return nil, err
	}
	t, err := w.walk(p, walkEntry, false)
	if err != nil {
		return nil, err
	}
	err = entryNamed(t, p, what)
	if err == nil {
		err = expected(t, o)
	}
	if err == nil && !t.found {
		err = Errorf(CodeFileNotFound, "no such file: %s", p)
	}
	if err == nil {
		err = w.writeProtected(t)
	}
	if err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// entryNamed refuses a path that resolves to a directory of the walk's
// chain instead of naming an entry (the root, "a/..", a link to a
// directory followed on the way): what would be deleted or moved is not
// what the path says.
func entryNamed(t *target, p, what string) error {
	if t.name != "" {
		return nil
	}
	if t.rel == "." {
		return Errorf(CodeInvalidPath, "the repository root cannot be %s", what)
	}
	return Errorf(CodeInvalidPath, "%q resolves to the directory %s through a link or \"..\"; name it as %s to have it %s", p, t.rel, t.rel, what)
}

// moveAside renames name in dirfd to a temporary name there and checks
// that what it moved is the object st describes; if not, it puts it back
// and refuses. It returns the temporary name.
func moveAside(dirfd int, name, rel string, st *unix.Stat_t) (string, error) {
	tmp := tempName()
	if err := renameNoReplace(dirfd, name, dirfd, tmp); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return "", Errorf(CodeFileNotFound, "no such file: %s (it went while it was being changed)", rel)
		}
		return "", osError(err, rel)
	}
	var now unix.Stat_t
	if err := unix.Fstatat(dirfd, tmp, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil || idOf(&now) != idOf(st) || kind(now.Mode) != kind(st.Mode) {
		putBack(dirfd, tmp, name)
		return "", changedMeanwhile(rel)
	}
	return tmp, nil
}

// errNotEmpty is removeEntry's error for a directory that holds anything.
var errNotEmpty = errors.New("directory not empty")

// removeEntry removes what the walk found at t (a file, a link or an
// empty directory), moved aside first so that it is that very object; a
// directory that is not empty is put back, and the error is errNotEmpty.
func removeEntry(t *target) error {
	aside, err := moveAside(t.top(), t.name, t.rel, &t.st)
	if err != nil {
		return err
	}
	flags := 0
	if kind(t.st.Mode) == unix.S_IFDIR {
		flags = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(t.top(), aside, flags); err != nil {
		putBack(t.top(), aside, t.name)
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return errNotEmpty
		}
		return osError(err, t.rel)
	}
	return nil
}

func changedMeanwhile(rel string) error {
	return Errorf(CodePathSecurity, "%s changed while it was being changed (another process replaced it); nothing was done", rel)
}

// putBack renames tmp in dirfd back to name, never over something that
// took its place meanwhile (that stays, and tmp with it).
func putBack(dirfd int, tmp, name string) {
	renameNoReplace(dirfd, tmp, dirfd, name)
}

// renameNoReplace is renameat2(RENAME_NOREPLACE), or on a file system
// without it a check and renameat.
func renameNoReplace(fromfd int, from string, tofd int, to string) error {
	err := unix.Renameat2(fromfd, from, tofd, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		var st unix.Stat_t
		if unix.Fstatat(tofd, to, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			return unix.EEXIST
		}
		err = unix.Renameat(fromfd, from, tofd, to)
	}
	return err
}

// MoveWith renames src to dst, with the options o: Expect and ExpectTo,
// what src and dst must resolve to; Overwrite, to replace a file or link
// at dst.
func (w *Workspace) MoveWith(src, dst string, o Options) (*MoveResult, error) {
	if err := w.refusedAsWritten(dst); err != nil {
		return nil, err
	}
	s, err := w.entry(src, o, "moved")
	if err != nil {
		return nil, err
	}
	defer s.close()
	// Where it lands, resolved without making anything yet: the checks
	// come first, so that a refused move leaves no directory behind.
	to, err := w.ResolveWith(dst, Options{Entry: true})
	if err != nil {
		return nil, err
	}
	if o.ExpectTo != "" && to != o.ExpectTo {
		return nil, Errorf(CodePathSecurity, "%s changed while it was decided on: it named %s, it now names %s; nothing was done", dst, o.ExpectTo, to)
	}
	if to == s.rel {
		return nil, Errorf(CodeInvalidPath, "%s and %s are the same path", src, dst)
	}
	isDir := kind(s.st.Mode) == unix.S_IFDIR
	if isDir && isUnder(to, s.rel) {
		return nil, Errorf(CodeInvalidPath, "%s cannot be moved into itself (%s)", s.rel, to)
	}
	res := &MoveResult{From: s.rel, To: to, Kind: kindOf(s.st.Mode)}
	var sub []movedEntry
	if isDir {
		if sub, err = w.checkTree(s.top(), s.name, s.rel, to, o.Recorder != nil); err != nil {
			return nil, err
		}
		res.Entries = len(sub)
	}
	d, err := w.walk(dst, walkEntry, true)
	if err != nil {
		return nil, err
	}
	defer d.close()
	isDirThere := func() error {
		return Errorf(CodeIsDirectory, "%s is a directory; to move %s into it, name the new path: %s/%s", d.rel, s.rel, d.rel, path.Base(s.rel))
	}
	if entryNamed(d, dst, "replaced") != nil {
		return nil, isDirThere()
	}
	if d.rel != to {
		return nil, Errorf(CodePathSecurity, "%s changed while it was being moved to: it named %s, it now names %s; nothing was done", dst, to, d.rel)
	}
	if err := w.writeProtected(d); err != nil {
		return nil, err
	}
	if d.found {
		switch {
		case kind(d.st.Mode) == unix.S_IFDIR:
			return nil, isDirThere()
		case !o.Overwrite:
			return nil, Errorf(CodeFileExists, "%s exists; nothing was moved (to replace it, ask to overwrite it)", d.rel)
		case isDir:
			return nil, Errorf(CodeIsDirectory, "%s is a directory and cannot replace the file %s", s.rel, d.rel)
		}
		res.Replaced = true
	}
	changes := func() ([]PathChange, error) {
		from, err := stateOf(s)
		if err != nil {
			return nil, err
		}
		was, err := stateOf(d)
		if err != nil {
			return nil, err
		}
		cs := append(madeDirs(d), PathChange{Path: s.rel, Before: from, After: PathState{Kind: StateNone}}, PathChange{Path: to, Before: was, After: from})
		for _, e := range sub {
			cs = append(cs, PathChange{Path: e.from, Before: e.state, After: PathState{Kind: StateNone}}, PathChange{Path: e.to, Before: PathState{Kind: StateNone}, After: e.state})
		}
		return cs, nil
	}
	if err := record(o, changes, func() error { return w.move(s, d, to, isDir) }); err != nil {
		return nil, err
	}
	res.HostTool = cmp.Or(w.HostTool(to), w.HostTool(s.rel))
	for _, e := range sub {
		if res.HostTool != "" {
			break
		}
		res.HostTool = cmp.Or(w.HostTool(e.to), w.HostTool(e.from))
	}
	return res, nil
}

// movedEntry is an entry under a directory being moved: its path now and
// where it lands, and, when asked for, what it holds.
type movedEntry struct {
	from, to string
	state    PathState
}

// checkTree puts every entry under the directory name in dirfd, whose
// path is from and which is to land at to, to the rules of a write at both
// paths, and with states reads what each holds (for the record of the
// move). It does not follow links: a link moves as a link.
func (w *Workspace) checkTree(dirfd int, name, from, to string, states bool) ([]movedEntry, error) {
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return nil, osError(err, from)
	}
	var out []movedEntry
	var visit func(fd int, rel string) error
	visit = func(fd int, rel string) error {
		defer unix.Close(fd)
		ents, err := readDirents(fd)
		if err != nil {
			return osError(err, path.Join(from, rel))
		}
		for _, de := range ents {
			n := de.name
			sub := n
			if rel != "" {
				sub = rel + "/" + n
			}
			e := movedEntry{from: from + "/" + sub, to: to + "/" + sub}
			if len(out) == MaxMoveEntries {
				return Errorf(CodeResourceLimit, "%s holds more than %d entries; a move checks each of them, so move its parts instead", from, MaxMoveEntries)
			}
			out = append(out, e)
			var st unix.Stat_t
			if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue
				}
				return osError(err, e.from)
			}
			for _, p := range []string{e.from, e.to} {
				if pat, ok := w.excl.match(p); ok {
					return Errorf(CodePathSecurity, "%s would move %s, which is excluded (security.excluded_paths: %q); nothing was moved", from, p, pat)
				}
				if err := ownName(p); err != nil {
					return err
				}
				if err := w.guardPath(p); err != nil {
					return err
				}
			}
			if what, ok := w.prot[idOf(&st)]; ok {
				return Errorf(CodePathSecurity, "%s holds %s (%s), which cannot be written from the sandbox; nothing was moved", from, what, e.from)
			}
			if states {
				if out[len(out)-1].state, err = stateAt(fd, n, e.from, &st); err != nil {
					return err
				}
			}
			if kind(st.Mode) == unix.S_IFDIR {
				cfd, err := openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
				if err != nil {
					return osError(err, e.from)
				}
				if err := visit(cfd, sub); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(fd, ""); err != nil {
		return nil, err
	}
	return out, nil
}

// move renames s onto d (checked by MoveWith): what d held, a file or a
// link, is moved aside first and removed once the move is done, or put
// back if it fails; what landed is checked to be what was decided on
// (and a tree, one that may be there), or moved back.
func (w *Workspace) move(s, d *target, to string, isDir bool) error {
	var aside string
	if d.found {
		var err error
		if aside, err = moveAside(d.top(), d.name, d.rel, &d.st); err != nil {
			return err
		}
	}
	undo := func() {
		if aside != "" {
			putBack(d.top(), aside, d.name)
		}
	}
	if err := renameNoReplace(s.top(), s.name, d.top(), d.name); err != nil {
		undo()
		switch {
		case errors.Is(err, unix.EEXIST):
			return Errorf(CodeFileExists, "%s appeared while it was being moved to; nothing was moved", d.rel)
		case errors.Is(err, unix.ENOENT):
			return Errorf(CodeFileNotFound, "no such file: %s (it went while it was being moved)", s.rel)
		}
		return osError(err, s.rel)
	}
	var now unix.Stat_t
	bad := unix.Fstatat(d.top(), d.name, &now, unix.AT_SYMLINK_NOFOLLOW) != nil || idOf(&now) != idOf(&s.st) || kind(now.Mode) != kind(s.st.Mode)
	var err error
	if !bad && isDir {
		if _, err = w.checkTree(d.top(), d.name, s.rel, to, false); err != nil {
			bad = true
		}
	}
	if bad {
		renameNoReplace(d.top(), d.name, s.top(), s.name)
		undo()
		if err != nil {
			return err
		}
		return changedMeanwhile(s.rel)
	}
	if aside != "" {
		if err := unix.Unlinkat(d.top(), aside, 0); err != nil {
			return osError(err, d.rel)
		}
	}
	syncDir(s.top())
	if d.top() != s.top() {
		syncDir(d.top())
	}
	return nil
}
