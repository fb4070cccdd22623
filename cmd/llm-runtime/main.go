// Command llm-runtime runs the commands a language model writes in its
// replies (<open>, <write>, <exec>, <search>) against one repository, in a
// sandbox, and prints their results for the model to read.
//
// This file is the CLI wiring only: flags, building the pieces, and turning
// errors into exit codes.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/audit"
	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/engine"
	"github.com/llm-runtime/llm-runtime/gocache"
	"github.com/llm-runtime/llm-runtime/internal/filtercli"
	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/llm-runtime/llm-runtime/output"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// version and commit are set at build time by make build, with -ldflags
// "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

// Exit codes (filtercli's, which the thin client exits with too).
const (
	exitOK          = filtercli.ExitOK
	exitUsage       = filtercli.ExitUsage
	exitConfig      = filtercli.ExitConfig
	exitSandbox     = filtercli.ExitSandbox
	exitInternal    = filtercli.ExitInternal
	exitInterrupted = filtercli.ExitInterrupted
)

func fail(code int, format string, args ...any) error { return filtercli.Fail(code, format, args...) }

// env is what a command may use of the process: its streams and
// environment, injected so that tests can run the CLI in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
	ctx            context.Context
}

type cli struct {
	filtercli.Globals
	V kong.VersionFlag `name:"version" help:"Print the version and exit."`

	Run        runCmd        `cmd:"" default:"withargs" help:"Run the commands in model output (the default command)."`
	Config     configCmd     `cmd:"" help:"Print the configuration in force and where each value comes from."`
	Version    versionCmd    `cmd:"" help:"Print the version."`
	Image      imageCmd      `cmd:"" help:"Build, inspect or prune the images of ours."`
	Audit      auditCmd      `cmd:"" help:"Query the audit log: list, stats, verify, export, checkpoint."`
	Policy     policyCmd     `cmd:"" help:"Try or check a WebAssembly policy or transform guest."`
	Bench      benchCmd      `cmd:"" help:"Measure pooled against unpooled containers on this machine."`
	Cache      cacheCmd      `cmd:"" help:"List or remove exec's copies of repositories and their build caches."`
	Changes    changesCmd    `cmd:"" help:"List and show the changes the journal recorded (journal.enabled)."`
	Undo       undoCmd       `cmd:"" help:"Put back what a checkpoint changed, if nothing changed it since (journal.enabled)."`
	Redo       redoCmd       `cmd:"" help:"Take back the last undo."`
	Prompt     promptCmd     `cmd:"" help:"Print a system prompt that teaches a model the command language as configured."`
	MCP        mcpCmd        `cmd:"" name:"mcp" help:"Serve the repository to an MCP client over standard input and output."`
	Serve      serveCmd      `cmd:"" help:"Keep warm pools between runs of the filter: a per-user daemon on a unix socket."`
	Kubernetes kubernetesCmd `cmd:"" help:"Print the manifests that keep agent pods warm on Kubernetes (agent-sandbox)."`
	Agent      agentCmd      `cmd:"" hidden:"" help:"Serve the sandbox protocol on stdin/stdout (run inside sandbox containers)."`
	Reaper     reaperCmd     `cmd:"" hidden:"" help:"Remove the containers of a process once it is gone (started by the Docker sandbox)."`
}

const description = `Run the commands a language model writes in its reply against one repository,
inside a sandbox, and print their results for the model to read. The default
sandbox is a pool of hardened Docker containers that see only the repository
(no network, no privileges); the image is built locally on first use.

The model writes prose with commands in it:

  <open PATH>                       print a file
  <open PATH:N-M>                   print lines N to M (PATH:N- to the end)
  <list PATH>                       list a directory (<list> the root, PATH/** all under it)
  <write PATH>CONTENT</write>       create or replace a file, atomically
  <write:EOF PATH>...</write:EOF>   the same, for content that holds </write>
  <edit PATH>BLOCKS</edit>          change a file with SEARCH/REPLACE blocks, all or none
  <search QUERY>                    search text files (re:PATTERN for a regexp,
                                    QUERY in GLOB for some files, -C N for context)
  <exec COMMAND>                    run a command in a fresh container (--exec)

'llm-runtime prompt' prints a system prompt that teaches all of this to a model.

Examples:

  echo 'Read configs: <open config.yaml> <open api.yaml>' | llm-runtime
  llm-runtime --input reply.txt --output results.txt
  llm-runtime --root ~/src/project --format jsonl < reply.txt
  llm-runtime --line-numbers < reply.txt   # "    12<TAB>" before each line of a file
  llm-runtime --exec -v < reply.txt   # allow <exec>; report pool activity
  llm-runtime --sandbox local < reply.txt   # no Docker: host only, no exec
  llm-runtime config            # the settings in force, and where they come from
  llm-runtime image status      # the sandbox image and our containers

Settings come from flags, else LLM_RUNTIME_* variables, else the configuration
file, else the defaults: a flag wins over the environment, which wins over the
file, as with kubectl, docker and git. 'llm-runtime config --help' lists them.

Every operation is recorded in the audit log ('llm-runtime audit list').

Exit codes: 0 input processed (failed commands are reported in the output),
1 usage or I/O error, 2 configuration error (exec asked of a sandbox that
cannot run it, --exec with --sandbox local, is one), 3 sandbox unavailable,
4 audit verify or checkpoint found a broken chain, a departure from a
checkpoint, or a damaged store or checkpoint.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := doMain(os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ(), ctx: ctx})
	stop()
	os.Exit(code)
}

// exitPanic unwinds out of kong when it wants to exit (after --help).
type exitPanic int

// doMain runs the CLI and returns the process's exit code.
func doMain(args []string, e env) (code int) {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("llm-runtime"),
		kong.Description(description),
		kong.Writers(e.stdout, e.stderr),
		kong.Exit(func(code int) { panic(exitPanic(code)) }),
		kong.Vars{"version": versionString()},
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 100}),
		kong.Help(printHelp),
		kong.BindTo(e, (*env)(nil)),
	)
	if err != nil {
		fmt.Fprintf(e.stderr, "llm-runtime: %v\n", err)
		return exitUsage
	}
	defer func() {
		if p := recover(); p != nil {
			x, ok := p.(exitPanic)
			if !ok {
				panic(p)
			}
			code = int(x)
		}
	}()
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		args = []string{"run", "--help"} // the filter's manual, which lists the other commands
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(e.stderr, "llm-runtime: %v\n", err)
		if pe := (*kong.ParseError)(nil); errors.As(err, &pe) {
			fmt.Fprintln(e.stderr, "Run 'llm-runtime --help' for usage.")
		}
		return exitUsage
	}
	if err := kctx.Run(e, &c); err != nil {
		fmt.Fprintf(e.stderr, "llm-runtime: %v\n", err)
		var xe *filtercli.ExitError
		if errors.As(err, &xe) {
			return xe.Code
		}
		return exitUsage
	}
	return exitOK
}

// printHelp is kong's help, with the filter's usage line saying that run
// is the default command.
func printHelp(o kong.HelpOptions, ctx *kong.Context) error {
	out := ctx.Stdout
	var b bytes.Buffer
	ctx.Stdout = &b
	err := kong.DefaultHelpPrinter(o, ctx)
	ctx.Stdout = out
	_, werr := io.WriteString(out, strings.Replace(b.String(), "Usage: llm-runtime run ", "Usage: llm-runtime [run] ", 1))
	return cmp.Or(err, werr)
}

// verbose says whether -v was given; -vv is debug (see auditOptions).
func (c *cli) verbose() bool { return c.Verbosely() }

// own is this process's own files, and those of the thin client that ran
// it for a run it did not hand to a daemon ($LLM_RUNTIME_CLIENT_BINARY),
// guarded as this binary is.
func (e env) own() paths.Own {
	o := paths.OwnFiles()
	if p := e.getenv(config.ClientBinaryEnv); p != "" {
		o.Client = paths.RealPath(p)
	}
	return o
}

// load resolves the root and layers the configuration (filtercli.Load).
func (c *cli) load(e env, o *filtercli.Overrides) (root, file string, cfg *config.Config, err error) {
	return c.Load(e.environ, e.stderr, o)
}

// auditOptions are how the audit store is opened: -vv lets Pebble's own
// informational lines through, and its lines go to standard error.
func (c *cli) auditOptions(e env) audit.Options {
	return audit.Options{Verbose: c.Verbose > 0, Debug: c.Verbose > 1, Log: e.stderr}
}

type runCmd struct {
	filtercli.Overrides
	Input  string `short:"i" placeholder:"FILE" help:"Read model output from FILE instead of standard input."`
	Output string `short:"o" placeholder:"FILE" help:"Write results to FILE instead of standard output."`
}

// Help is the manual; 'llm-runtime --help' shows it too.
func (runCmd) Help() string { return description + "\n\n" + commandsHelp }

const commandsHelp = `Other commands ('llm-runtime COMMAND --help' for each):

  config                                      the settings in force and where they come from
  image build [sandbox|exec|go]               build the sandbox image, the busybox exec image, or one with Go
  image status                                the images and every container of ours
  image prune [--all]                         remove our images that are no longer used
  image push REGISTRY/NAME[:TAG]              push the sandbox image to a registry, for a cluster
  audit list|stats|verify|export|checkpoint   query and check the audit log
  policy test|check MODULE.wasm               try or check a policy or transform guest
  bench                                       pooled against unpooled on this machine
  cache [remove [--gone|--all]]               exec's and copy mode's copies of repositories, build caches, volumes
  changes [list|show N|prune]                 what the journal of changes recorded (journal.enabled), as a diff
  undo [N|--to N] [--force]                   put back what checkpoints changed
  redo                                        take the last undo back
  prompt [--format markdown|text]             a system prompt that teaches the commands, as configured
  mcp [--exec] [--log-file FILE]              serve the tools to an MCP client (Claude Code, VS Code...) on stdio
  serve [status|stop]                         a daemon that keeps pools warm between runs of the filter
  kubernetes manifests --image REF            the manifests of a warm pool of agent pods (agent-sandbox)
  version                                     the version`

func (r *runCmd) Run(e env, c *cli) error {
	root, file, cfg, err := c.load(e, &r.Overrides)
	if err != nil {
		return err
	}
	if err := cfg.CheckSandbox(); err != nil {
		return fail(exitConfig, "%v", err)
	}
	in := e.stdin
	if r.Input != "" && r.Input != "-" {
		f, err := os.Open(r.Input)
		if err != nil {
			return fail(exitUsage, "--input: %v", err)
		}
		defer f.Close()
		in = f
	} else if f, ok := in.(*os.File); ok && filtercli.IsTerminal(f) {
		fmt.Fprintln(e.stderr, "llm-runtime: reading model output from the terminal; end it with Ctrl-D (see --help)")
	}
	out := e.stdout
	var outFile *os.File // closed, and its error reported, after the run
	if r.Output != "" && r.Output != "-" {
		if outFile, err = os.Create(r.Output); err != nil {
			return fail(exitUsage, "--output: %v", err)
		}
		defer outFile.Close()
		out = outFile
	}
	if cfg.Server != "never" {
		if handled, err := r.served(e, c, root, file, cfg, in, out); handled {
			if err == nil && outFile != nil {
				if err := outFile.Close(); err != nil {
					return fail(exitUsage, "--output: %v", err)
				}
			}
			return err
		}
	}
	sess, err := c.openSession(e, root, file, cfg, "filter")
	if err != nil {
		return err
	}
	defer sess.Close()
	rep, err := output.NewWith(cfg.Output.Format, out, output.Options{LineNumbers: cfg.Output.LineNumbers})
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	run := sess.Runner
	run.Report = rep
	sum, err := run.Run(e.ctx, in)
	if c.verbose() {
		fmt.Fprintf(e.stderr, "Commands: %d, failed: %d, time: %s, peak memory: %s\n", sum.Commands, sum.Failed, sum.Elapsed.Round(time.Microsecond), peakRSS())
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fail(exitInterrupted, "interrupted after %s", plural(sum.Commands, "command"))
		}
		return fail(exitUsage, "%v", err)
	}
	if outFile != nil {
		if err := outFile.Close(); err != nil {
			return fail(exitUsage, "--output: %v", err)
		}
	}
	return nil
}

// openSession opens the engine's session for a front end: the sandbox,
// the guests and the audit writer, as configured.
func (c *cli) openSession(e env, root, file string, cfg *config.Config, frontEnd string) (*engine.Session, error) {
	s := engine.Settings{Root: root, ConfigFile: file, Config: cfg, FrontEnd: frontEnd, Version: version, PoolEvents: c.verbose(),
		Audit: c.auditOptions(e)}
	if abs, err := filepath.Abs(c.Root); err == nil {
		s.Given = abs // the root as given, if a link leads to it
	}
	if cfg.Audit.Enabled {
		dir, err := filtercli.AuditDir(c.AuditDir, cfg, root)
		if err != nil {
			return nil, err
		}
		s.AuditDir = dir
	}
	if cfg.Journal.Enabled {
		dir, err := filtercli.JournalDir(cfg, root)
		if err != nil {
			return nil, err
		}
		s.JournalDir = dir
	}
	if own := e.own(); own.Client != "" {
		s.Client = &own // guarded beside this process's own
	}
	if c.verbose() {
		s.Log = func(format string, args ...any) { fmt.Fprintf(e.stderr, format+"\n", args...) }
	} else {
		s.Notice = func(format string, args ...any) { fmt.Fprintf(e.stderr, format+"\n", args...) }
	}
	sess, err := engine.Open(e.ctx, s)
	return sess, exitOf(err)
}

func orDefaults(file string) string { return engine.OrDefaults(file) }

// applyExecImage gives the settings of cfg that the user did not set the
// values the exec image recommends (engine.ExecImage).
func applyExecImage(e env, cfg *config.Config) error {
	d, err := container.Connect(e.ctx, version)
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = engine.ExecImage(e.ctx, d, cfg)
	return err
}

type configCmd struct {
	filtercli.Overrides
	YAML bool `name:"yaml" help:"Print a configuration file instead: every setting as in force, whatever it came from, which --config FILE loads back (no sources, no paths in use)."`
}

func (configCmd) Help() string {
	var b strings.Builder
	b.WriteString("Settings, their defaults and their environment variables:\n\n")
	for _, s := range config.Settings() {
		fmt.Fprintf(&b, "  %s (default %s, $%s)\n      %s\n", s.Key, shown(s.Default, s.List), s.Env(), s.Doc)
	}
	b.WriteString(`  policies (default [], no variable; flag --policy FILE.wasm)
      policy guests, in order: [{module: x.wasm, config: {...}, timeout: 100ms, memory_limit: 64MiB}]
  transforms (default [], no variable; flag --transform FILE.wasm)
      transform guests, in order, with the same fields

Precedence, lowest first: the defaults, the file, LLM_RUNTIME_* variables,
flags. A flag given for one run wins over the environment, which wins over
the file (the convention of kubectl, docker and git); the comment after each
value says which one it came from.
An exec image built by llm-runtime may recommend limits (the go image:
exec.timeout 5m, exec.memory 1GiB, exec.cpus 2, in its label io.llm-runtime.exec.recommended):
with exec enabled they replace the defaults of the settings you did not set,
and the comment after each says where its value came from.

The output ends with the paths in use that follow from the settings and the
environment: the audit store, the image sum cache, the compilation cache and
exec's state (copies of repositories and build caches). --yaml prints a
configuration file instead, with every value in force, nested by section.

Examples:

  llm-runtime config                        # each value and where it comes from
  LLM_RUNTIME_OUTPUT_FORMAT=jsonl llm-runtime config --format text   # the flag wins
  llm-runtime config --yaml > llm-runtime.config.yaml   # a file to edit
  llm-runtime --config llm-runtime.config.yaml config   # what it sets`)
	return b.String()
}

// shown is a value as the configuration file would spell it: "" for an
// empty string, [] for an empty list.
func shown(v string, list bool) string {
	switch {
	case v != "":
		return v
	case list:
		return "[]"
	}
	return `""`
}

func (cc *configCmd) Run(e env, c *cli) error {
	root, file, cfg, err := c.load(e, &cc.Overrides)
	if err != nil {
		return err
	}
	if err := cfg.CheckSandbox(); err != nil {
		fmt.Fprintf(e.stderr, "llm-runtime: warning: a run with this configuration is refused: %v\n", err)
	}
	if cc.YAML {
		_, err := e.stdout.Write(cfg.YAML())
		return err
	}
	fmt.Fprintf(e.stdout, "# repository root: %s\n# configuration file: %s\n", root, orDefaults(file))
	if engine.ExecEnabled(cfg) {
		// The settings the exec image recommends, where the user set none.
		if err := applyExecImage(e, cfg); err != nil {
			fmt.Fprintf(e.stdout, "# exec.image %s could not be asked what it recommends: %v\n", cfg.Exec.Image, strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}
	audit := "off (audit.enabled: false)"
	if cfg.Audit.Enabled {
		dir, err := filtercli.AuditDir(c.AuditDir, cfg, root)
		if err != nil {
			return err
		}
		audit = dir
	}
	row := func(line, comment string) { fmt.Fprintf(e.stdout, "%-52s # %s\n", line, comment) }
	for _, s := range config.Settings() {
		value, origin := shown(cfg.Value(s.Key), s.List), cfg.Origin(s.Key)
		if s.Key == "audit.dir" {
			origin += "; in use: " + audit
		}
		row(s.Key+": "+value, origin)
	}
	for _, list := range []struct {
		name   string
		guests []config.Guest
	}{{"policies", cfg.Policies}, {"transforms", cfg.Transforms}} {
		if len(list.guests) == 0 {
			row(list.name+": []", "default")
			continue
		}
		fmt.Fprintf(e.stdout, "%s:\n", list.name)
		for _, g := range list.guests {
			fmt.Fprintf(e.stdout, "  %-50s # %s\n", "- module: "+g.Module, g.Source)
		}
	}
	fmt.Fprintln(e.stdout, "# in use:")
	for _, p := range []struct{ what, path string }{
		{"audit store", audit},
		{"image sum cache", orNone(paths.AgentSumPath())},
		{"compilation cache", orNone(paths.GuestCacheDir())},
		{"exec state", execStateOrNone(cfg)},
	} {
		fmt.Fprintf(e.stdout, "#   %-18s %s\n", p.what+":", p.path)
	}
	return nil
}

// execStateOrNone is exec.state_dir, or its default, for config.
func execStateOrNone(cfg *config.Config) string {
	dir, err := paths.ExecStateDir(cfg.Exec.StateDir)
	if err != nil {
		return orNone("")
	}
	return dir
}

func orNone(path string) string {
	if path == "" {
		return "none (no cache directory: $XDG_CACHE_HOME and $HOME are unset)"
	}
	return path
}

// agentCmd is the entrypoint of sandbox containers: it serves the agent
// protocol on standard input and output until standard input closes.
type agentCmd struct {
	Workspace string        `default:"/workspace" help:"The repository, as mounted in the container."`
	Limits    string        `placeholder:"JSON" help:"The sandbox limits, as JSON."`
	Threads   int           `name:"reserve-threads" help:"Start this many spare OS threads first, so a fork bomb in an exec cannot starve the agent."`
	Warm      []string      `name:"warm" placeholder:"PROGRAM,..." help:"Before serving, look up the directories of the commands' PATH and read these programs' files as a command's lookup finds them, so that a fresh container's first command does not wait on a cold overlay (an exec container's: its whitelist's programs)."`
	WarmPath  bool          `name:"warm-path" help:"Look up the directories of the commands' PATH before serving (--warm with no programs)."`
	Own       string        `name:"own-workspace" placeholder:"UID:GID" help:"Give the workspace's root to UID:GID (mode 0700) and exit: run once, as root with CAP_CHOWN only, on a new volume of copy mode."`
	Install   string        `name:"install-agent" placeholder:"DIR" help:"Copy this binary to DIR/llm-runtime and exit: run once on a new volume of copy mode's exec, which exec containers mount read-only."`
	Lease     time.Duration `help:"Exit this long after the last request (the first starts it), for a transport that does not close the agent's input when the host goes away (a Kubernetes pod's); 0: never."`
	Listen    bool          `help:"Serve sessions on the agent's socket, not on standard input (a Kubernetes pod: its input and output are the pod's attach and log): the first connection to send a secret claims the agent, later ones must send the same. Needs --lease."`
	Connect   bool          `help:"Relay standard input and output to the agent's socket (what the host execs in a Kubernetes pod to reach its agent) and exit when either ends."`
	// The Go build cache program an exec command's go runs (GOCACHEPROG).
	GoCacheProg bool   `name:"gocacheprog" help:"Serve go's cache program protocol on standard input and output (GOCACHEPROG): the cache at --gocache-dir, over the read-only --gocache-base."`
	GoCacheBase string `name:"gocache-base" placeholder:"DIR" help:"A read-only build cache read under --gocache-dir's (an exec image's precompiled standard library)."`
	GoCacheDir  string `name:"gocache-dir" placeholder:"DIR" help:"The build cache go writes, in GOCACHE's layout."`
}

func (a agentCmd) Run(e env) error {
	var limits sandbox.Limits
	if a.Limits != "" {
		if err := json.Unmarshal([]byte(a.Limits), &limits); err != nil {
			return fail(exitUsage, "--limits: %v", err)
		}
	}
	if a.Own != "" {
		return ownWorkspace(a.Workspace, a.Own)
	}
	if a.GoCacheProg {
		c := &gocache.Cache{Base: a.GoCacheBase, Dir: a.GoCacheDir}
		if err := c.Serve(e.stdin, e.stdout); err != nil {
			return fail(exitSandbox, "agent --gocacheprog: %v", err)
		}
		return nil
	}
	if a.Install != "" {
		if err := agent.Install(a.Install); err != nil {
			return fail(exitSandbox, "agent: %v", err)
		}
		return nil
	}
	if a.Connect {
		if err := agent.Relay(agent.SessionSocket(), e.stdin, e.stdout); err != nil {
			return fail(exitSandbox, "agent --connect: %v", err)
		}
		return nil
	}
	if a.Threads > 0 {
		agent.ReserveThreads(a.Threads)
	}
	if a.WarmPath || len(a.Warm) > 0 {
		agent.Warm(a.Warm)
	}
	// Not dumpable: a command of the same uid cannot ptrace the agent or
	// read its memory, so it cannot forge what the agent reports.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	ws, err := sandbox.OpenWorkspace(a.Workspace, limits)
	if err != nil {
		return fail(exitSandbox, "agent: %v", err)
	}
	ag := agent.NewAgent(ws, a.Workspace, version)
	ag.Lease = a.Lease
	if a.Listen {
		return fail(exitSandbox, "%v", ag.ListenSessions(agent.SessionSocket(), e.stderr))
	}
	if err := ag.Serve(e.stdin, e.stdout); err != nil {
		return fail(exitSandbox, "agent: %v", err)
	}
	return nil
}

// ownWorkspace gives dir to uid:gid, never following a link.
func ownWorkspace(dir, owner string) error {
	var uid, gid int
	if _, err := fmt.Sscanf(owner, "%d:%d", &uid, &gid); err != nil || uid < 0 || gid < 0 {
		return fail(exitUsage, "--own-workspace %q: want UID:GID", owner)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail(exitSandbox, "agent: %v", err)
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		return fail(exitSandbox, "agent: %v", err)
	}
	return nil
}

type versionCmd struct{}

func (versionCmd) Run(e env) error {
	fmt.Fprintln(e.stdout, versionString())
	return nil
}

// versionString is this build's version (filtercli.Version).
func versionString() string { return filtercli.Version(version, commit) }

func plural(n int, noun string) string { return output.Plural(n, noun) }

func peakRSS() string { return filtercli.PeakRSS() }
