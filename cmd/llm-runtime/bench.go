package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/llm-runtime/llm-runtime/bench"
	"github.com/llm-runtime/llm-runtime/internal/filtercli"
	"github.com/llm-runtime/llm-runtime/runtime/container"
)

// benchCmd is `llm-runtime bench`: the pooling guide's "Performance Data"
// table, measured on this machine by timing whole invocations of this very
// binary. The logic is in package bench; this is the wiring.
type benchCmd struct {
	Ops      []int  `default:"1,3,10,50" sep:"," placeholder:"N" help:"The rows: operations per invocation, 1 to 10000 each (default ${default})."`
	Op       string `enum:"open,write,mixed" default:"open" placeholder:"WORKLOAD" help:"The workload: open (read small files), write (create small files) or mixed (open, write, open, ...); default ${default}."`
	Modes    string `default:"unpooled,pooled" placeholder:"MODE,..." help:"The columns: unpooled (--no-pool), pooled (the default pool), attach (the pool, over the attach stream: container_pool.transport attach), served (through a daemon the bench starts and stops) and local (--sandbox local, the floor); default ${default}."`
	Repeat   int    `default:"3" placeholder:"N" help:"Timed invocations per cell; the cell is their median (default ${default})."`
	Journal  bool   `default:"true" negatable:"" help:"Run the invocations with journal.enabled, as by default, in a journal of the bench's own (removed at the end); --no-journal: without it, to see what recording every change costs."`
	JSON     bool   `name:"json" xor:"format" help:"Print the report as JSON (stable fields, for scripts)."`
	Markdown bool   `xor:"format" help:"Print the report as Markdown."`
}

func (benchCmd) Help() string {
	return `Measure, on this machine, what a user waits for with and without the container
pool: the pooling guide's "Performance Data" table.

Each cell is the median of --repeat invocations of this llm-runtime binary,
timed from start to exit (process start, image check, pool start-up, the
operations, the audit log and the teardown all included), each with the
workload on its standard input and --format jsonl. Beside it, the p50 and p95
of each operation's duration_ms, per mode.

The invocations run in a temporary repository that the bench creates, seeds
before each invocation, and removes; their audit log goes to a temporary
directory outside it. They run with an empty XDG_CONFIG_HOME and without any
LLM_RUNTIME_* variable of yours, so your configuration files and settings
change nothing, and your files and audit log are never touched. --root,
--config and --audit-dir do not apply. The sandbox image is built (if needed)
before any timing; each mode runs once untimed first (a warm-up); modes are
interleaved; after each invocation the bench waits, untimed, until Docker has
removed its containers. Every command must succeed, else the bench stops with
the error.

The served mode runs each invocation through an llm-runtime serve that the
bench starts, with the invocations' environment, on a socket in its
temporary directory, and stops at the end (its containers removed): its
pool stays warm from one invocation to the next, as a model loop finds it.
The other modes run with --server never, so a daemon of yours serves none
of them. The repository keeps its directory (and so its identity) from one
invocation to the next in every mode.

Examples:

  llm-runtime bench                              # 1, 3, 10 and 50 opens, 3 runs each
  llm-runtime bench --op write --repeat 5
  llm-runtime bench --op mixed --modes unpooled,pooled,local
  llm-runtime bench --modes unpooled,pooled,served,local
  llm-runtime bench --modes pooled,attach        # the two transports, per operation
  llm-runtime bench --ops 1,3 --repeat 1 --json | jq '.rows[] | {ops, speedup}'
  llm-runtime bench --markdown >> results.md

JSON: format (1), machine {date, cpus, cpu_model, platform, load_avg, docker,
image, image_id, llm_runtime}, op, modes, repeat, rows[] {ops, unpooled_s,
pooled_s, attach_s, served_s, local_s, speedup (unpooled_s / pooled_s), served_speedup
(unpooled_s / served_s), modes {MODE: {median_s,
runs_s, p50_ms, p95_ms, max_ms, samples}}}, per_op {MODE: {p50_ms, p95_ms,
max_ms, samples}}. A mode not measured is absent.

A progress bar is drawn on standard error when it is a terminal.`
}

func (b *benchCmd) Run(e env, c *cli) error {
	modes, err := bench.ParseModes([]string{b.Modes})
	if err != nil {
		return fail(exitUsage, "--modes: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(exitUsage, "bench: the running executable: %v", err)
	}
	cfg := bench.Config{
		Binary:  exe,
		Environ: e.environ,
		Op:      bench.Op(b.Op),
		Ops:     b.Ops,
		Modes:   modes,
		Repeat:  b.Repeat,
		Journal: b.Journal,
		Machine: bench.Machine{Version: versionString()},
	}
	if err := cfg.Validate(); err != nil {
		return fail(exitUsage, "%v", err)
	}
	terminal := false
	if f, ok := e.stderr.(*os.File); ok && filtercli.IsTerminal(f) {
		terminal = true
		cfg.Progress = e.stderr
	}
	if bench.NeedsDocker(modes) {
		d, bin, err := dockerAndAgent(e.ctx)
		if err != nil {
			return err
		}
		defer d.Close()
		cfg.Binary = bin
		start := time.Now()
		img, err := d.EnsureImage(e.ctx, bin)
		if err != nil {
			return fail(exitSandbox, "sandbox image: %v", err)
		}
		if img.Created && terminal {
			fmt.Fprintf(e.stderr, "built %s in %.1fs (before any timing)\n", img.Ref, time.Since(start).Seconds())
		}
		server, err := d.ServerVersion(e.ctx)
		if err != nil {
			return fail(exitSandbox, "%v", err)
		}
		cfg.Machine.Docker, cfg.Machine.Image, cfg.Machine.ImageID = server, img.Ref, img.ID
		cfg.AfterRun = func(ctx context.Context, pid int) error { return containersGone(ctx, d, pid) }
	}
	rep, err := bench.Run(e.ctx, cfg)
	if err != nil {
		var re *bench.RunError
		switch {
		case errors.Is(err, context.Canceled):
			return fail(exitInterrupted, "bench: interrupted")
		case errors.As(err, &re) && re.ExitCode == exitSandbox:
			return fail(exitSandbox, "%v", err)
		}
		return fail(exitUsage, "%v", err)
	}
	switch {
	case b.JSON:
		err = rep.WriteJSON(e.stdout)
	case b.Markdown:
		err = rep.WriteMarkdown(e.stdout)
	default:
		err = rep.WriteTable(e.stdout)
	}
	if err != nil {
		return fail(exitUsage, "writing the report: %v", err)
	}
	return nil
}

// containersGone waits until Docker has removed every container that
// process pid started (AutoRemove finishes after the process exits), and
// fails, removing them, if some are still there after 15 seconds.
func containersGone(ctx context.Context, d *container.Docker, pid int) error {
	left, err := d.AwaitGone(ctx, container.LabelOwnerPID, strconv.Itoa(pid), 15*time.Second)
	if err != nil || len(left) == 0 {
		return err
	}
	d.RemoveOwned(ctx, pid, 0)
	return fmt.Errorf("%d container(s) of the invocation (pid %d) were still there 15 s after it exited; removed", len(left), pid)
}
