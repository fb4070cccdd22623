package container

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/mount"

	"github.com/llm-runtime/llm-runtime/egress"
	"github.com/llm-runtime/llm-runtime/pool"
	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
	"github.com/llm-runtime/llm-runtime/sandbox"
	"github.com/llm-runtime/llm-runtime/whitelist"
)

// ExecOptions configure <exec>.
type ExecOptions struct {
	Image     string   // a local image; nothing is pulled
	Agent     string   // the static agent binary, mounted into the container
	Writable  bool     // apply the command's changes to the repository (through the rules of a write)
	Whitelist []string // argument-vector prefixes; "*" allows anything
	Shell     bool     // run under /bin/sh -c, allowing |, &&, || and ;
	Timeout   time.Duration
	MaxOutput int64
	Memory    int64
	CPUs      float64 // the container's CPUs; default 1
	PIDs      int64
	TmpSize   int64  // the command's /tmp: a private, executable tmpfs; default 512 MiB
	Runtime   string // the daemon's OCI runtime for exec containers (runsc); "" its default
	StateDir  string // the repositories' copies and build caches; paths.ExecStateDir's default when empty
	// Copy, set in copy mode, is the sandbox image (which holds the agent
	// and owns new volumes): the copy, the build caches and the agent are
	// in volumes, and nothing of the host is mounted; CopyMaxSize bounds
	// the replica (default DefaultCopyMaxSize).
	Copy        string
	CopyMaxSize int64
	// MaxChanges and MaxDepth bound a command's changeset (default
	// sandbox.DefaultMaxChanges, DefaultMaxDepth); CopyMaxSize bounds the
	// copy on disk, in every mode.
	MaxChanges, MaxDepth int
	// Rest is how long the copy is idle before its watches are released
	// (default restAfter(0)).
	Rest time.Duration
	// Has says whether the image has a program a command names
	// (ExecImage.Has): a command whose program it has not is refused
	// before a container starts. Nil: every program is taken to be there.
	Has func(program string) bool
	// Env holds NAME=VALUE variables set for every command, over the
	// image's and exec's own (exec.env).
	Env []string
	// GoSeed is the image's precompiled standard library (ExecImage's):
	// when set, each command's go gets GOCACHEPROG, the agent's cache
	// program, which reads it and writes what go compiles into the
	// repository's own build cache. "": go uses that cache alone.
	GoSeed string
	// Network, set for exec.network allowlist, is the egress proxy each
	// command's connections go through (its Policy, and for tests its
	// Resolver and Dial; OnConn is set per command). The container still
	// has no network interface: the agent listens on its loopback and
	// carries each connection over a unix socket in the agent's socket
	// directory to this process, which serves the proxy there. Nil: no
	// network at all.
	Network *egress.Proxy
}

// GVisorPIDs is what an exec container under gVisor (runsc) may hold
// beyond exec.pids, for gVisor's own threads: an idle sandbox holds ~40
// tasks (runc's: 1), and a cold go test of a small module needed more
// than 128 in all, measured here (runsc 20221219, ptrace platform).
const GVisorPIDs = 256

// agentMount is where the agent binary is mounted in exec containers, and
// agentVolumeMount where, in copy mode, the volume holding it is.
const (
	agentMount       = "/.llm-runtime-agent"
	agentVolumeMount = "/.llm-runtime-agent.d"
)

// CacheMount is where an exec container sees its repository's build
// caches, which persist across commands and runs (and are never shared
// between repositories); execCacheEnv points the usual tools there.
const CacheMount = "/.llm-runtime-cache"

var execCacheEnv = []string{
	"TMPDIR=/tmp",
	"XDG_CACHE_HOME=" + CacheMount,
	"GOCACHE=" + CacheMount + "/go-build",
	"GOMODCACHE=" + CacheMount + "/go-mod",
	"npm_config_cache=" + CacheMount + "/npm",
	"PIP_CACHE_DIR=" + CacheMount + "/pip",
	"CARGO_HOME=" + CacheMount + "/cargo",
}

// GoModulesDir is the directory of StateDir that holds the Go module
// download cache the user's repositories share (exec.go_proxy), which
// only this process writes (egress.Modules); no repository's.
const GoModulesDir = "go-modules"

// RepoStateDir is the directory of StateDir that belongs to the
// repository at root (its real path): the first 16 hex digits of the
// path's SHA-256, which a file "root" in it names.
func RepoStateDir(stateDir, root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(stateDir, hex.EncodeToString(sum[:8]))
}

// execRunner runs each command in a container of its own, started ahead of
// time: a pool whose containers serve one use each, so nothing from one
// exec (processes, /tmp) is seen by the next. Every container mounts the
// repository's copy (sandbox.Mirror), not the repository: the copy is
// brought up to date before each command, and what the command changed in
// it is applied afterwards through the rules of a write, or discarded.
type execRunner struct {
	opts  ExecOptions
	white whitelist.List
	pool  *pool.Pool[*Container]
	destroyer

	turn   chan struct{} // one command at a time on the copy: held while sent to
	ws     *sandbox.Workspace
	mirror *sandbox.Mirror
	// In copy mode: the copy's replica, and the copy's tree as a workspace
	// (pull writes what a command changed there).
	replica *replica
	tree    *sandbox.Workspace
	checked bool // the copy was checked (prepare); held by turn
	idle    *resting
	env     []string // each command's environment, over the image's
}

// restAfter is how long a copy is left idle before its inotify watches
// on the repository are released (sandbox.Mirror.Rest): a minute, or
// container_pool.idle_timeout if it is shorter.
func restAfter(idleTimeout time.Duration) time.Duration {
	if idleTimeout > 0 && idleTimeout < time.Minute {
		return idleTimeout
	}
	return time.Minute
}

// resting releases a mirror's watches once it has been idle for a while:
// the mirror's users call busy when they start using it and idle when they
// stop; rest runs after, unless they came back.
type resting struct {
	t *time.Timer
	d time.Duration
}

// newResting calls rest when d passes after idle with no busy between.
func newResting(d time.Duration, rest func()) *resting {
	r := &resting{t: time.AfterFunc(time.Hour, rest), d: d}
	r.t.Stop()
	return r
}

func (r *resting) busy() { r.t.Stop() }
func (r *resting) idle() { r.t.Reset(r.d) }

func newExecRunner(d *Docker, root string, limits sandbox.Limits, labels map[string]string, o ExecOptions) (*execRunner, error) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.TmpSize <= 0 {
		o.TmpSize = 512 << 20
	}
	base, ws, m, dir, err := openCopy(o.StateDir, root, limits, "copy", "exec")
	if err != nil {
		return nil, err
	}
	m.SetBounds(sandbox.Bounds{MaxChanges: o.MaxChanges, MaxDepth: o.MaxDepth, MaxSize: cmp.Or(o.CopyMaxSize, DefaultCopyMaxSize)})
	x := &execRunner{opts: o, white: whitelist.New(o.Whitelist), ws: ws, mirror: m, turn: make(chan struct{}, 1)}
	pids := o.PIDs
	if o.Runtime != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		path, err := d.CheckRuntime(ctx, o.Runtime)
		cancel()
		if err != nil {
			m.Close()
			ws.Close()
			return nil, fmt.Errorf("exec.runtime: %w", err)
		}
		if filepath.Base(path) == "runsc" {
			// gVisor's own kernel and file proxy are tasks of the
			// container too (an idle one holds ~40): the command gets
			// its exec.pids beside them.
			pids = cmp.Or(pids, defaultPIDs) + GVisorPIDs
		}
	}
	x.idle = newResting(cmp.Or(o.Rest, restAfter(0)), func() {
		select {
		case x.turn <- struct{}{}: // no command runs: none will until it is done
			x.mirror.Rest()
			<-x.turn
		default: // a command runs, and sets the timer again when it ends
		}
	})
	spec := Spec{
		Image:     o.Image,
		Workspace: m.Tree(),
		Role:      "exec",
		Labels:    labels,
		Memory:    o.Memory,
		NanoCPUs:  int64(o.CPUs * 1e9),
		PIDs:      pids,
		Agent:     o.Agent,
		AgentArgs: warmArgs(x.white.Programs()),
		Tmpfs:     "rw,nosuid,nodev,exec,size=" + strconv.FormatInt(o.TmpSize, 10),
		Runtime:   o.Runtime,
		// The egress proxy's socket is in the agent's socket directory.
		Socket: o.Network != nil,
	}
	fail := func(err error) (*execRunner, error) {
		m.Close()
		ws.Close()
		return nil, err
	}
	agentPath := agentMount
	if o.Copy != "" {
		// Copy mode: the copy goes to a volume of its own through each
		// command's container, and what the command changed comes back
		// (pull) before Finish judges it; the build caches are a volume;
		// the agent comes from a volume too.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if x.replica, err = newReplica(ctx, d, o.Copy, ws, m, dir, root, labels); err != nil {
			return fail(err)
		}
		x.replica.maxSize = cmp.Or(o.CopyMaxSize, DefaultCopyMaxSize)
		if x.tree, err = sandbox.OpenWorkspace(m.Tree(), sandbox.Limits{}); err != nil {
			return fail(err)
		}
		cache := VolumeName(filepath.Join(base, "cache"))
		created, err := d.ensureVolume(ctx, cache, "cache", root, filepath.Join(base, "cache"), labels)
		if err == nil && created && os.Getuid() != 0 {
			err = d.ownVolume(ctx, o.Copy, cache)
		}
		if err == nil {
			spec.AgentVolume, err = d.agentVolume(ctx, o.Copy, labels)
		}
		if err != nil {
			x.tree.Close()
			return fail(err)
		}
		spec.Workspace, spec.Volume, spec.Agent = "", x.replica.volume, ""
		spec.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: cache, Target: CacheMount}}
		agentPath = agentVolumeMount + "/llm-runtime"
	} else {
		cache := filepath.Join(base, "cache")
		if err := os.MkdirAll(cache, 0o700); err != nil {
			return fail(fmt.Errorf("exec's state: %v", err))
		}
		spec.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: cache, Target: CacheMount}}
	}
	env := slices.Clone(execCacheEnv)
	if o.GoSeed != "" {
		// The agent's cache program layers the image's seed under the
		// repository's own build cache (package gocache's layout, beside
		// GOCACHE, which go still uses for its test results).
		env = append(env, "GOCACHEPROG="+agentPath+" agent --gocacheprog --gocache-base="+o.GoSeed+" --gocache-dir="+CacheMount+"/go-prog")
	}
	if o.Network != nil && o.Network.GoModules != nil {
		// The shared module cache, which the host's proxy answers.
		env = append(env, "GOPROXY=http://"+egress.ModulesHost)
	}
	x.env = append(env, o.Env...) // the user's last: it wins
	p, err := pool.New(pool.Config[*Container]{
		Create:  func(ctx context.Context) (*Container, error) { return d.Start(ctx, spec) },
		Destroy: x.destroyer.destroy,
		// Two containers always ready: a client that runs two commands
		// in a row (go build, then go test) finds the second warm too,
		// instead of waiting for a container to start (130-140 ms here,
		// against 5-6 ms warm: BenchmarkExecTrueBackToBack).
		// The second starts once the first has been ready a moment, so
		// that a run that execs at once does not wait on two starts, and
		// one that never execs, and ends soon, starts only one.
		MaxSize:    3,
		MinSize:    2,
		SpareDelay: 500 * time.Millisecond,
		MaxUses:    1,
	})
	if err != nil {
		if x.tree != nil {
			x.tree.Close()
		}
		return fail(err)
	}
	x.pool = p
	// The copy is left as it is until the first command: a run that execs
	// nothing copies nothing (the first container starts all the same, on
	// the copy's directory, so that the command does not wait for it).
	return x, nil
}

// warmArgs are an exec container's agent's arguments: threads kept in
// reserve, and the PATH looked up and the whitelist's programs read while
// the container waits in the pool (agent.Warm: --warm, or --warm-path
// when the whitelist names none).
func warmArgs(programs []string) []string {
	if len(programs) == 0 {
		return []string{"--reserve-threads", "12", "--warm-path"}
	}
	return []string{"--reserve-threads", "12", "--warm", strings.Join(programs, ",")}
}

// prepare, at the first command (x.turn held), checks the copy: anything
// left in it that the record does not know goes, so that the Sync before
// each command brings it to the repository's version.
func (x *execRunner) prepare() {
	if x.checked {
		return
	}
	x.checked = true
	x.mirror.Check()
}

// pull brings what the command changed in the replica into the copy,
// through c if its agent vouched that nothing runs on, else through a new
// container of the pool, which it then destroys.
func (x *execRunner) pull(ctx context.Context, c *Container, alone bool) error {
	if !alone || c.Err() != nil {
		r, err := x.pool.Acquire(ctx)
		if err != nil {
			x.replica.forget()
			return err
		}
		defer r.Destroy()
		c = r.Value()
	}
	return x.replica.pull(ctx, c.Conn, x.tree)
}

func (x *execRunner) close() {
	x.idle.busy()
	x.destroyer.closing.Store(true)
	x.pool.Close()
	x.mirror.Stop()
	x.turn <- struct{}{}
	defer func() { <-x.turn }()
	if x.replica != nil {
		x.replica.close(false)
		x.tree.Close()
	}
	x.mirror.Close()
	x.ws.Close()
}

// run validates and runs one command line.
func (x *execRunner) run(ctx context.Context, line string) (*sandbox.ExecResult, error) {
	cmd, err := whitelist.Parse(line, x.opts.Shell)
	if err != nil {
		return nil, err
	}
	if err := x.white.Check(cmd, x.opts.Writable); err != nil {
		return nil, err
	}
	if x.opts.Has != nil {
		for _, s := range cmd {
			if p := s.Argv[0]; !x.opts.Has(p) {
				return nil, sandbox.Errorf(sandbox.CodeExecValidation, "the exec image %s has no program %q on its PATH, so nothing was run; "+
					"the user can name an image that has it in exec.image (llm-runtime image build go makes one with Go)", x.opts.Image, p)
			}
		}
	}
	argv := cmd[0].Argv
	if x.opts.Shell {
		argv = []string{"/bin/sh", "-c", line}
	}
	// The agent kills the command at the timeout; the host gives it a
	// margin before it gives up on the container itself.
	timeout, limit := x.opts.Timeout, "exec.timeout"
	if t := sandbox.OptionsFrom(ctx).Timeout; t > 0 && t < timeout {
		timeout, limit = t, "the timeout asked for"
	}
	hctx, cancel := context.WithTimeout(ctx, timeout+15*time.Second)
	defer cancel()
	timing := sandbox.TimingFrom(ctx)
	start := time.Now()
	select {
	case x.turn <- struct{}{}:
		x.idle.busy()
		defer func() { <-x.turn; x.idle.idle() }()
	case <-hctx.Done():
		return nil, sandbox.AsError(hctx.Err())
	}
	// A call that is cancelled (a signal, a client's cancel) does not wait
	// for a long copy; the mirror goes on serving the next one.
	stop := context.AfterFunc(ctx, x.mirror.Interrupt)
	defer stop()
	x.prepare()
	if x.replica == nil {
		if _, err := x.mirror.Sync(); err != nil {
			if e := sandbox.AsError(err); e.Code == sandbox.CodeResourceLimit {
				return nil, e
			}
			return nil, sandbox.Errorf(sandbox.CodeSandboxError, "bringing exec's copy of the repository up to date: %v", err)
		}
	}
	r, err := x.pool.Acquire(hctx)
	timing.Wait += time.Since(start)
	if err == nil {
		timing.Container, timing.Pooled = r.Value().Name, true
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil, sandbox.AsError(err)
		}
		return nil, unavailable(err)
	}
	c := r.Value()
	if x.replica != nil {
		// Copy mode: the copy, brought up to date, goes to the replica.
		if err := x.replica.refresh(hctx, c.Conn); err != nil {
			r.Destroy()
			return nil, err
		}
	}
	req := agent.ExecRequest{
		Argv:      argv,
		Dir:       "/workspace",
		TimeoutMS: timeout.Milliseconds(),
		MaxOutput: x.opts.MaxOutput,
		Env:       x.env,
	}
	var egr *egressServer
	if x.opts.Network != nil {
		if egr, err = serveEgress(hctx, c, *x.opts.Network); err != nil {
			r.Destroy()
			return nil, err
		}
		defer egr.close()
		req.Proxy = filepath.Join(agent.SocketDir, agent.EgressSocket)
	}
	rep, out, err := c.Exec(hctx, req)
	alone := rep != nil && rep.Alone
	if !alone {
		// The agent could not vouch that nothing runs on: wait until the
		// container is gone before the copy is looked at.
		r.Destroy()
		select {
		case <-c.Exited():
		case <-time.After(10 * time.Second):
		}
	} else {
		defer r.Destroy() // one use: nothing survives into the next exec
	}
	apply := x.opts.Writable && ctx.Err() == nil
	var perr error
	if x.replica != nil {
		// Copy mode: what the command changed in the replica comes back
		// into the copy, read by this container's agent, or, if it could
		// not vouch that nothing runs on, by the next container's, once
		// this one is gone. What cannot be read is not applied.
		if perr = x.pull(hctx, c, alone); perr != nil {
			apply = false
		}
	}
	// Whatever the command did, its changes are applied or discarded, and
	// the copy put back, before anything else. A cancelled command's
	// changes are discarded: no one asked for them any more; and so are
	// they all when the call is cancelled, or its time is up, before they
	// are put in place (sandbox.Mirror.Finish).
	changes, ferr := x.mirror.Finish(hctx, apply)
	if ferr == nil && perr != nil {
		ferr = perr
	}
	res := &sandbox.ExecResult{ExitCode: -1}
	res.Changes, res.Omitted = sandbox.ListChanges(changes)
	if egr != nil {
		res.Network = egr.close()
	}
	// A command that did not come back has no exit code or output to
	// show; its changes, if any, are shown all the same.
	partial := res
	if len(changes) == 0 {
		partial = nil
	}
	var refusal *sandbox.Error // the changeset as a whole was refused
	switch e := sandbox.AsError(ferr); {
	case ferr == nil:
	case ctx.Err() != nil:
		return partial, sandbox.AsError(ctx.Err())
	case errors.Is(ferr, context.DeadlineExceeded):
		return partial, sandbox.Errorf(sandbox.CodeExecTimeout, "its changes were still being applied at %s (%s) after it started: none of them were applied", timeout+15*time.Second, limit)
	case e.Code == sandbox.CodeResourceLimit:
		refusal = e
	default:
		return partial, sandbox.Errorf(sandbox.CodeSandboxError, "what the command changed could not be read: %v; nothing was applied", ferr)
	}
	if e := sandbox.AsError(err); e != nil && e.Code == sandbox.CodeSandboxError && ctx.Err() == nil {
		return partial, sandbox.Errorf(sandbox.CodeExecFailed, "the command brought its container down (exec.pids %d, exec.memory %s); the container is gone and nothing else was touched (%s)", x.opts.PIDs, sandbox.FormatSize(x.opts.Memory), e.Message)
	}
	if err != nil {
		return partial, err
	}
	if rep.Dropped > 0 {
		out = append(out, fmt.Sprintf("\n[... output truncated: %s more (exec.max_output is %s) ...]\n",
			sandbox.FormatSize(rep.Dropped), sandbox.FormatSize(x.opts.MaxOutput))...)
	}
	res.ExitCode, res.Duration, res.Output = rep.ExitCode, time.Duration(rep.DurationNS), out
	switch {
	case refusal != nil:
		return res, refusal
	case rep.TimedOut:
		return res, sandbox.Errorf(sandbox.CodeExecTimeout, "killed after %s (%s); exit code 124; its output so far follows. %s", timeout, limit, retryHint(cmd, timeout < x.opts.Timeout, x.opts.Timeout))
	case rep.ExitCode == 137:
		return res, sandbox.Errorf(sandbox.CodeExecFailed, "exit code 137: killed (out of memory, exec.memory %s, or the process limit)", sandbox.FormatSize(x.opts.Memory))
	case rep.ExitCode != 0:
		return res, sandbox.Errorf(sandbox.CodeExecFailed, "exit code %d", rep.ExitCode)
	}
	return res, nil
}

// goCached are the go commands that compile, into the build cache that
// persists between commands (GOCACHE, under CacheMount): killed at the
// timeout, they leave what they compiled there for the next.
var goCached = map[string]bool{"build": true, "test": true, "vet": true, "install": true, "run": true, "list": true, "generate": true}

// retryHint says whether running a command killed at its timeout again can
// help: shorter says the timeout was shorter than exec.timeout, limit.
func retryHint(cmd whitelist.Command, shorter bool, limit time.Duration) string {
	cached := false
	for _, s := range cmd {
		for i, w := range s.Argv[:max(len(s.Argv)-1, 0)] {
			if whitelist.ProgramName(w) == "go" && goCached[s.Argv[i+1]] {
				cached = true
			}
		}
	}
	switch {
	case shorter:
		return fmt.Sprintf("A retry with more time (up to exec.timeout, %s) may succeed.", limit)
	case cached:
		return "A retry will likely get further, or succeed: the go build cache persists between commands and keeps what this one compiled."
	}
	return "A retry will likely be killed again: it would do the same work; do less at once (one package, one test, a narrower path)."
}
