package proc_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/internal/proc"
	"github.com/llm-runtime/llm-runtime/internal/testenv"
)

// The tests run in directories of their own, never the user's.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestStartTimeNamesOneProcess(t *testing.T) {
	if proc.Self == 0 {
		t.Fatal("no start time for this process")
	}
	if !proc.Same(os.Getpid(), proc.Self) || !proc.Same(os.Getpid(), 0) {
		t.Error("this process is not itself")
	}
	if proc.Same(os.Getpid(), proc.Self+1) {
		t.Error("another start time names this process")
	}
	// A command whose name holds ") (" and spaces, as /proc prints it.
	dir := t.TempDir()
	name := dir + "/a) (b c"
	if err := os.Symlink("/bin/sleep", name); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	st, err := proc.StartTime(cmd.Process.Pid)
	if err != nil || st < proc.Self {
		t.Fatalf("StartTime of a child: %d, %v (this process: %d)", st, err, proc.Self)
	}
	if !proc.Same(cmd.Process.Pid, st) {
		t.Error("the child is not itself")
	}
}

func TestSelfStatusReadsThisProcessesFields(t *testing.T) {
	v, ok := proc.SelfStatus("Threads")
	if n, err := strconv.Atoi(v); !ok || err != nil || n < 1 {
		t.Fatalf("Threads: %q %v", v, ok)
	}
	if v, ok := proc.SelfStatus("VmHWM"); !ok || !strings.HasSuffix(v, " kB") {
		t.Fatalf("VmHWM: %q %v", v, ok)
	}
	if v, ok := proc.SelfStatus("NoSuchField"); ok || v != "" {
		t.Fatalf("NoSuchField: %q %v", v, ok)
	}
}
