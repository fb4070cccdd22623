package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// binarySniff is how much of a file is looked at for a NUL byte, as git does.
const binarySniff = 8000

// Workspace applies the sandbox rules to the directory tree under an
// os.Root. It is safe for concurrent use.
type Workspace struct {
	root   *os.Root
	limits Limits
	excl   *excluder
}

// OpenWorkspace opens dir as a workspace with the given limits.
func OpenWorkspace(dir string, limits Limits) (*Workspace, error) {
	limits = limits.withDefaults()
	excl, err := newExcluder(limits.Excluded)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Workspace{root: root, limits: limits, excl: excl}, nil
}

// Close closes the root.
func (w *Workspace) Close() error { return w.root.Close() }

// Limits returns the limits in force, defaults filled in.
func (w *Workspace) Limits() Limits { return w.limits }

// locate resolves p and applies the exclusion rules to both the path as
// written and the file it names.
func (w *Workspace) locate(p string) (string, error) {
	resolved, lexical, err := resolve(w.root, p)
	if err != nil {
		return "", err
	}
	for _, q := range []string{lexical, resolved} {
		if pat, ok := w.excl.match(q); ok {
			return "", Errorf(CodePathSecurity, "%s is excluded (security.excluded_paths: %q)", q, pat)
		}
	}
	return resolved, nil
}

// Open reads the text file at p.
func (w *Workspace) Open(p string) (*File, error) {
	rel, err := w.locate(p)
	if err != nil {
		return nil, err
	}
	// O_NONBLOCK: a FIFO swapped in after resolution must not hang the read.
	f, err := w.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, osError(err, rel)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, osError(err, rel)
	}
	switch {
	case fi.IsDir():
		return nil, Errorf(CodeIsDirectory, "%s is a directory; use <search> to find files in it", rel)
	case !fi.Mode().IsRegular():
		return nil, Errorf(CodeNotRegularFile, "%s is not a regular file (%s)", rel, fi.Mode().Type())
	case fi.Size() > w.limits.MaxFileSize:
		return nil, w.tooBig(rel, fi.Size())
	}
	content, err := io.ReadAll(io.LimitReader(f, w.limits.MaxFileSize+1))
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

// Stat describes the file or directory at p, after the same resolution and
// exclusion rules as Open.
func (w *Workspace) Stat(p string) (*Info, error) {
	rel, err := w.locate(p)
	if err != nil {
		return nil, err
	}
	fi, err := w.root.Stat(rel)
	if err != nil {
		return nil, osError(err, rel)
	}
	return &Info{Path: rel, IsDir: fi.IsDir(), Size: fi.Size(), Mode: fi.Mode()}, nil
}

func (w *Workspace) tooBig(rel string, size int64) error {
	return Errorf(CodeResourceLimit, "%s is %s; the limit (security.max_file_size) is %s", rel, FormatSize(size), FormatSize(w.limits.MaxFileSize))
}

func isBinary(b []byte) bool { return bytes.IndexByte(b[:min(len(b), binarySniff)], 0) >= 0 }

// Write replaces the file at p with content, atomically.
func (w *Workspace) Write(p string, content []byte) (*WriteResult, error) {
	if int64(len(content)) > w.limits.MaxWriteSize {
		return nil, Errorf(CodeResourceLimit, "content is %s; the limit (security.max_write_size) is %s; nothing was written", FormatSize(int64(len(content))), FormatSize(w.limits.MaxWriteSize))
	}
	rel, err := w.locate(p)
	if err != nil {
		return nil, err
	}
	if rel == "." {
		return nil, Errorf(CodeIsDirectory, "the repository root is a directory")
	}
	for _, q := range w.limits.WriteProtected {
		if path.Clean(q) == rel {
			return nil, Errorf(CodePathSecurity, "%s is llm-runtime's own configuration and cannot be written from the sandbox", rel)
		}
	}
	dir, name := path.Split(rel)
	if dir == "" {
		dir = "."
	} else {
		dir = path.Clean(dir)
		if err := w.root.MkdirAll(dir, 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return nil, Errorf(CodeInvalidPath, "cannot create directory %s: a file is in the way", dir)
			}
			return nil, osError(err, dir)
		}
	}
	mode := fs.FileMode(0o644)
	created := true
	switch fi, err := w.root.Lstat(rel); {
	case err == nil && fi.IsDir():
		return nil, Errorf(CodeIsDirectory, "%s is a directory", rel)
	case err == nil && !fi.Mode().IsRegular():
		return nil, Errorf(CodeNotRegularFile, "%s is not a regular file (%s)", rel, fi.Mode().Type())
	case err == nil:
		mode, created = fi.Mode().Perm(), false
	case !errors.Is(err, fs.ErrNotExist):
		return nil, osError(err, rel)
	}
	if err := w.replace(dir, name, content, mode); err != nil {
		return nil, err
	}
	return &WriteResult{Path: rel, Created: created, Bytes: int64(len(content))}, nil
}

// replace writes content to a new temporary file in dir, syncs it, renames
// it over name and syncs dir. On failure the temporary file is removed and
// the old file, if any, is as it was.
func (w *Workspace) replace(dir, name string, content []byte, mode fs.FileMode) (err error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := path.Join(dir, ".llm-runtime-"+hex.EncodeToString(rnd[:])+".tmp")
	target := path.Join(dir, name)
	f, err := w.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return osError(err, target)
	}
	defer func() {
		if err != nil {
			f.Close()
			w.root.Remove(tmp)
		}
	}()
	if _, err := f.Write(content); err != nil {
		return osError(err, target)
	}
	if err := f.Chmod(mode); err != nil {
		return osError(err, target)
	}
	if err := f.Sync(); err != nil {
		return osError(err, target)
	}
	if err := f.Close(); err != nil {
		return osError(err, target)
	}
	if err := w.root.Rename(tmp, target); err != nil {
		return osError(err, target)
	}
	if d, err := w.root.Open(dir); err == nil {
		d.Sync() // best effort: some file systems cannot sync a directory
		d.Close()
	}
	return nil
}

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
func (l *Local) Open(ctx context.Context, p string) (*File, error) { return l.ws.Open(p) }

// Write implements Sandbox.
func (l *Local) Write(ctx context.Context, p string, content []byte) (*WriteResult, error) {
	return l.ws.Write(p, content)
}

// Search implements Sandbox.
func (l *Local) Search(ctx context.Context, query string) (*SearchResult, error) {
	return l.ws.Search(ctx, query)
}

// Exec implements Sandbox: the local sandbox never runs commands.
func (l *Local) Exec(ctx context.Context, command string) (*ExecResult, error) {
	return nil, Errorf(CodeExecDisabled, "exec is disabled: the local sandbox has no container boundary and cannot run commands")
}

// Close implements Sandbox.
func (l *Local) Close() error { return l.ws.Close() }
