package main

// A run, a daemon and a stop leave nothing of theirs behind in the
// user's runtime directory, and a runtime directory too long for a unix
// socket is named as the cause, with what to set.

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// entries lists what dir holds, "" when it does not exist.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestE2EARunLeavesNoAgentSocketDirectoryBehind: each pooled container's
// agent has a socket directory under the runtime directory; a run that
// ends normally removes them all, though it does not wait for Docker to
// remove its containers.
func TestE2EARunLeavesNoAgentSocketDirectoryBehind(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	rt := testenv.ShortDir(t)
	r := runBinary(t, dir, "<open a.txt>", []string{"XDG_RUNTIME_DIR=" + rt, "LLM_RUNTIME_CONTAINER_POOL_STARTUP_CONTAINERS=3", "LLM_RUNTIME_SERVER=never"}, "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\n") || strings.Contains(r.stderr, "over the attach stream") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if left := entries(t, filepath.Join(rt, "llm-runtime", "agents")); len(left) > 0 {
		t.Fatalf("the run left socket directories behind: %q", left)
	}
}

// TestE2EAnExecRunLeavesNoAgentSocketDirectoryBehind: an exec container
// is destroyed after its command, its agent done; its socket directory
// goes then, not when Docker gets round to removing the container, which
// a run that ends does not wait for.
func TestE2EAnExecRunLeavesNoAgentSocketDirectoryBehind(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	dir := repo(t, map[string]string{"a.txt": "A\n", "llm-runtime.config.yaml": "exec:\n  enabled: true\n"})
	rt := testenv.ShortDir(t)
	r := runBinary(t, dir, "<exec cat a.txt>\n<exec cat a.txt>\n<exec cat a.txt>\n", []string{"XDG_RUNTIME_DIR=" + rt, "LLM_RUNTIME_SERVER=never"})
	if r.code != 0 || strings.Count(r.stdout, "=== EXEC SUCCESSFUL: cat a.txt ===") != 3 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if left := entries(t, filepath.Join(rt, "llm-runtime", "agents")); len(left) > 0 {
		t.Fatalf("the run left socket directories behind: %q", left)
	}
}

// TestE2EServeStopLeavesNoLockBehind: the daemon's socket and its lock
// are gone once serve stop has stopped it, and a new daemon starts there.
func TestE2EServeStopLeavesNoLockBehind(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	rt := testenv.ShortDir(t)
	xdg := []string{"XDG_RUNTIME_DIR=" + rt}
	socket := filepath.Join(rt, "llm-runtime", "serve.sock")
	d := startServe(t, socket, xdg)
	if r := runBinary(t, t.TempDir(), "", xdg, "serve", "stop"); r.code != 0 {
		t.Fatalf("serve stop: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	<-d.done
	if left := entries(t, filepath.Join(rt, "llm-runtime")); len(left) > 0 {
		t.Fatalf("after serve stop, the runtime directory holds %q", left)
	}
	d2 := startServe(t, socket, xdg)
	d2.cmd.Process.Signal(syscall.SIGTERM)
	<-d2.done
	if left := entries(t, filepath.Join(rt, "llm-runtime")); len(left) > 0 {
		t.Fatalf("after SIGTERM, the runtime directory holds %q", left)
	}
}

// TestE2EARuntimeDirectoryTooLongForASocketIsNamed: the agents' sockets
// and the daemon's are under the runtime directory; where it is too long
// for a unix socket the run still works (over the attach stream), -v says
// which path is too long and what to set, and serve refuses to start,
// saying the same.
func TestE2EARuntimeDirectoryTooLongForASocketIsNamed(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	rt := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.Mkdir(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_RUNTIME_DIR=" + rt}
	r := runBinary(t, dir, "<open a.txt>", env, "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\n") || !strings.Contains(r.stderr, "over the attach stream (the socket path "+rt) ||
		!strings.Contains(r.stderr, "over the 107 a unix socket allows: set XDG_RUNTIME_DIR") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBinary(t, dir, "", env, "serve")
	if r.code != exitSandbox || !strings.Contains(r.stderr, "the socket path "+filepath.Join(rt, "llm-runtime", "serve.sock")) || !strings.Contains(r.stderr, "set XDG_RUNTIME_DIR") {
		t.Fatalf("serve: exit %d\n%s", r.code, r.stderr)
	}
}

// TestE2EAPoolStillCreatingItsContainerSaysSo: POOL_EXHAUSTED after
// acquire_timeout, when the wait was on a container being created (Docker
// slow, the machine loaded) rather than on a full pool, says so and what
// to raise, not container_pool.size.
func TestE2EAPoolStillCreatingItsContainerSaysSo(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	r := runBinary(t, dir, "<open a.txt>", []string{"LLM_RUNTIME_SERVER=never", "LLM_RUNTIME_CONTAINER_POOL_STARTUP_CONTAINERS=0",
		"LLM_RUNTIME_CONTAINER_POOL_ACQUIRE_TIMEOUT=1ms"})
	if r.code != 0 || !strings.Contains(r.stdout, "=== ERROR: POOL_EXHAUSTED ===\nMessage: pool exhausted: timeout waiting for available container: none was ready within container_pool.acquire_timeout (1ms), 1 being created; Docker is slow to start containers (a loaded machine?): raise container_pool.acquire_timeout\n") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestE2EAReaperLeavesANewOwnerOfItsPidAlone: a run's reaper removes the
// run's containers once the run is gone. A pid is reused (within minutes
// on a busy machine), and a reaper still at work when its owner's pid went
// to a new run took that run's containers: its first command failed with
// "No such container" (seen once in 450 runs of the serve tests under
// load). A reaper now removes only the containers of the process that
// started at its owner's start time.
func TestE2EAReaperLeavesANewOwnerOfItsPidAlone(t *testing.T) {
	t.Parallel()
	denv := dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	cmd, stdin, waitFor := startStreaming(t, dir, "")
	io.WriteString(stdin, "<open a.txt>\n")
	waitFor("A")
	pid := strconv.Itoa(cmd.Process.Pid)
	before, err := denv.Docker.Ours(context.Background(), container.LabelOwnerPID, pid)
	if err != nil || len(before) == 0 {
		t.Fatalf("the run's containers: %d, %v", len(before), err)
	}
	start := before[0].Labels[container.LabelOwnerStart]
	if start == "" {
		t.Fatalf("no %s label: %v", container.LabelOwnerStart, before[0].Labels)
	}
	// The reaper of an earlier process that had this pid.
	r := runBinary(t, dir, "", nil, "reaper", "--owner", pid, "--owner-start", start+"1")
	if r.code != 0 {
		t.Fatalf("reaper: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	after, err := denv.Docker.Ours(context.Background(), container.LabelOwnerPID, pid)
	if err != nil || len(after) < len(before) {
		t.Fatalf("the reaper of another process took the run's containers: %d before, %d after (%v)", len(before), len(after), err)
	}
	io.WriteString(stdin, "<open a.txt>\n")
	waitFor("=== END COMMAND ===")
	waitFor("=== END COMMAND ===")
	stdin.Close()
	waitFor("Commands executed: 2")
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	noContainersOf(t, denv, cmd.Process.Pid, time.Minute)
}
