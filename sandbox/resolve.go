package sandbox

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"unicode/utf8"
)

const (
	maxPathLen  = 4096
	maxNameLen  = 255
	maxSymlinks = 40
)

// checkPath refuses paths that are never acceptable, before any file system
// access: empty, absolute, too long, or holding control characters.
func checkPath(p string) error {
	switch {
	case strings.TrimSpace(p) == "":
		return Errorf(CodeInvalidPath, "empty path; give a path relative to the repository root")
	case len(p) > maxPathLen:
		return Errorf(CodeInvalidPath, "path is %d bytes long; the limit is %d", len(p), maxPathLen)
	case strings.HasPrefix(p, "/"):
		return Errorf(CodePathSecurity, "absolute path %q; give a path relative to the repository root", p)
	case !utf8.ValidString(p):
		return Errorf(CodePathSecurity, "path is not valid UTF-8")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return Errorf(CodePathSecurity, "path holds control character %U", r)
		}
	}
	return nil
}

// resolve turns a path as the model wrote it into the cleaned path of the
// file it names, relative to the root, following symlinks one component at
// a time as the kernel would, and refusing the moment anything points
// outside the root: a ".." above it, or an absolute symlink target. It also
// returns the path cleaned lexically (before following links), which the
// exclusion check looks at too. Components that do not exist yet are kept
// as they are, so a path for a new file resolves.
//
// The result is only advisory for safety: every access still goes through
// the os.Root, which refuses to leave the directory whatever happens on disk
// between the resolution and the access.
func resolve(root *os.Root, p string) (resolved, lexical string, err error) {
	if err := checkPath(p); err != nil {
		return "", "", err
	}
	lexical = path.Clean(p)
	if lexical == ".." || strings.HasPrefix(lexical, "../") {
		return "", "", Errorf(CodePathSecurity, "path %q leaves the repository", p)
	}
	var stack []string
	todo := strings.Split(p, "/")
	links := 0
	missing := false // a component did not exist: the rest is taken as written
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", "", Errorf(CodePathSecurity, "path %q leaves the repository", p)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if len(c) > maxNameLen {
			return "", "", Errorf(CodeInvalidPath, "a component of the path is %d bytes long; the limit is %d", len(c), maxNameLen)
		}
		stack = append(stack, c)
		if missing {
			continue
		}
		cur := strings.Join(stack, "/")
		fi, err := root.Lstat(cur)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				missing = true
				continue
			}
			if errors.Is(err, syscall.ENOTDIR) {
				return "", "", Errorf(CodeFileNotFound, "%q is not a directory", path.Dir(cur))
			}
			return "", "", osError(err, p)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		links++
		if links > maxSymlinks {
			return "", "", Errorf(CodePathSecurity, "too many symbolic links in %q", p)
		}
		target, err := root.Readlink(cur)
		if err != nil {
			return "", "", osError(err, p)
		}
		if strings.HasPrefix(target, "/") {
			return "", "", Errorf(CodePathSecurity, "%q is a symbolic link to an absolute path, outside the repository", cur)
		}
		stack = stack[:len(stack)-1]
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(stack) == 0 {
		return ".", lexical, nil
	}
	return strings.Join(stack, "/"), lexical, nil
}

// osError maps an error of the operating system to an *Error.
func osError(err error, p string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{Code: CodeFileNotFound, Message: "no such file: " + p, Err: err}
	case errors.Is(err, syscall.ENOTDIR):
		return &Error{Code: CodeFileNotFound, Message: "a parent of " + p + " is not a directory", Err: err}
	case errors.Is(err, syscall.EISDIR):
		return &Error{Code: CodeIsDirectory, Message: p + " is a directory", Err: err}
	case errors.Is(err, syscall.ENAMETOOLONG):
		return &Error{Code: CodeInvalidPath, Message: "path too long: " + p, Err: err}
	case errors.Is(err, syscall.ELOOP), isEscape(err):
		return &Error{Code: CodePathSecurity, Message: "path " + p + " leaves the repository", Err: err}
	case errors.Is(err, fs.ErrPermission):
		return &Error{Code: CodePermission, Message: "permission denied: " + p, Err: err}
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return &Error{Code: CodeResourceLimit, Message: "no space left on the device for " + p, Err: err}
	case errors.Is(err, syscall.EROFS):
		return &Error{Code: CodePermission, Message: "the repository is read-only here: " + p, Err: err}
	}
	return &Error{Code: CodeIO, Message: p + ": " + err.Error(), Err: err}
}

// isEscape reports the error os.Root returns when a path would leave it. The
// os package does not export it, so it is recognised by its text.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}
