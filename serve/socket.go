package serve

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/internal/private"
)

// DefaultSocket is the daemon's socket: serve.sock in private.RuntimeDir,
// that is $XDG_RUNTIME_DIR/llm-runtime/serve.sock, or, when that variable
// is unset (or not an absolute path), /tmp/llm-runtime-UID/serve.sock
// ($TMPDIR for /tmp). Either directory is created 0700 and must stay the
// user's alone.
func DefaultSocket(getenv func(string) string) string {
	return filepath.Join(private.RuntimeDir(getenv), "serve.sock")
}

// peerUID is the uid of the process at the other end of a unix socket,
// as the kernel recorded it at connect (SO_PEERCRED).
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

// lockFile holds the daemon's lock: one daemon per socket. Its content is
// the holder's pid.
type lockFile struct{ f *os.File }

// errRunning is a lock another daemon holds.
type errRunning struct{ pid string }

func (e errRunning) Error() string {
	if e.pid == "" {
		return "another llm-runtime serve holds this socket"
	}
	return "another llm-runtime serve (pid " + e.pid + ") holds this socket"
}

func lock(path string) (*lockFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errRunning{pid: string(b[:n])}
		}
		return nil, err
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	return &lockFile{f}, nil
}

func (l *lockFile) release() { l.f.Close() }
