package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/pool"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// openSandbox builds the sandbox the configuration names. Docker problems
// are exit 3 with a message that says how to fix them; there is no silent
// fallback to the local sandbox.
func openSandbox(e env, cfg *config.Config, root, file string, verbose bool) (sandbox.Sandbox, error) {
	paths, ids, inside := protection(root, file, cfg)
	limits := sandbox.Limits{
		MaxFileSize:      cfg.Security.MaxFileSize,
		MaxWriteSize:     cfg.Security.MaxWriteSize,
		Excluded:         cfg.Security.ExcludedPaths,
		WriteProtected:   paths,
		Protected:        ids,
		MaxSearchResults: cfg.Search.MaxResults,
		MaxLineLength:    cfg.Search.MaxLineLength,
		SearchTimeout:    cfg.Search.Timeout,
		MaxListEntries:   cfg.List.MaxEntries,
	}
	logf := func(format string, args ...any) {
		if verbose {
			fmt.Fprintf(e.stderr, format+"\n", args...)
		}
	}
	logf("Repository root: %s", root)
	logf("Configuration: %s", orDefaults(file))
	for _, g := range inside {
		logf("Warning: %s (%s) is inside the repository: the sandbox refuses to write it, but anything else that can write the repository (an exec with exec.writable, another program) can change what the next run does; keep it outside", g.what, g.path)
	}
	if cfg.Sandbox == "local" {
		sb, err := sandbox.NewLocal(root, limits)
		if err != nil {
			return nil, fail(exitSandbox, "sandbox local: %v", err)
		}
		logf("Sandbox: local (no container boundary; exec disabled)")
		if cfg.Exec.Enabled {
			logf("Exec enabled: false (exec.enabled is true, but the local sandbox cannot exec; <exec> answers EXEC_DISABLED)")
		} else {
			logf("Exec enabled: false (the local sandbox cannot exec)")
		}
		return sb, nil
	}
	d, bin, err := dockerAndAgent(e.ctx)
	if err != nil {
		return nil, err
	}
	img, err := d.EnsureImage(e.ctx, bin)
	if err != nil {
		d.Close()
		return nil, fail(exitSandbox, "sandbox image: %v", err)
	}
	if img.Created {
		logf("Image: built %s", img.Ref)
	} else {
		logf("Image: %s", img.Ref)
	}
	reaper, err := startReaper(bin)
	if err != nil {
		logf("No reaper (containers being created at a kill -9 would wait for the next start's sweep): %v", err)
	}
	p := cfg.ContainerPool
	opts := container.Options{
		Root:   root,
		Limits: limits,
		Image:  img.Ref,
		Pool: container.PoolOptions{
			Enabled:             p.Enabled,
			Size:                p.Size,
			MaxUsesPerContainer: p.MaxUsesPerContainer,
			IdleTimeout:         p.IdleTimeout,
			HealthCheckInterval: p.HealthCheckInterval,
			StartupContainers:   p.StartupContainers,
			SpareDelay:          p.SpareDelay,
			AcquireTimeout:      p.AcquireTimeout,
		},
	}
	if verbose {
		opts.OnEvent = func(ev pool.Event[*container.Container]) { logEvent(e, ev) }
	}
	if x := cfg.Exec; x.Enabled {
		ok, err := d.HasImage(e.ctx, x.Image)
		if err != nil {
			d.Close()
			return nil, fail(exitSandbox, "%v", err)
		}
		if !ok {
			d.Close()
			hint := "name a local image in exec.image"
			if x.Image == container.ExecImageName {
				hint = "build it with 'llm-runtime image build exec' (from Debian's busybox-static), or " + hint
			}
			return nil, fail(exitSandbox, "exec.image %s is not on this machine and is never pulled; %s", x.Image, hint)
		}
		opts.Exec = &container.ExecOptions{
			Image: x.Image, Agent: bin, Writable: x.Writable, Whitelist: x.Whitelist, Shell: x.Shell,
			Timeout: x.Timeout, MaxOutput: x.MaxOutput, Memory: x.Memory, PIDs: x.PIDs, TmpSize: x.TmpSize, StateDir: x.StateDir,
		}
		mode, shell := "changes discarded", "no shell"
		if x.Writable {
			mode = "changes applied through the rules of <write>"
		}
		if x.Shell {
			shell = "under /bin/sh"
		}
		logf("Exec enabled: true (container mode: a fresh container of %s per command, on a copy of the repository, %s, %s, timeout %s)", x.Image, mode, shell, x.Timeout)
	} else {
		logf("Exec enabled: false (exec.enabled is false; --exec turns it on)")
	}
	sb, err := container.NewSandbox(d, opts)
	if err != nil {
		d.Close()
		return nil, fail(exitSandbox, "sandbox docker: %v", err)
	}
	// The sweep runs beside the pool's start: listing containers can wait
	// on one Docker is still removing (a previous run's) for ~10-20 ms.
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
		defer cancel()
		if n, err := d.Sweep(ctx); err == nil && n > 0 {
			logf("Removed %d orphaned container(s) of llm-runtime processes that are gone", n)
		}
	}()
	if p.Enabled {
		logf("Sandbox: docker, pooled (size %d, %d kept ready, spares after %s; recycled after %d uses)", p.Size, p.StartupContainers, p.SpareDelay, p.MaxUsesPerContainer)
	} else {
		logf("Sandbox: docker, unpooled (a container per operation)")
	}
	return closers{sb, d, reaper, swept}, nil
}

func dockerAndAgent(ctx context.Context) (*container.Docker, string, error) {
	d, err := container.Connect(ctx, version)
	if err != nil {
		return nil, "", fail(exitSandbox, "%v", err)
	}
	bin, err := container.AgentBinary()
	if err != nil {
		d.Close()
		return nil, "", fail(exitSandbox, "%v", err)
	}
	return d, bin, nil
}

func logEvent(e env, ev pool.Event[*container.Container]) {
	name := ""
	if ev.Value != nil {
		name = ev.Value.Name
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pool: %s #%d %s", ev.Kind, ev.ID, name)
	if ev.Took > 0 {
		fmt.Fprintf(&b, " in %s", ev.Took.Round(time.Millisecond))
	}
	switch ev.Kind {
	case pool.EventCreated, pool.EventCreateFailed, pool.EventFirstUse:
	default:
		fmt.Fprintf(&b, " after %s", plural(ev.Uses, "use"))
	}
	if ev.Err != nil {
		fmt.Fprintf(&b, ": %v", ev.Err)
	}
	fmt.Fprintf(&b, " (%d idle, %d in use, %d total)", ev.Stats.Idle, ev.Stats.InUse, ev.Stats.Total)
	fmt.Fprintln(e.stderr, b.String())
}

// closers closes a sandbox, waits for the start-up sweep, closes the Docker
// connection under them, then dismisses the reaper: after a clean close
// there is nothing to reap.
type closers struct {
	sandbox.Sandbox
	d      *container.Docker
	reaper *os.Process
	swept  <-chan struct{}
}

func (c closers) Close() error {
	err := c.Sandbox.Close()
	<-c.swept
	c.d.Close()
	if c.reaper != nil {
		c.reaper.Kill()
	}
	return err
}

// startReaper starts "llm-runtime reaper", a small process that outlives
// this one by an instant: the kernel signals it when we die (PDEATHSIG), and
// it removes what we left; after a clean close we kill it instead, as there
// is nothing to remove. Closing the agents' input already takes care of
// running containers when we are killed; the reaper covers the ones being
// created at that moment, which have no agent yet. It shares none of our
// standard streams, so a reader of our output sees its end when we exit.
func startReaper(bin string) (*os.Process, error) {
	cmd := exec.Command(bin, "reaper", "--owner", strconv.Itoa(os.Getpid()))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go cmd.Wait()
	return cmd.Process, nil
}

type reaperCmd struct {
	Owner int `required:"" help:"The process whose containers to remove when it exits."`
}

func (r reaperCmd) Run(e env) error {
	if os.Getppid() == r.Owner {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		for os.Getppid() == r.Owner {
			select {
			case <-sig:
			case <-time.After(time.Second):
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := container.Connect(ctx, version)
	if err != nil {
		return err
	}
	defer d.Close()
	// Containers still being created appear a moment later: look twice.
	for range 2 {
		if _, err := d.RemoveOwned(ctx, r.Owner); err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
	}
	return nil
}
