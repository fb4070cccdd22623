// Package private checks that a directory is this user's alone: one that
// holds a socket or other rendezvous that someone else must not be able to
// plant or replace.
package private

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Dir makes sure dir is a directory (not a link) of this user that no one
// else can write, creating it 0700 first when create is set and it is
// missing. A missing directory is an error wrapping os.ErrNotExist.
func Dir(dir string, create bool) error {
	if create {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
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
