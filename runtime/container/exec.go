package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/mount"

	"github.com/llm-runtime/llm-runtime/pool"
	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// ExecOptions configure <exec>.
type ExecOptions struct {
	Image     string   // a local image; nothing is pulled
	Agent     string   // the static agent binary, mounted into the container
	Writable  bool     // mount the repository read-write (.git stays read-only)
	Whitelist []string // argument-vector prefixes; "*" allows anything
	Shell     bool     // run under /bin/sh -c, allowing |, &&, || and ;
	Timeout   time.Duration
	MaxOutput int64
	Memory    int64
	PIDs      int64
}

// agentMount is where the agent binary is mounted in exec containers.
const agentMount = "/.llm-runtime-agent"

// execRunner runs each command in a container of its own, started ahead of
// time: a pool whose containers serve one use each, so nothing from one
// exec (processes, /tmp) is seen by the next.
type execRunner struct {
	opts  ExecOptions
	white whitelist
	pool  *pool.Pool[*Container]
	destroyer
}

func newExecRunner(d *Docker, root string, labels map[string]string, o ExecOptions) (*execRunner, error) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	spec := Spec{
		Image:     o.Image,
		Workspace: root,
		ReadOnly:  !o.Writable,
		Role:      "exec",
		Labels:    labels,
		Memory:    o.Memory,
		PIDs:      o.PIDs,
		Agent:     o.Agent,
		AgentArgs: []string{"--reserve-threads", "12"},
	}
	if o.Writable {
		if fi, err := os.Stat(filepath.Join(root, ".git")); err == nil && fi.IsDir() {
			spec.Mounts = append(spec.Mounts, mount.Mount{Type: mount.TypeBind, Source: filepath.Join(root, ".git"), Target: "/workspace/.git", ReadOnly: true})
		}
	}
	x := &execRunner{opts: o, white: newWhitelist(o.Whitelist)}
	p, err := pool.New(pool.Config[*Container]{
		Create:  func(ctx context.Context) (*Container, error) { return d.Start(ctx, spec) },
		Destroy: x.destroyer.destroy,
		MaxSize: 2,
		MinSize: 1, // one container always ready
		MaxUses: 1,
	})
	if err != nil {
		return nil, err
	}
	x.pool = p
	return x, nil
}

func (x *execRunner) close() {
	x.destroyer.closing.Store(true)
	x.pool.Close()
}

// run validates and runs one command line.
func (x *execRunner) run(ctx context.Context, line string) (*sandbox.ExecResult, error) {
	cmd, err := parseCommand(line, x.opts.Shell)
	if err != nil {
		return nil, err
	}
	if err := x.white.check(cmd, x.opts.Writable); err != nil {
		return nil, err
	}
	argv := cmd[0].argv
	if x.opts.Shell {
		argv = []string{"/bin/sh", "-c", line}
	}
	// The agent kills the command at the timeout; the host gives it a
	// margin before it gives up on the container itself.
	hctx, cancel := context.WithTimeout(ctx, x.opts.Timeout+15*time.Second)
	defer cancel()
	start := time.Now()
	r, err := x.pool.Acquire(hctx)
	timing := sandbox.TimingFrom(ctx)
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
	defer r.Destroy() // one use: nothing survives into the next exec
	rep, out, err := r.Value().Exec(hctx, agent.ExecRequest{
		Argv:      argv,
		Dir:       "/workspace",
		TimeoutMS: x.opts.Timeout.Milliseconds(),
		MaxOutput: x.opts.MaxOutput,
	})
	if e := sandbox.AsError(err); e != nil && e.Code == sandbox.CodeSandboxError && ctx.Err() == nil {
		return nil, sandbox.Errorf(sandbox.CodeExecFailed, "the command brought its container down (exec.pids %d, exec.memory %s); the container is gone and nothing else was touched (%s)", x.opts.PIDs, sandbox.FormatSize(x.opts.Memory), e.Message)
	}
	if err != nil {
		return nil, err
	}
	if rep.Dropped > 0 {
		out = append(out, fmt.Sprintf("\n[... output truncated: %s more (exec.max_output is %s) ...]\n",
			sandbox.FormatSize(rep.Dropped), sandbox.FormatSize(x.opts.MaxOutput))...)
	}
	res := &sandbox.ExecResult{ExitCode: rep.ExitCode, Duration: time.Duration(rep.DurationNS), Output: out}
	switch {
	case rep.TimedOut:
		return res, sandbox.Errorf(sandbox.CodeExecTimeout, "killed after %s (exec.timeout); exit code 124", x.opts.Timeout)
	case rep.ExitCode == 137:
		return res, sandbox.Errorf(sandbox.CodeExecFailed, "exit code 137: killed (out of memory, exec.memory %s, or the process limit)", sandbox.FormatSize(x.opts.Memory))
	case rep.ExitCode != 0:
		return res, sandbox.Errorf(sandbox.CodeExecFailed, "exit code %d", rep.ExitCode)
	}
	return res, nil
}
