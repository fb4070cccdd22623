// Package serve is llm-runtime's daemon (llm-runtime serve):
// a per-user process that holds warm pools of sandbox containers
// across invocations of the filter, on a unix socket only its user can
// reach.
//
// A filter run that finds the daemon sends it the run's resolved
// configuration and then its input, and gets back the very bytes it would
// have printed itself, and how the run ended (which the CLI turns into the
// same exit code). The daemon runs the run on the engine's operation path
// (policies, the sandbox, transforms, a durable audit record), on a pool
// keyed by the repository and every setting that shapes the sandbox.
//
// The protocol and its client side are package wire.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/llm-runtime/llm-runtime/internal/private"
	"github.com/llm-runtime/llm-runtime/serve/wire"

	"github.com/llm-runtime/llm-runtime/audit"
	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/engine"
	"github.com/llm-runtime/llm-runtime/output"
	"github.com/llm-runtime/llm-runtime/runtime/wasm"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Options configure a daemon.
type Options struct {
	// Socket is the socket's path (DefaultSocket when empty). Its directory
	// must be this user's alone; the default one is created.
	Socket string
	// Build is this binary's build (the version string): clients of
	// another build run on their own.
	Build string
	// Version is llm-runtime's version, for the Docker client.
	Version string
	// MaxPools and IdleExit are serve.max_pools and serve.idle_exit.
	MaxPools int
	IdleExit time.Duration
	// Logf, if set, gets what --verbose reports: connections, pools opened
	// and closed, and every pool event.
	Logf func(format string, args ...any)
	// Errorf gets what is said whatever --verbose: an internal error (a
	// panic, which is a bug) that ended a session, a connection or a
	// pool's opening, with its stack; the daemon serves on. Default:
	// standard error.
	Errorf func(format string, args ...any)
	// Audit is how the daemon opens audit stores: Debug (serve -vv) lets
	// Pebble's informational lines through to Audit.Log (nil: standard
	// error), where its errors go anyway.
	Audit audit.Options
	// Grace is how long a stop waits for running sessions before it
	// cancels them. Default 10 s.
	Grace time.Duration
}

// Daemon serves filter runs on a unix socket.
type Daemon struct {
	opts    Options
	ln      *net.UnixListener
	lock    *lockFile
	started time.Time

	ctx    context.Context // the daemon's: pools are opened under it
	cancel context.CancelFunc
	stop   chan struct{} // closed by Stop
	once   sync.Once

	mu         sync.Mutex
	pools      map[string]*poolEntry
	guests     map[string]*guestEntry
	logs       map[string]*audit.Log
	sessions   map[*session]bool
	served     uint64
	lastActive time.Time
	closing    sync.WaitGroup // pools being closed

	conns sync.WaitGroup
}

// Listen takes the socket: it makes sure its directory is private, takes
// the lock beside it (one daemon per socket), removes a socket a dead
// daemon left, and listens, 0600.
func Listen(opts Options) (*Daemon, error) {
	if opts.Socket == "" {
		opts.Socket = wire.DefaultSocket(os.Getenv)
	}
	if opts.MaxPools <= 0 {
		opts.MaxPools = 8
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	path, err := filepath.Abs(opts.Socket)
	if err != nil {
		return nil, err
	}
	opts.Socket = path
	if err := private.SocketPath(path); err != nil {
		return nil, err
	}
	if err := private.Dir(filepath.Dir(path), true); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	lk, err := lock(path + ".lock")
	if err != nil {
		return nil, err
	}
	// The lock is ours, so a socket there is a dead daemon's.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		lk.release()
		return nil, err
	}
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		lk.release()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	return &Daemon{opts: opts, ln: ln, lock: lk, started: now, ctx: ctx, cancel: cancel, stop: make(chan struct{}),
		pools: map[string]*poolEntry{}, guests: map[string]*guestEntry{}, logs: map[string]*audit.Log{},
		sessions: map[*session]bool{}, lastActive: now}, nil
}

// Socket is the path the daemon listens on.
func (d *Daemon) Socket() string { return d.opts.Socket }

func (d *Daemon) logf(format string, args ...any) {
	if d.opts.Logf != nil {
		d.opts.Logf(format, args...)
	}
}

// internalError is a panic recovered in the daemon: a bug of llm-runtime.
type internalError struct{ msg string }

func (e *internalError) Error() string { return e.msg }

// internal reports a panic recovered in what, with its stack, and returns
// it as an *internalError. It must be called by the deferred function
// that recovered v, so that the stack is the panic's.
func (d *Daemon) internal(what string, v any) error {
	err := &internalError{fmt.Sprintf("internal error (a bug of llm-runtime) in %s: %v", what, v)}
	msg := fmt.Sprintf("%v; the daemon serves on\n%s", err, debug.Stack())
	if d.opts.Errorf != nil {
		d.opts.Errorf("%s", msg)
	} else {
		fmt.Fprintf(os.Stderr, "llm-runtime serve: %s\n", msg)
	}
	return err
}

// Stop makes Serve return: it stops taking connections at once, waits for
// running sessions (Options.Grace, then cancels them) and closes every
// pool.
func (d *Daemon) Stop() {
	d.once.Do(func() {
		close(d.stop)
		d.ln.Close() // unblocks Accept
	})
}

// Serve serves until ctx ends, Stop, or serve.idle_exit passes with no
// pool and no client; then it closes everything: no container of its
// pools is left when it returns.
func (d *Daemon) Serve(ctx context.Context) error {
	go func() {
		select {
		case <-ctx.Done():
			d.Stop()
		case <-d.stop:
		}
	}()
	go d.sweep()
	var err error
	for {
		c, aerr := d.ln.AcceptUnix()
		if aerr != nil {
			select {
			case <-d.stop:
			default:
				err = aerr
				d.Stop()
			}
			break
		}
		d.conns.Add(1)
		go func() {
			defer d.conns.Done()
			defer func() {
				if v := recover(); v != nil {
					c.Close()
					d.internal("a connection", v)
				}
			}()
			d.handle(c)
		}()
	}
	d.shutdown()
	return err
}

// shutdown: no new connections (the socket is gone, so clients run on
// their own), running sessions finish or are cancelled, pools close.
func (d *Daemon) shutdown() {
	d.ln.Close()
	done := make(chan struct{})
	go func() { d.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.opts.Grace):
		d.logf("Stopping: cancelling the sessions still running after %s", d.opts.Grace)
		d.cancel()
		<-done
	}
	d.cancel()
	d.mu.Lock()
	pools := d.pools
	d.pools = map[string]*poolEntry{}
	d.mu.Unlock()
	for _, p := range pools {
		d.closePool(p, "the daemon stops")
	}
	d.closing.Wait()
	d.mu.Lock()
	d.closeIdleLocked()
	d.mu.Unlock()
	d.lock.release()
}

// sweep closes pools idle for their container_pool.idle_timeout, and
// stops the daemon after serve.idle_exit with no pool and no client.
func (d *Daemon) sweep() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			d.mu.Lock()
			for k, p := range d.pools {
				if p.sessions > 0 || !p.isReady() {
					continue
				}
				switch {
				case p.idle > 0 && now.Sub(p.lastUsed) >= p.idle:
					delete(d.pools, k)
					d.closePool(p, fmt.Sprintf("idle for %s (container_pool.idle_timeout)", p.idle))
				case rootID(p.root) != p.rootID:
					delete(d.pools, k)
					d.closePool(p, "the repository is gone (removed, or another directory in its place)")
				}
			}
			idle := len(d.sessions) == 0 && len(d.pools) == 0
			if idle {
				d.closeIdleLocked()
			}
			exit := idle && d.opts.IdleExit > 0 && now.Sub(d.lastActive) >= d.opts.IdleExit
			d.mu.Unlock()
			if exit {
				d.logf("Exiting: no pool and no client for %s (serve.idle_exit)", d.opts.IdleExit)
				d.Stop()
				return
			}
		}
	}
}

// closeIdleLocked closes the guests and audit logs no one uses. With
// d.mu held.
func (d *Daemon) closeIdleLocked() {
	for k, g := range d.guests {
		if g.users == 0 {
			delete(d.guests, k)
			g.chain.Close()
		}
	}
	if len(d.sessions) == 0 {
		for dir, l := range d.logs {
			delete(d.logs, dir)
			if err := l.Close(); err != nil {
				d.logf("Audit %s: %v", dir, err)
			}
		}
	}
}

// closePool closes a pool taken out of d.pools, in the background.
func (d *Daemon) closePool(p *poolEntry, why string) {
	d.closing.Add(1)
	go func() {
		defer d.closing.Done()
		<-p.ready
		if p.sb != nil {
			p.sb.Close()
		}
		d.logf("Pool closed: %s (%s): %s", p.root, p.sandbox, why)
		d.mu.Lock()
		d.lastActive = time.Now()
		d.mu.Unlock()
	}()
}

// poolEntry is a sandbox for one root and the settings that shape it.
type poolEntry struct {
	root, sandbox string
	rootID        string // the root's device and inode when the pool opened
	idle          time.Duration
	ready         chan struct{} // closed once sb or err is set
	sb            sandbox.Sandbox
	err           error

	// with Daemon.mu held
	retired  bool // out of Daemon.pools: closed when its last session ends
	sessions int
	runs     uint64
	lastUsed time.Time
	creator  atomic.Pointer[session] // gets the opening's log lines
}

func (p *poolEntry) isReady() bool {
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
}

type guestEntry struct {
	chain *wasm.Chain
	users int
}

// session is one connection's run.
type session struct {
	c       *wire.Conn
	verbose bool

	// The run's log lines wait for its acceptance: a new pool opens on
	// another goroutine and reports to the run that asked for it, and a
	// client reads the first frame after its hello as the answer to it.
	mu       sync.Mutex
	accepted bool
	pending  [][]byte
}

func (s *session) log(format string, args ...any) {
	if !s.verbose {
		return
	}
	line := fmt.Appendf(nil, format+"\n", args...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.accepted {
		s.pending = append(s.pending, line)
		return
	}
	s.c.Send(wire.FrameLog, line)
}

// accept tells the client that the run is the daemon's, then sends the
// log lines that came before.
func (s *session) accept(a wire.Accepted) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.c.SendJSON(wire.FrameAccepted, a); err != nil {
		return err
	}
	s.accepted = true
	for _, line := range s.pending {
		s.c.Send(wire.FrameLog, line)
	}
	s.pending = nil
	return nil
}

// notice sends a line the client prints whatever --verbose; with it, the
// log says the same.
func (s *session) notice(format string, args ...any) {
	if !s.verbose {
		s.c.Send(wire.FrameNotice, fmt.Appendf(nil, format+"\n", args...))
	}
}

func (d *Daemon) handle(nc *net.UnixConn) {
	defer nc.Close()
	if uid, err := wire.PeerUID(nc); err != nil || uid != os.Getuid() {
		d.logf("Refused a connection from uid %d (%v): this daemon serves uid %d only", uid, err, os.Getuid())
		return
	}
	c := wire.NewConn(nc)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, b, err := c.Recv()
	nc.SetReadDeadline(time.Time{})
	var h wire.Hello
	if err == nil && (typ != wire.FrameHello || json.Unmarshal(b, &h) != nil) {
		err = wire.ErrFrame
	}
	if err != nil {
		d.logf("A connection without a hello: %v", err)
		return
	}
	if h.Build != d.opts.Build {
		c.SendJSON(wire.FrameBusy, wire.Busy{Reason: fmt.Sprintf("the daemon is %s, the client %s", d.opts.Build, h.Build)})
		return
	}
	switch h.Op {
	case "status":
		c.SendJSON(wire.FrameReply, d.Status())
	case "stop":
		d.logf("Stopping: asked by a client")
		c.SendJSON(wire.FrameReply, map[string]any{"stopping": true, "pid": os.Getpid()})
		d.Stop()
	case "run":
		if h.Run == nil || h.Run.Config == nil {
			c.SendJSON(wire.FrameBusy, wire.Busy{Reason: "a run without its configuration"})
			return
		}
		d.run(c, h.Run)
	default:
		c.SendJSON(wire.FrameBusy, wire.Busy{Reason: fmt.Sprintf("unknown operation %q", h.Op)})
	}
}

// Status says what the daemon holds.
func (d *Daemon) Status() wire.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := wire.Status{PID: os.Getpid(), Build: d.opts.Build, Socket: d.opts.Socket, Started: d.started,
		Uptime: time.Since(d.started).Round(time.Second).String(), Sessions: len(d.sessions), Served: d.served, Pools: []wire.PoolStatus{}}
	for _, p := range d.pools {
		ps := wire.PoolStatus{Root: p.root, Sandbox: p.sandbox, Sessions: p.sessions, Runs: p.runs, LastUsed: p.lastUsed}
		if p.isReady() && p.sb != nil {
			s := engine.PoolStat(p.sb)
			ps.Idle, ps.InUse, ps.Total, ps.Containers = s.Idle, s.InUse, s.Total, s.Created
		}
		st.Pools = append(st.Pools, ps)
	}
	sort.Slice(st.Pools, func(i, j int) bool { return st.Pools[i].LastUsed.After(st.Pools[j].LastUsed) })
	return st
}

// kindOf is the End.Kind of an error of engine.Open's parts.
func kindOf(err error) string {
	var ee *engine.Error
	if errors.As(err, &ee) {
		switch ee.Kind {
		case engine.KindConfig:
			return "config"
		case engine.KindIO:
			return "io"
		}
	}
	return "sandbox"
}

var errClientGone = errors.New("the client went away")

// formatEnv shows a Docker environment, "none set" when empty.
func formatEnv(m map[string]string) string {
	if len(m) == 0 {
		return "no DOCKER_ variable set"
	}
	keys := slices.Sorted(maps.Keys(m))
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, " ")
}

func (d *Daemon) run(c *wire.Conn, req *wire.RunRequest) {
	cfg := req.Config
	s := &session{c: c, verbose: req.Verbose}
	if err := cfg.Validate(); err != nil {
		c.SendJSON(wire.FrameAccepted, wire.Accepted{PID: os.Getpid()})
		c.SendJSON(wire.FrameEnd, wire.End{Kind: "config", Message: err.Error()})
		return
	}
	if cfg.Sandbox != "local" && !maps.Equal(req.Docker, wire.DockerEnv(os.Getenv)) {
		c.SendJSON(wire.FrameBusy, wire.Busy{Reason: fmt.Sprintf("the run's Docker environment (%s) is not the daemon's (%s)", formatEnv(req.Docker), formatEnv(wire.DockerEnv(os.Getenv)))})
		return
	}
	if err := req.Own.Check(); err != nil {
		c.SendJSON(wire.FrameBusy, wire.Busy{Reason: "the client's own files: " + err.Error()})
		return
	}
	key, err := poolKey(req)
	if err != nil {
		c.SendJSON(wire.FrameBusy, wire.Busy{Reason: err.Error()})
		return
	}
	p, state, busy := d.acquirePool(key, req, s)
	if p == nil {
		c.SendJSON(wire.FrameBusy, wire.Busy{Reason: busy})
		return
	}
	defer d.releasePool(p)
	d.mu.Lock()
	d.sessions[s] = true
	d.served++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.sessions, s)
		d.lastActive = time.Now()
		d.mu.Unlock()
	}()
	if err := s.accept(wire.Accepted{PID: os.Getpid(), Pool: state}); err != nil {
		return
	}

	// The input: frames until its end; the connection closing before the
	// end (the client was killed) cancels the run, and so does a cancel.
	ctx, cancel := context.WithCancelCause(d.ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() {
		defer func() {
			if v := recover(); v != nil {
				err := d.internal("reading a session's input", v)
				pw.CloseWithError(err)
				cancel(err)
			}
		}()
		ended := false
		for {
			typ, b, err := c.Recv()
			if err != nil {
				if !ended {
					pw.CloseWithError(errClientGone)
				}
				cancel(errClientGone)
				return
			}
			switch typ {
			case wire.FrameInput:
				if !ended {
					pw.Write(b)
				}
			case wire.FrameEOF:
				ended = true
				pw.Close()
			case wire.FrameInputError:
				ended = true
				pw.CloseWithError(errors.New(string(b)))
			case wire.FrameCancel:
				cancel(context.Canceled)
			}
		}
	}()

	end := d.session(ctx, s, p, req, pr)
	var ie *internalError
	if errors.As(context.Cause(ctx), &ie) && end.Kind != "internal" {
		end.Kind, end.Message = "internal", ie.Error()
	}
	if context.Cause(ctx) == errClientGone {
		d.logf("Session %s: the client went away after %d commands", end.Session, end.Commands)
		return
	}
	c.SendJSON(wire.FrameEnd, end)
}

// sessionHook, if set, wraps the sandbox of every session. Only tests
// set it (the package's, and a build with the tag llmruntime_testhooks,
// testhooks.go), to make a session fail as a bug would.
var sessionHook func(sandbox.Sandbox) sandbox.Sandbox

// session runs one filter run on pool p, as the filter would itself. A
// panic in it (a bug) ends this session alone: its End says so ("internal"),
// its audit session gets a record of it, the daemon's error log gets its
// stack, and p is retired, as it may hold a container never given back.
func (d *Daemon) session(ctx context.Context, s *session, p *poolEntry, req *wire.RunRequest, in io.Reader) (end wire.End) {
	var w *audit.Writer
	defer func() {
		if v := recover(); v != nil {
			err := d.internal("a session on "+req.Root, v)
			end = wire.End{Kind: "internal", Message: err.Error() + "; this run ended here, the daemon serves on"}
			if w != nil {
				end.Session = w.Session()
				rec := &audit.Record{Time: time.Now(), Repo: req.Root, Op: "session", Outcome: audit.Error, Code: sandbox.CodeInternal,
					Reason: err.Error(), FrontEnd: "filter"}
				if aerr := w.Append(rec); aerr != nil {
					end.Message += "; its audit record could not be written: " + aerr.Error()
				}
			}
			d.retirePool(p)
		}
		if w != nil {
			w.Close()
		}
	}()
	<-p.ready
	if p.err != nil {
		return wire.End{Kind: kindOf(p.err), Message: p.err.Error()}
	}
	cfg := req.Config
	settings := d.settings(req)
	guests, gkey, err := d.acquireGuests(ctx, cfg)
	if err != nil {
		return wire.End{Kind: "config", Message: err.Error()}
	}
	defer d.releaseGuests(gkey)
	if guests != nil {
		s.log("Guests: %d policies, %d transforms (the daemon's, compiled once)", len(cfg.Policies), len(cfg.Transforms))
	}
	if cfg.Audit.Enabled {
		l, err := d.auditLog(req.AuditDir)
		if err != nil {
			return wire.End{Kind: "io", Message: err.Error()}
		}
		w = l.Writer(audit.NewSession())
		s.log("Audit: session %s in %s", w.Session(), req.AuditDir)
	}
	sb := p.sb
	if sessionHook != nil {
		sb = sessionHook(sb)
	}
	r := engine.NewRunner(settings, sb, guests, w)
	ch, err := engine.OpenChanges(settings, r)
	if err != nil {
		return wire.End{Kind: kindOf(err), Message: err.Error()}
	}
	if ch != nil {
		defer ch.Close()
	}
	rep, err := output.NewWith(cfg.Output.Format, wire.FrameWriter{C: s.c, Typ: wire.FrameOutput}, output.Options{LineNumbers: cfg.Output.LineNumbers})
	if err != nil {
		return wire.End{Kind: "config", Message: err.Error()}
	}
	r.Report = rep
	sum, err := r.Run(ctx, in)
	end = wire.End{Commands: sum.Commands, Failed: sum.Failed, Elapsed: sum.Elapsed, Session: r.Session}
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		end.Kind = "interrupted"
	default:
		end.Kind, end.Message = "input", err.Error()
	}
	return end
}

// settings are the engine's settings of a run.
func (d *Daemon) settings(req *wire.RunRequest) engine.Settings {
	return engine.Settings{Root: req.Root, Given: req.Given, ConfigFile: req.ConfigFile, Config: req.Config, AuditDir: req.AuditDir, JournalDir: req.JournalDir,
		Client: &req.Own, FrontEnd: "filter", Version: d.opts.Version}
}

// acquirePool finds or opens the pool of key, counting the session in it;
// nil and why when every pool is busy and there are serve.max_pools.
func (d *Daemon) acquirePool(key string, req *wire.RunRequest, s *session) (*poolEntry, string, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if p := d.pools[key]; p != nil {
		p.sessions++
		p.runs++
		p.lastUsed = now
		return p, "warm", ""
	}
	if len(d.pools) >= d.opts.MaxPools {
		var lru string
		for k, p := range d.pools {
			if p.sessions == 0 && p.isReady() && (lru == "" || p.lastUsed.Before(d.pools[lru].lastUsed)) {
				lru = k
			}
		}
		if lru == "" {
			return nil, "", fmt.Sprintf("all %d pools are in use (serve.max_pools)", d.opts.MaxPools)
		}
		old := d.pools[lru]
		delete(d.pools, lru)
		d.closePool(old, "the least recently used, for a new one (serve.max_pools)")
	}
	cfg := req.Config
	p := &poolEntry{root: req.Root, rootID: rootID(req.Root), sandbox: sandboxName(cfg), idle: cfg.ContainerPool.IdleTimeout, ready: make(chan struct{}),
		sessions: 1, runs: 1, lastUsed: now}
	p.creator.Store(s)
	d.pools[key] = p
	settings := d.settings(req)
	settings.PoolEvents = true
	settings.Log = func(format string, args ...any) {
		d.logf(format, args...)
		if s := p.creator.Load(); s != nil {
			s.log(format, args...)
		}
	}
	settings.Notice = func(format string, args ...any) {
		if s := p.creator.Load(); s != nil {
			s.notice(format, args...)
		}
	}
	go func() {
		var sb sandbox.Sandbox
		err := func() (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = d.internal("opening the pool of "+req.Root, v)
				}
			}()
			sb, err = engine.OpenSandbox(d.ctx, settings)
			return err
		}()
		p.creator.Store(nil)
		d.mu.Lock()
		p.sb, p.err = sb, err
		if err != nil && d.pools[key] == p {
			delete(d.pools, key) // the next run tries again
		}
		d.mu.Unlock()
		close(p.ready)
		if err == nil {
			d.logf("Pool opened: %s (%s)", p.root, p.sandbox)
		}
	}()
	return p, "new", ""
}

func (d *Daemon) releasePool(p *poolEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p.sessions--
	p.lastUsed = time.Now()
	if p.retired && p.sessions == 0 {
		d.closePool(p, "a session on it ended in an internal error")
	}
}

// retirePool takes p out of the pools after an internal error in one of
// its sessions: it may hold a container that was never given back, or a
// state no one checked. The sessions on it go on; the next run of its key
// opens a new pool, and p closes when its last session ends.
func (d *Daemon) retirePool(p *poolEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, q := range d.pools {
		if q == p {
			delete(d.pools, k)
		}
	}
	p.retired = true
}

func sandboxName(cfg *config.Config) string {
	switch {
	case cfg.Sandbox == "local":
		return "local"
	case !cfg.ContainerPool.Enabled:
		return "docker-unpooled"
	}
	return "docker"
}

// fileID names a file by identity and version, so that a key changes when
// the file is replaced or rewritten.
func fileID(path string) string {
	var st syscall.Stat_t
	if path == "" || syscall.Stat(path, &st) != nil {
		return path
	}
	return fmt.Sprintf("%s@%d:%d:%d:%d", path, st.Dev, st.Ino, st.Size, st.Mtim.Nano())
}

// rootID is a directory's device and inode ("" when it is gone).
func rootID(dir string) string {
	var st syscall.Stat_t
	if syscall.Stat(dir, &st) != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// poolKey is what shapes a sandbox: the root by identity (a directory
// removed and made again is another), the configuration file and the
// guests (their files are protected), the client's own files (protected
// too, by path and by the identity they have now), and the settings of
// the sandbox, the pool and exec.
func poolKey(req *wire.RunRequest) (string, error) {
	cfg := req.Config
	var st syscall.Stat_t
	if err := syscall.Stat(req.Root, &st); err != nil {
		return "", fmt.Errorf("the root: %v", err)
	}
	var modules []string
	for _, g := range slices.Concat(cfg.Policies, cfg.Transforms) {
		modules = append(modules, g.Module)
	}
	b, err := json.Marshal(struct {
		Root       string
		Dev, Ino   uint64
		ConfigFile string
		Sandbox    string
		Security   config.Security
		Search     config.Search
		List       config.List
		Pool       config.Pool
		Exec       config.Exec
		Workspace  string
		CopyMax    int64
		Kubernetes config.Kubernetes
		Modules    []string
		Own        []string
	}{req.Root, st.Dev, st.Ino, fileID(req.ConfigFile), cfg.Sandbox, cfg.Security, cfg.Search, cfg.List, cfg.ContainerPool, cfg.Exec, cfg.SandboxWorkspace, cfg.SandboxCopyMaxSize, cfg.Kubernetes, modules, ownKey(req.Own)})
	return string(b), err
}

// ownKey is a client's own files by path, and its binary also by
// identity (a replaced binary is protected by its new identity in a pool
// of its own). The directories and caches are keyed by path alone: the
// runs themselves make them (the caches, the agent's sum), and clients
// started together would each have had a pool of their own. A pool
// protects them by path inside the repository whether they exist or not,
// and by identity those that existed when it opened, as a run of its own
// does for its whole length.
func ownKey(o paths.Own) []string {
	out := o.Paths()
	if o.Binary != "" {
		out = append(out, rootID(o.Binary))
	}
	return out
}

// acquireGuests compiles a configuration's guests once per module (by
// identity and version) and guest configuration, and shares them.
func (d *Daemon) acquireGuests(ctx context.Context, cfg *config.Config) (*wasm.Chain, string, error) {
	if len(cfg.Policies)+len(cfg.Transforms) == 0 {
		return nil, "", nil
	}
	type spec struct {
		wasm.Spec
		File string
	}
	key := func(gs []config.Guest) []spec {
		var out []spec
		for _, s := range engine.GuestSpecs(gs) {
			out = append(out, spec{s, fileID(s.Path)})
		}
		return out
	}
	b, _ := json.Marshal([2][]spec{key(cfg.Policies), key(cfg.Transforms)})
	k := string(b)
	d.mu.Lock()
	if g := d.guests[k]; g != nil {
		g.users++
		d.mu.Unlock()
		return g.chain, k, nil
	}
	d.mu.Unlock()
	chain := wasm.Start(d.ctx, engine.GuestSpecs(cfg.Policies), engine.GuestSpecs(cfg.Transforms))
	if err := chain.Wait(); err != nil {
		chain.Close()
		return nil, "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if g := d.guests[k]; g != nil { // compiled meanwhile by another session
		chain.Close()
		g.users++
		return g.chain, k, nil
	}
	d.guests[k] = &guestEntry{chain: chain, users: 1}
	return chain, k, nil
}

func (d *Daemon) releaseGuests(key string) {
	if key == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if g := d.guests[key]; g != nil {
		g.users--
	}
}

// auditLog is the daemon's open segment of the store at dir: every
// session's records go to it, so that concurrent runs share its syncs.
func (d *Daemon) auditLog(dir string) (*audit.Log, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l := d.logs[dir]; l != nil {
		return l, nil
	}
	l, err := audit.OpenLog(dir, d.opts.Audit)
	if err != nil {
		return nil, err
	}
	d.logs[dir] = l
	return l, nil
}
