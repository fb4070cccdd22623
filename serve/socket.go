package serve

import (
	"errors"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// lockFile holds the daemon's lock: one daemon per socket. Its content is
// the holder's pid.
type lockFile struct {
	f    *os.File
	path string
}

// errRunning is a lock another daemon holds.
type errRunning struct{ pid string }

func (e errRunning) Error() string {
	if e.pid == "" {
		return "another llm-runtime serve holds this socket"
	}
	return "another llm-runtime serve (pid " + e.pid + ") holds this socket"
}

// lock takes the lock at path. A lock file is removed by the daemon that
// held it when it stops (release), so a lock taken on a file that is no
// longer the one at path (its holder removed it between our open and our
// lock) is worth nothing: it is let go and taken again on the new file.
func lock(path string) (*lockFile, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, err
		}
		ok, err := take(f, path)
		if err != nil {
			f.Close()
			return nil, err
		}
		if !ok {
			f.Close()
			continue
		}
		f.Truncate(0)
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
		return &lockFile{f: f, path: path}, nil
	}
}

// take locks the open lock file f, and says whether it is still the file
// at path (false: a holder removed it since it was opened).
func take(f *os.File, path string) (bool, error) {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			return false, errRunning{pid: string(b[:n])}
		}
		return false, err
	}
	var held, now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &held); err != nil {
		return false, err
	}
	if err := unix.Lstat(path, &now); err != nil && !errors.Is(err, unix.ENOENT) {
		return false, err
	}
	return held.Dev == now.Dev && held.Ino == now.Ino, nil
}

// release removes the lock file, while still holding it, and lets it go.
func (l *lockFile) release() {
	os.Remove(l.path)
	l.f.Close()
}
