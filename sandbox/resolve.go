package sandbox

import (
	"errors"
	"io/fs"
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
	case errors.Is(err, syscall.ELOOP):
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
