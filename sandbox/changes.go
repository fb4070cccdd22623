package sandbox

// Changes from a command's copy of the repository (mirror.go), applied to
// the repository under the rules of <write>: every path is reached on
// descriptors from the root and put to the exclusion rules, to
// security.excluded_paths, to the write protection (the configuration
// file at any depth, llm-runtime's own files, protected identities), and a
// file is replaced atomically. A change also expects the repository to be
// as the copy was made from it: a file changed there while the command ran
// is not overwritten.
//
// A changeset is applied in the order of its paths, sorted so that a
// directory comes right before what it holds, by a cursor that holds the
// directories from the root down to the last one it reached: the next path
// is reached from the deepest directory the two share, so a changeset
// costs opens in proportion to its size, whatever its depth (a 2,000-deep
// chain reached from the root for each of its directories cost ~2 million
// opens).

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"golang.org/x/sys/unix"
)

// errConflict is a change whose file changed in the repository while the
// command ran.
func errConflict(rel string) *Error {
	return Errorf(CodePathSecurity, "%s changed in the repository while the command ran; the command's version was not applied", rel)
}

// matches says whether st is the object want describes (nil: none).
func matches(found bool, st *unix.Stat_t, want *stamp) bool {
	if want == nil {
		return !found
	}
	return found && stampOf(st) == *want
}

// cdir is a directory a cursor holds.
type cdir struct {
	name   string
	fd     int // O_PATH
	id     FileID
	staged bool // made by this changeset under a temporary name (or in one): not in the repository yet
	dirty  bool // changed: synced when the cursor leaves it
}

// cursor holds the directories from a root (dirs[0], not its own) down to
// the last one reached.
type cursor struct {
	dirs  []cdir
	names []string // dirs[1:]'s names: the path of the deepest
	// enter opens name in the directory the cursor holds last, whose path
	// is names, as rel.
	enter func(parent *cdir, names []string, name, rel string) (cdir, error)
}

func newCursor(root int, id FileID, enter func(parent *cdir, names []string, name, rel string) (cdir, error)) *cursor {
	return &cursor{dirs: []cdir{{fd: root, id: id}}, enter: enter}
}

// at moves the cursor to the directory rel ("" the root) and returns it.
// On an error it holds the directories above the one it could not enter.
func (c *cursor) at(rel string) (*cdir, error) {
	comps := components(rel)
	i := 0
	for i < len(comps) && i < len(c.names) && c.names[i] == comps[i] {
		i++
	}
	for len(c.names) > i {
		c.pop()
	}
	for ; i < len(comps); i++ {
		d, err := c.enter(&c.dirs[len(c.dirs)-1], c.names, comps[i], strings.Join(comps[:i+1], "/"))
		if err != nil {
			return nil, err
		}
		c.dirs = append(c.dirs, d)
		c.names = append(c.names, comps[i])
	}
	return &c.dirs[len(c.dirs)-1], nil
}

// syncDir syncs the directory fd (any descriptor of it): best effort, as
// some file systems cannot sync a directory.
func syncDir(fd int) {
	if d, err := openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY); err == nil {
		unix.Fsync(d)
		unix.Close(d)
	}
}

// pop leaves the deepest directory, syncing it if it changed.
func (c *cursor) pop() {
	d := c.dirs[len(c.dirs)-1]
	if d.dirty {
		syncDir(d.fd)
	}
	unix.Close(d.fd)
	c.dirs = c.dirs[:len(c.dirs)-1]
	c.names = c.names[:len(c.names)-1]
}

// close leaves every directory but the root, syncing those that changed.
func (c *cursor) close() {
	for len(c.names) > 0 {
		c.pop()
	}
	if c.dirs[0].dirty {
		syncDir(c.dirs[0].fd)
		c.dirs[0].dirty = false
	}
}

// enterCopy opens a directory of the copy, never through a link.
func enterCopy(parent *cdir, _ []string, name, rel string) (cdir, error) {
	fd, err := openat(parent.fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return cdir{}, osError(err, rel)
	}
	return cdir{name: name, fd: fd}, nil
}

// enterRepo opens a directory of the repository on the way to a change:
// a directory (never a link: the copy had a directory there), not
// excluded, not protected. staged names the directories this changeset
// made under a temporary name, by path; inside one, everything is the
// changeset's own.
func (w *Workspace) enterRepo(staged map[string]string) func(parent *cdir, names []string, name, rel string) (cdir, error) {
	return func(parent *cdir, names []string, name, rel string) (cdir, error) {
		open := name
		if parent.staged {
			fd, err := openat(parent.fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				return cdir{}, osError(err, rel)
			}
			return cdir{name: name, fd: fd, staged: true}, nil
		}
		if len(name) > maxNameLen {
			return cdir{}, Errorf(CodeInvalidPath, "a component of the path is %d bytes long; the limit is %d", len(name), maxNameLen)
		}
		if pat, ok := w.excl.matchLast(names, name); ok {
			return cdir{}, excludedError(rel, pat)
		}
		tmp, isStaged := staged[rel]
		if isStaged {
			open = tmp
		}
		fd, err := openat(parent.fd, open, unix.O_PATH|unix.O_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			e := errConflict(rel)
			e.Err = err // gone meanwhile
			return cdir{}, e
		}
		if err != nil {
			return cdir{}, osError(err, rel)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return cdir{}, osError(err, rel)
		}
		if kind(st.Mode) != unix.S_IFDIR {
			unix.Close(fd)
			return cdir{}, errConflict(rel) // the copy had a directory there
		}
		if err := w.guardDir(rel, idOf(&st)); err != nil {
			unix.Close(fd)
			return cdir{}, err
		}
		return cdir{name: name, fd: fd, id: idOf(&st), staged: isStaged}, nil
	}
}

// writable refuses a change at rel, named name, in the directory d: a file
// of llm-runtime's own by its name (ownName), a path guardPath refuses, an
// object whose identity is protected (st, when found). The directories on
// the way were checked as the cursor entered them.
func (w *Workspace) writable(rel, name string, found bool, st *unix.Stat_t) error {
	if err := checkPath(rel); err != nil {
		return err
	}
	if len(name) > maxNameLen {
		return Errorf(CodeInvalidPath, "a component of the path is %d bytes long; the limit is %d", len(name), maxNameLen)
	}
	if err := ownName(rel); err != nil {
		return err
	}
	if err := w.guardPath(rel); err != nil {
		return err
	}
	if found {
		if what, ok := w.prot[idOf(st)]; ok {
			return Errorf(CodePathSecurity, "%s is %s and cannot be written from the sandbox", rel, what)
		}
	}
	return nil
}

// writableIn is writable for name, at rel, in the directory d, as it is
// there now: what is there (found), and its stat.
func (w *Workspace) writableIn(d *cdir, name, rel string) (st unix.Stat_t, found bool, err error) {
	err = unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	found = err == nil
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return st, false, osError(err, rel)
	}
	return st, found, w.writable(rel, name, found, &st)
}

// removeIn deletes name, at rel, from the directory d: a file or link that
// must be the object want describes, or an empty directory whose identity
// it is. One already gone is fine.
func (w *Workspace) removeIn(d *cdir, name, rel string, want stamp) error {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return osError(err, rel)
	}
	if err := w.writable(rel, name, true, &st); err != nil {
		return err
	}
	if kind(st.Mode) == unix.S_IFDIR {
		if kind(want.Mode) != unix.S_IFDIR || int64(st.Ino) != want.Ino {
			return errConflict(rel)
		}
		if err := unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR); err != nil {
			if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
				return Errorf(CodePathSecurity, "%s is not empty in the repository (it holds what the command could not see or change)", rel)
			}
			return osError(err, rel)
		}
		d.dirty = true
		return nil
	}
	if stampOf(&st) != want {
		return errConflict(rel)
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return osError(err, rel)
	}
	d.dirty = true
	return nil
}

// sameFile says whether the file name in d holds what in holds (size
// bytes).
func sameFile(d *cdir, name string, in int, size int64) bool {
	fd, err := openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for off := int64(0); off < size; {
		n := int(min(size-off, int64(len(a))))
		if readAt(in, a[:n], off) != nil || readAt(fd, b[:n], off) != nil || !bytes.Equal(a[:n], b[:n]) {
			return false
		}
		off += int64(n)
	}
	return true
}

// readAt fills buf from fd at off.
func readAt(fd int, buf []byte, off int64) error {
	for len(buf) > 0 {
		n, err := unix.Pread(fd, buf, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		buf, off = buf[n:], off+int64(n)
	}
	return nil
}

// makeFile makes the file name in d with the content of in (size bytes)
// and the mode perm, synced if sync is set, and returns its stat. An object
// of that name is an error (O_EXCL).
func makeFile(d *cdir, name, rel string, in int, size int64, perm uint32, sync bool) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW)
	if err != nil {
		return st, osError(err, rel)
	}
	err = copyData(fd, in, size)
	if err == nil {
		err = unix.Fchmod(fd, perm)
	}
	if err == nil && sync {
		err = unix.Fsync(fd)
	}
	if err == nil {
		err = unix.Fstat(fd, &st)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(d.fd, name, 0)
		return st, osError(err, rel)
	}
	return st, nil
}
