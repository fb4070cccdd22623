// Package engine opens a session: the one assembly of a sandbox (local, or
// a pool of Docker containers), the policy and transform guests and the
// audit writer that every front end shares (the text filter, the MCP
// server). The session's Runner is the one operation path: policies, the
// sandbox, transforms, a durable audit record.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llm-runtime/llm-runtime/audit"
	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/egress"
	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/llm-runtime/llm-runtime/internal/proc"
	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/output"
	"github.com/llm-runtime/llm-runtime/pool"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/kube"
	"github.com/llm-runtime/llm-runtime/runtime/wasm"
	"github.com/llm-runtime/llm-runtime/sandbox"
	"k8s.io/client-go/tools/clientcmd"
)

// Kind says which part of a session could not open, for the front end's
// exit code.
type Kind int

const (
	KindConfig  Kind = iota + 1 // the configuration or a guest
	KindSandbox                 // Docker, the image, the sandbox
	KindIO                      // the audit store
)

// Error is an error of Open.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// Settings are what a session is opened with.
type Settings struct {
	// Root is the repository's real path (every link resolved).
	Root string
	// Given is the root as the user gave it, made absolute, when it differs
	// from Root (a link leads to it): paths under it are the repository's
	// too.
	Given string
	// ConfigFile is the configuration file in use ("" for none) and
	// Config the configuration resolved from it, flags and environment.
	ConfigFile string
	Config     *config.Config
	// AuditDir is the audit store, when Config.Audit.Enabled, and Audit
	// how it is opened: Debug (-vv) lets Pebble's own informational lines
	// through to Audit.Log (nil: standard error), where its errors go
	// anyway.
	AuditDir string
	Audit    audit.Options
	// JournalDir is the repository's journal of changes, when
	// Config.Journal.Enabled.
	JournalDir string
	// Client, when a daemon opens the session for a client of its own
	// (llm-runtime serve), is where that client keeps llm-runtime's files
	// (its Own, as real paths): the sandbox refuses to write them as well
	// as this process's own.
	Client *paths.Own
	// FrontEnd names the front end in audit records ("filter", "mcp").
	FrontEnd string
	// Version is llm-runtime's, for the Docker client.
	Version string
	// Log, if set, gets what --verbose reports: the root, the sandbox, the
	// guests, the audit session and, with PoolEvents, every pool event.
	Log        func(format string, args ...any)
	PoolEvents bool
	// Notice, if set, gets what is said whatever --verbose: the sandbox
	// image being built on the way, which the run's own time does not
	// count.
	Notice func(format string, args ...any)
}

func (s *Settings) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log(format, args...)
	}
}

func (s *Settings) noticef(format string, args ...any) {
	if s.Notice != nil {
		s.Notice(format, args...)
	}
}

// Session is an open sandbox, its guests and its audit writer.
type Session struct {
	// Runner runs operations (Do, DoOp) or a whole input (Run, once its
	// Report is set).
	Runner *runner.Runner
	// Sandbox is the session's sandbox, for what a front end asks of it
	// beyond operations (its Limits).
	Sandbox sandbox.Sandbox
	// ExecEnabled says whether <exec> can run (exec.enabled, and a sandbox
	// that can).
	ExecEnabled bool
	guests      *wasm.Chain
	audit       *audit.Writer
	changes     *Changes
}

// Close closes the sandbox (removing its containers), the guests and the
// audit writer.
func (s *Session) Close() error {
	err := s.Sandbox.Close()
	s.guests.Close()
	if s.audit != nil {
		err = errors.Join(err, s.audit.Close())
	}
	if s.changes != nil {
		err = errors.Join(err, s.changes.Close())
	}
	return err
}

// Open opens a session. The guests compile while the sandbox starts.
func Open(ctx context.Context, s Settings) (*Session, error) {
	cfg := s.Config
	guestStart := time.Now()
	guests := wasm.Start(ctx, GuestSpecs(cfg.Policies), GuestSpecs(cfg.Transforms))
	sb, err := OpenSandbox(ctx, s)
	if err != nil {
		guests.Close()
		return nil, err
	}
	sess := &Session{Sandbox: sb, guests: guests, ExecEnabled: ExecEnabled(cfg)}
	if guests != nil {
		if err := guests.Wait(); err != nil {
			sess.Close()
			return nil, fail(KindConfig, "%v", err)
		}
		s.logf("Guests: %d policies, %d transforms, ready %s after start", len(cfg.Policies), len(cfg.Transforms), time.Since(guestStart).Round(time.Millisecond))
	}
	var w *audit.Writer
	if cfg.Audit.Enabled {
		if w, err = audit.OpenWriter(s.AuditDir, audit.NewSession(), s.Audit); err != nil {
			sess.Close()
			return nil, fail(KindIO, "%v", err)
		}
		sess.audit = w
		s.logf("Audit: session %s in %s", w.Session(), s.AuditDir)
	}
	sess.Runner = NewRunner(s, sb, guests, w)
	if sess.changes, err = OpenChanges(s, sess.Runner); err != nil {
		sess.Close()
		return nil, err
	}
	return sess, nil
}

// Changes is what a runner journals changes with: the repository's
// journal, and the workspace <undo> puts paths back through.
type Changes struct {
	runner    *runner.Runner
	journal   *journal.Journal
	restorer  *sandbox.Workspace
	retention journal.Retention
	logf      func(format string, args ...any)
}

// OpenChanges opens, when the configuration enables the journal (nil
// otherwise), the repository's journal, recovering what a process killed
// in the middle of a change left (each such change settled by what the
// disk holds), and a workspace of this process on the repository, with
// the sandbox's rules (as copy mode's writes are made), for <undo>; and
// gives both to r.
func OpenChanges(s Settings, r *runner.Runner) (*Changes, error) {
	if !s.Config.Journal.Enabled || s.JournalDir == "" {
		return nil, nil
	}
	j, err := journal.Open(s.JournalDir)
	if err != nil {
		return nil, fail(KindIO, "%v", err)
	}
	settled, unsettled, err := Recover(j, s.Root)
	if err != nil {
		j.Close()
		return nil, fail(KindIO, "%v", err)
	}
	s.logf("Journal: %s (%d changes a killed process left settled, %d left as they are)", s.JournalDir, settled, unsettled)
	limits, _ := Limits(s)
	ws, err := sandbox.OpenWorkspace(s.Root, limits)
	if err != nil {
		j.Close()
		return nil, fail(KindSandbox, "%v", err)
	}
	r.Journal, r.Restorer = j, ws
	return &Changes{runner: r, journal: j, restorer: ws, logf: s.logf,
		retention: journal.Retention{MaxAge: s.Config.Journal.MaxAge, MaxBytes: s.Config.Journal.MaxSize, Keep: s.Config.Journal.Keep}}, nil
}

// Close ends the runner's checkpoint left open (a group an MCP client
// did not end), prunes the journal by the retention settings when a day
// went by since it was last pruned, and closes the journal and the
// workspace. A failed prune is said, not returned: the session's work is
// done and journaled.
func (c *Changes) Close() error {
	err := c.runner.EndCheckpoint()
	if res, due, perr := c.journal.PruneIfDue(c.retention); perr != nil {
		c.logf("Journal: pruning %s failed: %v", c.journal.Dir(), perr)
	} else if due {
		c.logf("Journal: pruned %s: %d checkpoints, %d objects, %d bytes freed, %d kept", c.journal.Dir(), res.Checkpoints, res.Objects, res.Bytes, res.Left)
	}
	err = errors.Join(err, c.journal.Close())
	c.restorer.Close()
	return err
}

// Recover settles the journal's pending intents (a process killed
// between recording a change and saying how it went) by what the
// repository at root holds: made, when every path holds its state after
// (whose content the log does not hold yet is then read from it);
// not made, when every path holds its state before. An intent whose paths
// hold a mix, or something else (changed since by someone else), is left
// pending and counted: nothing is guessed.
func Recover(j *journal.Journal, root string) (settled, unsettled int, err error) {
	pending, err := j.Pending()
	if err != nil {
		return 0, 0, err
	}
	for _, in := range pending {
		after, before := true, true
		var found [][]byte // the contents after the log does not hold (Later), read from disk
		for _, c := range in.Changes {
			p := filepath.Join(root, filepath.FromSlash(c.Path))
			var fi fs.FileInfo
			if st, err := os.Lstat(p); err == nil {
				fi = st
			}
			content := func() ([]byte, error) {
				if fi.Mode()&fs.ModeSymlink != 0 {
					t, err := os.Readlink(p)
					return []byte(t), err
				}
				return os.ReadFile(p)
			}
			after = after && journal.Matches(c.After, fi, func() ([]byte, error) {
				b, err := content()
				if err == nil && c.After.Later {
					found = append(found, b)
				}
				return b, err
			})
			before = before && journal.Matches(c.Before, fi, content)
		}
		switch {
		case after:
			err = j.Resolve(in.ID, true, found...)
		case before:
			err = j.Resolve(in.ID, false)
		default:
			unsettled++
			continue
		}
		if err != nil {
			return settled, unsettled, err
		}
		settled++
	}
	return settled, unsettled, nil
}

// ExecEnabled says whether <exec> can run with a configuration:
// exec.enabled, and a sandbox that can.
func ExecEnabled(cfg *config.Config) bool { return cfg.Exec.Enabled && cfg.Sandbox == "docker" }

// NewRunner is the operation path of one session on a sandbox that may be
// shared (llm-runtime serve): its guests (nil for none) and its audit
// writer (nil when audit is off), which names the session.
func NewRunner(s Settings, sb sandbox.Sandbox, guests *wasm.Chain, w *audit.Writer) *runner.Runner {
	cfg := s.Config
	r := &runner.Runner{Sandbox: sb, MaxWriteSize: cfg.Security.MaxWriteSize, Repo: s.Root, Guests: guests,
		Session: audit.NewSession(), Roots: []string{s.Root}, FrontEnd: s.FrontEnd}
	if s.Given != "" && s.Given != s.Root {
		r.Roots = append(r.Roots, s.Given)
	}
	if w != nil {
		r.Audit, r.Session = w, w.Session()
	}
	return r
}

// GuestSpecs are the guests of a configuration, for wasm.
func GuestSpecs(gs []config.Guest) []wasm.Spec {
	var out []wasm.Spec
	for _, g := range gs {
		out = append(out, wasm.Spec{Path: g.Module, Config: g.Config, Timeout: g.Timeout, MemoryLimit: g.MemoryLimit})
	}
	return out
}

// Limits are the rules of the sandbox on s.Root, as its configuration and
// the files llm-runtime guards (its own and, for a daemon's session, its
// client's) make them; inside are the guarded files that lie inside the
// repository.
func Limits(s Settings) (limits sandbox.Limits, inside []guarded) {
	cfg := s.Config
	owns := []paths.Own{paths.OwnFiles()}
	if s.Client != nil {
		owns = []paths.Own{*s.Client, owns[0]} // the client's first: its messages are those of its own run
	}
	paths, ids, inside := protection(s.Root, s.ConfigFile, cfg, owns)
	return sandbox.Limits{
		MaxFileSize:       cfg.Security.MaxFileSize,
		MaxWriteSize:      cfg.Security.MaxWriteSize,
		Excluded:          cfg.Security.ExcludedPaths,
		HostToolFiles:     cfg.Security.HostToolFiles,
		HostToolFilesDeny: cfg.Security.HostToolFilesMode == "deny",
		WriteProtected:    paths,
		Protected:         ids,
		MaxSearchResults:  cfg.Search.MaxResults,
		MaxLineLength:     cfg.Search.MaxLineLength,
		SearchTimeout:     cfg.Search.Timeout,
		MaxListEntries:    cfg.List.MaxEntries,
	}, inside
}

// OpenSandbox builds the sandbox the configuration names, for the root: a
// local one, or a Docker one (a pool, unless container_pool.enabled is
// false) with its reaper and the sweep of orphans. Docker problems are
// KindSandbox with a message that says how to fix them; there is no silent
// fallback to the local sandbox. exec.enabled with a sandbox that cannot
// exec is KindConfig (config.CheckSandbox), never exec silently off.
// Closing it removes its containers.
func OpenSandbox(ctx context.Context, s Settings) (sandbox.Sandbox, error) {
	cfg, root, logf := s.Config, s.Root, s.logf
	if err := cfg.CheckSandbox(); err != nil {
		return nil, fail(KindConfig, "%v", err) // exec where the sandbox cannot run it
	}
	limits, inside := Limits(s)
	logf("Repository root: %s", root)
	logf("Configuration: %s", OrDefaults(s.ConfigFile))
	for _, g := range inside {
		logf("Warning: %s (%s) is inside the repository: the sandbox refuses to write it, but anything else that can write the repository (an exec with exec.writable, another program) can change what the next run does; keep it outside", g.what, g.path)
	}
	if cfg.Sandbox == "local" {
		sb, err := sandbox.NewLocal(root, limits)
		if err != nil {
			return nil, fail(KindSandbox, "sandbox local: %v", err)
		}
		logf("Sandbox: local (no container boundary; exec disabled)")
		logf("Exec enabled: false (the local sandbox cannot exec)")
		return sb, nil
	}
	if cfg.Sandbox == "kubernetes" {
		return openKubernetes(ctx, s, root, limits)
	}
	d, bin, err := DockerAndAgent(ctx, s.Version)
	if err != nil {
		return nil, err
	}
	imageStart := time.Now()
	img, err := d.EnsureImage(ctx, bin)
	if err != nil {
		d.Close()
		return nil, fail(KindSandbox, "sandbox image: %v", err)
	}
	if img.Created {
		took := time.Since(imageStart)
		logf("Image: built %s in %.1fs", img.Ref, took.Seconds())
		s.noticef("llm-runtime: built the sandbox image %s in %.1fs (once per version of llm-runtime; 'llm-runtime image build' does it ahead)", img.Ref, took.Seconds())
	} else {
		logf("Image: %s", img.Ref)
	}
	reaper, err := startReaper(bin)
	if err != nil {
		logf("No reaper (containers being created at a kill -9 would wait for the next start's sweep): %v", err)
	}
	p := cfg.ContainerPool
	workspace := cfg.SandboxWorkspace
	if workspace == "auto" {
		workspace = d.DefaultWorkspace()
	}
	opts := container.Options{
		Root:        root,
		Limits:      limits,
		Image:       img.Ref,
		Transport:   p.Transport,
		Workspace:   workspace,
		StateDir:    cfg.Exec.StateDir,
		CopyMaxSize: cfg.SandboxCopyMaxSize,
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
	if s.PoolEvents && s.Log != nil {
		opts.OnEvent = func(ev pool.Event[*container.Container]) { s.Log("%s", EventLine(ev)) }
		opts.OnPush = func(p container.PushStats) { s.Log("%s", p) }
	}
	if cfg.Exec.Enabled {
		xi, err := ExecImage(ctx, d, cfg)
		if err != nil {
			d.Close()
			return nil, err
		}
		for _, line := range ExecImageReport(cfg, xi) {
			logf("%s", line)
		}
		x := cfg.Exec
		// Every machine has one CPU: only more is worth asking Docker about.
		if x.CPUs > 1 {
			if n, err := d.CPUs(ctx); err == nil && n > 0 && x.CPUs > float64(n) {
				logf("exec.cpus %s: Docker's machine has %d CPUs; an exec container gets %d", cfg.Value("exec.cpus"), n, n)
				x.CPUs = float64(n)
			}
		}
		opts.Exec = &container.ExecOptions{
			Image: x.Image, Agent: bin, Writable: x.Writable, Whitelist: x.Whitelist, Shell: x.Shell,
			Timeout: x.Timeout, MaxOutput: x.MaxOutput, Memory: x.Memory, CPUs: x.CPUs, PIDs: x.PIDs, TmpSize: x.TmpSize, StateDir: x.StateDir,
			Runtime:    x.Runtime,
			MaxChanges: x.MaxChanges, MaxDepth: x.MaxDepth, CopyMaxSize: cfg.SandboxCopyMaxSize,
			Has: xi.Has, GoSeed: xi.GoSeed, Env: x.Env,
		}
		network := "no network"
		if reach := x.Reachable(); reach != nil {
			opts.Exec.Network = &egress.Proxy{Policy: egress.Policy{Rules: x.NetworkAllow}}
			network = "network to " + strings.Join(reach, ", ") + " only, through the egress proxy"
			if x.GoProxy != "" {
				m, err := goModules(x)
				if err != nil {
					d.Close()
					return nil, fail(KindConfig, "exec.go_proxy: %v", err)
				}
				opts.Exec.Network.GoModules = m
				network += "; Go modules from " + x.GoProxy + " through " + m.Dir + ", shared by your repositories"
			}
		}
		mode, shell := "changes discarded", "no shell"
		if x.Writable {
			mode = "changes applied through the rules of <write>"
		}
		if x.Shell {
			shell = "under /bin/sh"
		}
		runtime := ""
		if x.Runtime != "" {
			runtime = ", runtime " + x.Runtime
		}
		logf("Exec enabled: true (container mode: a fresh container of %s per command%s, on a copy of the repository, %s, %s, %s, timeout %s)", x.Image, runtime, mode, shell, network, x.Timeout)
	} else {
		logf("Exec enabled: false (exec.enabled is false; --exec turns it on)")
	}
	sb, err := container.NewSandbox(d, opts)
	if err != nil {
		d.Close()
		return nil, fail(KindSandbox, "sandbox docker: %v", err)
	}
	// The sweep runs beside the pool's start: listing containers can wait
	// on one Docker is still removing (a previous run's) for ~10-20 ms.
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if n, err := d.Sweep(ctx); err == nil && n > 0 {
			logf("Removed %d orphaned container(s) of llm-runtime processes that are gone", n)
		}
	}()
	if v := sb.Volume(); v != "" {
		logf("Workspace: copy (a replica in the volume %s, pushed before each read from a copy of what the rules let the sandbox see; writes and edits applied on the host)", v)
	} else {
		logf("Workspace: bind (the repository, bind-mounted)")
	}
	if p.Enabled {
		logf("Sandbox: docker, pooled (size %d, %d kept ready, spares after %s; recycled after %d uses)", p.Size, p.StartupContainers, p.SpareDelay, p.MaxUsesPerContainer)
	} else {
		logf("Sandbox: docker, unpooled (a container per operation)")
	}
	return closers{sb, d, reaper, swept}, nil
}

// ExecImage asks the exec image of cfg what it offers a command: whether
// it has the program of each entry of the whitelist, and of more (see
// container.Programs), and the settings it recommends. Those the user did
// not set (their origin is the default) take the image's values, with an
// origin that says so (RecommendedOrigin); cfg must be a configuration
// as resolved, with its origins. An image not on this machine is an
// error that says how to build it (nothing is pulled).
func ExecImage(ctx context.Context, d *container.Docker, cfg *config.Config, more ...string) (*container.ExecImage, error) {
	x := cfg.Exec
	xi, err := d.InspectExecImage(ctx, x.Image, container.Programs(x.Whitelist, more...))
	if errors.Is(err, container.ErrNoImage) {
		hint := "name a local image in exec.image"
		switch x.Image {
		case container.ExecImageName:
			hint = "build it with 'llm-runtime image build exec' (from Debian's busybox-static), or " + hint
		case container.GoImageName:
			hint = "build it with 'llm-runtime image build go' (from this machine's Go), or " + hint
		}
		return nil, fail(KindSandbox, "exec.image %s is not on this machine and is never pulled; %s", x.Image, hint)
	}
	if err != nil {
		return nil, fail(KindSandbox, "exec.image %s: %v", x.Image, err)
	}
	for _, r := range xi.Recommended {
		if cfg.Origin(r[0]) != "default" {
			continue
		}
		if err := cfg.Set(r[0], r[1], RecommendedOrigin(xi.Ref)); err != nil {
			return nil, fail(KindConfig, "%v", err)
		}
	}
	return xi, nil
}

// goModules is the module cache of exec.go_proxy: its directory in
// exec's state directory (made, private to the user), and its upstream.
func goModules(x config.Exec) (*egress.Modules, error) {
	state, err := paths.ExecStateDir(x.StateDir)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(state, container.GoModulesDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	u, err := url.Parse(x.GoProxy)
	if err != nil {
		return nil, err
	}
	return &egress.Modules{Dir: dir, Upstream: u, MaxSize: x.GoProxyMaxSize}, nil
}

// RecommendedOrigin is the origin of a setting that took the value the
// exec image ref recommends.
func RecommendedOrigin(ref string) string {
	return "recommended by the image " + ref + " (label " + container.LabelRecommended + ")"
}

// ExecImageReport is what --verbose says of the exec image: its
// toolchains' versions, which entries of the whitelist it cannot run (the
// prompt leaves them out), and which settings it set.
func ExecImageReport(cfg *config.Config, xi *container.ExecImage) []string {
	var lines []string
	if len(xi.Toolchains) > 0 {
		lines = append(lines, fmt.Sprintf("Exec image: %s has %s", xi.Ref, strings.Join(xi.Toolchains, ", ")))
	}
	if _, missing := xi.Runnable(cfg.Exec.Whitelist); len(missing) > 0 {
		lines = append(lines, fmt.Sprintf("Exec image: %s has no program for %s on its PATH (%s; known from %s): the prompt leaves them out, and they are refused if run",
			xi.Ref, strings.Join(missing, ", "), strings.Join(xi.Path, ":"), xi.Source))
	}
	for _, r := range xi.Recommended {
		if o := cfg.Origin(r[0]); o == RecommendedOrigin(xi.Ref) {
			lines = append(lines, fmt.Sprintf("Exec image: %s: %s, as the image recommends (set it to choose another)", r[0], cfg.Value(r[0])))
		} else {
			lines = append(lines, fmt.Sprintf("Exec image: %s: %s (%s); the image recommends %s", r[0], cfg.Value(r[0]), o, r[1]))
		}
	}
	return lines
}

// DockerAndAgent connects to Docker and finds the agent binary (this one).
func DockerAndAgent(ctx context.Context, version string) (*container.Docker, string, error) {
	d, err := container.Connect(ctx, version)
	if err != nil {
		return nil, "", fail(KindSandbox, "%v", err)
	}
	bin, err := container.AgentBinary()
	if err != nil {
		d.Close()
		return nil, "", fail(KindSandbox, "%v", err)
	}
	return d, bin, nil
}

// EventLine is a pool event as --verbose reports it.
func EventLine(ev pool.Event[*container.Container]) string {
	name := ""
	if ev.Value != nil {
		name = ev.Value.Name
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pool: %s #%d %s", ev.Kind, ev.ID, name)
	if ev.Took > 0 {
		fmt.Fprintf(&b, " in %s", ev.Took.Round(time.Millisecond))
	}
	if ev.Kind == pool.EventCreated && ev.Value != nil && ev.Value.Fallback != "" {
		fmt.Fprintf(&b, ", over the attach stream (%s)", ev.Value.Fallback)
	}
	switch ev.Kind {
	case pool.EventCreated, pool.EventCreateFailed, pool.EventFirstUse:
	default:
		fmt.Fprintf(&b, " after %s", output.Plural(ev.Uses, "use"))
	}
	if ev.Err != nil {
		fmt.Fprintf(&b, ": %v", ev.Err)
	}
	fmt.Fprintf(&b, " (%d idle, %d in use, %d total)", ev.Stats.Idle, ev.Stats.InUse, ev.Stats.Total)
	return b.String()
}

// OrDefaults names the configuration file, or says there is none.
func OrDefaults(file string) string {
	if file == "" {
		return "none (built-in defaults)"
	}
	return file
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
	cmd := exec.Command(bin, "reaper", "--owner", strconv.Itoa(os.Getpid()), "--owner-start", strconv.FormatUint(proc.Self, 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go cmd.Wait()
	return cmd.Process, nil
}

// PoolStat is the pool's statistics of a sandbox of OpenSandbox: zero for
// a local or unpooled one.
func PoolStat(sb sandbox.Sandbox) pool.Stat {
	if c, ok := sb.(closers); ok {
		sb = c.Sandbox
	}
	if s, ok := sb.(interface{ Stat() pool.Stat }); ok {
		return s.Stat()
	}
	return pool.Stat{}
}

// openKubernetes opens sandbox: kubernetes: a pod of the warm pool is
// claimed at the first operation. The cluster is the one kubectl would
// use: $KUBECONFIG, else ~/.kube/config, else the pod's own service
// account when llm-runtime runs in a cluster.
func openKubernetes(ctx context.Context, s Settings, root string, limits sandbox.Limits) (sandbox.Sandbox, error) {
	cfg, logf := s.Config, s.logf
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	kc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	rc, err := kc.ClientConfig()
	if err != nil {
		return nil, fail(KindSandbox, "sandbox kubernetes: no cluster: %v (set KUBECONFIG, or run where ~/.kube/config or a service account is)", err)
	}
	host, _ := os.Hostname()
	k := cfg.Kubernetes
	sb, err := kube.NewSandbox(kube.Options{Config: rc, Namespace: k.Namespace, Pool: k.WarmPool, Lease: k.Lease, Root: root, Limits: limits,
		StateDir: cfg.Exec.StateDir, MaxSize: cfg.SandboxCopyMaxSize, Session: fmt.Sprintf("%s-%d", host, os.Getpid()), Log: s.Log})
	if err != nil {
		return nil, fail(KindSandbox, "sandbox kubernetes: %v", err)
	}
	logf("Sandbox: kubernetes (%s, a pod of the warm pool %s/%s, claimed at the first operation; lease %s; the repository pushed to it; writes and edits applied on the host)", rc.Host, k.Namespace, k.WarmPool, k.Lease)
	logf("Exec enabled: false (exec does not run on Kubernetes yet)")
	return sb, nil
}
