package sandbox

// The walk: every path is resolved on file descriptors, one component at a
// time, from a descriptor of the root, and the operation then works on the
// descriptors that were checked. A path is never resolved again after it
// was checked, so a process that swaps a file or a directory for a
// symbolic link while we look cannot make the access land anywhere the
// check did not approve (time of check is time of use).
//
// Each component is opened relative to the descriptor of its parent with
// O_NOFOLLOW: a symbolic link is never followed by the kernel. When a
// component is a link we read the link itself (readlinkat on the very
// object opened) and resolve its target, component by component, with the
// same rules: an absolute target or a ".." above the root is refused, and
// every name traversed, through links too, is put to the exclusion rules
// before anything under it is opened. ".." is resolved on the chain of
// directory descriptors we hold, not by the kernel, so a directory moved
// meanwhile cannot take us above the root.
//
// This is the approach of github.com/cyphar/filepath-securejoin's
// OpenInRoot (what runc uses), without openat2: a walk of O_PATH and
// O_NOFOLLOW opens works on every kernel Docker runs on, costs one openat
// and one fstat per directory component, and lets us check each link's
// target ourselves.

import (
	"errors"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// chain is the directories from the root down to the one that holds the
// object being resolved. fds[0] is the root's descriptor, owned by the
// Workspace; the others are owned by the chain.
type chain struct {
	fds   []int
	names []string
	ids   []FileID // the identity of each directory, fds[0]'s included
}

// top is the descriptor of the deepest directory.
func (c *chain) top() int { return c.fds[len(c.fds)-1] }

// relOf is the repository-relative path of the deepest directory, or of name
// inside it.
func (c *chain) relOf(name string) string {
	parts := append(append([]string(nil), c.names...), name)
	if name == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

func (c *chain) push(fd int, name string, id FileID) {
	c.fds = append(c.fds, fd)
	c.names = append(c.names, name)
	c.ids = append(c.ids, id)
}

func (c *chain) pop() {
	unix.Close(c.top())
	c.fds = c.fds[:len(c.fds)-1]
	c.names = c.names[:len(c.names)-1]
	c.ids = c.ids[:len(c.ids)-1]
}

// close closes every descriptor the chain owns.
func (c *chain) close() {
	for len(c.fds) > 1 {
		c.pop()
	}
}

// walkOp says what the walk does with the last component.
type walkOp int

const (
	// walkOpen opens the last component for reading.
	walkOpen walkOp = iota
	// walkLocate finds the last component without opening it (write,
	// stat): missing directories on the way are created when create is
	// set, and the last component may be missing.
	walkLocate
	// walkResolve is walkLocate that takes missing directories, and
	// everything after them, as written, creating nothing.
	walkResolve
	// walkEntry is walkLocate that does not follow a symbolic link in the
	// last component: the link itself is the object (a removal).
	walkEntry
	// walkResolveEntry is walkResolve that does not follow a symbolic link
	// in the last component, as walkEntry.
	walkResolveEntry
)

// target is what a walk found.
type target struct {
	chain        // the directory holding the object (the object itself when name is "")
	name  string // the object's name in chain.top(); "" when the path resolves to a directory of the chain
	fd    int    // walkOpen: the object, opened for reading; -1 otherwise
	st    unix.Stat_t
	found bool // walkLocate: name exists (st describes it)
	rel   string
	made  []string // the directories the walk made on its way (create), in order
}

// close releases the target's descriptors.
func (t *target) close() {
	if t.fd >= 0 {
		unix.Close(t.fd)
		t.fd = -1
	}
	t.chain.close()
}

// components splits a path into its components, dropping empty ones and
// ".": "a//./b/" is [a b].
func components(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// precheck refuses, before the file system is consulted, a path that is
// never acceptable, climbs above the root as written, or names an excluded
// component (so that the answer cannot tell whether an excluded file
// exists: <open .env/x> is PATH_SECURITY whether .env exists or not).
func (w *Workspace) precheck(p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	if lexical := path.Clean(p); lexical == ".." || strings.HasPrefix(lexical, "../") {
		return Errorf(CodePathSecurity, "path %q leaves the repository", p)
	}
	// Every component as written, ".." left out, and the path cleaned:
	// "a/../.env" names .env, and so does "x/.env/../y" on its way.
	var named []string
	for _, c := range components(p) {
		if len(c) > maxNameLen {
			return Errorf(CodeInvalidPath, "a component of the path is %d bytes long; the limit is %d", len(c), maxNameLen)
		}
		if c != ".." {
			named = append(named, c)
		}
	}
	for _, q := range []string{path.Clean(p), strings.Join(named, "/")} {
		if pat, ok := w.excl.match(q); ok {
			return excludedError(q, pat)
		}
	}
	return nil
}

func excludedError(rel, pat string) error {
	return Errorf(CodePathSecurity, "%s is excluded (security.excluded_paths: %q)", rel, pat)
}

// walk resolves p from the root. On success the caller owns the target
// and must close it.
func (w *Workspace) walk(p string, op walkOp, create bool) (*target, error) {
	if err := w.precheck(p); err != nil {
		return nil, err
	}
	t := &target{chain: chain{fds: []int{w.rootFD}, names: nil, ids: []FileID{w.rootID}}, fd: -1}
	ok := false
	defer func() {
		if !ok {
			t.close()
		}
	}()
	todo := components(p)
	links := 0
	follow := func(dirfd int, name string, self bool) error {
		links++
		if links > maxSymlinks {
			return Errorf(CodePathSecurity, "too many symbolic links in %q", p)
		}
		var link string
		var err error
		if self {
			link, err = readlinkFD(dirfd)
		} else {
			link, err = readlinkAt(dirfd, name)
		}
		if err != nil {
			return err
		}
		if strings.HasPrefix(link, "/") {
			return Errorf(CodePathSecurity, "%q is a symbolic link to an absolute path, outside the repository", t.relOf(name))
		}
		todo = append(components(link), todo...)
		return nil
	}
	// link follows the link name in dirfd; if name is no longer a link (it
	// was swapped back meanwhile), it is looked at again.
	link := func(dirfd int, name string) error {
		err := follow(dirfd, name, false)
		if errors.Is(err, unix.EINVAL) {
			todo = append([]string{name}, todo...)
			return nil
		}
		return err
	}
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if c == ".." {
			if len(t.fds) == 1 {
				return nil, Errorf(CodePathSecurity, "path %q leaves the repository", p)
			}
			t.pop()
			continue
		}
		if len(c) > maxNameLen {
			return nil, Errorf(CodeInvalidPath, "a component of the path is %d bytes long; the limit is %d", len(c), maxNameLen)
		}
		rel := t.relOf(c)
		if pat, ok := w.excl.matchLast(t.names, c); ok {
			return nil, excludedError(rel, pat)
		}
		dirfd := t.top()
		if len(todo) > 0 {
			// A directory on the way: open the object itself, whatever it is.
			fd, err := openat(dirfd, c, unix.O_PATH|unix.O_NOFOLLOW)
			if errors.Is(err, unix.ENOENT) && create {
				// Nothing is created where a write is refused.
				if err := w.guardPath(rel); err != nil {
					return nil, err
				}
				if err = unix.Mkdirat(dirfd, c, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
					if err == nil {
						t.made = append(t.made, rel)
					}
					fd, err = openat(dirfd, c, unix.O_PATH|unix.O_NOFOLLOW)
				}
			}
			if errors.Is(err, unix.ENOENT) && (op == walkResolve || op == walkResolveEntry) {
				// Nothing below a missing directory can be a link: the
				// rest resolves as written (precheck vetted its names).
				names := append(append([]string(nil), t.names...), c)
				for _, r := range todo {
					if r == ".." {
						if len(names) == 0 {
							return nil, Errorf(CodePathSecurity, "path %q leaves the repository", p)
						}
						names = names[:len(names)-1]
						continue
					}
					names = append(names, r)
				}
				t.rel = "."
				if len(names) > 0 {
					t.rel = strings.Join(names, "/")
				}
				ok = true
				return t, nil
			}
			if err != nil {
				if errors.Is(err, unix.ENOENT) {
					return nil, &Error{Code: CodeFileNotFound, Message: "no such file: " + p, Err: err}
				}
				return nil, osError(err, rel)
			}
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				unix.Close(fd)
				return nil, osError(err, rel)
			}
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				t.push(fd, c, idOf(&st))
				if create {
					if err := w.guardDir(rel, idOf(&st)); err != nil {
						return nil, err
					}
				}
			case unix.S_IFLNK:
				err := follow(fd, c, true)
				unix.Close(fd)
				if err != nil {
					return nil, err
				}
			default:
				unix.Close(fd)
				return nil, Errorf(CodeFileNotFound, "%q is not a directory", rel)
			}
			continue
		}
		// The last component.
		if op == walkOpen {
			// O_NONBLOCK: a FIFO must not hang the read; O_NOCTTY: a
			// terminal must not become ours.
			fd, err := openat(dirfd, c, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
			if errors.Is(err, unix.ELOOP) {
				// A symbolic link (or one was swapped in): follow it with
				// our rules.
				if err := link(dirfd, c); err != nil {
					return nil, err
				}
				continue
			}
			if err != nil {
				return nil, osError(err, rel)
			}
			t.fd = fd
			if err := unix.Fstat(fd, &t.st); err != nil {
				return nil, osError(err, rel)
			}
			t.name, t.rel, t.found = c, rel, true
			ok = true
			return t, nil
		}
		err := unix.Fstatat(dirfd, c, &t.st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			t.name, t.rel = c, rel
			ok = true
			return t, nil
		}
		if err != nil {
			return nil, osError(err, rel)
		}
		if t.st.Mode&unix.S_IFMT == unix.S_IFLNK && op != walkEntry && op != walkResolveEntry {
			if err := link(dirfd, c); err != nil {
				return nil, err
			}
			continue
		}
		t.name, t.rel, t.found = c, rel, true
		ok = true
		return t, nil
	}
	// The path resolves to a directory we hold (the root, or one left by
	// ".." or a link).
	t.rel = t.chain.relOf("")
	if op == walkOpen {
		fd, err := openat(t.top(), ".", unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return nil, osError(err, t.rel)
		}
		t.fd = fd
		if err := unix.Fstat(fd, &t.st); err != nil {
			return nil, osError(err, t.rel)
		}
	} else if err := unix.Fstat(t.top(), &t.st); err != nil {
		return nil, osError(err, t.rel)
	}
	t.found = true
	ok = true
	return t, nil
}

// openat opens name relative to dirfd, close-on-exec, retrying on EINTR.
func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// dupFD duplicates fd, close-on-exec: nothing a command started later
// inherits it.
func dupFD(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

// readlinkFD reads the symbolic link opened (O_PATH|O_NOFOLLOW) as fd.
func readlinkFD(fd int) (string, error) { return readlinkAt(fd, "") }

// readlinkAt reads the symbolic link name in dirfd (name "" reads dirfd
// itself); EINVAL means it is not a link.
func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size > maxPathLen {
			return "", Errorf(CodePathSecurity, "a symbolic link's target is longer than %d bytes", maxPathLen)
		}
	}
}

// FileID is a file's identity: its device and inode, whatever its name.
type FileID struct {
	Dev  uint64 `json:"dev"`
	Ino  uint64 `json:"ino"`
	What string `json:"what,omitempty"` // what it is, for messages: "the configuration file in use"
}

func idOf(st *unix.Stat_t) FileID { return FileID{Dev: uint64(st.Dev), Ino: st.Ino} }

// IDOf returns the identity of the file or directory at path, following
// links.
func IDOf(path string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return FileID{}, err
	}
	return idOf(&st), nil
}
