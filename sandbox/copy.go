package sandbox

// Copy mode: a sandbox that cannot see the host's repository (a remote
// Docker host, a Kubernetes pod) works on a replica of the mirror's copy
// (mirror.go), which the host pushes to the agent over its own protocol.
// The host side reads the copy (Mirror.Entries, Mirror.ReadCopy); the
// agent's side lists its replica (Workspace.Manifest) and applies what the
// host sends (Workspace.Unpack). Only the host's walk of the repository
// decides what is in the copy, so the replica holds nothing a rule
// excludes.

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// CopyEntry is one object of a copy: a regular file, a directory or a
// symbolic link, by its path, kind and mode (st_mode), size and
// modification time (ns). An Excluded entry is the empty stand-in of a
// name the rules exclude (Mirror.Entries).
type CopyEntry struct {
	Path     string `json:"p"`
	Mode     uint32 `json:"m"`
	Size     int64  `json:"s,omitempty"`
	Mtime    int64  `json:"t,omitempty"`
	Link     string `json:"l,omitempty"`
	Excluded bool   `json:"x,omitempty"`
}

// IsDir, IsFile and IsLink tell the entry's kind.
func (e CopyEntry) IsDir() bool  { return kind(e.Mode) == unix.S_IFDIR }
func (e CopyEntry) IsFile() bool { return kind(e.Mode) == unix.S_IFREG }
func (e CopyEntry) IsLink() bool { return kind(e.Mode) == unix.S_IFLNK }

// Same reports whether a replica's entry r already is what e describes: the
// same kind, and for a file the same size, permissions and modification
// time, for a link the same target. A directory's mode and times are never
// compared: they follow its content.
func (e CopyEntry) Same(r CopyEntry) bool {
	switch {
	case kind(e.Mode) != kind(r.Mode):
		return false
	case e.IsFile():
		return e.Size == r.Size && e.Mode&0o7777 == r.Mode&0o7777 && e.Mtime == r.Mtime
	case e.IsLink():
		return e.Link == r.Link
	}
	return true
}

// Changes returns how many times the copy has changed since the mirror was
// opened: a Sync that copied or removed nothing leaves it as it was.
func (x *Mirror) Changes() uint64 { return x.changes.Load() }

// Entries returns the copy's objects, sorted by path (so a directory comes
// before what it holds), as the record knows them: what the last Sync
// made. Each name the rules left out has an empty stand-in (Excluded), a
// directory or a file: the rules refuse it by its name in the replica as
// in the repository, and a list counts it.
func (x *Mirror) Entries() []CopyEntry {
	out := make([]CopyEntry, 0, len(x.m.Entries))
	for rel, e := range x.m.Entries {
		out = append(out, CopyEntry{Path: rel, Mode: e.Dst.Mode, Size: e.Dst.Size, Mtime: e.Dst.Mtime, Link: e.Link})
	}
	for dir, names := range x.excluded {
		if e := x.m.Entries[dir]; dir != "" && (e == nil || kind(e.Dst.Mode) != unix.S_IFDIR) {
			continue // gone since
		}
		for name, isDir := range names {
			e := CopyEntry{Path: join(dir, name), Mode: unix.S_IFREG | 0o600, Excluded: true}
			if isDir {
				e.Mode = unix.S_IFDIR | 0o700
			}
			out = append(out, e)
		}
	}
	sortEntries(out)
	return out
}

// sortEntries sorts by path, component by component: "a/b" before "a-b",
// so that every directory comes right before what it holds.
func sortEntries(es []CopyEntry) {
	sort.Slice(es, func(i, j int) bool {
		return strings.ReplaceAll(es[i].Path, "/", "\x00") < strings.ReplaceAll(es[j].Path, "/", "\x00")
	})
}

// ReadCopy appends the content of the copy's regular file rel to buf: the
// file the copy holds now, opened without following a link, which must
// still be the size the record says (nothing but the mirror writes the
// copy in copy mode; a mismatch is an error, never a short push).
func (x *Mirror) ReadCopy(rel string, size int64, buf []byte) ([]byte, error) {
	dir, name := splitRel(rel)
	dfd, err := x.openTreeDir(dir)
	if err != nil {
		return buf, fmt.Errorf("the copy of %s: %w", rel, err)
	}
	defer unix.Close(dfd)
	fd, err := openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return buf, fmt.Errorf("the copy of %s: %w", rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || kind(st.Mode) != unix.S_IFREG || st.Size != size {
		return buf, fmt.Errorf("the copy of %s changed under the push", rel)
	}
	start := len(buf)
	buf = append(buf, make([]byte, size)...)
	for off := int64(0); off < size; {
		n, err := unix.Pread(fd, buf[start+int(off):], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return buf[:start], fmt.Errorf("the copy of %s: reading: %v", rel, err)
		}
		off += int64(n)
	}
	return buf, nil
}

// Manifest lists the workspace as a replica: every regular file, directory
// and symbolic link under the root, sorted by path, never following a
// link. Other objects are listed too (their kind makes the host remove
// them). It applies no rule: a replica holds only what the host pushed.
func (w *Workspace) Manifest() ([]CopyEntry, error) {
	var out []CopyEntry
	var walk func(fd int, rel string) error
	walk = func(fd int, rel string) error {
		names, err := readNames(fd)
		if err != nil {
			return err
		}
		for _, name := range names {
			r := join(rel, name)
			var st unix.Stat_t
			if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue
			}
			e := CopyEntry{Path: r, Mode: st.Mode, Size: st.Size, Mtime: st.Mtim.Nano()}
			switch kind(st.Mode) {
			case unix.S_IFLNK:
				e.Size, e.Mtime = 0, 0
				if e.Link, err = readlinkAt(fd, name); err != nil {
					continue
				}
			case unix.S_IFDIR:
				e.Size, e.Mtime = 0, 0
			}
			out = append(out, e)
			if kind(st.Mode) == unix.S_IFDIR {
				sub, err := openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
				if err != nil {
					continue
				}
				err = walk(sub, r)
				unix.Close(sub)
				if err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(w.rootFD, ""); err != nil {
		return nil, err
	}
	sortEntries(out)
	return out, nil
}

// Unpack applies a push to the workspace as a replica: it removes the
// paths in remove (and everything under them), then makes each entry of
// put, in order: directories, symbolic links, and regular files whose
// content is the next Size bytes of body. Every path is reached from the root without following
// a link, and a file is replaced by a rename, so a reader of the replica
// sees the old file or the new one.
func (w *Workspace) Unpack(remove []string, put []CopyEntry, body []byte) error {
	for _, rel := range remove {
		if err := checkCopyPath(rel); err != nil {
			return err
		}
		dir, name := splitRel(rel)
		if fd, err := w.openReplicaDir(dir); err == nil {
			removeAllAt(fd, name)
			unix.Close(fd)
		}
	}
	for _, e := range put {
		if err := checkCopyPath(e.Path); err != nil {
			return err
		}
		var content []byte
		if e.IsFile() {
			if e.Size < 0 || e.Size > int64(len(body)) {
				return Errorf(CodeInternal, "agent: the push's body ends inside %s", e.Path)
			}
			content, body = body[:e.Size], body[e.Size:]
		}
		if err := w.unpackOne(e, content); err != nil {
			return Errorf(CodeSandboxError, "agent: unpacking %s: %v", e.Path, err)
		}
	}
	if len(body) != 0 {
		return Errorf(CodeInternal, "agent: %d bytes of the push's body left over", len(body))
	}
	return nil
}

// umask is the process's, read once (setting it is the only way to read it).
var umask = func() uint32 {
	m := unix.Umask(0o022)
	unix.Umask(m)
	return uint32(m)
}()

// checkCopyPath refuses a path that is not a clean relative path.
func checkCopyPath(rel string) error {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.Contains(rel, "\x00") {
		return Errorf(CodeInternal, "agent: bad path %q in a push", rel)
	}
	for _, c := range strings.Split(rel, "/") {
		if c == "" || c == "." || c == ".." {
			return Errorf(CodeInternal, "agent: bad path %q in a push", rel)
		}
	}
	return nil
}

func (w *Workspace) openReplicaDir(rel string) (int, error) {
	fd, err := dupFD(w.rootFD)
	if err != nil {
		return -1, err
	}
	for _, c := range components(rel) {
		next, err := openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

func (w *Workspace) unpackOne(e CopyEntry, content []byte) error {
	dir, name := splitRel(e.Path)
	dfd, err := w.openReplicaDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	exists := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	switch {
	case e.IsDir():
		if exists && kind(st.Mode) == unix.S_IFDIR {
			return nil
		}
		if exists {
			removeAllAt(dfd, name)
		}
		return unix.Mkdirat(dfd, name, 0o755)
	case e.IsLink():
		if exists {
			removeAllAt(dfd, name)
		}
		return unix.Symlinkat(e.Link, dfd, name)
	case e.IsFile():
		// Made under a temporary name and renamed, so that a reader sees the
		// old file or the new one. Each system call here costs: a file's
		// creation is most of a first push.
		tmp := ".llm-runtime-push.tmp"
		perm := e.Mode & 0o777
		fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err == unix.EEXIST { // left by a push that was cut short
			unix.Unlinkat(dfd, tmp, 0)
			fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		}
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), tmp)
		_, err = f.Write(content)
		if err == nil && perm&^umask != perm {
			err = f.Chmod(os.FileMode(perm))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			ts := []unix.Timespec{unix.NsecToTimespec(e.Mtime), unix.NsecToTimespec(e.Mtime)}
			err = unix.UtimesNanoAt(dfd, tmp, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err == nil {
			if err = unix.Renameat(dfd, tmp, dfd, name); err != nil && exists {
				removeAllAt(dfd, name) // a directory of that name
				err = unix.Renameat(dfd, tmp, dfd, name)
			}
		}
		if err != nil {
			unix.Unlinkat(dfd, tmp, 0)
		}
		return err
	}
	return fmt.Errorf("cannot make an object of mode %#o", e.Mode)
}

// Owned reports whether the workspace's root belongs to this process's
// user, who can then write the replica (a new volume's root is root's).
func (w *Workspace) Owned() bool {
	var st unix.Stat_t
	return unix.Fstat(w.rootFD, &st) == nil && int(st.Uid) == os.Getuid()
}
