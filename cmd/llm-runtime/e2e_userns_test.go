package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// userNSDaemon starts a Docker daemon of the test's own with
// userns-remap, on its own socket and directories (its own containerd, no
// bridge, no iptables), and returns its DOCKER_HOST; it is stopped and its
// directories removed when the test ends. It needs root, dockerd, and the
// subordinate ids of the user dockremap in /etc/subuid and /etc/subgid
// (.ci/run adds them): without them it skips, or fails when
// LLM_RUNTIME_REQUIRE_USERNS=1.
func userNSDaemon(t *testing.T) string {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("LLM_RUNTIME_REQUIRE_USERNS") == "1" {
			t.Fatalf("%s (LLM_RUNTIME_REQUIRE_USERNS=1)", why)
		}
		t.Skip(why)
	}
	if os.Geteuid() != 0 {
		skip("a daemon with userns-remap needs root")
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		skip("no dockerd to start a daemon with userns-remap: " + err.Error())
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		if b, _ := os.ReadFile(f); !strings.Contains("\n"+string(b), "\ndockremap:") {
			skip("no subordinate ids of dockremap in " + f + " (.ci/run adds them: dockremap:100000:65536)")
		}
	}
	// Short: containerd's sockets live under the exec root, and a unix
	// socket's path has at most 108 bytes.
	dir, err := os.MkdirTemp("/tmp", "llm-runtime-userns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o711) // the remapped root must pass through to its data root
	os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}"), 0o600)
	sock := filepath.Join(dir, "docker.sock")
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dockerd, "--config-file", filepath.Join(dir, "daemon.json"), "--userns-remap", "default",
		"--host", "unix://"+sock, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "--bridge", "none", "--iptables=false", "--ip-masq=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // dies with the test process
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		res, err := hc.Get("http://docker/_ping")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd with userns-remap exited:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd with userns-remap does not answer: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "unix://" + sock
}

// subordinate returns the first id of dockremap's range in /etc/subuid.
func subordinate(t *testing.T) string {
	f, err := os.Open("/etc/subuid")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p := strings.Split(sc.Text(), ":"); len(p) == 3 && p[0] == "dockremap" {
			return p[1]
		}
	}
	t.Fatal("no dockremap in /etc/subuid")
	return ""
}

// TestE2EUserNamespaceRemap runs llm-runtime on a Docker daemon with
// userns-remap, as docs/security.md describes it: the containers' uids are
// the subordinate range's on the host (uid_map inside says so), so in bind
// mode the repository, yours, is another user's to them: they read what
// others may read, and write nothing (PERMISSION_DENIED; a private
// repository cannot be read either); copy mode, whose replica is a volume
// of the daemon's, works: reads, writes applied on the host, search, and
// exec.
func TestE2EUserNamespaceRemap(t *testing.T) {
	t.Parallel()
	host := userNSDaemon(t)
	env := []string{"DOCKER_HOST=" + host, "LLM_RUNTIME_SERVER=never", "LLM_RUNTIME_EXEC_IMAGE=llm-runtime-exec:busybox"}
	dir := repo(t, map[string]string{"a.txt": "hello\n"})
	if r := runBinary(t, dir, "", env, "image", "build", "exec"); r.code != 0 {
		t.Fatalf("image build exec on the remapped daemon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Bind mode: the container is another user to the repository. It reads
	// what others may read, and writes nothing.
	before := tree(t, dir)
	bind := append(env, "LLM_RUNTIME_SANDBOX_WORKSPACE=bind")
	r := runBinary(t, dir, "<open a.txt>\n<write b.txt>\nnew\n</write>", bind)
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nhello\n") || strings.Count(r.stdout, "=== ERROR: PERMISSION_DENIED ===") != 1 {
		t.Fatalf("bind mode on a remapped daemon, a repository others may read: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	os.Chmod(dir, 0o700)
	r = runBinary(t, dir, "<open a.txt>\n<write b.txt>\nnew\n</write>", bind)
	os.Chmod(dir, 0o755)
	if r.code != 0 || strings.Count(r.stdout, "=== ERROR: PERMISSION_DENIED ===") != 2 {
		t.Fatalf("bind mode on a remapped daemon, a private repository: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if after := tree(t, dir); after != before {
		t.Fatalf("bind mode changed the repository:\n%s\n%s", before, after)
	}
	r = runBinary(t, dir, "<open a.txt>\n<write b.txt>\nnew\n</write>\n<search hello>\n<exec cat /proc/self/uid_map>\n<exec ls>",
		append(env, "LLM_RUNTIME_SANDBOX_WORKSPACE=copy"), "--exec")
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nhello\n") || !strings.Contains(r.stdout, "=== WRITE SUCCESSFUL: b.txt ===") ||
		!strings.Contains(r.stdout, "a.txt:1: hello") || !strings.Contains(r.stdout, "a.txt\nb.txt\n") {
		t.Fatalf("copy mode on a remapped daemon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// uid 0 inside is the range's first id outside.
	if fields := strings.Fields(r.stdout[strings.Index(r.stdout, "<exec cat /proc/self/uid_map>"):]); !containsRun(fields, "0", subordinate(t)) {
		t.Fatalf("the exec container's uid_map is not the remapped range:\n%s", r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "b.txt")); err != nil || string(b) != "new\n" {
		t.Fatalf("the write on the host: %q %v", b, err)
	}
}

// containsRun reports whether fields holds a then b, one after the other.
func containsRun(fields []string, a, b string) bool {
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == a && fields[i+1] == b {
			return true
		}
	}
	return false
}
