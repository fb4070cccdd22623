// Package bench measures what a user waits for: whole invocations of
// llm-runtime, pooled against unpooled containers (and the local sandbox as
// the floor), on the machine it runs on. It is `llm-runtime bench`.
//
// Each cell of the table is the median of Repeat invocations of the real
// binary, timed from just before it is started to its exit: process
// start-up, configuration, image check, pool start-up, the operations, the
// audit log and the teardown are all included, as a user running
// `time llm-runtime < reply.txt` would see them. The per-operation p50 and
// p95 come from the duration_ms field the invocations print for each
// command (--format jsonl).
//
// Every invocation runs in a temporary repository the bench creates, seeds
// and removes, with a temporary audit directory outside it, an empty
// XDG_CONFIG_HOME and no LLM_RUNTIME_* variable, so neither the user's
// files nor their configuration are touched or measured. Every command of
// every invocation must succeed, or the bench fails: a bench that measures
// failures is worthless.
//
// To keep the measurements independent and reproducible:
//   - each mode runs once untimed first (a warm-up: page cache, Docker's
//     caches, the audit store's creation);
//   - the repository is re-seeded before every invocation, so each starts
//     from the same files (and writes always create);
//   - invocations of the modes are interleaved (for each row, for each
//     repetition, each mode), so a drift in the machine's load spreads over
//     all modes instead of biasing one;
//   - after each invocation, Config.AfterRun (outside the timing) waits for
//     Docker to finish removing its containers, so that work does not land
//     in the next measurement.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultOps are the rows of the pooling guide's table.
var DefaultOps = []int{1, 3, 10, 50}

// Config configures a bench.
type Config struct {
	// Binary is the llm-runtime executable to time (the running one).
	Binary string
	// Environ is the environment to start from (the user's); see Environ.
	Environ []string
	Op      Op
	Ops     []int  // the rows: operations per invocation
	Modes   []Mode // in the order of Modes
	Repeat  int    // timed invocations per cell
	// Journal runs the invocations with journal.enabled (the default),
	// else with it false; either way any journal is in a directory of the
	// bench's own, never the user's.
	Journal bool
	// TempDir is where the temporary repository goes; "" is os.TempDir().
	TempDir string
	// Progress, if set, gets a progress bar (a terminal).
	Progress io.Writer
	// AfterRun, if set, is called after each invocation of a Docker mode,
	// outside the timing, with the invocation's pid: it waits until the
	// containers of that process are gone, and fails if they do not go.
	AfterRun func(ctx context.Context, pid int) error
	// Machine is copied into the report; Run fills in Date, CPUs,
	// CPUModel, Platform and Load when they are zero.
	Machine Machine
}

// RunError is an invocation that failed: it exited with an error, or one
// of its commands did not succeed.
type RunError struct {
	Mode     Mode
	Ops      int
	Run      int // 0 for the warm-up
	Repeat   int
	ExitCode int    // the invocation's exit code (0 if it exited well)
	Stderr   string // the end of its standard error
	Err      error
}

func (e *RunError) Error() string {
	run := "the warm-up run"
	if e.Run > 0 {
		run = fmt.Sprintf("run %d of %d", e.Run, e.Repeat)
	}
	msg := fmt.Sprintf("bench: %s, %d operations, %s: %v", e.Mode, e.Ops, run, e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += "\n" + s
	}
	return msg
}

func (e *RunError) Unwrap() error { return e.Err }

// Validate checks cfg and returns the first problem.
func (cfg *Config) Validate() error {
	if cfg.Binary == "" {
		return errors.New("no llm-runtime binary to run")
	}
	if _, err := ParseOp(string(cfg.Op)); err != nil {
		return err
	}
	if len(cfg.Ops) == 0 {
		return errors.New("--ops: no row; give a list such as 1,3,10,50")
	}
	seen := map[int]bool{}
	for _, n := range cfg.Ops {
		if n < 1 || n > MaxOps {
			return fmt.Errorf("--ops: %d operations; want 1 to %d", n, MaxOps)
		}
		if seen[n] {
			return fmt.Errorf("--ops: %d is given twice", n)
		}
		seen[n] = true
	}
	if len(cfg.Modes) == 0 {
		return errors.New("--modes: no mode; want one or more of unpooled, pooled, local")
	}
	if cfg.Repeat < 1 || cfg.Repeat > 1000 {
		return fmt.Errorf("--repeat %d: want 1 to 1000", cfg.Repeat)
	}
	return nil
}

// Environ returns base without LLM_RUNTIME_* variables and with
// XDG_CONFIG_HOME set to configHome (an empty directory), so that neither
// the user's settings nor their configuration file change a measurement.
func Environ(base []string, configHome string) []string {
	var env []string
	for _, kv := range base {
		if strings.HasPrefix(kv, "LLM_RUNTIME_") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "XDG_CONFIG_HOME="+configHome)
}

// weight is about how long an invocation takes, in units of one container
// start, for the progress bar.
func weight(m Mode, ops int) float64 {
	switch m {
	case Unpooled:
		return 1 + float64(ops)
	case Pooled:
		return 1.5
	default:
		return 0.3
	}
}

// Run runs the bench and returns its report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Format: FormatVersion, Machine: cfg.Machine, Op: cfg.Op, Modes: cfg.Modes, Repeat: cfg.Repeat, Journal: cfg.Journal}
	fillMachine(&rep.Machine)

	tmp, err := os.MkdirTemp(cfg.TempDir, "llm-runtime-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(tmp)
	b := &bencher{cfg: cfg, tmp: tmp, repo: filepath.Join(tmp, "repo"), audit: filepath.Join(tmp, "audit")}
	configHome := filepath.Join(tmp, "config")
	if err := os.Mkdir(configHome, 0o700); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	b.env = Environ(cfg.Environ, configHome)
	b.env = append(b.env, "LLM_RUNTIME_JOURNAL_ENABLED="+strconv.FormatBool(cfg.Journal), "LLM_RUNTIME_JOURNAL_DIR="+filepath.Join(tmp, "journal"))

	total := 0.0
	for _, m := range cfg.Modes {
		total += weight(m, 1)
		for _, n := range cfg.Ops {
			total += float64(cfg.Repeat) * weight(m, n)
		}
	}
	b.bar = newProgress(cfg.Progress, total)
	defer b.bar.finish()

	for _, m := range cfg.Modes {
		if m == Served {
			stop, err := b.startDaemon(ctx)
			if err != nil {
				return nil, err
			}
			defer stop()
		}
	}
	for _, m := range cfg.Modes {
		if _, _, err := b.invoke(ctx, m, 1, 0); err != nil {
			return nil, err
		}
	}
	type cell struct {
		runs []float64 // seconds
		ops  []float64 // ms
	}
	cells := make([]map[Mode]*cell, len(cfg.Ops))
	all := map[Mode][]float64{}
	for i, n := range cfg.Ops {
		cells[i] = map[Mode]*cell{}
		for _, m := range cfg.Modes {
			cells[i][m] = &cell{}
		}
		for r := 1; r <= cfg.Repeat; r++ {
			for _, m := range cfg.Modes {
				el, ms, err := b.invoke(ctx, m, n, r)
				if err != nil {
					return nil, err
				}
				c := cells[i][m]
				c.runs = append(c.runs, el.Seconds())
				c.ops = append(c.ops, ms...)
				all[m] = append(all[m], ms...)
			}
		}
	}
	for i, n := range cfg.Ops {
		row := Row{Ops: n}
		for _, m := range cfg.Modes {
			c := cells[i][m]
			t := &Timing{MedianS: round(Median(c.runs), 4), Latency: *latency(c.ops)}
			for _, s := range c.runs {
				t.RunsS = append(t.RunsS, round(s, 4))
			}
			row.Modes.Set(m, t)
			med := t.MedianS
			switch m {
			case Unpooled:
				row.UnpooledS = &med
			case Pooled:
				row.PooledS = &med
			case Attach:
				row.AttachS = &med
			case Served:
				row.ServedS = &med
			case Local:
				row.LocalS = &med
			}
		}
		if row.UnpooledS != nil && row.PooledS != nil {
			s := round(Speedup(*row.UnpooledS, *row.PooledS), 3)
			row.Speedup = &s
		}
		if row.UnpooledS != nil && row.ServedS != nil {
			s := round(Speedup(*row.UnpooledS, *row.ServedS), 3)
			row.ServedSpeedup = &s
		}
		rep.Rows = append(rep.Rows, row)
	}
	for _, m := range cfg.Modes {
		rep.PerOp.Set(m, latency(all[m]))
	}
	return rep, nil
}

type bencher struct {
	cfg              Config
	tmp, repo, audit string
	socket           string // the served mode's daemon
	env              []string
	bar              *progress
}

// startDaemon starts the served mode's daemon (llm-runtime serve) on a
// socket in the bench's directory, with the invocations' environment, and
// waits until it takes connections. stop ends it (SIGTERM), which removes
// its containers, and waits for its exit.
func (b *bencher) startDaemon(ctx context.Context) (stop func(), err error) {
	b.socket = filepath.Join(b.tmp, "serve.sock")
	logf, err := b.file("serve.log", nil)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.cfg.Binary, "serve", "--socket", b.socket)
	cmd.Env, cmd.Dir, cmd.Stderr = b.env, b.tmp, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: starting llm-runtime serve: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		if b.cfg.AfterRun != nil {
			b.cfg.AfterRun(context.WithoutCancel(ctx), cmd.Process.Pid)
		}
		logf.Close()
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if c, err := net.Dial("unix", b.socket); err == nil {
			c.Close()
			return stop, nil
		}
		select {
		case <-exited:
			logf.Close()
			return nil, fmt.Errorf("bench: llm-runtime serve exited: %s", tail(logf))
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("bench: llm-runtime serve did not listen within a minute: %s", tail(logf))
		}
	}
}

// emptyDir removes everything in dir but dir itself, which keeps its
// identity: the served mode's daemon keeps a pool per repository, by
// identity, as a model loop's runs on one repository would find it.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// invoke runs one invocation of n operations in mode m (run 0 is the
// warm-up) and returns its time, start to exit, and the duration_ms of
// each of its commands.
func (b *bencher) invoke(ctx context.Context, m Mode, n, run int) (time.Duration, []float64, error) {
	ops := "operations"
	if n == 1 {
		ops = "operation"
	}
	label := fmt.Sprintf("%s, %d %s, warm-up", m, n, ops)
	if run > 0 {
		label = fmt.Sprintf("%s, %d %s, run %d of %d", m, n, ops, run, b.cfg.Repeat)
	}
	b.bar.begin(label, weight(m, n))
	defer b.bar.end()
	fail := func(code int, stderr string, err error) (time.Duration, []float64, error) {
		return 0, nil, &RunError{Mode: m, Ops: n, Run: run, Repeat: b.cfg.Repeat, ExitCode: code, Stderr: stderr, Err: err}
	}

	// Not timed: the same files every time, in the same directory.
	if err := emptyDir(b.repo); err != nil {
		return fail(0, "", err)
	}
	if err := Seed(b.repo, n); err != nil {
		return fail(0, "", err)
	}
	input, err := Input(b.cfg.Op, n)
	if err != nil {
		return fail(0, "", err)
	}
	stdin, err := b.file("stdin", []byte(input))
	if err != nil {
		return fail(0, "", err)
	}
	defer stdin.Close()
	stdout, err := b.file("stdout", nil)
	if err != nil {
		return fail(0, "", err)
	}
	defer stdout.Close()
	stderr, err := b.file("stderr", nil)
	if err != nil {
		return fail(0, "", err)
	}
	defer stderr.Close()

	args := append([]string{"--root", b.repo, "--audit-dir", b.audit, "--format", "jsonl"}, m.Flags(b.socket)...)
	cmd := exec.CommandContext(ctx, b.cfg.Binary, args...)
	cmd.Env = append(append([]string{}, b.env...), m.Env()...)
	cmd.Dir = b.tmp
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// Interrupted, the invocation reports what it ran and removes its
	// containers, as it does for a user's Ctrl-C.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second

	// Timed: from just before the start to the exit.
	start := time.Now()
	err = cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	elapsed := time.Since(start)

	if cmd.Process != nil && m.Docker() && b.cfg.AfterRun != nil {
		if aerr := b.cfg.AfterRun(context.WithoutCancel(ctx), cmd.Process.Pid); aerr != nil && err == nil {
			err = aerr
		}
	}
	errText := tail(stderr)
	if ctx.Err() != nil {
		return fail(-1, "", ctx.Err())
	}
	if err != nil {
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
			err = fmt.Errorf("llm-runtime exited with code %d", code)
		}
		return fail(code, errText, err)
	}
	if _, err := stdout.Seek(0, io.SeekStart); err != nil {
		return fail(0, errText, err)
	}
	ms, err := Check(stdout, Commands(b.cfg.Op, n))
	if err != nil {
		return fail(0, errText, err)
	}
	return elapsed, ms, nil
}

// file creates the file name in the bench's directory (outside the
// repository) holding data, open for reading and writing from the start.
func (b *bencher) file(name string, data []byte) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(b.tmp, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		if _, err := f.Write(data); err != nil {
			f.Close()
			return nil, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// tail returns the last 2 KiB of f.
func tail(f *os.File) string {
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, fi.Size()-2048)
	buf := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(buf, off)
	return string(buf[:n])
}

// record is what the bench reads of a line of --format jsonl output.
type record struct {
	Index      int      `json:"index"`
	Command    string   `json:"command"`
	Tag        string   `json:"tag"`
	OK         bool     `json:"ok"`
	DurationMS *float64 `json:"duration_ms"`
	Error      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Check reads the JSON Lines output of an invocation that ran the
// commands want (their names, in order), checks that every one of them
// succeeded, and returns their duration_ms.
func Check(out io.Reader, want []string) ([]float64, error) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var ms []float64
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("output line %d is not a JSON object (%v): %.200q", len(ms)+1, err, line)
		}
		i := len(ms)
		if i >= len(want) {
			return nil, fmt.Errorf("more results than the %d commands sent: %.200q", len(want), line)
		}
		if r.Index != i+1 || r.Command != want[i] {
			return nil, fmt.Errorf("result %d is %s %q (index %d); want %s", i+1, r.Command, r.Tag, r.Index, want[i])
		}
		if !r.OK {
			code, msg := "", ""
			if r.Error != nil {
				code, msg = r.Error.Code, r.Error.Message
			}
			return nil, fmt.Errorf("command %d %s failed: %s: %s", i+1, r.Tag, code, msg)
		}
		if r.DurationMS == nil || *r.DurationMS < 0 {
			return nil, fmt.Errorf("command %d %s has no duration_ms", i+1, r.Tag)
		}
		ms = append(ms, *r.DurationMS)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ms) != len(want) {
		return nil, fmt.Errorf("%d results for the %d commands sent", len(ms), len(want))
	}
	return ms, nil
}

// fillMachine fills in what the bench can learn of the machine itself.
func fillMachine(m *Machine) {
	if m.Date == "" {
		m.Date = time.Now().UTC().Format(time.RFC3339)
	}
	if m.CPUs == 0 {
		m.CPUs = runtime.NumCPU()
	}
	if m.Platform == "" {
		m.Platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	if m.CPUModel == "" {
		m.CPUModel = cpuModel()
	}
	if m.Load == 0 {
		m.Load = loadAvg()
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	x, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return x
}
