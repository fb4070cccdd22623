// Package wire is the protocol between llm-runtime serve and its clients,
// and the client side of it: what the filter, and the thin client
// cmd/llm-runtime-client, need to hand a run to the daemon. It imports
// configuration and paths, nothing that opens a sandbox, so that a client
// starts in a few milliseconds.
//
// The wire: frames of one type byte, a big-endian uint32 length and that
// many bytes. The client sends a hello (JSON), then input and its end, or
// a cancel; the daemon answers accepted or busy, then output and log
// frames, then the end (JSON). A status or stop hello gets one JSON frame.
package wire

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/internal/paths"
)

// Frame types.
const (
	// client to daemon
	FrameHello  = 'h' // JSON Hello
	FrameInput  = 'i' // input bytes
	FrameEOF    = 'e' // the input ended
	FrameCancel = 'c' // the run was interrupted: stop it and say so
	// the input could not be read (the message): the run reads an error
	FrameInputError = 'f'
	// daemon to client
	FrameAccepted = 'a' // JSON Accepted: the run is the daemon's now
	FrameBusy     = 'b' // JSON Busy: run it yourself
	FrameOutput   = 'o' // output bytes
	FrameLog      = 'l' // a line for standard error (--verbose)
	FrameNotice   = 'n' // a line for standard error, whatever --verbose
	FrameEnd      = 'x' // JSON End
	FrameReply    = 'r' // JSON: the answer to status or stop
)

// maxFrame bounds a frame's payload: input is sent in chunks of at most
// chunk bytes; output frames are what the reporter writes at once (its
// buffer, or one long block).
const (
	maxFrame = 64 << 20
	chunk    = 64 << 10
)

// Hello opens a connection.
type Hello struct {
	// Build is the client's llm-runtime build: a daemon of another build
	// refuses the run (its results could differ), and the client runs it
	// itself.
	Build string `json:"build"`
	// Op is "run", "status" or "stop".
	Op  string      `json:"op"`
	Run *RunRequest `json:"run,omitempty"`
}

// RunRequest is what a filter run resolved before it would have opened its
// own session: the daemon trusts nothing of the caller beyond it.
type RunRequest struct {
	Root       string         `json:"root"`            // the repository's real path
	Given      string         `json:"given,omitempty"` // the root as given, if a link leads to it
	ConfigFile string         `json:"config_file,omitempty"`
	Config     *config.Config `json:"config"`
	AuditDir   string         `json:"audit_dir,omitempty"`
	JournalDir string         `json:"journal_dir,omitempty"` // the repository's journal, when journal.enabled
	Verbose    bool           `json:"verbose,omitempty"`
	// Own is where the client keeps llm-runtime's files (paths.OwnFiles,
	// real paths): its binary, its configuration directory, its caches.
	// The daemon refuses to write them as well as its own, whose
	// environment can differ, and opens a pool of their own for them.
	Own paths.Own `json:"own"`
	// Docker is the client's Docker environment (DockerEnv): a daemon
	// whose own differs sends the run back, to run on the Docker it names.
	Docker map[string]string `json:"docker,omitempty"`
}

// DockerVariables are the environment variables that choose where a
// sandbox runs and how to reach it: the Docker daemon, and the Kubernetes
// cluster (KUBECONFIG).
var DockerVariables = []string{"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION", "DOCKER_CONFIG", "KUBECONFIG"}

// DockerEnv returns the Docker variables that getenv sets.
func DockerEnv(getenv func(string) string) map[string]string {
	m := map[string]string{}
	for _, k := range DockerVariables {
		if v := getenv(k); v != "" {
			m[k] = v
		}
	}
	return m
}

// Accepted says the daemon runs the run.
type Accepted struct {
	PID  int    `json:"pid"`
	Pool string `json:"pool"` // "new" or "warm"
}

// Busy says the daemon does not run it, and why.
type Busy struct {
	Reason string `json:"reason"`
}

// End is how a run ended.
type End struct {
	Commands int           `json:"commands"`
	Failed   int           `json:"failed"`
	Elapsed  time.Duration `json:"elapsed"`
	// Kind is "" (the input was processed), "interrupted", "input" (the
	// input could not be read or the output written), or, when the session
	// could not open, "config", "sandbox" or "io" (the audit store).
	Kind    string `json:"kind,omitempty"`
	Message string `json:"message,omitempty"`
	Session string `json:"session,omitempty"` // the audit session
}

// Status is what llm-runtime serve status prints.
type Status struct {
	PID      int          `json:"pid"`
	Build    string       `json:"build"`
	Socket   string       `json:"socket"`
	Started  time.Time    `json:"started"`
	Uptime   string       `json:"uptime"`
	Sessions int          `json:"sessions"` // running now
	Served   uint64       `json:"served"`   // runs since start
	Pools    []PoolStatus `json:"pools"`
}

// PoolStatus is one pool of Status.
type PoolStatus struct {
	Root       string    `json:"root"`
	Sandbox    string    `json:"sandbox"` // docker, docker-unpooled or local
	Idle       int       `json:"idle"`
	InUse      int       `json:"in_use"`
	Total      int       `json:"total"`
	Sessions   int       `json:"sessions"`
	Runs       uint64    `json:"runs"`
	LastUsed   time.Time `json:"last_used"`
	Containers uint64    `json:"containers_created"`
}

// Conn writes frames from any goroutine and reads them from one.
type Conn struct {
	rw io.ReadWriter
	br *bufio.Reader // over rw, made by the first recv
	mu sync.Mutex
}

// NewConn frames rw.
func NewConn(rw io.ReadWriter) *Conn { return &Conn{rw: rw} }

// Send writes one frame of typ.
func (c *Conn) Send(typ byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("serve: a frame of %d bytes is over the limit", len(payload))
	}
	// One write per frame: the header and the payload in one buffer.
	b := make([]byte, 5+len(payload))
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:5], uint32(len(payload)))
	copy(b[5:], payload)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.rw.Write(b)
	return err
}

// SendJSON writes v as one frame of typ.
func (c *Conn) SendJSON(typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Send(typ, b)
}

// ErrFrame is a frame that breaks the protocol.
var ErrFrame = errors.New("serve: malformed frame")

// Recv reads the next frame.
func (c *Conn) Recv() (byte, []byte, error) {
	if c.br == nil {
		c.br = bufio.NewReaderSize(c.rw, chunk+5)
	}
	var h [5]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFrame {
		return 0, nil, ErrFrame
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.br, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return h[0], b, nil
}

// FrameWriter writes each Write as one frame of typ.
type FrameWriter struct {
	C   *Conn
	Typ byte
}

func (w FrameWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); {
		n := min(len(p)-off, maxFrame)
		if err := w.C.Send(w.Typ, p[off:off+n]); err != nil {
			return off, err
		}
		off += n
	}
	return len(p), nil
}
