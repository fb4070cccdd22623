package main

// End-to-end tests of the audit log through the binary.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type auditLine struct {
	Time      string `json:"time"`
	Session   string `json:"session"`
	Op        string `json:"op"`
	Target    string `json:"target"`
	Resolved  string `json:"resolved"`
	Outcome   string `json:"outcome"`
	Code      string `json:"code"`
	LatencyNS int64  `json:"latency_ns"`
	WaitNS    int64  `json:"wait_ns"`
	SandboxNS int64  `json:"sandbox_ns"`
	Container string `json:"container"`
	Pooled    bool   `json:"pooled"`
	Repo      string `json:"repo"`
	Changes   string `json:"changes"`
	FrontEnd  string `json:"front_end"`
	Client    string `json:"client"`
	// Checkpoint is the journal's checkpoint of the operation's changes.
	Checkpoint int `json:"checkpoint"`
	// Network is an exec's connections through the egress proxy.
	Network string `json:"network"`
}

func auditOf(t *testing.T, dir string, args ...string) []auditLine {
	t.Helper()
	r := runBinary(t, t.TempDir(), "", nil, append([]string{"audit", "list", "--format", "json", "--repo", dir}, args...)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("audit list: exit %d, %s", r.code, r.stderr)
	}
	var out []auditLine
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l == "" {
			continue
		}
		var a auditLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, a)
	}
	return out
}

func TestE2EEveryOperationIsAudited(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n", ".env": "X=1\n"})
	r := runBinary(t, dir, "<open a.txt> <open .env> <write b.txt>B</write> <search A> <open missing>", nil)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q (Pebble must stay quiet)", r.code, r.stderr)
	}
	recs := auditOf(t, dir)
	want := []struct{ op, target, outcome, code string }{
		{"open", "a.txt", "ok", ""}, {"open", ".env", "denied", "PATH_SECURITY"}, {"write", "b.txt", "ok", ""},
		{"search", "A", "ok", ""}, {"open", "missing", "error", "FILE_NOT_FOUND"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		a := recs[i]
		if a.Op != w.op || a.Target != w.target || a.Outcome != w.outcome || a.Code != w.code || a.LatencyNS <= 0 ||
			a.Session != recs[0].Session || a.Repo != dir || !a.Pooled || !strings.HasPrefix(a.Container, "llm-runtime-io-") {
			t.Errorf("record %d: %+v, want %+v", i, a, w)
		}
	}
	if recs[0].WaitNS <= 0 || recs[0].SandboxNS <= 0 {
		t.Errorf("the first operation waited for its container: %+v", recs[0])
	}
	v := runBinary(t, t.TempDir(), "", nil, "audit", "verify")
	if v.code != 0 || !strings.HasPrefix(v.stdout, "ok: ") {
		t.Fatalf("verify: exit %d %q %q", v.code, v.stdout, v.stderr)
	}
	s := runBinary(t, t.TempDir(), "", nil, "audit", "stats", "--repo", dir)
	if s.code != 0 || !strings.Contains(s.stdout, "open") || !strings.Contains(s.stdout, "sandbox") {
		t.Fatalf("stats: exit %d %q %q", s.code, s.stdout, s.stderr)
	}
}

func TestE2EAuditRecordSurvivesKill9(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	s := startSession(t, dir)
	s.send("<open a.txt>")
	// The result was printed, so its record is on disk: kill without a
	// chance to flush anything.
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	recs := auditOf(t, dir)
	if len(recs) != 1 || recs[0].Target != "a.txt" || recs[0].Outcome != "ok" {
		t.Fatalf("after kill -9: %+v", recs)
	}
}

// TestE2ETwoRunsAtOnceAndAQueryDuringThem runs two filters at the same time
// and queries the log while both are still open.
func TestE2ETwoRunsAtOnceAndAQueryDuringThem(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n", "b.txt": "B\n"})
	s1 := startSession(t, dir, "--sandbox", "local")
	s2 := startSession(t, dir, "--sandbox", "local")
	for range 3 {
		s1.send("<open a.txt>")
		s2.send("<open b.txt>")
	}
	// Both runs are alive and hold their segments.
	during := auditOf(t, dir)
	if len(during) != 6 {
		t.Fatalf("%d records during the runs, want 6", len(during))
	}
	if v := runBinary(t, t.TempDir(), "", nil, "audit", "verify"); v.code != 0 {
		t.Fatalf("verify during the runs: %d %s", v.code, v.stderr)
	}
	if st := runBinary(t, t.TempDir(), "", nil, "audit", "stats", "--repo", dir, "--format", "json"); st.code != 0 || !strings.Contains(st.stdout, `"group":"all","count":6`) {
		t.Fatalf("stats during the runs: %d %s %s", st.code, st.stdout, st.stderr)
	}
	var wg sync.WaitGroup
	for _, s := range []*session{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.send("<open a.txt>")
			s.stdin.Close()
			s.cmd.Wait()
		}()
	}
	wg.Wait()
	after := auditOf(t, dir)
	sessions := map[string]int{}
	for _, a := range after {
		sessions[a.Session]++
	}
	if len(after) != 8 || len(sessions) != 2 {
		t.Fatalf("%d records in %d sessions, want 8 in 2", len(after), len(sessions))
	}
	if segs, _ := os.ReadDir(filepath.Join(stateDir, "llm-runtime", "audit", "segments")); len(segs) != 0 {
		// Both writers closed; whoever closed last merged, or the query did.
		r := runBinary(t, t.TempDir(), "", nil, "audit", "verify")
		if r.code != 0 {
			t.Fatalf("verify: %s", r.stderr)
		}
	}
}

func TestE2EAuditFlagsAndErrors(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	runBinary(t, dir, "<open a.txt> <write x.txt>x</write>", nil, "--sandbox", "local")
	if recs := auditOf(t, dir, "--op", "write"); len(recs) != 1 || recs[0].Target != "x.txt" {
		t.Fatalf("--op write: %+v", recs)
	}
	if recs := auditOf(t, dir, "--since", "1h", "--until", time.Now().Add(time.Minute).Format(time.RFC3339)); len(recs) != 2 {
		t.Fatalf("--since/--until: %+v", recs)
	}
	if recs := auditOf(t, dir, "--path", "*.txt", "--outcome", "ok", "--limit", "1"); len(recs) != 1 || recs[0].Target != "x.txt" {
		t.Fatalf("--limit keeps the newest: %+v", recs)
	}
	for _, args := range [][]string{{"--since", "yesterday"}, {"--op", "remove"}, {"--path", "[x"}} {
		r := runBinary(t, t.TempDir(), "", nil, append([]string{"audit", "list"}, args...)...)
		if r.code != 1 {
			t.Errorf("%v: exit %d %s", args, r.code, r.stderr)
		}
	}
	table := runBinary(t, t.TempDir(), "", nil, "audit", "list", "--repo", dir)
	if !strings.HasPrefix(table.stdout, "TIME ") || strings.Count(table.stdout, "\n") != 3 {
		t.Fatalf("table:\n%s", table.stdout)
	}
	csv := runBinary(t, t.TempDir(), "", nil, "audit", "list", "--repo", dir, "--format", "csv")
	if !strings.HasPrefix(csv.stdout, "time,session,seq,") || strings.Count(csv.stdout, "\n") != 3 {
		t.Fatalf("csv:\n%s", csv.stdout)
	}
	ex := runBinary(t, t.TempDir(), "", nil, "audit", "export", "--repo", dir)
	if strings.Count(ex.stdout, "\n") != 2 || !strings.Contains(ex.stdout, `"hash":"`) {
		t.Fatalf("export:\n%s", ex.stdout)
	}
	// The store may not live inside the repository, where the sandbox writes.
	r := runBinary(t, dir, "<open a.txt>", nil, "--sandbox", "local", "--audit-dir", filepath.Join(dir, "audit"))
	if r.code != 2 || !strings.Contains(r.stderr, "inside the repository") {
		t.Fatalf("audit dir in the repository: exit %d %s", r.code, r.stderr)
	}
}

// auditNetwork is every connection line of the exec records of the
// repository dir's audit log ("allowed HOST:PORT (ADDR) sent N received
// M", "refused HOST:PORT: why").
func auditNetwork(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	for _, a := range auditOf(t, dir, "--op", "exec") {
		for _, l := range strings.Split(strings.TrimSpace(a.Network), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	return lines
}
