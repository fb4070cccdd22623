package container_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// execSandbox is a sandbox with exec enabled in the busybox exec image,
// which it builds (from Debian's busybox-static) if it is missing. Unless
// told otherwise its exec timeout only bounds a hang: a command a test
// needs to succeed must not miss it because the machine is loaded.
func execSandbox(t *testing.T, env dockertest.Env, dir string, o container.ExecOptions) *container.Sandbox {
	t.Helper()
	return execSandboxOn(t, env, env.Docker, container.WorkspaceBind, dir, o)
}

// execSandboxOn is execSandbox on the Docker d, with the workspace mode
// given.
func execSandboxOn(t *testing.T, env dockertest.Env, d *container.Docker, workspace, dir string, o container.ExecOptions) *container.Sandbox {
	t.Helper()
	o.Image, o.Agent = dockertest.RequireExecImage(t, env), env.Binary
	if o.Runtime == "" {
		o.Runtime = dockertest.ExecRuntime()
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.MaxOutput == 0 {
		o.MaxOutput = 64 << 10
	}
	if o.Memory == 0 {
		o.Memory = 64 << 20
	}
	if o.PIDs == 0 {
		o.PIDs = 32
	}
	if o.Whitelist == nil {
		o.Whitelist = []string{"*"}
	}
	if o.StateDir == "" {
		o.StateDir = t.TempDir()
	}
	sb, err := container.NewSandbox(d, container.Options{Root: dir, Image: env.Image, Labels: env.Labels, Exec: &o, Workspace: workspace, StateDir: o.StateDir,
		Pool: container.PoolOptions{Enabled: true, Size: 1, MaxUsesPerContainer: 100, AcquireTimeout: loadPatience}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

func execute(t *testing.T, sb *container.Sandbox, line string) (*sandbox.ExecResult, string) {
	t.Helper()
	res, err := sb.Exec(context.Background(), line)
	code := ""
	if err != nil {
		code = sandbox.AsError(err).Code
	}
	return res, code
}

func TestExecRunsAndKeepsOutputOfFailures(t *testing.T) {
	env := dockertest.Require(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644)
	sb := execSandbox(t, env, dir, container.ExecOptions{})
	res, code := execute(t, sb, "cat go.mod")
	if code != "" || res.ExitCode != 0 || string(res.Output) != "module x\n" {
		t.Fatalf("cat: %q %+v", code, res)
	}
	res, code = execute(t, sb, `sh -c "echo to stdout; echo to stderr >&2; exit 3"`)
	if code != sandbox.CodeExecFailed || res == nil || res.ExitCode != 3 || string(res.Output) != "to stdout\nto stderr\n" {
		t.Fatalf("failing command: %q %+v", code, res)
	}
	if _, code := execute(t, sb, "no-such-command"); code != sandbox.CodeExecFailed {
		t.Fatalf("missing command: %q", code)
	}
}

func TestExecTimeoutKillsWithExitCode124(t *testing.T) {
	env := dockertest.Require(t)
	sb := execSandbox(t, env, t.TempDir(), container.ExecOptions{Timeout: time.Second})
	for _, line := range []string{"sleep 30", `awk "BEGIN { while (1) {} }"`, `sh -c "echo started; sleep 30 & wait"`} {
		res, code := execute(t, sb, line)
		if code != sandbox.CodeExecTimeout || res == nil || res.ExitCode != 124 {
			t.Fatalf("%s: %q %+v", line, code, res)
		}
		// The command's own run time, as the agent measured it: waiting
		// for a container (slow on a loaded machine) is not part of it.
		// Well under the 30 s the sleeps would take.
		if res.Duration > 20*time.Second {
			t.Fatalf("%s: the timeout did not hold (%s)", line, res.Duration)
		}
	}
}

// The hostile commands end by themselves (the bomb's shell exits while
// the bomb still forks), so the exec timeout only bounds a hang, and the
// flood and the last command, which must succeed, cannot miss it on a
// loaded machine. TestExecTimeoutKillsWithExitCode124 tests the timeout.
func TestExecContainsForkBombsMemoryHogsAndFloods(t *testing.T) {
	env := dockertest.Require(t)
	sb := execSandbox(t, env, t.TempDir(), container.ExecOptions{})
	const bomb = `sh -c "bomb() { bomb | bomb & }; bomb; sleep 2; exit 1"`
	res, code := execute(t, sb, bomb)
	switch {
	case code == "EXEC_FAILED" && res == nil && strings.HasPrefix(dockertest.ExecRuntime(), "runsc"):
		// gVisor's own tasks and memory count in the limits: the bomb
		// can bring its container down, which is contained too.
		t.Logf("fork bomb: %s, its gVisor container down", code)
	case code == "" || res == nil:
		_, err := sb.Exec(context.Background(), bomb)
		t.Fatalf("fork bomb: %q %+v; again: %v", code, res, err)
	default:
		t.Logf("fork bomb: %s, exit %d", code, res.ExitCode)
	}
	res, code = execute(t, sb, `awk "BEGIN { s = \"x\"; while (1) s = s s }"`)
	switch {
	case code == "EXEC_FAILED" && res == nil && strings.HasPrefix(dockertest.ExecRuntime(), "runsc"):
		t.Logf("memory hog: %s, its gVisor container down", code)
	case code == "" || res == nil || res.ExitCode == 0:
		t.Fatalf("memory hog: %q %+v", code, res)
	default:
		t.Logf("memory hog: %s, exit %d", code, res.ExitCode)
	}
	res, code = execute(t, sb, "head -c 104857600 /dev/zero")
	if code != "" || res.ExitCode != 0 || len(res.Output) > 64<<10+200 || !strings.Contains(string(res.Output), "[... output truncated: 99.9 MiB more") {
		t.Fatalf("flood: %q, exit %d, %d bytes, tail %q", code, res.ExitCode, len(res.Output), res.Output[max(0, len(res.Output)-120):])
	}
	// And the host side is fine: the next command runs normally.
	if res, code := execute(t, sb, "echo alive"); code != "" || string(res.Output) != "alive\n" {
		t.Fatalf("after the hostile commands: %q %+v", code, res)
	}
}

func TestExecIsolationBetweenCommands(t *testing.T) {
	env := dockertest.Require(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
	sb := execSandbox(t, env, dir, container.ExecOptions{})
	if _, code := execute(t, sb, `sh -c "echo secret > /tmp/left-behind"`); code != "" {
		t.Fatalf("writing /tmp: %q", code)
	}
	if res, code := execute(t, sb, "cat /tmp/left-behind"); code != sandbox.CodeExecFailed {
		t.Fatalf("the next exec saw the last one's /tmp: %q %q", code, res.Output)
	}
	// A read-only exec may write, to its copy; the change is discarded.
	if res, code := execute(t, sb, "touch new-file"); code != "" || len(res.Changes) != 1 || res.Changes[0] != (sandbox.Change{Path: "new-file", Action: sandbox.ChangeDiscarded}) {
		t.Fatalf("touch new-file: %q %+v", code, res)
	}
	if _, err := os.Lstat(filepath.Join(dir, "new-file")); err == nil {
		t.Fatal("a read-only exec wrote the repository")
	}
	if res, code := execute(t, sb, "ls new-file"); code != sandbox.CodeExecFailed {
		t.Fatalf("the next exec saw the last one's discarded file: %q %q", code, res.Output)
	}
	if res, code := execute(t, sb, "ls /sys/class/net"); code != "" || strings.TrimSpace(string(res.Output)) != "lo" {
		t.Fatalf("network interfaces: %q %q", code, res.Output)
	}
	if res, code := execute(t, sb, "id -u"); code != "" || strings.TrimSpace(string(res.Output)) != strconv.Itoa(os.Getuid()) {
		t.Fatalf("user: %q %q", code, res.Output)
	}
	if res, _ := execute(t, sb, "env"); strings.Contains(string(res.Output), "LLM_RUNTIME") || strings.Contains(string(res.Output), "DOCKER") {
		t.Fatalf("the host's environment leaked: %q", res.Output)
	}

	w := execSandbox(t, env, dir, container.ExecOptions{Writable: true})
	if _, code := execute(t, w, "touch new-file"); code != "" {
		t.Fatalf("a writable repository refused a write: %q", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "new-file")); err != nil {
		t.Fatal(err)
	}
	if _, code := execute(t, w, "touch .git/hooked"); code != sandbox.CodeExecFailed {
		t.Fatalf(".git was writable: %q", code)
	}
}

func TestExecValidationRunsNothing(t *testing.T) {
	env := dockertest.Require(t)
	dir := t.TempDir()
	sb := execSandbox(t, env, dir, container.ExecOptions{Whitelist: []string{"ls", "touch"}})
	for _, line := range []string{"ls && touch pwned", "rm -rf .", "ls; touch pwned", "ls $(touch pwned)"} {
		if _, code := execute(t, sb, line); code != sandbox.CodeExecValidation {
			t.Fatalf("%s: %q", line, code)
		}
	}
	sh := execSandbox(t, env, dir, container.ExecOptions{Shell: true, Writable: true, Whitelist: []string{"ls", "wc"}})
	if res, code := execute(t, sh, "ls / | wc -l"); code != "" || strings.TrimSpace(string(res.Output)) == "" {
		t.Fatalf("a whitelisted pipeline: %q %+v", code, res)
	}
	if _, code := execute(t, sh, "ls && touch pwned"); code != sandbox.CodeExecValidation {
		t.Fatalf("a pipeline with an unlisted command: %q", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Fatal("a refused command ran")
	}
}
