package main

import (
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
)

// benchReport is what a script reads of `llm-runtime bench --json`.
type benchReport struct {
	Format  int `json:"format"`
	Machine struct {
		CPUs    int    `json:"cpus"`
		Docker  string `json:"docker"`
		Image   string `json:"image"`
		ImageID string `json:"image_id"`
		Version string `json:"llm_runtime"`
	} `json:"machine"`
	Op     string   `json:"op"`
	Modes  []string `json:"modes"`
	Repeat int      `json:"repeat"`
	Rows   []struct {
		Ops       int      `json:"ops"`
		UnpooledS *float64 `json:"unpooled_s"`
		PooledS   *float64 `json:"pooled_s"`
		Speedup   *float64 `json:"speedup"`
		Modes     map[string]struct {
			MedianS float64   `json:"median_s"`
			RunsS   []float64 `json:"runs_s"`
			P50MS   *float64  `json:"p50_ms"`
			P95MS   *float64  `json:"p95_ms"`
			Samples int       `json:"samples"`
		} `json:"modes"`
	} `json:"rows"`
	PerOp map[string]struct {
		P50MS   *float64 `json:"p50_ms"`
		P95MS   *float64 `json:"p95_ms"`
		Samples int      `json:"samples"`
	} `json:"per_op"`
}

// The CI check: a small bench against the real daemon, its JSON
// checked for shape and sanity. Speed itself is never asserted here.
func TestE2EBenchJSON(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"untouched.txt": "mine\n"})
	r := runBinary(t, dir, "", nil, "bench", "--ops", "1,3", "--repeat", "1", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("stderr is not a terminal, yet: %q", r.stderr)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	m := rep.Machine
	if rep.Format != 1 || rep.Op != "open" || rep.Repeat != 1 || strings.Join(rep.Modes, ",") != "unpooled,pooled" {
		t.Errorf("header: %+v", rep)
	}
	if m.CPUs < 1 || m.Docker == "" || !strings.HasPrefix(m.Image, "llm-runtime-io:") || m.ImageID == "" || !strings.HasPrefix(m.Version, "llm-runtime ") {
		t.Errorf("machine: %+v", m)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].Ops != 1 || rep.Rows[1].Ops != 3 {
		t.Fatalf("rows: %s", r.stdout)
	}
	for _, row := range rep.Rows {
		if row.UnpooledS == nil || row.PooledS == nil || row.Speedup == nil {
			t.Fatalf("row %d lacks unpooled_s, pooled_s or speedup: %s", row.Ops, r.stdout)
		}
		u, p, s := *row.UnpooledS, *row.PooledS, *row.Speedup
		if u <= 0 || p <= 0 || s <= 0 {
			t.Errorf("row %d: unpooled_s %v, pooled_s %v, speedup %v: not positive", row.Ops, u, p, s)
		}
		if want := u / p; math.Abs(s-want) > 0.001+want*1e-3 {
			t.Errorf("row %d: speedup %v, want unpooled_s / pooled_s = %v", row.Ops, s, want)
		}
		for _, mode := range []string{"unpooled", "pooled"} {
			mt, ok := row.Modes[mode]
			if !ok {
				t.Fatalf("row %d has no %s", row.Ops, mode)
			}
			if mt.Samples != row.Ops || len(mt.RunsS) != 1 || mt.RunsS[0] != mt.MedianS || mt.P50MS == nil || mt.P95MS == nil {
				t.Errorf("row %d, %s: %+v", row.Ops, mode, mt)
				continue
			}
			if *mt.P50MS <= 0 || *mt.P95MS < *mt.P50MS {
				t.Errorf("row %d, %s: p50 %v, p95 %v", row.Ops, mode, *mt.P50MS, *mt.P95MS)
			}
			// An operation cannot take longer than the invocation it ran in.
			if *mt.P95MS > mt.MedianS*1000 {
				t.Errorf("row %d, %s: p95 %v ms in an invocation of %v s", row.Ops, mode, *mt.P95MS, mt.MedianS)
			}
		}
		if row.Modes["unpooled"].MedianS != u || row.Modes["pooled"].MedianS != p {
			t.Errorf("row %d: unpooled_s, pooled_s are not the modes' median_s", row.Ops)
		}
	}
	for _, mode := range []string{"unpooled", "pooled"} {
		l, ok := rep.PerOp[mode]
		if !ok || l.Samples != 4 || l.P50MS == nil || l.P95MS == nil || *l.P50MS <= 0 {
			t.Errorf("per_op.%s: %+v", mode, l)
		}
	}
	if _, ok := rep.PerOp["local"]; ok {
		t.Error("per_op has local, which was not asked for")
	}
	// Sanity, not speed: an unpooled operation starts a container, a pooled
	// one (past the first) does not.
	if up, pp := *rep.PerOp["unpooled"].P50MS, *rep.PerOp["pooled"].P50MS; pp >= up {
		t.Errorf("pooled p50 %v ms is not below unpooled p50 %v ms", pp, up)
	}
	// The bench ran in a repository of its own.
	if r := runBinary(t, dir, "<open untouched.txt>", nil, "--sandbox", "local", "--format", "jsonl"); !strings.Contains(r.stdout, `"content":"mine\n"`) {
		t.Errorf("the user's repository changed: %s", r.stdout)
	}
}

func TestE2EBenchRefusesBadFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--modes", "docker"}, `unknown mode "docker"`},
		{[]string{"bench", "--ops", "0"}, "want 1 to 10000"},
		{[]string{"bench", "--repeat", "0"}, "--repeat 0"},
		{[]string{"bench", "--op", "exec"}, "--op"},
		{[]string{"bench", "--json", "--markdown"}, "can't be used together"},
	} {
		r := runBinary(t, dir, "", nil, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

// TestE2EBenchServed measures the served mode: the bench starts a daemon
// of its own, every invocation goes through it, and the daemon and its
// containers are gone when the bench exits.
func TestE2EBenchServed(t *testing.T) {
	t.Parallel()
	dir := repo(t, nil)
	// A temporary directory of its own, where the bench puts its daemon's
	// socket: so that its daemon can be told from other tests'.
	tmp := testenv.ShortDir(t)
	r := runBinary(t, dir, "", []string{"TMPDIR=" + tmp}, "bench", "--ops", "1,3", "--repeat", "2", "--modes", "unpooled,served", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		Modes []string `json:"modes"`
		Rows  []struct {
			Ops           int      `json:"ops"`
			UnpooledS     *float64 `json:"unpooled_s"`
			ServedS       *float64 `json:"served_s"`
			ServedSpeedup *float64 `json:"served_speedup"`
			Modes         map[string]struct {
				Samples int `json:"samples"`
			} `json:"modes"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if strings.Join(rep.Modes, ",") != "unpooled,served" || len(rep.Rows) != 2 {
		t.Fatalf("%s", r.stdout)
	}
	for _, row := range rep.Rows {
		if row.ServedS == nil || row.UnpooledS == nil || row.ServedSpeedup == nil || *row.ServedS <= 0 || row.Modes["served"].Samples != 2*row.Ops {
			t.Fatalf("row %d: %s", row.Ops, r.stdout)
		}
		if want := *row.UnpooledS / *row.ServedS; math.Abs(*row.ServedSpeedup-want) > 0.001+want*1e-3 {
			t.Errorf("row %d: served_speedup %v, want %v", row.Ops, *row.ServedSpeedup, want)
		}
	}
	// The daemon was the bench's child: no process of ours is left.
	out, _ := exec.Command("pgrep", "-f", binary+" serve --socket "+tmp+"/").Output()
	if len(out) != 0 {
		t.Fatalf("a daemon is still running: %s", out)
	}
}
