package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func sampleReport(modes ...Mode) *Report {
	r := &Report{
		Format: FormatVersion,
		Machine: Machine{Date: "2026-11-27T14:00:00Z", CPUs: 2, CPUModel: "AMD EPYC", Platform: "linux/amd64", Load: 0.25,
			Docker: "20.10.24", Image: "llm-runtime-io:0123456789abcdef", ImageID: "sha256:1d5a6e013af1ffff", Version: "llm-runtime v1.2.3 go1.26.8 linux/amd64"},
		Op: Open, Modes: modes, Repeat: 3, Journal: true,
	}
	secs := map[Mode]map[int]float64{
		Unpooled: {1: 0.61, 50: 17.83},
		Pooled:   {1: 0.6449, 50: 0.4461},
		Local:    {1: 0.024, 50: 0.031},
	}
	lat := map[Mode]Latency{
		Unpooled: {P50MS: 352, P95MS: 371.4, MaxMS: 380, Samples: 153},
		Pooled:   {P50MS: 0.43, P95MS: 0.71, MaxMS: 264, Samples: 153},
		Local:    {P50MS: 0.039, P95MS: 0.051, MaxMS: 0.1, Samples: 153},
	}
	for _, n := range []int{1, 50} {
		row := Row{Ops: n}
		for _, m := range modes {
			s := secs[m][n]
			row.Modes.Set(m, &Timing{MedianS: s, RunsS: []float64{s, s, s}, Latency: lat[m]})
			switch m {
			case Unpooled:
				row.UnpooledS = &s
			case Pooled:
				row.PooledS = &s
			case Local:
				row.LocalS = &s
			}
		}
		if row.UnpooledS != nil && row.PooledS != nil {
			sp := round(Speedup(*row.UnpooledS, *row.PooledS), 3)
			row.Speedup = &sp
		}
		r.Rows = append(r.Rows, row)
	}
	for _, m := range modes {
		l := lat[m]
		r.PerOp.Set(m, &l)
	}
	return r
}

func TestBenchWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport(Unpooled, Pooled).WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `llm-runtime bench: workload open, 3 runs per cell.
Each cell is the median time of a whole invocation, start to exit, pool start-up and teardown included.

  Date:         2026-11-27T14:00:00Z
  CPUs:         2 × AMD EPYC
  Platform:     linux/amd64
  Load:         0.25 (1-minute average at the start)
  Docker:       20.10.24
  Image:        llm-runtime-io:0123456789abcdef (1d5a6e013af1)
  llm-runtime:  llm-runtime v1.2.3 go1.26.8 linux/amd64

Operations  Without pool  With pool     Improvement
1                 0.610s     0.645s  -5% (overhead)
50                 17.8s     0.446s   39.97x faster

Per operation, p50 / p95 of the duration_ms of every command of the timed runs:

Operations  Without pool         With pool
1           352 / 371 ms  0.430 / 0.710 ms
50          352 / 371 ms  0.430 / 0.710 ms
all         352 / 371 ms  0.430 / 0.710 ms
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestBenchBusyMachineIsNoted(t *testing.T) {
	r := sampleReport(Unpooled, Pooled)
	r.Machine.Load = 1.5
	var b, md bytes.Buffer
	r.WriteTable(&b)
	r.WriteMarkdown(&md)
	if !strings.Contains(b.String(), "\nNote: the machine was busy when the bench started (load 1.50 on 2 CPUs)") ||
		!strings.Contains(md.String(), "\n> Note: the machine was busy") {
		t.Errorf("no note of a busy machine:\n%s\n%s", b.String(), md.String())
	}
}

func TestBenchWriteTableWithLocalOnly(t *testing.T) {
	var b bytes.Buffer
	r := sampleReport(Local)
	r.Machine.Docker, r.Machine.Image, r.Machine.ImageID = "", "", ""
	r.Repeat = 1
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{"3 runs", "Docker:", "Image:", "Improvement", "Without pool"} {
		if strings.Contains(out, s) {
			t.Errorf("%q in a local-only, one-run report:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "workload open, 1 run per cell") || !strings.Contains(out, "Operations   Local\n1           0.024s\n50          0.031s\n") {
		t.Errorf("local-only report:\n%s", out)
	}
}

func TestBenchWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport(Unpooled, Pooled, Local).WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	want := "Measured by `llm-runtime bench`: workload open, 3 runs per cell. Each cell is the median time of a whole invocation, start to exit, pool start-up and teardown included.\n" + `
- Date: 2026-11-27T14:00:00Z
- CPUs: 2 × AMD EPYC
- Platform: linux/amd64
- Load: 0.25 (1-minute average at the start)
- Docker: 20.10.24
- Image: llm-runtime-io:0123456789abcdef (1d5a6e013af1)
- llm-runtime: llm-runtime v1.2.3 go1.26.8 linux/amd64

| Operations | Without pool | With pool |    Improvement |  Local |
| ---------- | -----------: | --------: | -------------: | -----: |
| 1          |       0.610s |    0.645s | -5% (overhead) | 0.024s |
| 50         |        17.8s |    0.446s |  39.97x faster | 0.031s |

Per operation, p50 / p95 of the ` + "`duration_ms`" + ` of every command of the timed runs:

| Operations | Without pool |        With pool |            Local |
| ---------- | -----------: | ---------------: | ---------------: |
| 1          | 352 / 371 ms | 0.430 / 0.710 ms | 0.039 / 0.051 ms |
| 50         | 352 / 371 ms | 0.430 / 0.710 ms | 0.039 / 0.051 ms |
| all        | 352 / 371 ms | 0.430 / 0.710 ms | 0.039 / 0.051 ms |
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// The JSON fields scripts rely on, in a fixed order.
func TestBenchWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport(Unpooled, Pooled).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Format  int
		Machine map[string]any
		Op      string
		Modes   []string
		Repeat  int
		Rows    []map[string]json.RawMessage
		PerOp   map[string]map[string]float64 `json:"per_op"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Format != 1 || got.Op != "open" || got.Repeat != 3 || strings.Join(got.Modes, ",") != "unpooled,pooled" || len(got.Rows) != 2 {
		t.Fatalf("report: %s", b.String())
	}
	for _, k := range []string{"date", "cpus", "platform", "load_avg", "docker", "image", "image_id", "llm_runtime"} {
		if _, ok := got.Machine[k]; !ok {
			t.Errorf("machine has no %s", k)
		}
	}
	row := got.Rows[1]
	for _, k := range []string{"ops", "unpooled_s", "pooled_s", "speedup", "modes"} {
		if _, ok := row[k]; !ok {
			t.Errorf("row has no %s: %v", k, row)
		}
	}
	if _, ok := row["local_s"]; ok {
		t.Error("row has local_s, but local was not measured")
	}
	if string(row["speedup"]) != "39.969" {
		t.Errorf("speedup %s, want 39.969", row["speedup"])
	}
	if p := got.PerOp["pooled"]; p["p50_ms"] != 0.43 || p["p95_ms"] != 0.71 || p["samples"] != 153 {
		t.Errorf("per_op.pooled = %v", p)
	}
	// Field order is part of the format's stability.
	out := b.String()
	last := -1
	for _, k := range []string{`"format"`, `"machine"`, `"op"`, `"modes"`, `"repeat"`, `"rows"`, `"ops"`, `"unpooled_s"`, `"pooled_s"`, `"speedup"`, `"median_s"`, `"runs_s"`, `"p50_ms"`, `"p95_ms"`, `"per_op"`} {
		i := strings.Index(out[last+1:], k)
		if i < 0 {
			t.Fatalf("%s missing or out of order in:\n%s", k, out)
		}
		last += 1 + i
	}
}
