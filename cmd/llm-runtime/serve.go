package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/internal/filtercli"
	"github.com/llm-runtime/llm-runtime/internal/private"
	"github.com/llm-runtime/llm-runtime/serve"
	"github.com/llm-runtime/llm-runtime/serve/wire"
)

// serveCmd is the daemon and its two questions.
type serveCmd struct {
	Start  serveStartCmd  `cmd:"" default:"withargs" help:"Run the daemon in the foreground (the default)."`
	Status serveStatusCmd `cmd:"" help:"Print the daemon's pools, containers and sessions."`
	Stop   serveStopCmd   `cmd:"" help:"Ask the daemon to stop: it finishes its runs and removes its containers."`
}

type socketFlag struct {
	Socket string `placeholder:"PATH" help:"The daemon's socket. Default: $XDG_RUNTIME_DIR/llm-runtime/serve.sock, else /tmp/llm-runtime-UID/serve.sock (~/.local/state/llm-runtime/run/serve.sock when another user took that); the 'server' setting, when it names a socket."`
}

// path is the socket: the flag, else the server setting when it is a
// path, else the default.
func (f socketFlag) path(e env, cfg *config.Config) (string, error) {
	if f.Socket != "" {
		return filepath.Abs(f.Socket)
	}
	if filepath.IsAbs(cfg.Server) {
		return cfg.Server, nil
	}
	return wire.DefaultSocket(e.getenv), nil
}

// getenv is the value of key in the environment e was given.
func (e env) getenv(key string) string { return filtercli.Getenv(e.environ)(key) }

const serveHelp = `Run a per-user daemon that keeps warm pools of sandbox containers between
invocations of the filter. A model loop runs the filter once per reply; on
its own each run starts a container (~0.2 s), while through the daemon it
finds one already running. The filter uses the daemon by itself when its
socket answers (the 'server' setting: auto, never, or a socket's path;
--server, $LLM_RUNTIME_SERVER), and prints the same bytes and exits with the
same code either way.

The socket is $XDG_RUNTIME_DIR/llm-runtime/serve.sock, or, when that variable
is unset, /tmp/llm-runtime-UID/serve.sock, in a 0700 directory; the daemon
serves its own user only (the peer's uid is checked on every connection).
It keeps a pool per repository and sandbox settings (at most serve.max_pools,
the least recently used closed first), closes a pool idle for its
container_pool.idle_timeout, and exits after serve.idle_exit with no pool and
no client. Every run is its own audit session, durable before its result.
A run through it refuses what a run of its own refuses: the client sends
where its binary, configuration and caches are, and the daemon guards them
with its own, whatever its own environment. A bug that panics in a run ends
that run alone (exit 70, its stack on the daemon's standard error).
SIGINT or SIGTERM stops it, removing every container; kill -9 does too, as
each container's agent exits when its stream closes.

Exit codes of 'serve status' and 'serve stop' follow systemctl and the LSB
init scripts: status exits 0 when a daemon answers and 3 when none does (a
check: 'llm-runtime serve status >/dev/null || llm-runtime serve &'); stop
exits 0 when a daemon is stopping and when none was running (there is nothing
left to stop, so 'serve stop' is safe in any script), and 3 only when a daemon
answers but cannot be asked to stop.

Examples:

  llm-runtime serve &                        # then run the filter as usual
  llm-runtime serve --verbose                # connections, pools, pool events
  llm-runtime serve -vv                      # and the audit store's own log
  llm-runtime serve status                   # pools, containers, sessions, uptime
  llm-runtime serve stop
  echo '<open go.mod>' | llm-runtime --server never   # without the daemon`

func (serveCmd) Help() string { return serveHelp }

type serveStartCmd struct {
	socketFlag
}

func (serveStartCmd) Help() string { return serveHelp }

func (s *serveStartCmd) Run(e env, c *cli) error {
	// The daemon's own settings: serve.*, from the user's configuration
	// (or --config) and the environment; each run brings its own.
	_, _, cfg, err := c.load(e, nil)
	if err != nil {
		return err
	}
	path, err := s.path(e, cfg)
	if err != nil {
		return fail(exitUsage, "--socket: %v", err)
	}
	if why := private.Squatted(e.getenv); why != "" && path == wire.DefaultSocket(e.getenv) {
		fmt.Fprintf(e.stderr, "Note: %s (set XDG_RUNTIME_DIR to choose)\n", why)
	}
	opts := serve.Options{Socket: path, Build: versionString(), Version: version, MaxPools: cfg.Serve.MaxPools, IdleExit: cfg.Serve.IdleExit,
		Audit: c.auditOptions(e)}
	opts.Errorf = func(format string, args ...any) {
		fmt.Fprintf(e.stderr, time.Now().Format("15:04:05.000 ")+"llm-runtime serve: "+format+"\n", args...)
	}
	if c.verbose() {
		opts.Logf = func(format string, args ...any) {
			fmt.Fprintf(e.stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
		}
	}
	d, err := serve.Listen(opts)
	if err != nil {
		return fail(exitSandbox, "serve: %v", err)
	}
	if c.verbose() {
		opts.Logf("Serving on %s (pid %s; at most %d pools; exits after %s idle)", d.Socket(), strconv.Itoa(os.Getpid()), cfg.Serve.MaxPools, orNever(cfg.Serve.IdleExit))
	}
	if err := d.Serve(e.ctx); err != nil {
		return fail(exitUsage, "serve: %v", err)
	}
	return nil
}

func orNever(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return d.String()
}

type serveStatusCmd struct {
	socketFlag
	JSON bool `name:"json" help:"Print the status as JSON."`
}

func (serveStatusCmd) Help() string {
	return `That is: its pid, uptime and socket, then a line for each pool with the
repository, the sandbox, its containers idle and in use, its sessions and runs.

Exit codes, as systemctl status and the LSB's status: 0 a daemon answers;
3 none answers on the socket (it is not running), or it answers wrongly;
2 the configuration is invalid.

Examples:

  llm-runtime serve status
  llm-runtime serve status --json | jq '.pools[].root'
  llm-runtime serve status >/dev/null 2>&1 || (llm-runtime serve &)   # start one if none runs`
}

func (s *serveStatusCmd) Run(e env, c *cli) error {
	_, _, cfg, err := c.load(e, nil)
	if err != nil {
		return err
	}
	path, err := s.path(e, cfg)
	if err != nil {
		return fail(exitUsage, "--socket: %v", err)
	}
	st, err := wire.GetStatus(path, versionString(), 5*time.Second)
	if errors.Is(err, wire.ErrNoDaemon) {
		return fail(exitSandbox, "no llm-runtime serve answers on %s (start one with 'llm-runtime serve &')", path)
	}
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	if s.JSON {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}
	fmt.Fprintf(e.stdout, "llm-runtime serve, pid %d, up %s, on %s\n", st.PID, st.Uptime, st.Socket)
	fmt.Fprintf(e.stdout, "%s running, %s served, %s\n", plural(st.Sessions, "session"), plural(int(st.Served), "run"), plural(len(st.Pools), "pool"))
	if len(st.Pools) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROOT\tSANDBOX\tIDLE\tIN USE\tTOTAL\tSESSIONS\tRUNS\tLAST USED")
	for _, p := range st.Pools {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s ago\n", p.Root, p.Sandbox, p.Idle, p.InUse, p.Total, p.Sessions, p.Runs, time.Since(p.LastUsed).Round(time.Second))
	}
	return tw.Flush()
}

type serveStopCmd struct {
	socketFlag
}

func (serveStopCmd) Help() string {
	return `The daemon takes no new run, finishes those running (or cancels them after
10 s), removes its containers and exits. 'serve stop' returns once the daemon
has the request, not when it has exited.

Exit codes, as systemctl stop and the LSB's stop: 0 the daemon is stopping,
and 0 too when none answers on the socket (it says so: there is nothing to
stop, and a script that stops it twice does not fail); 3 a daemon answers but
the request fails; 2 the configuration is invalid.

Examples:

  llm-runtime serve stop
  llm-runtime serve stop --socket /run/user/1000/llm-runtime/serve.sock`
}

func (s *serveStopCmd) Run(e env, c *cli) error {
	_, _, cfg, err := c.load(e, nil)
	if err != nil {
		return err
	}
	path, err := s.path(e, cfg)
	if err != nil {
		return fail(exitUsage, "--socket: %v", err)
	}
	pid, err := wire.RequestStop(path, versionString(), 5*time.Second)
	if errors.Is(err, wire.ErrNoDaemon) {
		fmt.Fprintf(e.stdout, "no llm-runtime serve answers on %s: nothing to stop\n", path)
		return nil
	}
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	fmt.Fprintf(e.stdout, "llm-runtime serve (pid %d) is stopping: it finishes its runs and removes its containers\n", pid)
	return nil
}

// served runs the filter through the daemon, when the server setting
// allows and one takes the run (filtercli.Served).
func (r *runCmd) served(e env, c *cli, root, file string, cfg *config.Config, in io.Reader, out io.Writer) (handled bool, err error) {
	return filtercli.Served(e.ctx, filtercli.Client{Globals: &c.Globals, Build: versionString(), Own: e.own(), Getenv: e.getenv, Stderr: e.stderr},
		root, file, cfg, in, out)
}
