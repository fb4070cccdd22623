package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeRuntime writes a shell script that behaves like
// `llm-runtime --format jsonl`: one successful JSON line per command line
// of its input. It records its arguments, environment and repository in
// dir/calls, and fails the commands of --no-pool runs when FAKE_FAIL is
// set.
func fakeRuntime(t *testing.T) (bin, dir string) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir = t.TempDir()
	bin = filepath.Join(dir, "llm-runtime")
	script := `#!/bin/sh
root=
while [ $# -gt 0 ]; do
  case "$1" in --root) root=$2 ;; esac
  args="$args $1"
  shift
done
{
  echo "args:$args"
  echo "config:$XDG_CONFIG_HOME"
  echo "llm:$(env | grep '^LLM_RUNTIME_' | grep -vc '^LLM_RUNTIME_JOURNAL_')"
  echo "journal:$LLM_RUNTIME_JOURNAL_ENABLED:$LLM_RUNTIME_JOURNAL_DIR"
  echo "files:$(ls "$root" | wc -l)"
} >> "$FAKE_DIR/calls"
i=0
while IFS= read -r line; do
  i=$((i+1))
  case "$line" in
    "<open "*) cmd=open ;;
    *) cmd=write ;;
  esac
  ok=true
  case "$args" in *--no-pool*) [ -n "$FAKE_FAIL" ] && ok=false ;; esac
  if [ $ok = true ]; then
    echo "{\"index\":$i,\"line\":$i,\"command\":\"$cmd\",\"tag\":\"<$cmd x>\",\"ok\":true,\"duration_ms\":$i.5}"
  else
    echo "{\"index\":$i,\"line\":$i,\"command\":\"$cmd\",\"tag\":\"<$cmd x>\",\"ok\":false,\"duration_ms\":1,\"error\":{\"code\":\"DOCKER_UNAVAILABLE\",\"message\":\"no sandbox container\"}}"
  fi
done
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, dir
}

func TestBenchRunWithAFakeRuntime(t *testing.T) {
	bin, dir := fakeRuntime(t)
	tmp := t.TempDir()
	var mu sync.Mutex
	var afterRuns []int
	cfg := Config{
		Binary:  bin,
		Environ: append(os.Environ(), "FAKE_DIR="+dir, "LLM_RUNTIME_SANDBOX=local", "LLM_RUNTIME_CONTAINER_POOL_SIZE=1", "XDG_CONFIG_HOME=/nonexistent/user-config"),
		Op:      Mixed,
		Journal: true,
		Ops:     []int{1, 4},
		Modes:   []Mode{Unpooled, Pooled, Local},
		Repeat:  2,
		TempDir: tmp,
		AfterRun: func(ctx context.Context, pid int) error {
			mu.Lock()
			defer mu.Unlock()
			afterRuns = append(afterRuns, pid)
			return nil
		},
		Machine: Machine{Version: "test"},
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The warm-ups (3) and 2 rows x 2 runs x 3 modes.
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	lines := strings.Split(strings.TrimSpace(string(calls)), "\n")
	if len(lines) != 5*(3+12) {
		t.Fatalf("%d lines of calls:\n%s", len(lines), calls)
	}
	var args []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "args:"):
			args = append(args, l)
			if !strings.Contains(l, " --root "+tmp+"/llm-runtime-bench-") || !strings.Contains(l, " --audit-dir "+tmp+"/llm-runtime-bench-") || !strings.Contains(l, " --format jsonl") {
				t.Errorf("args %q", l)
			}
		case strings.HasPrefix(l, "config:"):
			if !strings.HasPrefix(l, "config:"+tmp+"/llm-runtime-bench-") {
				t.Errorf("XDG_CONFIG_HOME is the user's: %q", l)
			}
		case strings.HasPrefix(l, "files:"):
			if n := strings.TrimSpace(strings.TrimPrefix(l, "files:")); n != "1" && n != "4" {
				t.Errorf("the repository holds %s files, want 1 or 4 (re-seeded for each run)", n)
			}
		case strings.HasPrefix(l, "llm:"):
			if l != "llm:0" {
				t.Errorf("LLM_RUNTIME_ variables reached the invocation: %q", l)
			}
		case strings.HasPrefix(l, "journal:"):
			// The bench's own journal, never the user's.
			if !strings.HasPrefix(l, "journal:true:"+tmp+"/llm-runtime-bench-") {
				t.Errorf("the journal: %q", l)
			}
		}
	}
	wantModes := []string{"--no-pool", "--sandbox docker", "--sandbox local"}
	for i, a := range args[:3] {
		if !strings.Contains(a, wantModes[i]) {
			t.Errorf("warm-up %d: %q, want %s", i, a, wantModes[i])
		}
	}
	for _, a := range args {
		if !strings.Contains(a, "--server never") {
			t.Errorf("a mode that is not served ran without --server never: %q", a)
		}
	}
	if strings.Contains(args[1], "--no-pool") {
		t.Errorf("pooled ran with --no-pool: %q", args[1])
	}
	// Interleaved: unpooled, pooled, local, unpooled, ...
	for i, a := range args[3:] {
		if !strings.Contains(a, wantModes[i%3]) {
			t.Errorf("run %d: %q, want %s", i, a, wantModes[i%3])
		}
	}
	if len(afterRuns) != 2*(1+4) {
		t.Errorf("AfterRun called %d times, want 10 (the Docker modes' runs)", len(afterRuns))
	}
	entries, _ := os.ReadDir(tmp)
	if len(entries) != 0 {
		t.Errorf("the bench left %d entries in its temporary directory", len(entries))
	}

	if rep.Op != Mixed || rep.Repeat != 2 || len(rep.Rows) != 2 || rep.Machine.CPUs == 0 || rep.Machine.Version != "test" {
		t.Fatalf("report %+v", rep)
	}
	r := rep.Rows[1]
	if r.Ops != 4 || r.UnpooledS == nil || r.PooledS == nil || r.LocalS == nil || r.Speedup == nil {
		t.Fatalf("row %+v", r)
	}
	if r.Modes.Served != nil || r.ServedS != nil {
		t.Errorf("served was not measured, but the row has it: %+v", r)
	}
	for _, m := range rep.Modes {
		tm := r.Modes.Get(m)
		if tm == nil || len(tm.RunsS) != 2 || tm.MedianS <= 0 || tm.Samples != 8 || tm.P50MS != 3 || tm.MaxMS != 4.5 {
			t.Errorf("%s: %+v", m, tm)
		}
	}
	if p := rep.PerOp.Pooled; p == nil || p.Samples != 10 {
		t.Errorf("per_op.pooled %+v", p)
	}
}

func TestBenchRunFailsOnAFailedCommand(t *testing.T) {
	bin, dir := fakeRuntime(t)
	cfg := Config{
		Binary: bin, Environ: append(os.Environ(), "FAKE_DIR="+dir, "FAKE_FAIL=1"),
		Op: Open, Ops: []int{3}, Modes: []Mode{Unpooled, Pooled}, Repeat: 1, TempDir: t.TempDir(),
	}
	_, err := Run(context.Background(), cfg)
	var re *RunError
	if !errors.As(err, &re) || re.Mode != Unpooled || re.Run != 0 || !strings.Contains(err.Error(), "DOCKER_UNAVAILABLE: no sandbox container") {
		t.Fatalf("err = %v", err)
	}
}

func TestBenchRunFailsOnAnExitCode(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "llm-runtime")
	os.WriteFile(bin, []byte("#!/bin/sh\necho 'llm-runtime: Docker is not running' >&2\nexit 3\n"), 0o755)
	cfg := Config{Binary: bin, Op: Open, Ops: []int{1}, Modes: []Mode{Pooled}, Repeat: 1, TempDir: t.TempDir()}
	_, err := Run(context.Background(), cfg)
	var re *RunError
	if !errors.As(err, &re) || re.ExitCode != 3 || !strings.Contains(err.Error(), "exited with code 3") || !strings.Contains(err.Error(), "Docker is not running") {
		t.Fatalf("err = %v", err)
	}
}

func TestBenchValidate(t *testing.T) {
	ok := Config{Binary: "x", Op: Open, Ops: []int{1, 3}, Modes: []Mode{Pooled}, Repeat: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Ops = nil }, "no row"},
		{func(c *Config) { c.Ops = []int{0} }, "want 1 to"},
		{func(c *Config) { c.Ops = []int{MaxOps + 1} }, "want 1 to"},
		{func(c *Config) { c.Ops = []int{3, 3} }, "twice"},
		{func(c *Config) { c.Repeat = 0 }, "--repeat"},
		{func(c *Config) { c.Op = "exec" }, "unknown workload"},
		{func(c *Config) { c.Modes = nil }, "no mode"},
	} {
		cfg := ok
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
	}
}

func TestBenchCheck(t *testing.T) {
	ok := `{"index":1,"command":"open","tag":"<open a>","ok":true,"duration_ms":0.4}
{"index":2,"command":"write","tag":"<write b>","ok":true,"duration_ms":1.7}
`
	ms, err := Check(strings.NewReader(ok), []string{"open", "write"})
	if err != nil || len(ms) != 2 || ms[0] != 0.4 || ms[1] != 1.7 {
		t.Fatalf("Check = %v, %v", ms, err)
	}
	for _, c := range []struct {
		out  string
		want []string
		err  string
	}{
		{ok, []string{"open"}, "more results"},
		{ok, []string{"open", "write", "open"}, "2 results for the 3"},
		{ok, []string{"open", "open"}, "want open"},
		{"=== LLM TOOL START ===\n", []string{"open"}, "not a JSON object"},
		{`{"index":1,"command":"open","tag":"<open a>","ok":false,"duration_ms":0.1,"error":{"code":"FILE_NOT_FOUND","message":"a: no such file"}}`, []string{"open"}, "<open a> failed: FILE_NOT_FOUND: a: no such file"},
		{`{"index":1,"command":"open","tag":"<open a>","ok":true}`, []string{"open"}, "no duration_ms"},
	} {
		if _, err := Check(strings.NewReader(c.out), c.want); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("Check(%.40q) = %v, want %q", c.out, err, c.err)
		}
	}
}
