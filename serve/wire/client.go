package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/private"
)

// ErrNoDaemon is a socket that no daemon answers on: it is missing, or
// its daemon is dead.
var ErrNoDaemon = errors.New("no llm-runtime serve answers")

// BusyError is a daemon that does not take the run; the client runs it
// itself.
type BusyError struct{ Reason string }

func (e *BusyError) Error() string { return "llm-runtime serve is busy: " + e.Reason }

// LostError is a daemon that went away during a run it had taken: the
// run cannot be taken back, as some of its commands may have run.
type LostError struct{ Err error }

func (e *LostError) Error() string {
	return fmt.Sprintf("llm-runtime serve went away during the run: %v", e.Err)
}
func (e *LostError) Unwrap() error { return e.Err }

// dial connects to the socket within timeout, and checks that the daemon
// on it runs as this user and that no one else can write its directory.
func dial(path string, timeout time.Duration) (*net.UnixConn, error) {
	if err := private.SocketPath(path); err != nil {
		return nil, err
	}
	if err := private.Dir(filepath.Dir(path), false); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNoDaemon
		}
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	nc, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, ErrNoDaemon
		}
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	uc := nc.(*net.UnixConn)
	if uid, err := PeerUID(uc); err != nil || uid != os.Getuid() {
		uc.Close()
		return nil, fmt.Errorf("socket %s: its daemon runs as uid %d, not as this user (%d): not used", path, uid, os.Getuid())
	}
	return uc, nil
}

// ask sends a status or stop hello and decodes the reply into v.
func ask(path, build, op string, timeout time.Duration, v any) error {
	nc, err := dial(path, timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	c := NewConn(nc)
	nc.SetDeadline(time.Now().Add(timeout))
	if err := c.SendJSON(FrameHello, Hello{Build: build, Op: op}); err != nil {
		return err
	}
	typ, b, err := c.Recv()
	if err != nil {
		return fmt.Errorf("socket %s: no answer: %w", path, err)
	}
	switch typ {
	case FrameReply:
		return json.Unmarshal(b, v)
	case FrameBusy:
		var busy Busy
		json.Unmarshal(b, &busy)
		return &BusyError{Reason: busy.Reason}
	}
	return ErrFrame
}

// GetStatus asks the daemon on path what it holds.
func GetStatus(path, build string, timeout time.Duration) (Status, error) {
	var st Status
	err := ask(path, build, "status", timeout, &st)
	return st, err
}

// RequestStop asks the daemon on path to stop, and returns its pid.
func RequestStop(path, build string, timeout time.Duration) (int, error) {
	var r struct {
		PID int `json:"pid"`
	}
	err := ask(path, build, "stop", timeout, &r)
	return r.PID, err
}

// Run is a filter run through the daemon.
type Run struct {
	Socket  string
	Build   string
	Request *RunRequest
	// Timeout bounds the wait for the daemon to take the run
	// (container_pool.acquire_timeout): a daemon that does not answer by
	// then is not used.
	Timeout time.Duration
	In      io.Reader
	Out     io.Writer // the output, byte for byte
	Log     io.Writer // --verbose lines
	Notice  io.Writer // what is said whatever --verbose (the sandbox image built on the way)
}

// Start connects and hands the run to the daemon. ErrNoDaemon, a
// *BusyError, a timeout: the run was not taken, and nothing of the input
// was read.
func (r *Run) Start() (*Started, error) {
	nc, err := dial(r.Socket, r.Timeout)
	if err != nil {
		return nil, err
	}
	c := NewConn(nc)
	nc.SetDeadline(time.Now().Add(r.Timeout))
	if err := c.SendJSON(FrameHello, Hello{Build: r.Build, Op: "run", Run: r.Request}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("socket %s: %w", r.Socket, err)
	}
	typ, b, err := c.Recv()
	if err != nil {
		nc.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("socket %s: the daemon did not take the run within %s (container_pool.acquire_timeout)", r.Socket, r.Timeout)
		}
		return nil, fmt.Errorf("socket %s: %w", r.Socket, err)
	}
	nc.SetDeadline(time.Time{})
	switch typ {
	case FrameAccepted:
		var a Accepted
		json.Unmarshal(b, &a)
		return &Started{run: r, nc: nc, c: c, Accepted: a}, nil
	case FrameBusy:
		nc.Close()
		var busy Busy
		json.Unmarshal(b, &busy)
		return nil, &BusyError{Reason: busy.Reason}
	}
	nc.Close()
	return nil, fmt.Errorf("%w: a frame of type %q where the answer to the run was expected", ErrFrame, typ)
}

// Started is a run the daemon took.
type Started struct {
	Accepted
	run *Run
	nc  *net.UnixConn
	c   *Conn
}

// Wait streams the input to the daemon and its output back until the run
// ends; ctx ending interrupts the run (the daemon stops it and says how
// far it got). A failed write of the output stops the run too: it is
// returned as the End's "input" kind, as the filter reports it.
func (s *Started) Wait(ctx context.Context) (End, error) {
	defer s.nc.Close()
	go func() {
		buf := make([]byte, chunk)
		for {
			n, err := s.run.In.Read(buf)
			if n > 0 {
				if s.c.Send(FrameInput, buf[:n]) != nil {
					return
				}
			}
			if errors.Is(err, io.EOF) {
				s.c.Send(FrameEOF, nil)
				return
			}
			if err != nil {
				s.c.Send(FrameInputError, []byte(err.Error()))
				return
			}
		}
	}()
	stop := context.AfterFunc(ctx, func() { s.c.Send(FrameCancel, nil) })
	defer stop()
	var werr error
	for {
		typ, b, err := s.c.Recv()
		if err != nil {
			return End{}, &LostError{Err: err}
		}
		switch typ {
		case FrameOutput:
			if werr == nil {
				if _, werr = s.run.Out.Write(b); werr != nil {
					s.c.Send(FrameCancel, nil)
				}
			}
		case FrameLog:
			if s.run.Log != nil {
				s.run.Log.Write(b)
			}
		case FrameNotice:
			if s.run.Notice != nil {
				s.run.Notice.Write(b)
			}
		case FrameEnd:
			var e End
			if err := json.Unmarshal(b, &e); err != nil {
				return End{}, &LostError{Err: err}
			}
			if werr != nil {
				e.Kind, e.Message = "input", "writing output: "+werr.Error()
			}
			return e, nil
		default:
			return End{}, &LostError{Err: ErrFrame}
		}
	}
}
