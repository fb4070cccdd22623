// Package private checks that a directory is this user's alone: one that
// holds a socket or other rendezvous that someone else must not be able to
// plant or replace.
package private

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Dir makes sure dir is a directory (not a link) of this user that no one
// else can write, creating it (and its missing parents) 0700 first when
// create is set and it is missing. A missing directory is an error wrapping os.ErrNotExist.
func Dir(dir string, create bool) error {
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%s is not a directory", dir)
	case int(st.Uid) != os.Getuid():
		return fmt.Errorf("%s belongs to uid %d, not to this user (%d): remove it", dir, st.Uid, os.Getuid())
	case st.Mode&0o022 != 0:
		return fmt.Errorf("%s can be written by others (mode %o): chmod 700 it", dir, st.Mode&0o777)
	}
	return nil
}

// RuntimeDir is llm-runtime's directory for the user's sockets:
// $XDG_RUNTIME_DIR/llm-runtime, or, when that variable is unset (or not an
// absolute path), /tmp/llm-runtime-UID ($TMPDIR, when absolute, for /tmp).
// Anyone can make /tmp/llm-runtime-UID before this user does; when
// something of another user's, or anything but a directory, is there, it is
// left alone and the directory is llm-runtime/run in the user's state
// directory ($XDG_STATE_HOME, else ~/.local/state), which no one else can
// make or own (Squatted says why). It is not created; Dir checks and makes
// it.
func RuntimeDir(getenv func(string) string) string {
	dir, _ := runtimeDir(getenv)
	return dir
}

// Squatted says why RuntimeDir is not /tmp/llm-runtime-UID when
// XDG_RUNTIME_DIR is unset: what is there instead, and whose it is; ""
// when RuntimeDir is the usual place.
func Squatted(getenv func(string) string) string {
	_, why := runtimeDir(getenv)
	return why
}

func runtimeDir(getenv func(string) string) (dir, why string) {
	if d := getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "llm-runtime"), ""
	}
	tmp := getenv("TMPDIR")
	if tmp == "" || !filepath.IsAbs(tmp) {
		tmp = "/tmp"
	}
	dir = filepath.Join(tmp, fmt.Sprintf("llm-runtime-%d", os.Getuid()))
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return dir, ""
	}
	switch {
	case int(st.Uid) != os.Getuid():
		why = fmt.Sprintf("%s belongs to uid %d, not to this user (%d)", dir, st.Uid, os.Getuid())
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		why = fmt.Sprintf("%s is not a directory", dir)
	default:
		return dir, ""
	}
	state := getenv("XDG_STATE_HOME")
	if state == "" || !filepath.IsAbs(state) {
		home := getenv("HOME")
		if home == "" || !filepath.IsAbs(home) {
			return dir, "" // nowhere else to go: Dir says what is wrong
		}
		state = filepath.Join(home, ".local", "state")
	}
	fallback := filepath.Join(state, "llm-runtime", "run")
	return fallback, why + ": using " + fallback + " instead"
}

// StateDir is the directory name of llm-runtime's in the user's state
// directory: $XDG_STATE_HOME/llm-runtime/name when that variable is an
// absolute path, else ~/.local/state/llm-runtime/name. It is not created.
func StateDir(name string) (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "llm-runtime", name), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "llm-runtime", name), nil
}

// MaxSocketPath is the longest path a unix socket can have on Linux
// (sun_path holds 108 bytes, with the terminating NUL).
const MaxSocketPath = 107

// SocketPath says whether path can name a unix socket: a longer one
// fails with "invalid argument", which says nothing of the cause.
func SocketPath(path string) error {
	if len(path) > MaxSocketPath {
		return fmt.Errorf("the socket path %s is %d bytes, over the %d a unix socket allows: set XDG_RUNTIME_DIR (or TMPDIR, when XDG_RUNTIME_DIR is unset) to a shorter directory", path, len(path), MaxSocketPath)
	}
	return nil
}
