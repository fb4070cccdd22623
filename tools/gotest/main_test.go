package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestTheReportSaysEachPackageWhatRunsAndWhySkipped feeds the report the
// events of go test -json for a package with a pass, a failure, a skip
// with its reason and a parallel test that waited, and reads what it
// says: each package at its end, the failure's output, what is running
// (not what is waiting), and every skip with its reason.
func TestTheReportSaysEachPackageWhatRunsAndWhySkipped(t *testing.T) {
	var out bytes.Buffer
	r := &report{out: &out, module: "example.com/m/", pkgs: map[string]*pkg{}, start: time.Now()}
	at := time.Now()
	pk := "example.com/m/a"
	for _, ev := range []event{
		{Action: "start", Package: pk},
		{Action: "run", Package: pk, Test: "TestOK"},
		{Action: "pass", Package: pk, Test: "TestOK"},
		{Action: "run", Package: pk, Test: "TestWaits"},
		{Action: "pause", Package: pk, Test: "TestWaits"},
		{Action: "run", Package: pk, Test: "TestRuns", Time: at},
		{Action: "output", Package: pk, Test: "TestSkipped", Output: "=== RUN   TestSkipped\n"},
		{Action: "output", Package: pk, Test: "TestSkipped", Output: "    x_test.go:9: no Docker daemon: it is not running\n"},
		{Action: "skip", Package: pk, Test: "TestSkipped"},
		{Action: "output", Package: pk, Test: "TestBad/sub", Output: "    x_test.go:20: the sub's reason\n"},
		{Action: "output", Package: pk, Test: "TestBad/sub", Output: "--- FAIL: TestBad/sub (0.10s)\n"},
		{Action: "fail", Package: pk, Test: "TestBad/sub", Elapsed: 0.1},
		{Action: "output", Package: pk, Test: "TestBad", Output: "    x_test.go:12: got 1, want 2\n"},
		{Action: "fail", Package: pk, Test: "TestBad", Elapsed: 0.5},
	} {
		r.event(ev)
	}
	r.progress()
	progress := out.String()
	if !strings.Contains(progress, "a (3 done, 1 waiting; running TestRuns ") || strings.Contains(progress, "TestWaits") {
		t.Errorf("progress:\n%s", progress)
	}
	for _, ev := range []event{
		{Action: "cont", Package: pk, Test: "TestWaits"},
		{Action: "pass", Package: pk, Test: "TestWaits"},
		{Action: "output", Package: pk, Test: "TestRuns", Output: "panic: test timed out after 10m0s\n"},
		{Action: "fail", Package: pk, Elapsed: 2.5},
		{Action: "skip", Package: "example.com/m/empty"},
	} {
		r.event(ev)
	}
	r.summary()
	got := out.String()
	for _, want := range []string{
		"--- FAIL: a TestBad/sub (0.1s)\n    " + "    x_test.go:20: the sub's reason\n",
		"--- FAIL: a TestBad (0.5s)\n    " + "    x_test.go:12: got 1, want 2\n",
		"FAIL a ", "(2 passed, 1 skipped, 1 failed)",
		"--- UNFINISHED: a TestRuns\n    panic: test timed out after 10m0s\n",
		"Skipped (1):\n  a TestSkipped: x_test.go:9: no Docker daemon: it is not running\n",
		"FAIL (1 package(s)) in ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "empty") {
		t.Errorf("a package without tests was reported:\n%s", got)
	}
}

// TestSinceListsOnlyWhatIsNew: the leftovers are what exists after and
// did not before.
func TestSinceListsOnlyWhatIsNew(t *testing.T) {
	before := snapshot{"image 1 llm-runtime-io:a": true, "file /tmp/llm-runtime-x": true}
	after := snapshot{"image 1 llm-runtime-io:a": true, "image 2 llm-runtime-exec:test-b": true, "file /tmp/lrt-1": true}
	got := strings.Join(after.since(before), "|")
	if got != "file /tmp/lrt-1|image 2 llm-runtime-exec:test-b" {
		t.Fatalf("since: %q", got)
	}
}
