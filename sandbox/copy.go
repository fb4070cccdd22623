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
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// CopyEntry is one object of a copy: a regular file, a directory or a
// symbolic link (a replica's list may hold other kinds, which a command
// made there), by its path, kind and mode (st_mode), size, modification
// and change times (ns) and link target. An Excluded entry is the empty
// stand-in of a name the rules exclude (Mirror.Entries). A Sparse file is
// one of holes (over 1 MiB, less than half of it on disk): made again, it
// gets its size and no content.
type CopyEntry struct {
	Path     string `json:"p"`
	Mode     uint32 `json:"m"`
	Size     int64  `json:"s,omitempty"`
	Mtime    int64  `json:"t,omitempty"`
	Ctime    int64  `json:"c,omitempty"`
	Link     string `json:"l,omitempty"`
	Excluded bool   `json:"x,omitempty"`
	Sparse   bool   `json:"h,omitempty"`
}

// copyEntryJSON is CopyEntry on the wire: a path or link target that is
// not valid UTF-8 (a name is any bytes but / and NUL) goes as bytes
// (base64), since a JSON string would replace what is not UTF-8.
type copyEntryJSON struct {
	Path     string `json:"p,omitempty"`
	PathB    []byte `json:"pb,omitempty"`
	Mode     uint32 `json:"m"`
	Size     int64  `json:"s,omitempty"`
	Mtime    int64  `json:"t,omitempty"`
	Ctime    int64  `json:"c,omitempty"`
	Link     string `json:"l,omitempty"`
	LinkB    []byte `json:"lb,omitempty"`
	Excluded bool   `json:"x,omitempty"`
	Sparse   bool   `json:"h,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (e CopyEntry) MarshalJSON() ([]byte, error) {
	j := copyEntryJSON{Path: e.Path, Mode: e.Mode, Size: e.Size, Mtime: e.Mtime, Ctime: e.Ctime, Link: e.Link, Excluded: e.Excluded, Sparse: e.Sparse}
	if !utf8.ValidString(e.Path) {
		j.Path, j.PathB = "", []byte(e.Path)
	}
	if !utf8.ValidString(e.Link) {
		j.Link, j.LinkB = "", []byte(e.Link)
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler.
func (e *CopyEntry) UnmarshalJSON(b []byte) error {
	var j copyEntryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = CopyEntry{Path: j.Path, Mode: j.Mode, Size: j.Size, Mtime: j.Mtime, Ctime: j.Ctime, Link: j.Link, Excluded: j.Excluded, Sparse: j.Sparse}
	if j.PathB != nil {
		e.Path = string(j.PathB)
	}
	if j.LinkB != nil {
		e.Link = string(j.LinkB)
	}
	return nil
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
		return e.Size == r.Size && e.Mode&0o7777 == r.Mode&0o7777 && e.Mtime == r.Mtime && e.Sparse == r.Sparse
	case e.IsLink():
		return e.Link == r.Link
	}
	return true
}

// Untouched reports whether a replica's entry r is still the object e
// recorded when it was made: Same, and for a file the same change time,
// which no process can set back (a command can set a modification time).
func (e CopyEntry) Untouched(r CopyEntry) bool {
	return e.Same(r) && (!e.IsFile() || e.Ctime == r.Ctime)
}

// Changes returns how many times the copy has changed since the mirror was
// opened: a Sync that copied or removed nothing leaves it as it was.
func (x *Mirror) Changes() uint64 { return x.changes.Load() }

// Entries returns the copy's objects, sorted by path (so a directory comes
// before what it holds), as the record knows them: what the last Sync
// made. With standIns, each name the rules left out has an empty stand-in
// (Excluded), a directory or a file: the rules refuse it by its name in the
// replica as in the repository, and a list counts it. (A replica that
// commands run on has none: a command would see the names.)
func (x *Mirror) Entries(standIns bool) []CopyEntry {
	out := make([]CopyEntry, 0, len(x.m.Entries))
	for rel, e := range x.m.Entries {
		out = append(out, CopyEntry{Path: rel, Mode: e.Dst.Mode, Size: e.Dst.Size, Mtime: e.Dst.Mtime, Link: e.Link})
	}
	for dir, names := range x.excluded {
		if !standIns {
			break
		}
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
			e, err := entryAt(fd, name, r, &st)
			if err != nil {
				continue
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

// entryAt describes the object name of the directory fd, whose lstat is
// st, as a CopyEntry of path rel.
func entryAt(fd int, name, rel string, st *unix.Stat_t) (CopyEntry, error) {
	e := CopyEntry{Path: rel, Mode: st.Mode, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
	switch kind(st.Mode) {
	case unix.S_IFREG:
		e.Sparse = st.Size > sparseFloor && st.Blocks*512 < st.Size/2
	case unix.S_IFLNK:
		e.Size, e.Mtime, e.Ctime = 0, 0, 0
		link, err := readlinkAt(fd, name)
		if err != nil {
			return e, err
		}
		e.Link = link
	default:
		e.Size, e.Mtime, e.Ctime = 0, 0, 0
	}
	return e, nil
}

// Unpack applies a push to the workspace as a replica: it removes the
// paths in remove (and everything under them), then makes each entry of
// put, in order: directories, symbolic links, FIFOs, and regular files
// whose content is the next Size bytes of body (none for a Sparse one,
// which gets its size alone), with their permissions, set-id bits
// included, and modification times. Every path is reached from the root
// without following a link, and a file is replaced by a rename, so a
// reader of the replica sees the old file or the new one. It returns each
// object made as it is now, change time included.
func (w *Workspace) Unpack(remove []string, put []CopyEntry, body []byte) ([]CopyEntry, error) {
	// Each path is reached from the directory it shares with the last:
	// in the order of a push (sorted), its opens are in proportion to its
	// size, whatever its depth.
	c := newCursor(w.rootFD, w.rootID, enterCopy)
	defer c.close()
	for _, rel := range remove {
		if err := checkCopyPath(rel); err != nil {
			return nil, err
		}
		dir, name := splitRel(rel)
		if d, err := c.at(dir); err == nil {
			removeAllAt(d.fd, name)
		}
	}
	made := make([]CopyEntry, 0, len(put))
	for _, e := range put {
		if err := checkCopyPath(e.Path); err != nil {
			return nil, err
		}
		var content []byte
		if e.IsFile() && !e.Sparse {
			if e.Size < 0 || e.Size > int64(len(body)) {
				return nil, Errorf(CodeInternal, "agent: the push's body ends inside %s", e.Path)
			}
			content, body = body[:e.Size], body[e.Size:]
		}
		m, err := unpackOne(c, e, content)
		if err != nil {
			return nil, Errorf(CodeSandboxError, "agent: unpacking %s: %v", e.Path, err)
		}
		made = append(made, m)
	}
	if len(body) != 0 {
		return nil, Errorf(CodeInternal, "agent: %d bytes of the push's body left over", len(body))
	}
	// The host tells what a command changed by change times: none it makes
	// may equal those of what was just made (settle).
	var newest int64
	for _, m := range made {
		newest = max(newest, m.Ctime)
	}
	settle(newest)
	return made, nil
}

// Fetch returns the content of the regular files at paths, one after the
// other, each opened from the root without following a link, and each as
// it was read (its stamps taken on the descriptor read). A path that is no
// longer a regular file is returned with the kind it has now and no
// content. At most max bytes are read in all.
func (w *Workspace) Fetch(paths []string, max int64) ([]CopyEntry, []byte, error) {
	var out []CopyEntry
	var body []byte
	c := newCursor(w.rootFD, w.rootID, enterCopy)
	defer c.close()
	for _, rel := range paths {
		if err := checkCopyPath(rel); err != nil {
			return nil, nil, err
		}
		dir, name := splitRel(rel)
		d, err := c.at(dir)
		if err != nil {
			continue // gone
		}
		var st unix.Stat_t
		if unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		if kind(st.Mode) != unix.S_IFREG {
			if e, err := entryAt(d.fd, name, rel, &st); err == nil {
				out = append(out, e)
			}
			continue
		}
		fd, err := openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
		if err != nil {
			continue
		}
		var fst unix.Stat_t
		if unix.Fstat(fd, &fst) != nil || kind(fst.Mode) != unix.S_IFREG {
			unix.Close(fd)
			continue
		}
		e, _ := entryAt(-1, name, rel, &fst)
		if !e.Sparse {
			if int64(len(body))+fst.Size > max {
				unix.Close(fd)
				return nil, nil, Errorf(CodeResourceLimit, "agent: the files fetched come to more than %s", FormatSize(max))
			}
			start := len(body)
			body = append(body, make([]byte, fst.Size)...)
			n, err := readFull(fd, body[start:])
			if err != nil || int64(n) != fst.Size {
				body = body[:start]
				unix.Close(fd)
				continue // changed while read: left out, as a gone file
			}
		}
		unix.Close(fd)
		out = append(out, e)
	}
	return out, body, nil
}

// readFull preads buf from fd from its start.
func readFull(fd int, buf []byte) (int, error) {
	off := 0
	for off < len(buf) {
		n, err := unix.Pread(fd, buf[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return off, err
		}
		if n == 0 {
			break
		}
		off += n
	}
	return off, nil
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

// openDirBelow opens the directory rel below the directory root, one
// component at a time, never following a link on the way.
func openDirBelow(root int, rel string) (int, error) {
	fd, err := openat(root, ".", unix.O_PATH|unix.O_DIRECTORY)
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

func unpackOne(c *cursor, e CopyEntry, content []byte) (CopyEntry, error) {
	dir, name := splitRel(e.Path)
	d, err := c.at(dir)
	if err != nil {
		return e, err
	}
	if err := makeAt(d.fd, name, e, content); err != nil {
		return e, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return e, err
	}
	m, err := entryAt(d.fd, name, e.Path, &st)
	m.Excluded = e.Excluded
	return m, err
}

func makeAt(dfd int, name string, e CopyEntry, content []byte) error {
	var st unix.Stat_t
	exists := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	switch kind(e.Mode) {
	case unix.S_IFDIR:
		if exists && kind(st.Mode) == unix.S_IFDIR {
			return nil
		}
		if exists {
			removeAllAt(dfd, name)
		}
		return unix.Mkdirat(dfd, name, 0o755)
	case unix.S_IFLNK:
		if exists {
			removeAllAt(dfd, name)
		}
		return unix.Symlinkat(e.Link, dfd, name)
	case unix.S_IFIFO:
		if exists {
			removeAllAt(dfd, name)
		}
		return unix.Mkfifoat(dfd, name, e.Mode&0o777)
	case unix.S_IFREG:
		// Made under a temporary name and renamed, so that a reader sees the
		// old file or the new one. Each system call here costs: a file's
		// creation is most of a first push.
		tmp := ".llm-runtime-push.tmp"
		perm := e.Mode & 0o7777
		fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm&0o777)
		if err == unix.EEXIST { // left by a push that was cut short
			unix.Unlinkat(dfd, tmp, 0)
			fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm&0o777)
		}
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), tmp)
		if e.Sparse {
			err = f.Truncate(e.Size)
		} else {
			_, err = f.Write(content)
		}
		if err == nil && (perm&umask != 0 || perm&0o7000 != 0) { // what the open's mode could not set
			err = unix.Fchmod(fd, perm)
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

// Owned reports whether the workspace's root is this process's to write
// the replica in, and no other user's (a new Docker volume's root is
// root's, 0755: not yet). It is when the root is
//   - this process's user's own; or
//   - root's, in a group of this process's, group-writable and setgid:
//     a pod's emptyDir as a real kubelet makes it with the pod's fsGroup
//     (0:fsGroup, mode 2777). Only root, who could anyway, can change
//     its mode or owner, and every file made in it is the group's.
//
// Either way no other user (not root, not the process's) owns it, who
// could otherwise take it back. An emptyDir is also writable by others
// (its mode's last 7): in a pod, the others are the pod's own containers,
// which run as its user.
func (w *Workspace) Owned() bool {
	var st unix.Stat_t
	if unix.Fstat(w.rootFD, &st) != nil {
		return false
	}
	return ownedBy(st, os.Getuid(), os.Getgid(), supplementary())
}

// ownedBy is Owned's rule for a root of stat st and a process of uid,
// gid and supplementary groups.
func ownedBy(st unix.Stat_t, uid, gid int, groups []int) bool {
	if int(st.Uid) == uid {
		return true
	}
	inGroup := int(st.Gid) == gid || slices.Contains(groups, int(st.Gid))
	return st.Uid == 0 && inGroup && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Mode&unix.S_IWGRP != 0 && st.Mode&unix.S_IXGRP != 0 && st.Mode&unix.S_ISGID != 0
}

// supplementary is this process's supplementary groups (a pod's fsGroup
// is one), or none if they cannot be read.
func supplementary() []int {
	g, _ := os.Getgroups()
	return g
}
