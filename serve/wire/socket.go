package wire

import (
	"errors"
	"net"
	"path/filepath"

	"github.com/llm-runtime/llm-runtime/internal/private"
	"golang.org/x/sys/unix"
)

// DefaultSocket is the daemon's socket: serve.sock in private.RuntimeDir,
// that is $XDG_RUNTIME_DIR/llm-runtime/serve.sock, or, when that variable
// is unset (or not an absolute path), /tmp/llm-runtime-UID/serve.sock
// ($TMPDIR for /tmp). Either directory is created 0700 and must stay the
// user's alone.
func DefaultSocket(getenv func(string) string) string {
	return filepath.Join(private.RuntimeDir(getenv), "serve.sock")
}

// PeerUID is the uid of the process at the other end of a unix socket,
// as the kernel recorded it at connect (SO_PEERCRED).
func PeerUID(c net.Conn) (int, error) {
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
