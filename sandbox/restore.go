package sandbox

// Restore: what undo does to one path, under the rules of a write.

import (
	"bytes"
	"errors"

	"golang.org/x/sys/unix"
)

// ErrConflict is wrapped by Restore's error when the path does not hold
// what it was expected to: someone changed it since.
var ErrConflict = errors.New("changed since")

// Restore makes the path rel hold want, if it holds expect now; otherwise
// it changes nothing and its error wraps ErrConflict. It keeps the rules
// of a write: nothing outside the repository, excluded or protected, no
// link followed in the last component (a link there is the object), the
// directories before rel made when missing. A file gets want's content and
// mode, without the setuid and setgid bits (as a write); a directory is
// made with want's mode, or removed when empty; a link is made with want's
// target. With o.Recorder, the change is journaled first; with o.Force,
// what the path holds now is replaced whatever it is.
func (w *Workspace) Restore(rel string, expect, want PathState, o Options) error {
	if err := w.refusedAsWritten(rel); err != nil {
		return err
	}
	create := want.Kind != StateNone
	t, err := w.walk(rel, walkEntry, create)
	if err != nil {
		if !create && AsError(err).Code == CodeFileNotFound { // a directory before it is missing
			if expect.Kind == StateNone || o.Force {
				return nil // nothing there, nothing wanted
			}
			return conflict(rel, PathState{Kind: StateNone}, expect)
		}
		return err
	}
	defer t.close()
	if err := entryNamed(t, rel, "restored"); err != nil {
		return err
	}
	if err := w.writeProtected(t); err != nil {
		return err
	}
	now, err := stateOf(t)
	if err != nil {
		return err
	}
	if !SameState(now, expect) && !o.Force {
		return conflict(t.rel, now, expect)
	}
	if SameState(now, want) {
		return nil
	}
	changes := func() ([]PathChange, error) {
		return append(madeDirs(t), PathChange{Path: t.rel, Before: now, After: want}), nil
	}
	if want.Kind == StateFile && (now.Kind == StateFile || now.Kind == StateNone) {
		// A file put back where a file or nothing is: a rename, as a write.
		return recordStaged(o, changes, func() (*staged, error) {
			return stage(t.top(), t.name, t.rel, bytes.NewReader(want.Data), keptBits(want.Mode))
		})
	}
	return record(o, changes, func() error { return w.restore(t, now, want) })
}

func conflict(rel string, now, expect PathState) error {
	return &Error{Code: CodePathSecurity, Message: rel + " changed since: it holds " + describe(now) + ", not " + describe(expect) + "; left as it is", Err: ErrConflict}
}

// restore replaces what t holds (now) with want.
func (w *Workspace) restore(t *target, now, want PathState) error {
	dirfd, name := t.top(), t.name
	// What is there goes first, unless a file replaces a file (a rename
	// over it, atomic).
	if now.Kind != StateNone && !(now.Kind == StateFile && want.Kind == StateFile) {
		err := removeEntry(t)
		if errors.Is(err, errNotEmpty) {
			return Errorf(CodeIsDirectory, "%s is a directory that is not empty; left as it is", t.rel)
		}
		if err != nil {
			return err
		}
	}
	switch want.Kind {
	case StateFile:
		return w.replace(dirfd, name, t.rel, want.Data, keptBits(want.Mode))
	case StateDir:
		if err := unix.Mkdirat(dirfd, name, want.Mode&0o1777); err != nil {
			return osError(err, t.rel)
		}
		if fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW); err == nil {
			unix.Fchmod(fd, want.Mode&0o1777) // the umask took some bits
			unix.Close(fd)
		}
	case StateSymlink:
		if err := unix.Symlinkat(want.Target, dirfd, name); err != nil {
			return osError(err, t.rel)
		}
	}
	syncDir(dirfd)
	return nil
}

// SameState says whether two states are the same object: kind, mode (for
// a file or a directory), content, target.
func SameState(a, b PathState) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case StateFile:
		return a.Mode == b.Mode && bytes.Equal(a.Data, b.Data)
	case StateDir:
		return a.Mode == b.Mode
	case StateSymlink:
		return a.Target == b.Target
	}
	return true
}

func describe(s PathState) string {
	switch s.Kind {
	case StateFile:
		return "a file of " + FormatSize(s.Size)
	case StateDir:
		return "a directory"
	case StateSymlink:
		return "a link to " + s.Target
	}
	return "nothing"
}
