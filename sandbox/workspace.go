package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/parser"
)

// binarySniff is how much of a file is looked at for a NUL byte, as git does.
const binarySniff = 8000

// Workspace applies the sandbox rules to the directory tree under a root
// directory, on file descriptors (see walk.go). It is safe for concurrent
// use.
type Workspace struct {
	rootFD int // O_PATH, the base of every walk
	rootID FileID
	limits Limits
	excl   *excluder
	tools  *excluder         // Limits.HostToolFiles
	prot   map[FileID]string // Limits.Protected, by identity
}

// OpenWorkspace opens dir as a workspace with the given limits.
func OpenWorkspace(dir string, limits Limits) (*Workspace, error) {
	limits = limits.withDefaults()
	excl, err := newExcluder(limits.Excluded)
	if err != nil {
		return nil, err
	}
	tools, err := newExcluder(limits.HostToolFiles)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	w := &Workspace{rootFD: fd, rootID: idOf(&st), limits: limits, excl: excl, tools: tools, prot: map[FileID]string{}}
	for _, id := range limits.Protected {
		w.prot[FileID{Dev: id.Dev, Ino: id.Ino}] = cmp.Or(id.What, "protected")
	}
	return w, nil
}

// Close closes the root.
func (w *Workspace) Close() error { return unix.Close(w.rootFD) }

// Limits returns the limits in force, defaults filled in.
func (w *Workspace) Limits() Limits { return w.limits }

// Open reads the text file at p.
func (w *Workspace) Open(p string) (*File, error) { return w.OpenWith(p, Options{}) }

// expected refuses an operation on t if it does not touch what o.Expect
// approved.
func expected(t *target, o Options) error {
	if o.Expect != "" && t.rel != o.Expect {
		return Errorf(CodePathSecurity, "%s changed while it was decided on: it named %s, it now names %s; nothing was done", o.Expect, o.Expect, t.rel)
	}
	return nil
}

// OpenWith reads the text file at p, with the options o.
func (w *Workspace) OpenWith(p string, o Options) (*File, error) {
	t, err := w.openRegular(p, o)
	if err != nil {
		return nil, err
	}
	defer t.close()
	rel := t.rel
	if o.Lines != nil {
		return w.readLines(t, *o.Lines)
	}
	if t.st.Size > w.limits.MaxFileSize {
		return nil, w.tooBig(rel, t.st.Size)
	}
	content, err := readAll(t.fd, w.limits.MaxFileSize+1, t.st.Size)
	if err != nil {
		return nil, osError(err, rel)
	}
	if int64(len(content)) > w.limits.MaxFileSize { // it grew while we read
		return nil, w.tooBig(rel, int64(len(content)))
	}
	if isBinary(content) {
		return nil, Errorf(CodeBinaryFile, "%s is a binary file", rel)
	}
	return &File{Path: rel, Content: content}, nil
}

// openRegular walks to the regular file at p and opens it for reading,
// with the options o; the caller closes the target.
func (w *Workspace) openRegular(p string, o Options) (*target, error) {
	t, err := w.walk(p, walkOpen, false)
	if err != nil {
		return nil, err
	}
	if err := expected(t, o); err != nil {
		t.close()
		return nil, err
	}
	switch t.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return t, nil
	case unix.S_IFDIR:
		t.close()
		return nil, Errorf(CodeIsDirectory, "%s is a directory; <list %s> shows what is in it", t.rel, t.rel)
	}
	t.close()
	return nil, Errorf(CodeNotRegularFile, "%s is not a regular file (%s)", t.rel, fileType(t.st.Mode))
}

// readAll reads fd to its end, or to max bytes; size is what fstat said,
// a hint for the buffer.
func readAll(fd int, max, size int64) ([]byte, error) {
	return readInto(fd, make([]byte, 0, min(max, size+1)), max)
}

// Resolve returns the repository-relative path p names, links, ".", ".."
// and "//" resolved, with the rules of open and write. Directories that do
// not exist yet are taken as written.
func (w *Workspace) Resolve(p string) (string, error) { return w.ResolveWith(p, Options{}) }

// ResolveWith is Resolve with the options o: with o.Entry, a link in the
// last component is not followed (what a delete or a move touches).
func (w *Workspace) ResolveWith(p string, o Options) (string, error) {
	op := walkResolve
	if o.Entry {
		op = walkResolveEntry
	}
	t, err := w.walk(p, op, false)
	if err != nil {
		return "", err
	}
	defer t.close()
	return t.rel, nil
}

// Stat describes the file or directory at p, after the same resolution and
// exclusion rules as Open.
func (w *Workspace) Stat(p string) (*Info, error) {
	t, err := w.walk(p, walkLocate, false)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if !t.found {
		return nil, Errorf(CodeFileNotFound, "no such file: %s", p)
	}
	mode := fs.FileMode(t.st.Mode & 0o777)
	switch t.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFREG:
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	default:
		mode |= fs.ModeDevice
	}
	return &Info{Path: t.rel, IsDir: mode.IsDir(), Size: t.st.Size, Mode: mode}, nil
}

func fileType(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a named pipe"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return "not a regular file"
}

func (w *Workspace) tooBig(rel string, size int64) error {
	return Errorf(CodeResourceLimit, "%s is %s; the limit (security.max_file_size) is %s", rel, FormatSize(size), FormatSize(w.limits.MaxFileSize))
}

func isBinary(b []byte) bool { return bytes.IndexByte(b[:min(len(b), binarySniff)], 0) >= 0 }

// ConfigName is the name of llm-runtime's configuration file in a
// repository. A file of that name is never written, at any depth: it would
// be the configuration of a later run with --root there.
const ConfigName = "llm-runtime.config.yaml"

// mcpLaunchFile says which MCP client's launch configuration rel is, at
// any depth and in any case (the folder a client opens can be any
// directory of the repository): the files the MCP guide tells users to put
// llm-runtime's launch line in, and Claude Code's settings, which can
// approve servers and commands. "" if it is none.
func mcpLaunchFile(rel string) string {
	name := path.Base(rel)
	dir := strings.ToLower(path.Base(path.Dir(rel)))
	lname := strings.ToLower(name)
	switch {
	case lname == ".mcp.json":
		return "Claude Code's project MCP configuration"
	case dir == ".vscode" && lname == "mcp.json":
		return "VS Code's MCP configuration"
	case dir == ".cursor" && lname == "mcp.json":
		return "Cursor's MCP configuration"
	case dir == ".claude" && strings.HasPrefix(lname, "settings") && strings.HasSuffix(lname, ".json"):
		return "Claude Code's settings"
	}
	return ""
}

// HostTool returns the pattern of Limits.HostToolFiles that rel (cleaned,
// relative to the root) matches, or "".
func (w *Workspace) HostTool(rel string) string {
	pat, _ := w.tools.match(rel)
	return pat
}

// ownName refuses rel when its name makes it a file of llm-runtime's own,
// at any depth and in any case: the configuration (ConfigName), or an MCP
// client's launch configuration (mcpLaunchFile).
func ownName(rel string) error {
	if strings.EqualFold(path.Base(rel), ConfigName) {
		return Errorf(CodePathSecurity, "%s is llm-runtime's own configuration and cannot be written from the sandbox", rel)
	}
	if what := mcpLaunchFile(rel); what != "" {
		return Errorf(CodePathSecurity, "%s is %s, which can start llm-runtime with other flags, and cannot be written from the sandbox", rel, what)
	}
	return nil
}

// refusedAsWritten refuses a write to p as written (cleaned), by the
// rules on paths and names: a refused write then makes no directory on
// its way. It decides nothing: the walk checks what p resolves to.
func (w *Workspace) refusedAsWritten(p string) error {
	rel := path.Clean(strings.TrimLeft(p, "/"))
	if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil // the walk's to refuse
	}
	if err := ownName(rel); err != nil {
		return err
	}
	return w.guardPath(rel)
}

// hostToolDenied refuses a write at rel, with Limits.HostToolFilesDeny,
// when it is a file of Limits.HostToolFiles or a directory of one.
func (w *Workspace) hostToolDenied(rel string) error {
	if !w.limits.HostToolFilesDeny {
		return nil
	}
	if pat := w.HostTool(rel); pat != "" {
		return Errorf(CodePathSecurity, "%s is a file tools on the host run or obey (security.host_tool_files: %s), and security.host_tool_files_mode is deny", rel, pat)
	}
	return nil
}

// guardPath refuses a write at rel, or a directory created there, if rel
// is a path of Limits.WriteProtected or lies under one.
func (w *Workspace) guardPath(rel string) error {
	if err := w.hostToolDenied(rel); err != nil {
		return err
	}
	for _, q := range w.limits.WriteProtected {
		q = path.Clean(q)
		if rel == q || strings.HasPrefix(rel, q+"/") || q == "." {
			return Errorf(CodePathSecurity, "%s is llm-runtime's own (%s) and cannot be written from the sandbox", rel, q)
		}
	}
	return nil
}

// guardDir refuses a write into the directory rel, whose identity is id,
// if it is protected by path or by identity.
func (w *Workspace) guardDir(rel string, id FileID) error {
	if err := w.guardPath(rel); err != nil {
		return err
	}
	if what, ok := w.prot[id]; ok {
		return Errorf(CodePathSecurity, "%s is %s, which cannot be written from the sandbox", rel, what)
	}
	return nil
}

// writeProtected refuses a write to t: a file of llm-runtime's own by its
// name (ownName), a path guardPath refuses (Limits.WriteProtected, and
// with Limits.HostToolFilesDeny Limits.HostToolFiles), or a file or
// directory (on the way or the target) whose identity is protected.
func (w *Workspace) writeProtected(t *target) error {
	if err := ownName(t.rel); err != nil {
		return err
	}
	if err := w.guardPath(t.rel); err != nil {
		return err
	}
	for _, id := range t.ids {
		if what, ok := w.prot[id]; ok {
			return Errorf(CodePathSecurity, "%s is inside %s, which cannot be written from the sandbox", t.rel, what)
		}
	}
	if t.found {
		if what, ok := w.prot[idOf(&t.st)]; ok {
			return Errorf(CodePathSecurity, "%s is %s and cannot be written from the sandbox", t.rel, what)
		}
	}
	return nil
}

// Write replaces the file at p with content, atomically: a temporary file
// in the checked directory, then renameat over the checked name there.
func (w *Workspace) Write(p string, content []byte) (*WriteResult, error) {
	return w.WriteWith(p, content, Options{})
}

// WriteWith is Write with the options o.
func (w *Workspace) WriteWith(p string, content []byte, o Options) (*WriteResult, error) {
	if int64(len(content)) > w.limits.MaxWriteSize {
		return nil, Errorf(CodeResourceLimit, "content is %s; the limit (security.max_write_size) is %s; nothing was written", FormatSize(int64(len(content))), FormatSize(w.limits.MaxWriteSize))
	}
	// Refused before a directory on its way is made, as written; the walk
	// checks again what the path resolves to.
	if err := w.refusedAsWritten(p); err != nil {
		return nil, err
	}
	t, err := w.walk(p, walkLocate, true)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if t.name == "" {
		if t.rel == "." {
			return nil, Errorf(CodeIsDirectory, "the repository root is a directory")
		}
		return nil, Errorf(CodeIsDirectory, "%s is a directory", t.rel)
	}
	if err := expected(t, o); err != nil {
		return nil, err
	}
	if err := w.writeProtected(t); err != nil {
		return nil, err
	}
	mode := uint32(0o644)
	if t.found {
		switch t.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			return nil, Errorf(CodeIsDirectory, "%s is a directory", t.rel)
		case unix.S_IFREG:
			mode = keptMode(&t.st)
		default:
			return nil, Errorf(CodeNotRegularFile, "%s is not a regular file (%s)", t.rel, fileType(t.st.Mode))
		}
	}
	err = recordStaged(o, func() ([]PathChange, error) {
		before, err := stateOf(t)
		return append(madeDirs(t), PathChange{Path: t.rel, Before: before, After: PathState{Kind: StateFile, Mode: mode, Size: int64(len(content)), Data: content}}), err
	}, func() (*staged, error) { return stage(t.top(), t.name, t.rel, bytes.NewReader(content), mode) })
	if err != nil {
		return nil, err
	}
	return &WriteResult{Path: t.rel, Created: !t.found, Bytes: int64(len(content)), HostTool: w.HostTool(t.rel)}, nil
}

// keptMode is the mode a file keeps when a write or an edit replaces it:
// its own, without the setuid and setgid bits.
func keptMode(st *unix.Stat_t) uint32 { return keptBits(st.Mode) }

// keptBits are the bits of mode a file written gets: its permission and
// sticky bits, never setuid or setgid.
func keptBits(mode uint32) uint32 { return mode & 0o7777 &^ (unix.S_ISUID | unix.S_ISGID) }

// replace writes content to a new temporary file in the directory dirfd,
// syncs it, renames it over name there and syncs the directory. On failure
// the temporary file is removed and the old file, if any, is as it was.
func (w *Workspace) replace(dirfd int, name, rel string, content []byte, mode uint32) error {
	return w.replaceFrom(dirfd, name, rel, bytes.NewReader(content), mode)
}

// replaceFrom is replace with the content read from r.
func (w *Workspace) replaceFrom(dirfd int, name, rel string, r io.Reader, mode uint32) error {
	s, err := stage(dirfd, name, rel, r, mode)
	if err != nil {
		return err
	}
	return s.commit()
}

// staged is a file's new content, written and synced to a temporary file
// beside it, which commit renames into place and discard removes: the
// two halves of replace, between which a recorded change is journaled
// (see recordStaged).
type staged struct {
	dirfd          int
	tmp, name, rel string
}

// stage writes r to a new temporary file in dirfd with mode, and syncs
// it. On failure nothing is left.
func stage(dirfd int, name, rel string, r io.Reader, mode uint32) (_ *staged, err error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := ".llm-runtime-" + hex.EncodeToString(rnd[:]) + ".tmp"
	fd, err := openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW)
	if err != nil {
		return nil, osError(err, rel)
	}
	f := os.NewFile(uintptr(fd), tmp)
	defer func() {
		if err != nil {
			f.Close()
			unix.Unlinkat(dirfd, tmp, 0)
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return nil, osError(err, rel)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return nil, osError(err, rel)
	}
	if err := f.Sync(); err != nil {
		return nil, osError(err, rel)
	}
	if err := f.Close(); err != nil {
		return nil, osError(err, rel)
	}
	return &staged{dirfd: dirfd, tmp: tmp, name: name, rel: rel}, nil
}

// commit renames the staged file over its name and syncs the directory;
// on failure the temporary file is removed and the old file, if any, is
// as it was.
func (s *staged) commit() error {
	if err := unix.Renameat(s.dirfd, s.tmp, s.dirfd, s.name); err != nil {
		s.discard()
		return osError(err, s.rel)
	}
	syncDir(s.dirfd) // dirfd is O_PATH, which fsync refuses (EBADF): the directory is opened for it
	return nil
}

// discard removes the staged file.
func (s *staged) discard() { unix.Unlinkat(s.dirfd, s.tmp, 0) }

// FormatSize prints a byte count for people: "512 bytes", "100 KiB",
// "1.5 MiB", "99.9 MiB".
func FormatSize(n int64) string {
	units := []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}}
	for _, u := range units {
		if n < u.size {
			continue
		}
		if n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
		return fmt.Sprintf("%.1f %s", float64(n)/float64(u.size), u.name)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Local is the sandbox that runs on the host: the Workspace rules on the
// repository directory, with no container boundary. It cannot exec.
type Local struct {
	ws *Workspace
}

// NewLocal returns a Local sandbox on dir.
func NewLocal(dir string, limits Limits) (*Local, error) {
	ws, err := OpenWorkspace(dir, limits)
	if err != nil {
		return nil, err
	}
	return &Local{ws: ws}, nil
}

// Open implements Sandbox.
func (l *Local) Open(ctx context.Context, p string) (*File, error) {
	return l.ws.OpenWith(p, OptionsFrom(ctx))
}

// Write implements Sandbox.
func (l *Local) Write(ctx context.Context, p string, content []byte) (*WriteResult, error) {
	return l.ws.WriteWith(p, content, OptionsFrom(ctx))
}

// Search implements Sandbox.
func (l *Local) Search(ctx context.Context, q parser.Query) (*SearchResult, error) {
	return l.ws.SearchWith(ctx, q, OptionsFrom(ctx))
}

// Resolve implements Sandbox.
func (l *Local) Resolve(ctx context.Context, p string) (string, error) {
	return l.ws.ResolveWith(p, OptionsFrom(ctx))
}

// Delete implements Sandbox.
func (l *Local) Delete(ctx context.Context, p string) (*DeleteResult, error) {
	return l.ws.DeleteWith(p, OptionsFrom(ctx))
}

// Move implements Sandbox.
func (l *Local) Move(ctx context.Context, src, dst string) (*MoveResult, error) {
	return l.ws.MoveWith(src, dst, OptionsFrom(ctx))
}

// Exec implements Sandbox: the local sandbox never runs commands.
func (l *Local) Exec(ctx context.Context, command string) (*ExecResult, error) {
	return nil, Errorf(CodeExecDisabled, "exec is disabled: the local sandbox has no container boundary and cannot run commands")
}

// Close implements Sandbox.
func (l *Local) Close() error { return l.ws.Close() }
