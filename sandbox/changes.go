package sandbox

// Changes from a command's copy of the repository (mirror.go), applied to
// the repository under the rules of <write>: every path is walked on
// descriptors from the root and put to the exclusion rules, to
// security.excluded_paths, to the write protection (the configuration
// file at any depth, llm-runtime's own files, protected identities), and a
// file is replaced atomically. A change also expects the repository to be
// as the copy was made from it: a file changed there while the command ran
// is not overwritten.

import (
	"bytes"
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// errConflict is a change whose file changed in the repository while the
// command ran.
func errConflict(rel string) error {
	return Errorf(CodePathSecurity, "%s changed in the repository while the command ran; the command's version was not applied", rel)
}

// matches says whether st is the object want describes (nil: none).
func matches(found bool, st *unix.Stat_t, want *stamp) bool {
	if want == nil {
		return !found
	}
	return found && stampOf(st) == *want
}

// putFile replaces, or creates, the file at p with the content of in
// (size bytes), with the mode perm, or the replaced file's own mode when
// keep is set. want is the file the change expects to find there. It
// reports whether the content and mode were already those (nothing
// written), and the stat of the file now there.
func (w *Workspace) putFile(p string, in *os.File, size int64, perm uint32, keep bool, want *stamp) (same bool, st unix.Stat_t, err error) {
	t, err := w.walk(p, walkLocate, true)
	if err != nil {
		return false, st, err
	}
	defer t.close()
	if t.name == "" {
		return false, st, Errorf(CodeIsDirectory, "%s is a directory", t.rel)
	}
	if err := w.writeProtected(t); err != nil {
		return false, st, err
	}
	if t.found && kind(t.st.Mode) != unix.S_IFREG {
		if kind(t.st.Mode) == unix.S_IFDIR {
			return false, st, Errorf(CodeIsDirectory, "%s is a directory in the repository", t.rel)
		}
		return false, st, Errorf(CodeNotRegularFile, "%s is not a regular file in the repository (%s)", t.rel, fileType(t.st.Mode))
	}
	if !matches(t.found, &t.st, want) {
		return false, st, errConflict(t.rel)
	}
	if keep && t.found {
		perm = t.st.Mode & 0o777
	}
	if t.found && t.st.Size == size && t.st.Mode&0o7777 == perm && sameContent(t, in, size) {
		return true, t.st, nil
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return false, st, err
	}
	if err := w.replaceFrom(t.top(), t.name, t.rel, io.LimitReader(in, size), perm); err != nil {
		return false, st, err
	}
	err = unix.Fstatat(t.top(), t.name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return false, st, err
}

// sameContent says whether the file t found holds what in holds.
func sameContent(t *target, in *os.File, size int64) bool {
	fd, err := openat(t.top(), t.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), t.name)
	defer f.Close()
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return false
	}
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for size > 0 {
		n := int(min(size, int64(len(a))))
		if _, err := io.ReadFull(in, a[:n]); err != nil {
			return false
		}
		if _, err := io.ReadFull(f, b[:n]); err != nil {
			return false
		}
		if !bytes.Equal(a[:n], b[:n]) {
			return false
		}
		size -= int64(n)
	}
	return true
}

// makeDir creates the directory p (and the directories on its way), under
// the rules of a write; an existing directory is fine.
func (w *Workspace) makeDir(p string) (st unix.Stat_t, err error) {
	t, err := w.walk(p, walkEntry, true)
	if err != nil {
		return st, err
	}
	defer t.close()
	if t.name == "" {
		return t.st, nil
	}
	if err := w.writeProtected(t); err != nil {
		return st, err
	}
	if t.found {
		if kind(t.st.Mode) != unix.S_IFDIR {
			return st, errConflict(t.rel)
		}
		return t.st, nil
	}
	if err := unix.Mkdirat(t.top(), t.name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return st, osError(err, t.rel)
	}
	err = unix.Fstatat(t.top(), t.name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// remove deletes the file, link or empty directory at p, which must be
// the object want describes, under the rules of a write. One already gone
// is fine.
func (w *Workspace) remove(p string, want stamp) error {
	t, err := w.walk(p, walkEntry, false)
	if err != nil {
		var se *Error
		if errors.As(err, &se) && se.Code == CodeFileNotFound {
			return nil
		}
		return err
	}
	defer t.close()
	if t.name == "" {
		return Errorf(CodeIsDirectory, "%s cannot be removed", t.rel)
	}
	if err := w.writeProtected(t); err != nil {
		return err
	}
	if !t.found {
		return nil
	}
	if kind(t.st.Mode) == unix.S_IFDIR {
		if kind(want.Mode) != unix.S_IFDIR || int64(t.st.Ino) != want.Ino {
			return errConflict(t.rel)
		}
		if err := unix.Unlinkat(t.top(), t.name, unix.AT_REMOVEDIR); err != nil {
			if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
				return Errorf(CodePathSecurity, "%s is not empty in the repository (it holds what the command could not see or change)", t.rel)
			}
			return osError(err, t.rel)
		}
		unix.Fsync(t.top())
		return nil
	}
	if stampOf(&t.st) != want {
		return errConflict(t.rel)
	}
	if err := unix.Unlinkat(t.top(), t.name, 0); err != nil {
		return osError(err, t.rel)
	}
	unix.Fsync(t.top())
	return nil
}
