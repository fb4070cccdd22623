// Package agent is the resident agent that runs inside every sandbox
// container, and the host's side of its protocol.
//
// The host writes framed requests to the agent's standard input and reads
// framed replies from its standard output; one agent serves any number of
// operations, one at a time, for the life of its container. The agent runs
// the very same sandbox.Workspace code as the local sandbox, on a descriptor
// of /workspace, so both give the same answers and error codes.
//
// # Frames
//
// A frame is a 12-byte head, then a JSON header, then a raw body:
//
//	magic   uint32  0x4C4C4D31 ("LLM1"), big-endian
//	hlen    uint32  length of the JSON header, at most 1 MiB
//	blen    uint32  length of the body, at most 256 MiB
//
// The body carries file content (a write's content, a read's result), so it
// is never base64-encoded. The magic lets either side notice at once a
// stream that is out of step (for example, a stray byte of Docker's own
// framing) instead of reading a garbage length.
//
// The agent exits when its standard input closes, so a killed host leaves no
// agent, and so no container, behind.
package agent

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Protocol limits.
const (
	magic     = 0x4C4C4D31
	maxHeader = 1 << 20
	maxBody   = 256 << 20
)

// Operations.
const (
	OpPing    = "ping"
	OpRead    = "read"
	OpWrite   = "write"
	OpStat    = "stat"
	OpResolve = "resolve"
	OpSearch  = "search"
	OpExec    = "exec"
	OpEdit    = "edit"
	OpList    = "list"
	OpDelete  = "delete"
	OpMove    = "move" // from Path to To
	// OpRecorded answers a Reply with Intend, in the middle of the request
	// it is about (Request.Recorded).
	OpRecorded = "recorded"
	// OpSocket asks the agent to listen on its socket (SocketDir) for one
	// connection that starts with Request.Secret, and to serve the same
	// protocol on it; the stream it was asked on stays its lifeline.
	OpSocket = "socket"
	// OpManifest lists the workspace as a replica, and OpUnpack applies a
	// push to it (copy mode: the workspace is the agent's own copy, which
	// the host keeps up to date; see sandbox/copy.go).
	OpManifest = "manifest"
	OpUnpack   = "unpack"
	// OpFetch returns files' content from the workspace (copy mode's exec).
	OpFetch = "fetch"
	// OpConfigure opens the workspace again with Request.Limits, once: an
	// agent started before its session (a Kubernetes warm pool's pod) gets
	// the session's limits. OpClose ends the agent after its reply.
	OpConfigure = "configure"
	OpClose     = "close"
	// OpCancel asks the agent to stop the request Request.ID, which it is
	// running: a search then replies with what it found so far (its
	// Partial says it was interrupted). It has no reply of its own, and
	// one that comes after its request's reply is dropped. The host sends
	// it for the operations of cancellable only.
	OpCancel = "cancel"
)

// cancellable are the operations that give way to OpCancel with a reply.
var cancellable = map[string]bool{OpSearch: true, OpList: true}

// CancelGrace is how long the host waits, after an OpCancel, for the
// reply to the request it cancelled, before it gives up on the stream
// (and so on the container). An agent replies within milliseconds.
const CancelGrace = 3 * time.Second

// Request is a request's header; a write's content is the frame's body.
// Path and Query are bytes (base64 in JSON) so that they arrive exactly as
// the model wrote them, invalid UTF-8 included, and the agent refuses what
// the local sandbox refuses.
type Request struct {
	ID    uint64 `json:"id"`
	Op    string `json:"op"`
	Path  []byte `json:"path,omitempty"`
	To    []byte `json:"to,omitempty"`    // OpMove's destination
	Query []byte `json:"query,omitempty"` // OpSearch's text
	// Search is OpSearch's query but for its text (Query): regex, scope,
	// context, max.
	Search *parser.Query `json:"search,omitempty"`
	// Recursive is OpList's: everything under Path.
	Recursive bool         `json:"recursive,omitempty"`
	Exec      *ExecRequest `json:"exec,omitempty"`
	// Options are the operation's sandbox.Options (an expected path, files
	// a search leaves out...).
	Options *sandbox.Options `json:"options,omitempty"`
	// Secret is OpSocket's: what a connection to the socket must send first.
	Secret string `json:"secret,omitempty"`
	// Push is OpUnpack's; the content of its files is the frame's body.
	Push *Push `json:"push,omitempty"`
	// Fetch is OpFetch's: the files whose content to return.
	Fetch *Fetch `json:"fetch,omitempty"`
	// Limits is OpConfigure's.
	Limits *sandbox.Limits `json:"limits,omitempty"`
	// Record, for write, edit, delete and move: journal the change before
	// making it. The agent reads what the paths hold, on the descriptors
	// of the change, and sends the states before and after in a Reply
	// with Intend (the changes, JSON, are its body); the host journals
	// them and answers with OpRecorded; only then, and if the host says
	// it recorded them, is the change made, and the request's reply says
	// how it went.
	Record bool `json:"record,omitempty"`
	// Recorded is OpRecorded's: the journal's intent, or why the changes
	// could not be recorded (the change is then not made).
	Recorded *Recorded `json:"recorded,omitempty"`
}

// Recorded is the host's answer to a Reply with Intend.
type Recorded struct {
	Intent uint64 `json:"intent,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Fetch asks for the content of files of the workspace (copy mode's exec:
// what a command changed), at most Max bytes in all.
type Fetch struct {
	Paths [][]byte `json:"paths"`
	Max   int64    `json:"max"`
}

// Push is what copy mode sends to bring a replica up to date: paths to
// remove, then objects to make, the content of each non-hollow file
// following the previous one's in the frame's body.
type Push struct {
	Remove []string            `json:"remove,omitempty"`
	Put    []sandbox.CopyEntry `json:"put,omitempty"`
}

// withRecorder is o with rec as its Recorder.
func withRecorder(o sandbox.Options, rec sandbox.Recorder) sandbox.Options {
	o.Recorder = rec
	return o
}

// options returns the request's options, or none.
func (r Request) options() sandbox.Options {
	if r.Options == nil {
		return sandbox.Options{}
	}
	return *r.Options
}

// optionsOf returns the options in ctx for a request, or nil.
func optionsOf(ctx context.Context) *sandbox.Options {
	o := sandbox.OptionsFrom(ctx)
	if o.IsZero() {
		return nil
	}
	return &o
}

// Reply is a reply's header; a read's content is the frame's body.
type Reply struct {
	ID      uint64 `json:"id"`
	Code    string `json:"code,omitempty"` // set on failure
	Message string `json:"message,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Path    string `json:"path,omitempty"`
	Created bool   `json:"created,omitempty"`
	// HostTool is a write's WriteResult.HostTool.
	HostTool string                `json:"host_tool,omitempty"`
	Bytes    int64                 `json:"bytes,omitempty"`
	Stat     *sandbox.Info         `json:"stat,omitempty"`
	Search   *sandbox.SearchResult `json:"search,omitempty"`
	Exec     *ExecReply            `json:"exec,omitempty"`
	Edit     *sandbox.EditResult   `json:"edit,omitempty"`
	Lines    *sandbox.Lines        `json:"lines,omitempty"` // a read of a range
	List     *sandbox.ListResult   `json:"list,omitempty"`
	Delete   *sandbox.DeleteResult `json:"delete,omitempty"`
	Move     *sandbox.MoveResult   `json:"move,omitempty"`
	// Intend marks a frame sent in the middle of a request with Record:
	// not its reply, but the changes it is about to make, to be recorded
	// (see Request.Record).
	Intend  bool   `json:"intend,omitempty"`
	Version string `json:"version,omitempty"` // ping
	// Owned is OpManifest's: the workspace's root is the agent's user's,
	// so it can be written. The replica's objects are the body, as JSON
	// (a header is at most 1 MiB; a large repository's list is more).
	Owned bool `json:"owned,omitempty"`
}

// ErrProtocol is the error of a stream that does not follow the protocol.
var ErrProtocol = errors.New("agent: protocol error")

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, header any, body []byte) error {
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	if len(h) > maxHeader || len(body) > maxBody {
		return fmt.Errorf("%w: frame too large (%d + %d bytes)", ErrProtocol, len(h), len(body))
	}
	var head [12]byte
	binary.BigEndian.PutUint32(head[0:], magic)
	binary.BigEndian.PutUint32(head[4:], uint32(len(h)))
	binary.BigEndian.PutUint32(head[8:], uint32(len(body)))
	// One write per frame part; callers wrap w in a bufio.Writer when they
	// want a single system call.
	if _, err := w.Write(head[:]); err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	_, err = w.Write(body)
	return err
}

// ReadFrame reads one frame, decoding its header into header. It returns
// io.EOF only when the stream ends cleanly between frames.
func ReadFrame(r io.Reader, header any) ([]byte, error) {
	var head [12]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: stream ended inside a frame", ErrProtocol)
		}
		return nil, err
	}
	if m := binary.BigEndian.Uint32(head[0:]); m != magic {
		return nil, fmt.Errorf("%w: bad magic %#08x", ErrProtocol, m)
	}
	hlen, blen := binary.BigEndian.Uint32(head[4:]), binary.BigEndian.Uint32(head[8:])
	if hlen > maxHeader || blen > maxBody {
		return nil, fmt.Errorf("%w: frame too large (%d + %d bytes)", ErrProtocol, hlen, blen)
	}
	buf := make([]byte, int(hlen)+int(blen))
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%w: stream ended inside a frame: %v", ErrProtocol, err)
	}
	if err := json.Unmarshal(buf[:hlen], header); err != nil {
		return nil, fmt.Errorf("%w: bad header: %v", ErrProtocol, err)
	}
	return buf[hlen:], nil
}

// Serve answers requests from r on w with ws until r ends. It returns nil
// when r ends cleanly between frames.
func Serve(r io.Reader, w io.Writer, ws *sandbox.Workspace, version string) error {
	return (&Agent{ws: ws, Version: version}).Serve(r, w)
}

// Agent is the agent's state, shared by its streams (its input, and its
// socket): the workspace, which OpConfigure may replace once, and the
// lease.
type Agent struct {
	Version string
	// Dir is the workspace's directory, which OpConfigure opens again
	// with the limits it is sent.
	Dir string
	// Lease, if set, is how long the agent lives after its last request
	// (the first starts it): a lifeline for a transport whose end the
	// agent cannot see (a Kubernetes attach, which leaves its input open
	// when the host goes away). The host pings within it.
	Lease time.Duration
	// Exit ends the process (os.Exit): at OpClose, and when the lease
	// runs out.
	Exit func(code int)

	mu         sync.Mutex
	ws         *sandbox.Workspace
	configured bool
	timer      *time.Timer
	sessions   bool // ListenSessions serves the socket
}

// NewAgent returns an agent serving the workspace ws, opened on dir.
func NewAgent(ws *sandbox.Workspace, dir, version string) *Agent {
	return &Agent{ws: ws, Dir: dir, Version: version, Exit: os.Exit}
}

// workspace returns the workspace in force.
func (a *Agent) workspace() *sandbox.Workspace {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ws
}

// touch renews the lease.
func (a *Agent) touch() {
	if a.Lease <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.timer == nil {
		a.timer = time.AfterFunc(a.Lease, func() { a.exit(0) })
		return
	}
	a.timer.Reset(a.Lease)
}

func (a *Agent) exit(code int) {
	if a.Exit != nil {
		a.Exit(code)
	}
}

// configure opens the workspace again with limits, once.
func (a *Agent) configure(limits *sandbox.Limits) error {
	if limits == nil {
		return sandbox.Errorf(sandbox.CodeInternal, "agent: configure without limits")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.configured {
		return sandbox.Errorf(sandbox.CodeInternal, "agent: configured already")
	}
	if a.Dir == "" {
		return sandbox.Errorf(sandbox.CodeInternal, "agent: no workspace directory to configure")
	}
	ws, err := sandbox.OpenWorkspace(a.Dir, *limits)
	if err != nil {
		return sandbox.Errorf(sandbox.CodeSandboxError, "agent: %v", err)
	}
	old := a.ws
	a.ws, a.configured = ws, true
	if old != nil {
		old.Close()
	}
	return nil
}

// Serve answers requests from r on w until r ends (nil when it ends
// cleanly between frames) or an OpClose (after its reply: the process
// exits).
//
// Requests are read ahead, one at a time, while the previous one runs,
// so that an OpCancel for it, or the end of r (the host is gone), stops
// it.
func (a *Agent) Serve(r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	var run running
	in := make(chan frame)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			var f frame
			f.body, f.err = ReadFrame(br, &f.req)
			if f.err == nil && f.req.Op == OpCancel {
				run.cancel(f.req.ID)
				continue
			}
			if f.err != nil {
				run.cancel(0) // the host is gone, or out of step
			}
			select {
			case in <- f:
			case <-done:
				return
			}
			if f.err != nil {
				return
			}
		}
	}()
	for {
		f := <-in
		req, body, err := f.req, f.body, f.err
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		a.touch()
		var rep Reply
		var out []byte
		switch req.Op {
		case OpConfigure:
			rep = Reply{ID: req.ID}
			if err := a.configure(req.Limits); err != nil {
				e := sandbox.AsError(err)
				rep.Code, rep.Message = e.Code, e.Message
			}
		case OpSocket:
			rep = Reply{ID: req.ID}
			a.mu.Lock()
			sessions := a.sessions
			a.mu.Unlock()
			err := errSessions
			if !sessions {
				err = a.listen(req.Secret)
			}
			if err != nil {
				e := sandbox.AsError(err)
				rep.Code, rep.Message = e.Code, e.Message
			}
		default:
			ctx := run.begin(req.ID)
			var rec sandbox.Recorder
			if req.Record {
				rec = &hostRecorder{ctx: ctx, id: req.ID, w: bw, in: in}
			}
			rep, out = handle(ctx, a.workspace(), req, body, a.Version, rec)
			run.end()
		}
		if err := WriteFrame(bw, rep, out); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if req.Op == OpClose {
			a.exit(0)
			return nil
		}
	}
}

// frame is one request read ahead by Serve, or why none could be.
type frame struct {
	req  Request
	body []byte
	err  error
}

// running is the request a stream's Serve is running, which OpCancel (or
// the stream's end) cancels.
type running struct {
	mu   sync.Mutex
	id   uint64
	stop context.CancelFunc // nil when none runs
}

// begin records that request id runs, and returns its context.
func (r *running) begin(id uint64) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	r.id, r.stop = id, cancel
	r.mu.Unlock()
	return ctx
}

// end records that it ended.
func (r *running) end() {
	r.mu.Lock()
	if r.stop != nil {
		r.stop()
	}
	r.stop = nil
	r.mu.Unlock()
}

// cancel cancels request id if it runs (any request, for id 0).
func (r *running) cancel(id uint64) {
	r.mu.Lock()
	if r.stop != nil && (id == 0 || id == r.id) {
		r.stop()
	}
	r.mu.Unlock()
}

// hostRecorder is the Recorder of a request with Record: it asks the host
// to journal the changes, on the request's stream, and waits for its
// answer. The host says done or aborted itself, from the reply.
type hostRecorder struct {
	ctx context.Context
	id  uint64
	w   *bufio.Writer
	in  <-chan frame
}

func (r *hostRecorder) Intend(changes []sandbox.PathChange) (uint64, error) {
	body, err := json.Marshal(changes)
	if err != nil {
		return 0, err
	}
	if err := WriteFrame(r.w, Reply{ID: r.id, Intend: true}, body); err != nil {
		return 0, err
	}
	if err := r.w.Flush(); err != nil {
		return 0, err
	}
	var f frame
	select {
	case f = <-r.in:
	case <-r.ctx.Done():
		return 0, r.ctx.Err()
	}
	switch {
	case f.err != nil:
		return 0, f.err
	case f.req.Op != OpRecorded || f.req.ID != r.id || f.req.Recorded == nil:
		return 0, fmt.Errorf("%w: %q for request %d while request %d waited for its record", ErrProtocol, f.req.Op, f.req.ID, r.id)
	case f.req.Recorded.Error != "":
		return 0, errors.New(f.req.Recorded.Error)
	}
	return f.req.Recorded.Intent, nil
}

func (r *hostRecorder) Done(uint64) error          { return nil }
func (r *hostRecorder) Abort(uint64, string) error { return nil }

func handle(ctx context.Context, ws *sandbox.Workspace, req Request, body []byte, version string, rec sandbox.Recorder) (Reply, []byte) {
	rep := Reply{ID: req.ID}
	var out []byte
	var err error
	switch req.Op {
	case OpPing:
		rep.Version = version
	case OpClose:
	case OpRead:
		var f *sandbox.File
		if f, err = ws.OpenWith(string(req.Path), req.options()); err == nil {
			rep.Path, rep.Lines, out = f.Path, f.Lines, f.Content
		}
	case OpWrite:
		var wr *sandbox.WriteResult
		if wr, err = ws.WriteWith(string(req.Path), body, withRecorder(req.options(), rec)); err == nil {
			rep.Path, rep.Created, rep.Bytes, rep.HostTool = wr.Path, wr.Created, wr.Bytes, wr.HostTool
		}
	case OpEdit:
		rep.Edit, err = ws.EditWith(string(req.Path), body, withRecorder(req.options(), rec))
	case OpList:
		rep.List, err = ws.ListWith(ctx, string(req.Path), req.Recursive, req.options())
	case OpDelete:
		rep.Delete, err = ws.DeleteWith(string(req.Path), withRecorder(req.options(), rec))
	case OpMove:
		rep.Move, err = ws.MoveWith(string(req.Path), string(req.To), withRecorder(req.options(), rec))
	case OpStat:
		rep.Stat, err = ws.Stat(string(req.Path))
	case OpManifest:
		var m []sandbox.CopyEntry
		if m, err = ws.Manifest(); err == nil {
			out, err = json.Marshal(m)
			rep.Owned = ws.Owned()
		}
	case OpUnpack:
		if req.Push == nil {
			err = sandbox.Errorf(sandbox.CodeInternal, "agent: unpack request without a push")
			break
		}
		var made []sandbox.CopyEntry
		if made, err = ws.Unpack(req.Push.Remove, req.Push.Put, body); err == nil {
			out, err = json.Marshal(made)
		}
	case OpFetch:
		if req.Fetch == nil {
			err = sandbox.Errorf(sandbox.CodeInternal, "agent: fetch request without paths")
			break
		}
		paths := make([]string, len(req.Fetch.Paths))
		for i, p := range req.Fetch.Paths {
			paths[i] = string(p)
		}
		var got []sandbox.CopyEntry
		var content []byte
		if got, content, err = ws.Fetch(paths, req.Fetch.Max); err == nil {
			var list []byte
			if list, err = json.Marshal(got); err == nil {
				// The list, its length first, then the content.
				out = binary.BigEndian.AppendUint32(nil, uint32(len(list)))
				out = append(append(out, list...), content...)
			}
		}
	case OpResolve:
		rep.Path, err = ws.ResolveWith(string(req.Path), req.options())
	case OpSearch:
		var q parser.Query
		if req.Search != nil {
			q = *req.Search
		}
		q.Text = string(req.Query)
		rep.Search, err = ws.SearchWith(ctx, q, req.options())
	case OpExec:
		if req.Exec == nil {
			err = sandbox.Errorf(sandbox.CodeInternal, "agent: exec request without a command")
			break
		}
		var x ExecReply
		if x, out, err = runExec(*req.Exec); err == nil {
			rep.Exec = &x
		} else {
			err = sandbox.Errorf(sandbox.CodeExecFailed, "%v", err)
		}
	default:
		err = sandbox.Errorf(sandbox.CodeInternal, "agent: unknown operation %q", req.Op)
	}
	if err != nil {
		e := sandbox.AsError(err)
		rep.Code, rep.Message, rep.Detail = e.Code, e.Message, e.Detail
	}
	return rep, out
}

// Where the host mounts the directory of an agent's socket, and its name.
const (
	SocketDir  = "/run/llm-runtime-agent"
	SocketName = "agent.sock"
	// SecretLen is the length of OpSocket's secret, in hex digits.
	SecretLen = 64
)

// socketDir is SocketDir; tests move it.
var socketDir = SocketDir

// listen serves the protocol on the agent's socket too, for the one
// connection that sends secret first: the host's, which alone knows it (it
// came on the agent's own input). Any other connection, from whatever
// else can reach the socket, is closed unread past the secret's length.
// Once the host's is in, the socket is closed and removed.
func (a *Agent) listen(secret string) error {
	if len(secret) != SecretLen {
		return sandbox.Errorf(sandbox.CodeInternal, "agent: a socket secret must be %d hex digits", SecretLen)
	}
	path := filepath.Join(socketDir, SocketName)
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return sandbox.Errorf(sandbox.CodeInternal, "agent: %v", err)
	}
	go func() {
		defer ln.Close()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			got := make([]byte, SecretLen)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadFull(c, got)
			if err != nil || subtle.ConstantTimeCompare(got, []byte(secret)) != 1 {
				c.Close()
				continue
			}
			c.SetReadDeadline(time.Time{})
			ln.Close() // which removes the socket
			a.Serve(c, c)
			c.Close()
			return
		}
	}()
	return nil
}

// Configure sends the agent the session's limits (OpConfigure).
func (c *Conn) Configure(ctx context.Context, limits sandbox.Limits) error {
	_, _, err := c.call(ctx, Request{Op: OpConfigure, Limits: &limits}, nil)
	return err
}

// CloseAgent asks the agent to exit (OpClose), and closes the Conn.
func (c *Conn) CloseAgent(ctx context.Context) error {
	_, _, err := c.call(ctx, Request{Op: OpClose}, nil)
	c.Close()
	return err
}

// Listen asks the agent to serve on its socket the connection that starts
// with secret (SecretLen hex digits).
func (c *Conn) Listen(ctx context.Context, secret string) error {
	_, _, err := c.call(ctx, Request{Op: OpSocket, Secret: secret}, nil)
	return err
}

// Conn is the host's end of one agent's stream. Calls are serialised. Once
// the stream fails (a transport error, a protocol error, or a context
// cancelled mid-call) the Conn is broken for good: every later call fails
// at once, and the container behind it must be thrown away. A search or a
// list whose context is cancelled mid-call is the exception: the agent is
// sent an OpCancel, and its reply (a search's partial result), if it
// comes within CancelGrace, leaves the stream in step.
type Conn struct {
	mu     sync.Mutex
	r      *bufio.Reader
	closer io.Closer
	next   uint64
	broken error

	wmu  sync.Mutex // the writer, shared by a call and its OpCancel
	w    *bufio.Writer
	sent bool // the call's request was written in full

	cut   atomic.Bool // the transport was closed by a cancel
	grace *time.Timer // CancelGrace after an OpCancel was sent
}

// NewConn returns a Conn writing requests to w and reading replies from r.
// closer, if not nil, is closed when a call is cancelled, to unblock it.
func NewConn(w io.Writer, r io.Reader, closer io.Closer) *Conn {
	return &Conn{w: bufio.NewWriterSize(w, 64<<10), r: bufio.NewReaderSize(r, 64<<10), closer: closer}
}

// Err returns why the Conn is broken, or nil.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// Close breaks the Conn and closes its transport.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = errors.New("agent: connection closed")
	}
	if c.closer != nil {
		return c.closer.Close()
	}
	return nil
}

// call sends one request and reads its reply. A reply carrying an error
// code is returned as a *sandbox.Error; a broken stream as an error with
// code SANDBOX_ERROR. A ctx already done sends nothing: CANCELED.
func (c *Conn) call(ctx context.Context, req Request, body []byte) (Reply, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return Reply{}, nil, c.brokenError()
	}
	if err := ctx.Err(); err != nil {
		return Reply{}, nil, sandbox.AsError(err)
	}
	c.next++
	req.ID = c.next
	if req.Options != nil && req.Options.Recorder != nil {
		req.Record = true
	}
	c.wmu.Lock()
	c.sent = false // until roundTrip has written req
	c.wmu.Unlock()
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		c.interrupt(req)
	})
	rep, out, err := c.roundTrip(req, body)
	if !stop() {
		<-interrupted
		cut := c.cut.Load()
		if c.grace != nil && !c.grace.Stop() {
			cut = true // the transport is closed, or about to be
		}
		c.grace = nil
		if (err != nil || cut) && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err == nil && cut { // a reply read just before the close
			err = errors.New("agent: the stream was closed at a cancel")
		}
		// Otherwise the agent answered the OpCancel, in step: its
		// reply stands.
	}
	if err != nil {
		c.broken = err
		return Reply{}, nil, c.brokenError()
	}
	if rep.Code != "" {
		return rep, nil, &sandbox.Error{Code: rep.Code, Message: rep.Message, Detail: rep.Detail}
	}
	return rep, out, nil
}

// interrupt stops the call of req, whose context is done: a cancellable
// operation whose request was sent is sent an OpCancel, and given
// CancelGrace to reply; anything else has its transport closed, which
// unblocks the call and breaks the Conn.
func (c *Conn) interrupt(req Request) {
	if !cancellable[req.Op] {
		c.cutTransport()
		return
	}
	// The grace runs from now: the request may still be being written,
	// and the OpCancel's write may block, on a stuck agent.
	c.grace = time.AfterFunc(CancelGrace, c.cutTransport)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.sent {
		c.cutTransport()
		return
	}
	if err := WriteFrame(c.w, Request{ID: req.ID, Op: OpCancel}, nil); err != nil || c.w.Flush() != nil {
		c.cutTransport()
	}
}

// cutTransport closes the transport, to unblock a call being cancelled.
func (c *Conn) cutTransport() {
	c.cut.Store(true)
	if c.closer != nil {
		c.closer.Close()
	}
}

func (c *Conn) roundTrip(req Request, body []byte) (Reply, []byte, error) {
	c.wmu.Lock()
	err := WriteFrame(c.w, req, body)
	if err == nil {
		err = c.w.Flush()
	}
	c.sent = err == nil
	c.wmu.Unlock()
	if err != nil {
		return Reply{}, nil, err
	}
	var rec sandbox.Recorder
	if req.Options != nil {
		rec = req.Options.Recorder
	}
	intent, intended := uint64(0), false
	for {
		var rep Reply
		out, err := ReadFrame(c.r, &rep)
		if errors.Is(err, io.EOF) {
			err = errors.New("agent: the agent closed its stream (the container stopped)")
		}
		if err == nil && rep.ID != req.ID {
			err = fmt.Errorf("%w: reply %d to request %d", ErrProtocol, rep.ID, req.ID)
		}
		if err == nil && rep.Intend {
			if rec == nil || intended {
				return Reply{}, nil, fmt.Errorf("%w: changes to record for request %d, which did not ask for it or has them recorded", ErrProtocol, req.ID)
			}
			intended = true
			ans := &Recorded{}
			var changes []sandbox.PathChange
			if err := json.Unmarshal(out, &changes); err != nil {
				ans.Error = "the agent's changes do not decode: " + err.Error()
			} else if ans.Intent, err = rec.Intend(changes); err != nil {
				ans.Error = err.Error()
				intended = false
			}
			intent = ans.Intent
			c.wmu.Lock()
			err = WriteFrame(c.w, Request{ID: req.ID, Op: OpRecorded, Recorded: ans}, nil)
			if err == nil {
				err = c.w.Flush()
			}
			c.wmu.Unlock()
			if err != nil {
				return Reply{}, nil, err
			}
			continue
		}
		if err == nil && intended {
			// The outcome: the change was made when the request succeeded.
			// A stream that broke says nothing, and the intent stays open
			// for recovery to find on the disk.
			if rep.Code == "" {
				rec.Done(intent)
			} else {
				rec.Abort(intent, rep.Message)
			}
		}
		return rep, out, err
	}
}

func (c *Conn) brokenError() error {
	if errors.Is(c.broken, context.Canceled) || errors.Is(c.broken, context.DeadlineExceeded) {
		return &sandbox.Error{Code: sandbox.CodeCanceled, Message: c.broken.Error(), Err: c.broken}
	}
	return &sandbox.Error{Code: sandbox.CodeSandboxError, Message: "the sandbox container failed: " + c.broken.Error(), Err: c.broken}
}

// Ping checks the agent answers and returns its version.
func (c *Conn) Ping(ctx context.Context) (string, error) {
	rep, _, err := c.call(ctx, Request{Op: OpPing}, nil)
	return rep.Version, err
}

// Open reads a file.
func (c *Conn) Open(ctx context.Context, path string) (*sandbox.File, error) {
	rep, out, err := c.call(ctx, Request{Op: OpRead, Path: []byte(path), Options: optionsOf(ctx)}, nil)
	if err != nil {
		return nil, err
	}
	return &sandbox.File{Path: rep.Path, Content: out, Lines: rep.Lines}, nil
}

// Write writes a file.
func (c *Conn) Write(ctx context.Context, path string, content []byte) (*sandbox.WriteResult, error) {
	rep, _, err := c.call(ctx, Request{Op: OpWrite, Path: []byte(path), Options: optionsOf(ctx)}, content)
	if err != nil {
		return nil, err
	}
	return &sandbox.WriteResult{Path: rep.Path, Created: rep.Created, Bytes: rep.Bytes, HostTool: rep.HostTool}, nil
}

// Edit applies an edit's blocks to a file.
func (c *Conn) Edit(ctx context.Context, path string, body []byte) (*sandbox.EditResult, error) {
	rep, _, err := c.call(ctx, Request{Op: OpEdit, Path: []byte(path), Options: optionsOf(ctx)}, body)
	if err != nil {
		return nil, err
	}
	if rep.Edit == nil {
		return nil, &sandbox.Error{Code: sandbox.CodeSandboxError, Message: "agent: edit reply without a result"}
	}
	return rep.Edit, nil
}

// List lists a directory (see sandbox.Sandbox).
func (c *Conn) List(ctx context.Context, path string, recursive bool) (*sandbox.ListResult, error) {
	rep, _, err := c.call(ctx, Request{Op: OpList, Path: []byte(path), Recursive: recursive, Options: optionsOf(ctx)}, nil)
	if err != nil {
		return nil, err
	}
	if rep.List == nil {
		return nil, &sandbox.Error{Code: sandbox.CodeSandboxError, Message: "agent: list reply without a result"}
	}
	return rep.List, nil
}

// Resolve resolves a path (see sandbox.Sandbox).
func (c *Conn) Resolve(ctx context.Context, path string) (string, error) {
	rep, _, err := c.call(ctx, Request{Op: OpResolve, Path: []byte(path), Options: optionsOf(ctx)}, nil)
	return rep.Path, err
}

// Delete removes a file, a link or an empty directory (see sandbox.Sandbox).
func (c *Conn) Delete(ctx context.Context, path string) (*sandbox.DeleteResult, error) {
	rep, _, err := c.call(ctx, Request{Op: OpDelete, Path: []byte(path), Options: optionsOf(ctx)}, nil)
	if err != nil {
		return nil, err
	}
	if rep.Delete == nil {
		return nil, &sandbox.Error{Code: sandbox.CodeSandboxError, Message: "agent: delete reply without a result"}
	}
	return rep.Delete, nil
}

// Move renames src to dst (see sandbox.Sandbox).
func (c *Conn) Move(ctx context.Context, src, dst string) (*sandbox.MoveResult, error) {
	rep, _, err := c.call(ctx, Request{Op: OpMove, Path: []byte(src), To: []byte(dst), Options: optionsOf(ctx)}, nil)
	if err != nil {
		return nil, err
	}
	if rep.Move == nil {
		return nil, &sandbox.Error{Code: sandbox.CodeSandboxError, Message: "agent: move reply without a result"}
	}
	return rep.Move, nil
}

// Stat describes a path.
func (c *Conn) Stat(ctx context.Context, path string) (*sandbox.Info, error) {
	rep, _, err := c.call(ctx, Request{Op: OpStat, Path: []byte(path)}, nil)
	if err != nil {
		return nil, err
	}
	return rep.Stat, nil
}

// Manifest lists the agent's workspace as a replica (copy mode);
// owned says whether the agent can write it.
func (c *Conn) Manifest(ctx context.Context) (m []sandbox.CopyEntry, owned bool, err error) {
	rep, out, err := c.call(ctx, Request{Op: OpManifest}, nil)
	if err != nil {
		return nil, false, err
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, false, &sandbox.Error{Code: sandbox.CodeSandboxError, Message: "agent: a bad manifest: " + err.Error()}
	}
	return m, rep.Owned, nil
}

// Unpack applies a push to the agent's workspace (copy mode); body holds
// the content of its files, in order. It returns the objects made, as they
// are now.
func (c *Conn) Unpack(ctx context.Context, p Push, body []byte) ([]sandbox.CopyEntry, error) {
	_, out, err := c.call(ctx, Request{Op: OpUnpack, Push: &p}, body)
	if err != nil {
		return nil, err
	}
	var made []sandbox.CopyEntry
	if err := json.Unmarshal(out, &made); err != nil {
		return nil, &sandbox.Error{Code: sandbox.CodeSandboxError, Message: "agent: a bad unpack reply: " + err.Error()}
	}
	return made, nil
}

// Fetch returns the content of files of the agent's workspace, and what
// each was when read (a path no longer a regular file comes with its kind
// and no content; one gone, not at all).
func (c *Conn) Fetch(ctx context.Context, paths []string, max int64) ([]sandbox.CopyEntry, []byte, error) {
	f := Fetch{Max: max}
	for _, p := range paths {
		f.Paths = append(f.Paths, []byte(p))
	}
	_, out, err := c.call(ctx, Request{Op: OpFetch, Fetch: &f}, nil)
	if err != nil {
		return nil, nil, err
	}
	bad := &sandbox.Error{Code: sandbox.CodeSandboxError, Message: "agent: a bad fetch reply"}
	if len(out) < 4 {
		return nil, nil, bad
	}
	n := binary.BigEndian.Uint32(out)
	if uint64(n) > uint64(len(out)-4) {
		return nil, nil, bad
	}
	var got []sandbox.CopyEntry
	if err := json.Unmarshal(out[4:4+n], &got); err != nil {
		return nil, nil, bad
	}
	content := out[4+n:]
	var want int64
	for _, e := range got {
		if e.IsFile() && !e.Sparse {
			want += e.Size
		}
	}
	if want != int64(len(content)) {
		return nil, nil, bad
	}
	return got, content, nil
}

// Exec runs a command in the agent's container and returns its result
// and merged output.
func (c *Conn) Exec(ctx context.Context, req ExecRequest) (*ExecReply, []byte, error) {
	rep, out, err := c.call(ctx, Request{Op: OpExec, Exec: &req}, nil)
	if err != nil {
		return nil, nil, err
	}
	if rep.Exec == nil {
		return nil, nil, &sandbox.Error{Code: sandbox.CodeSandboxError, Message: "agent: exec reply without a result"}
	}
	return rep.Exec, out, nil
}

// Search searches the workspace.
func (c *Conn) Search(ctx context.Context, q parser.Query) (*sandbox.SearchResult, error) {
	text := q.Text
	q.Text = ""
	rep, _, err := c.call(ctx, Request{Op: OpSearch, Query: []byte(text), Search: &q, Options: optionsOf(ctx)}, nil)
	if err != nil {
		return nil, err
	}
	if rep.Search == nil {
		return nil, &sandbox.Error{Code: sandbox.CodeSandboxError, Message: "agent: search reply without a result"}
	}
	return rep.Search, nil
}
