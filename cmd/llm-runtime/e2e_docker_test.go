package main

// End-to-end tests of the Docker sandbox through the binary: the pooling
// guide's examples, and what happens when things die.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
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

// TestE2EPoolingGuideExamples runs the guide's three examples with the pool
// on and off: the output is the same, and so are the files.
func TestE2EPoolingGuideExamples(t *testing.T) {
	t.Parallel()
	examples := []struct{ name, input string }{
		{"reading multiple files", "Read configs: <open config.yaml> <open database.yaml> <open api.yaml>"},
		{"writing multiple files", "<write test1.txt>Content 1</write> <write test2.txt>Content 2</write> <write test3.txt>Content 3</write>"},
		{"mixed operations", "<open go.mod> <write notes.txt>Project uses Go 1.21</write> <open README.md>"},
	}
	files := map[string]string{"config.yaml": "a: 1\n", "database.yaml": "b: 2\n", "api.yaml": "c: 3\n", "go.mod": "module x\n", "README.md": "# x\n"}
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			var outputs []string
			for _, args := range [][]string{nil, {"--no-pool"}} {
				dir := repo(t, files)
				r := runBinary(t, dir, ex.input, nil, args...)
				if r.code != 0 || strings.Contains(r.stdout, "=== ERROR") || !strings.Contains(r.stdout, "Commands executed: 3") {
					t.Fatalf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
				}
				outputs = append(outputs, timeLine.ReplaceAllString(r.stdout, ""))
				for i := 1; strings.Contains(ex.input, "test1"); i++ {
					if i > 3 {
						break
					}
					b, _ := os.ReadFile(filepath.Join(dir, "test"+strconv.Itoa(i)+".txt"))
					if string(b) != "Content "+strconv.Itoa(i) {
						t.Fatalf("test%d.txt = %q", i, b)
					}
				}
			}
			if outputs[0] != outputs[1] {
				t.Fatalf("pooled and unpooled differ:\n%s\n---\n%s", outputs[0], outputs[1])
			}
		})
	}
}

func TestE2EDockerUnreachableIsExit3WithAFix(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	r := runBinary(t, repo(t, nil), "<open a>", []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"})
	if r.code != 3 || !strings.Contains(r.stderr, "Start Docker") || !strings.Contains(r.stderr, "--sandbox local") || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestE2EImageStatusAndBuild(t *testing.T) {
	t.Parallel()
	r := runBinary(t, t.TempDir(), "", nil, "image", "build")
	if r.code != 0 || !strings.Contains(r.stdout, container.ImageName+":") {
		t.Fatalf("image build: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runBinary(t, t.TempDir(), "", nil, "image", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "built") || !strings.Contains(r.stdout, "Docker:") {
		t.Fatalf("image status: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// session is a running llm-runtime with its input still open.
type session struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startSession(t *testing.T, dir string, args ...string) *session {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &session{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return s
}

// send writes input and returns the output lines up to the end of the
// command's block.
func (s *session) send(input string) []string {
	s.t.Helper()
	io.WriteString(s.stdin, input)
	var got []string
	deadline := time.After(60 * time.Second) // a hang, not a speed check
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("output ended; so far %q", got)
			}
			got = append(got, l)
			if l == "=== END COMMAND ===" {
				return got
			}
		case <-deadline:
			s.t.Fatalf("no result for %q; so far %q", input, got)
		}
	}
}

func TestE2EKill9LeavesNoContainer(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	s := startSession(t, dir)
	s.send("<open a.txt>")
	pid := s.cmd.Process.Pid
	items, _ := env.Docker.Ours(context.Background(), container.LabelOwnerPID, strconv.Itoa(pid))
	if len(items) == 0 {
		t.Fatal("no container while the run is in progress")
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	noContainersOf(t, env, pid, time.Minute)
}

// TestE2EDockerKillDuringARun kills every container of a run between two
// commands: the pool replaces them and the run finishes with no error.
func TestE2EDockerKillDuringARun(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n", "b.txt": "B\n"})
	s := startSession(t, dir, "-v")
	if out := strings.Join(s.send("<open a.txt>"), "\n"); !strings.Contains(out, "\nA\n") {
		t.Fatalf("first read: %s", out)
	}
	pid := s.cmd.Process.Pid
	items, _ := env.Docker.Ours(context.Background(), container.LabelOwnerPID, strconv.Itoa(pid))
	for _, it := range items {
		if err := exec.Command("docker", "kill", it.ID).Run(); err != nil {
			t.Logf("docker kill %s: %v", it.ID[:12], err)
		}
	}
	if out := strings.Join(s.send("<open b.txt>"), "\n"); !strings.Contains(out, "\nB\n") {
		t.Fatalf("read after docker kill: %s", out)
	}
	if out := strings.Join(s.send("<write c.txt>C</write>"), "\n"); !strings.Contains(out, "WRITE SUCCESSFUL") {
		t.Fatalf("write after docker kill: %s", out)
	}
	s.stdin.Close()
	if err := s.cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	noContainersOf(t, env, pid, time.Minute)
	if b, _ := os.ReadFile(filepath.Join(dir, "c.txt")); string(b) != "C" {
		t.Fatalf("c.txt = %q", b)
	}
}

// TestE2EExecContainsHostileCommands runs a fork bomb, a memory hog, an
// endless loop and 100 MB of output through the binary: each is contained
// and reported, the run goes on, and nothing is left behind.
func TestE2EExecContainsHostileCommands(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	// The timeout is long enough for the flood and the last command to
	// succeed on a loaded machine (the flood takes ~1 s unloaded). The
	// bomb's shell forks nothing once the bomb runs: it starts its sleep,
	// far longer than the timeout, first and the bomb in one background
	// subshell, then waits. A shell that forked on (the sleep, or the
	// second half of the bomb's first pipeline) could find the process
	// limit reached, when the machine is loaded, and exit ("can't fork")
	// instead of being killed at the timeout.
	dir := repo(t, map[string]string{
		"llm-runtime.config.yaml": "exec:\n  enabled: true\n  whitelist: [\"*\"]\n  timeout: 20s\n  memory: 64MiB\n  pids: 32\n  max_output: 64KiB\n",
		"a.txt":                   "A\n",
	})
	in := `<exec sh -c "sleep 600 & bomb() { bomb | bomb & }; bomb & wait">
<exec awk "BEGIN { s = \"x\"; while (1) s = s s }">
<exec awk "BEGIN { while (1) {} }">
<exec head -c 104857600 /dev/zero>
<exec ls && rm -rf a.txt>
<exec cat a.txt>
`
	start := time.Now()
	r := runBinary(t, dir, in, nil, "--format", "jsonl")
	took := time.Since(start)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 6 {
		t.Fatalf("exit %d, %d lines\n%s\n%s", r.code, len(lines), r.stdout, r.stderr)
	}
	want := []string{`"code":"EXEC_TIMEOUT"`, `"code":"EXEC_FAILED"`, `"exit_code":124`, `output truncated: 99.9 MiB more`, `"code":"EXEC_VALIDATION"`, `"output":"A\n"`}
	if strings.HasPrefix(dockertest.ExecRuntime(), "runsc") && strings.Contains(lines[0], "the command brought its container down") {
		want[0] = `"code":"EXEC_FAILED"` // gVisor's own tasks count in the limits: the bomb can bring the container down before the timeout
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("command %d: no %s in %.300s", i+1, w, lines[i])
		}
	}
	var flood struct{ Output string }
	if err := json.Unmarshal([]byte(lines[3]), &flood); err != nil || len(flood.Output) > 64<<10+200 {
		t.Errorf("100 MB of output came back as %d bytes: the cap did not hold (%v)", len(flood.Output), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a.txt")); err != nil || string(b) != "A\n" {
		t.Fatalf("a.txt: %q %v", b, err)
	}
	t.Logf("six commands, four hostile, in %s", took.Round(time.Millisecond))
}

// TestE2ESocketTransportFallsBackAndSaysWhy: where the agents' socket
// directory cannot be made private (here: a runtime directory others can
// write), the pool reaches its containers over the attach stream, says so
// with --verbose, and the run is the same.
func TestE2ESocketTransportFallsBackAndSaysWhy(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	rt := testenv.ShortDir(t)
	os.Mkdir(filepath.Join(rt, "llm-runtime"), 0o777)
	os.Chmod(filepath.Join(rt, "llm-runtime"), 0o777)
	r := runBinary(t, dir, "<open a.txt>", []string{"XDG_RUNTIME_DIR=" + rt}, "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\n") || !strings.Contains(r.stderr, ", over the attach stream (") ||
		!strings.Contains(r.stderr, "can be written by others") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBinary(t, dir, "<open a.txt>", nil, "-v")
	if r.code != 0 || strings.Contains(r.stderr, "over the attach stream") {
		t.Fatalf("with a private runtime directory: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestE2ERemoteDockerHostUsesTheAttachStream: with DOCKER_HOST naming a
// daemon over TCP (here the local one, behind a loopback forwarder), a
// bind-mounted socket could not reach the daemon's machine, so the pool
// uses the attach stream, says so, and the run is the same.
func TestE2ERemoteDockerHostUsesTheAttachStream(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	host := dockertest.RemoteHost(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	r := runBinary(t, dir, "<open a.txt> <write b.txt>B</write>", []string{"DOCKER_HOST=" + host}, "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\n") || !strings.Contains(r.stdout, "=== WRITE SUCCESSFUL: b.txt ===") ||
		!strings.Contains(r.stderr, ", over the attach stream (the Docker daemon is at "+host+", not on this machine") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
