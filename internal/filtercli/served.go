package filtercli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/llm-runtime/llm-runtime/internal/proc"
	"github.com/llm-runtime/llm-runtime/output"
	"github.com/llm-runtime/llm-runtime/serve/wire"
)

// Client is who hands a run to the daemon: llm-runtime, or its thin
// client.
type Client struct {
	Globals *Globals
	Build   string              // the build's version string, which the daemon's must equal
	Own     paths.Own           // the client's own files, which the daemon guards
	Getenv  func(string) string // the client's environment
	Stderr  io.Writer
	// HandsOn: a run the daemon does not take goes to another process,
	// which tries the daemon again and says why it did not take it (the
	// thin client's llm-runtime): Served does not say it.
	HandsOn bool
}

// Served runs the filter through the daemon, when the server setting
// allows and one takes the run. handled is false when the run is to run
// here: no daemon (auto), or one that is busy, of another build, or does
// not answer within container_pool.acquire_timeout (auto).
func Served(ctx context.Context, c Client, root, file string, cfg *config.Config, in io.Reader, out io.Writer) (handled bool, err error) {
	path := cfg.Server
	explicit := path != "auto"
	if !explicit {
		path = wire.DefaultSocket(c.Getenv)
	}
	req, err := runRequest(c, root, file, cfg)
	if err != nil {
		return true, err
	}
	req.Docker = wire.DockerEnv(c.Getenv)
	var logw io.Writer
	if c.Globals.Verbosely() {
		logw = c.Stderr
	}
	run := &wire.Run{Socket: path, Build: c.Build, Request: req, Timeout: cfg.ContainerPool.AcquireTimeout, In: in, Out: out, Log: logw, Notice: c.Stderr}
	started, err := run.Start()
	if err != nil {
		if explicit {
			return true, Fail(ExitSandbox, "server %s: %v", path, err)
		}
		if c.Globals.Verbosely() && !c.HandsOn && !errors.Is(err, wire.ErrNoDaemon) {
			fmt.Fprintf(c.Stderr, "Server: not used (%v); running on a pool of this run's own\n", err)
		}
		return false, nil
	}
	if c.Globals.Verbosely() {
		fmt.Fprintf(c.Stderr, "Server: llm-runtime serve (pid %d) on %s, pool %s\n", started.PID, path, started.Pool)
	}
	end, err := started.Wait(ctx)
	if err != nil {
		return true, Fail(ExitSandbox, "server %s: %v", path, err)
	}
	if c.Globals.Verbosely() {
		fmt.Fprintf(c.Stderr, "Commands: %d, failed: %d, time: %s, peak memory: %s (this client's)\n", end.Commands, end.Failed, end.Elapsed.Round(time.Microsecond), PeakRSS())
	}
	switch end.Kind {
	case "":
		return true, nil
	case "interrupted":
		return true, Fail(ExitInterrupted, "interrupted after %s", output.Plural(end.Commands, "command"))
	case "config":
		return true, Fail(ExitConfig, "%s", end.Message)
	case "sandbox":
		return true, Fail(ExitSandbox, "%s", end.Message)
	case "internal":
		return true, Fail(ExitInternal, "server %s: %s (the daemon's standard error has its stack; please report it)", path, end.Message)
	}
	return true, Fail(ExitUsage, "%s", end.Message)
}

// runRequest is the run as resolved here, with every path the daemon
// would otherwise resolve against its own directory or environment made
// absolute: guests, the configuration file, the audit store, exec's state;
// and this process's own files (its binary, configuration directory and
// caches), which the daemon guards with its own.
func runRequest(c Client, root, file string, cfg *config.Config) (*wire.RunRequest, error) {
	// A copy: the run falls back to itself with cfg as it was.
	own := *cfg
	own.Policies, own.Transforms = slices.Clone(cfg.Policies), slices.Clone(cfg.Transforms)
	cfg = &own
	req := &wire.RunRequest{Root: root, Config: cfg, Verbose: c.Globals.Verbosely(), Own: c.Own}
	if abs, err := filepath.Abs(c.Globals.Root); err == nil && abs != root {
		req.Given = abs
	}
	if file != "" {
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, Fail(ExitConfig, "%s: %v", file, err)
		}
		req.ConfigFile = abs
	}
	for _, gs := range [][]config.Guest{cfg.Policies, cfg.Transforms} {
		for i := range gs {
			abs, err := filepath.Abs(gs[i].Module)
			if err != nil {
				return nil, Fail(ExitConfig, "%s: %v", gs[i].Module, err)
			}
			gs[i].Module = abs
		}
	}
	if cfg.Audit.Enabled {
		dir, err := AuditDir(c.Globals.AuditDir, cfg, root)
		if err != nil {
			return nil, err
		}
		req.AuditDir = dir
	}
	if cfg.Journal.Enabled {
		dir, err := JournalDir(cfg, root)
		if err != nil {
			return nil, err
		}
		req.JournalDir = dir
	}
	if cfg.Exec.Enabled && cfg.Exec.StateDir == "" {
		if dir, err := paths.ExecStateDir(cfg.Exec.StateDir); err == nil {
			cfg.Exec.StateDir = dir
		}
	}
	return req, nil
}

// PeakRSS is the process's peak resident set (VmHWM), for --verbose.
func PeakRSS() string {
	if v, ok := proc.SelfStatus("VmHWM"); ok {
		return v
	}
	return "unknown"
}

// Version is "llm-runtime VERSION COMMIT GO OS/ARCH": the version
// and commit that make build stamps in (-X main.version, -X main.commit,
// passed here), a thin client's as llm-runtime's,
// else what the Go toolchain recorded (a module version, vcs.revision,
// which -buildvcs=false leaves out); the commit is cut to 12 digits and
// left out when unknown.
func Version(version, commit string) string {
	v, c := version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
	}
	if c != "" {
		c = " " + c[:min(12, len(c))]
	}
	return fmt.Sprintf("llm-runtime %s%s %s %s/%s", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
