package main

// End-to-end tests of llm-runtime serve through the binary, on the real
// daemon: the filter's output through it is the same bytes, and the
// faults of the issue (kill -9 of the daemon, a client killed mid-run, a
// dead or full daemon, eight clients at once) end well.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
	"github.com/llm-runtime/llm-runtime/prompt"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
	"github.com/llm-runtime/llm-runtime/serve/wire"
)

// daemon is a running llm-runtime serve of a test, on a socket of its own.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	socket string
	logf   string
	env    []string // what a client needs to use it
	done   chan struct{}
}

// startServe starts a daemon on socket ("": one in a directory of the
// test's own).
func startServe(t *testing.T, socket string, env []string, args ...string) *daemon {
	t.Helper()
	return startServeBin(t, binary, socket, env, args...)
}

// startServeBin is startServe with another binary: bin.
func startServeBin(t *testing.T, bin, socket string, env []string, args ...string) *daemon {
	t.Helper()
	dir := testenv.ShortDir(t)
	if socket == "" {
		socket = filepath.Join(dir, "serve.sock")
	}
	d := startDaemon(t, bin, dir, socket, env, append([]string{"serve", "--socket", socket, "--verbose"}, args...)...)
	d.env = []string{"LLM_RUNTIME_SERVER=" + d.socket}
	return d
}

// startDaemon starts bin with args in dir, with env over cleanEnv
// (withEnv), as a daemon that listens on socket, and waits until it does.
func startDaemon(t *testing.T, bin, dir, socket string, env []string, args ...string) *daemon {
	t.Helper()
	denv := dockertest.Require(t)
	d := &daemon{t: t, socket: socket, logf: filepath.Join(dir, "serve.log"), done: make(chan struct{})}
	logFile, err := os.Create(d.logf)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Dir = dir
	d.cmd.Env = withEnv(cleanEnv(), env)
	d.cmd.Stderr = logFile
	// Killed with the test process, should it die without its cleanups (a
	// timeout's panic): a daemon would otherwise serve on for its idle
	// exit, and a stopped one for ever. Its reaper removes its containers.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); logFile.Close(); close(d.done) }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		<-d.done
		noContainersOf(t, denv, d.cmd.Process.Pid, time.Minute)
		if t.Failed() {
			t.Logf("the daemon's log:\n%s", d.log())
		}
	})
	d.waitListening()
	return d
}

// waitListening waits until the socket takes connections: a start, not
// a speed check.
func (d *daemon) waitListening() {
	d.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if c, err := net.Dial("unix", d.socket); err == nil {
			c.Close()
			return
		}
		select {
		case <-d.done:
			d.t.Fatalf("the daemon exited before it listened:\n%s", d.log())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("the daemon did not listen within a minute:\n%s", d.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *daemon) log() string {
	b, _ := os.ReadFile(d.logf)
	return string(b)
}

func (d *daemon) status() wire.Status {
	d.t.Helper()
	r := runBinary(d.t, d.cmd.Dir, "", d.env, "serve", "status", "--json")
	var st wire.Status
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		d.t.Fatalf("serve status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return st
}

var (
	durationField = regexp.MustCompile(`"duration_ms":[0-9.e+-]+`)
	durationLine  = regexp.MustCompile(`(?m)^Duration: [0-9.]+s$`)
)

// normalized is output with what differs between any two runs (the time
// taken, the repository's own path) written the same way.
func normalized(out, root string) string {
	out = timeLine.ReplaceAllString(out, "Time elapsed: X")
	out = durationField.ReplaceAllString(out, `"duration_ms":X`)
	out = durationLine.ReplaceAllString(out, "Duration: X")
	return strings.ReplaceAll(out, root, "ROOT")
}

// tree is every entry under dir: its path, kind, mode and content.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, _ := os.Lstat(p)
		fmt.Fprintf(&b, "%s %v", rel, fi.Mode())
		if fi.Mode().IsRegular() {
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %q", c)
		} else if fi.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", l)
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

type servedCase struct {
	name  string
	files map[string]string
	setup func(dir string)
	in    string
	env   []string
	args  []string
}

// TestE2EServedRunsPrintTheSameBytes runs the filter's end-to-end cases
// three times, on three copies of a repository: on a pool of the run's own
// (server: never), through a daemon, and through the daemon by the thin
// client, llm-runtime-client. Output, exit code, standard error and the
// repository afterwards are the same.
func TestE2EServedRunsPrintTheSameBytes(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	protect := wasmtest.Build(t, "guests/protect-secrets")
	redact := wasmtest.Build(t, "guests/redact")
	guestConfig := func(kind, guest string) []string {
		cfg := filepath.Join(t.TempDir(), kind+".yaml")
		os.WriteFile(cfg, []byte(kind+":\n  - module: "+guest+"\n    timeout: 1m\n"), 0o644)
		return []string{"--config", cfg}
	}
	var examples strings.Builder
	for _, e := range prompt.Examples {
		if !e.Exec {
			examples.WriteString(e.Input + "\n")
		}
	}
	big := strings.Repeat("0123456789abcdef\n", 200)
	cases := []servedCase{
		{name: "reads", files: map[string]string{"config.yaml": "port: 8080\n", "api.yaml": "version: 2\n"}, in: "Read configs: <open config.yaml> <open api.yaml>\n"},
		{name: "the prompt's examples", files: prompt.ExampleRepo, in: examples.String()},
		{name: "the prompt's examples, jsonl", files: prompt.ExampleRepo, in: examples.String(), args: []string{"--format", "jsonl"}},
		{name: "shell syntax", in: "<write danger.sh>\necho $(rm -rf /)\nrun `whoami` now\n\tindented with a tab\n</write>\n"},
		{name: "labelled write", in: "<write:EOF notes.md>\nit holds </write> inside\n</write:EOF> <open notes.md>"},
		{name: "edits", files: map[string]string{"a.txt": "one\ntwo\nthree\ntwo\n"},
			in: "<edit a.txt>\n<<<<<<< SEARCH\none\n=======\nONE\n>>>>>>> REPLACE\n</edit>\n<edit a.txt>\n<<<<<<< SEARCH\ntwo\n=======\n2\n>>>>>>> REPLACE\n</edit>\n<edit a.txt>\n<<<<<<< SEARCH\nfour\n=======\n4\n>>>>>>> REPLACE\n</edit>\n"},
		{name: "lists, ranges, searches", files: map[string]string{"src/a.go": "package a\n// TODO one\n", "src/b/c.go": "package b\nfunc F() {}\n", "notes.txt": "two words\nand more\n", ".gitignore": "build/\n", "build/out": "x\n"},
			in: "<list> <list src/**> <open notes.txt:2-> <open notes.txt:5-9> <open notes.txt:x-y> <search TODO> <search re:func [A-Z] in *.go> <search \"two words\" -C 1>"},
		{name: "errors", files: map[string]string{".env": "SECRET=1\n", "dir/f": "f\n", "bin.dat": "a\x00b", "big.txt": big},
			env: []string{"LLM_RUNTIME_SECURITY_MAX_FILE_SIZE=1KiB"},
			in:  "<open missing.txt> <open .env> <open ../x> <open dir> <open bin.dat> <open big.txt> <open big.txt:1-2> <write .git/config>x</write> <exec ls>"},
		{name: "unterminated", in: "<open a.txt> <write a.txt>\nhalf a file"},
		{name: "odd bytes", files: map[string]string{"a.txt": "A\r\n"}, in: "\x00\xff\xfe prose\r\n<open a.txt>\r\n<open \xff\x00>\r\n<write c.txt>\r\nx\r\n</write>\r\n<search \xc3\x28>"},
		{name: "hostile paths", setup: func(dir string) {
			outside := filepath.Join(filepath.Dir(dir), "outside")
			os.MkdirAll(outside, 0o755)
			os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("SECRET"), 0o644)
			os.Symlink("../outside/secret.txt", filepath.Join(dir, "link"))
			os.Symlink("../outside", filepath.Join(dir, "dirlink"))
		}, in: "<open ../outside/secret.txt> <open link> <open dirlink/secret.txt> <write dirlink/evil.txt>x</write> <write ../outside/evil.txt>x</write> <write link>x</write>",
			args: []string{"--format", "jsonl"}},
		{name: "a policy", files: map[string]string{".env": "KEEP=1\n", "a.txt": "A\n"}, env: []string{"LLM_RUNTIME_SECURITY_EXCLUDED_PATHS=.git"},
			in: "<write .env>\nSTOLEN=1\n</write> <open a.txt>", args: guestConfig("policies", protect)},
		{name: "a transform", files: map[string]string{"deploy.sh": "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\necho deploying\n"},
			in: "<open deploy.sh> <search AKIA>", args: guestConfig("transforms", redact)},
		{name: "exec", files: map[string]string{"a.txt": "A\n"}, args: []string{"--exec"},
			in: "<exec echo hi> <exec ls> <exec cat a.txt missing> <exec rm -rf .> <exec ls && rm a.txt>"},
		{name: "writable exec", files: map[string]string{"a.txt": "A\n"}, args: []string{"--exec"},
			env: []string{"LLM_RUNTIME_EXEC_WRITABLE=true", "LLM_RUNTIME_EXEC_WHITELIST=sed,ls,ln,mkdir"},
			in:  "<exec sed -i s/A/B/ a.txt> <exec ln -s /etc/passwd pw> <exec mkdir -p .git/hooks> <open a.txt>"},
		{name: "the local sandbox", files: map[string]string{"a.txt": "A\n"}, args: []string{"--sandbox", "local"}, in: "<open a.txt> <write b.txt>B</write> <exec ls>"},
		{name: "a configuration error", env: []string{"LLM_RUNTIME_CONTAINER_POOL_SIZE=zero"}, in: "<open a.txt>"},
		{name: "an old flag's warning", files: map[string]string{"a.txt": "A\n"}, args: []string{"--json"}, in: "<open a.txt>"},
	}
	d := startServe(t, "", nil)
	served := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dirs := repos(t, c, 3)
			own := runBinary(t, dirs[0], c.in, append(append([]string{}, c.env...), "LLM_RUNTIME_SERVER=never"), c.args...)
			for i, bin := range []string{binary, clientBinary} {
				dir := dirs[1+i]
				before := d.status().Served
				srv := runBinaryAt(t, bin, dir, c.in, append(append([]string{}, c.env...), d.env...), c.args...)
				if own.code != srv.code || normalized(own.stdout, dirs[0]) != normalized(srv.stdout, dir) || own.stderr != srv.stderr {
					t.Fatalf("own pool: exit %d\n%s%s\nthrough the daemon (%s): exit %d\n%s%s", own.code, own.stdout, own.stderr, filepath.Base(bin), srv.code, srv.stdout, srv.stderr)
				}
				if a, b := tree(t, dirs[0]), tree(t, dir); a != b {
					t.Fatalf("the repositories differ afterwards (%s):\n%s\n%s", filepath.Base(bin), a, b)
				}
				if own.code == 0 {
					if after := d.status().Served; after != before+1 {
						t.Fatalf("the daemon served %d runs, want %d: the run of %s did not go through it", after, before+1, filepath.Base(bin))
					}
				}
			}
			if own.code == 0 {
				served++
			}
		})
	}
	if served < len(cases)-1 {
		t.Fatalf("%d of %d cases ran through the daemon", served, len(cases))
	}
}

// TestE2EServeKill9RemovesItsContainersAndTheNextRunCopes: kill -9 of the
// daemon leaves no container; the next run falls back to a pool of its own
// (auto), and a new daemon takes the socket cleanly.
func TestE2EServeKill9RemovesItsContainersAndTheNextRunCopes(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	rt := testenv.ShortDir(t)
	xdg := []string{"XDG_RUNTIME_DIR=" + rt} // the default socket, so that auto finds it
	d := startServe(t, filepath.Join(rt, "llm-runtime", "serve.sock"), xdg)
	if r := runBinary(t, dir, "<open a.txt>", append(xdg, "LLM_RUNTIME_CONTAINER_POOL_STARTUP_CONTAINERS=2"), "-v"); r.code != 0 || !strings.Contains(r.stderr, "Server: llm-runtime serve") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pid := d.cmd.Process.Pid
	if items, _ := env.Docker.Ours(context.Background(), container.LabelOwnerPID, strconv.Itoa(pid)); len(items) == 0 {
		t.Fatal("no container of the daemon after a run")
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	killed := time.Now()
	noContainersOf(t, env, pid, time.Minute)
	t.Logf("every container of the killed daemon was gone %s after kill -9", time.Since(killed).Round(time.Millisecond))

	r := runBinary(t, dir, "<open a.txt>", xdg, "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\n") || strings.Contains(r.stderr, "Server: llm-runtime serve") {
		t.Fatalf("the run after the daemon's death: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	d2 := startServe(t, d.socket, xdg)
	if r := runBinary(t, dir, "<open a.txt>", xdg, "-v"); r.code != 0 || !strings.Contains(r.stderr, "Server: llm-runtime serve (pid "+strconv.Itoa(d2.cmd.Process.Pid)+")") {
		t.Fatalf("the run on the new daemon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestE2EServeAClientKilledMidRunLeavesTheDaemonHealthy kills a client
// while its exec runs: the command's container is destroyed, the daemon
// serves the next run, and its status shows no session left.
func TestE2EServeAClientKilledMidRunLeavesTheDaemonHealthy(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	d := startServe(t, "", nil)
	runEnv := append(d.env, "LLM_RUNTIME_EXEC_WHITELIST=sleep,cat", "LLM_RUNTIME_EXEC_TIMEOUT=5m")
	cmd := exec.Command(binary, "--exec")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), runEnv...)
	cmd.Stdin = strings.NewReader("<exec sleep 300>")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once the command runs in its container.
	dpid := strconv.Itoa(d.cmd.Process.Pid)
	deadline := time.Now().Add(2 * time.Minute)
	for !sleeping(t, env, dpid) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the command never ran:\n%s", d.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	for sleeping(t, env, dpid) {
		if time.Now().After(deadline) {
			t.Fatal("the killed client's command still runs")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for d.status().Sessions != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the killed client's session is still open")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := runBinary(t, dir, "<open a.txt> <exec cat a.txt>", runEnv, "-v", "--exec"); r.code != 0 || strings.Count(r.stdout, "\nA\n") != 2 || !strings.Contains(r.stderr, "pool warm") {
		t.Fatalf("the next run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(d.log(), "the client went away") {
		t.Fatalf("the daemon did not notice the client's death:\n%s", d.log())
	}
}

// sleeping says whether a container of the daemon runs sleep.
func sleeping(t *testing.T, env dockertest.Env, pid string) bool {
	items, _ := env.Docker.Ours(context.Background(), container.LabelOwnerPID, pid)
	for _, it := range items {
		out, _ := exec.Command("docker", "top", it.ID).Output()
		if bytes.Contains(out, []byte("sleep 300")) {
			return true
		}
	}
	return false
}

// TestE2EServeADeadOrFullDaemonDoesNotBlockARun: a stopped daemon (SIGSTOP)
// is given container_pool.acquire_timeout, then the run goes on without
// it; a daemon whose only pool is in use sends a run of another repository
// back at once. Both runs succeed.
func TestE2EServeADeadOrFullDaemonDoesNotBlockARun(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	a := repo(t, map[string]string{"a.txt": "A\n"})
	b := repo(t, map[string]string{"b.txt": "B\n"})
	d := startServe(t, "", []string{"LLM_RUNTIME_SERVE_MAX_POOLS=1"})

	// Full: a session on a holds the only pool.
	held := exec.Command(binary)
	held.Dir = a
	held.Env = append(cleanEnv(), d.env...)
	stdin, _ := held.StdinPipe()
	var heldOut bytes.Buffer
	held.Stdout = &heldOut
	if err := held.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for d.status().Sessions != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the held session never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := runBinary(t, b, "<open b.txt>", []string{"LLM_RUNTIME_SERVER=auto", "XDG_RUNTIME_DIR=" + runtimeDirOf(t, d)}, "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "\nB\n") || !strings.Contains(r.stderr, "all 1 pools are in use (serve.max_pools)") {
		t.Fatalf("a run past a full daemon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	stdin.Write([]byte("<open a.txt>"))
	stdin.Close()
	if err := held.Wait(); err != nil || !strings.Contains(heldOut.String(), "\nA\n") {
		t.Fatalf("the held session: %v\n%s", err, heldOut.String())
	}

	// Dead: stopped, it takes connections but answers none. The run waits
	// container_pool.acquire_timeout for it (the default, 30s: the same
	// setting bounds the wait of the run's own pool for its first
	// container, which can take seconds on a loaded machine).
	d.cmd.Process.Signal(syscall.SIGSTOP)
	defer d.cmd.Process.Signal(syscall.SIGCONT)
	start := time.Now()
	r = runBinary(t, b, "<open b.txt>", []string{"LLM_RUNTIME_SERVER=auto", "XDG_RUNTIME_DIR=" + runtimeDirOf(t, d)}, "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "\nB\n") || !strings.Contains(r.stderr, "did not take the run within 30s") {
		t.Fatalf("a run past a stopped daemon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("a run past a stopped daemon took %s (acquire_timeout 30s)", time.Since(start).Round(time.Millisecond))
	// Named explicitly, a daemon that does not answer is an error, not a
	// fallback.
	r = runBinary(t, b, "<open b.txt>", append(d.env, "LLM_RUNTIME_CONTAINER_POOL_ACQUIRE_TIMEOUT=1s"))
	if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, "did not take the run within 1s") {
		t.Fatalf("a run that names a stopped daemon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	d.cmd.Process.Signal(syscall.SIGCONT)
}

// runtimeDirOf makes a directory whose llm-runtime/serve.sock is the
// daemon's socket, so that auto finds it there.
func runtimeDirOf(t *testing.T, d *daemon) string {
	t.Helper()
	rt := testenv.ShortDir(t)
	if err := os.Mkdir(filepath.Join(rt, "llm-runtime"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(d.socket, filepath.Join(rt, "llm-runtime", "serve.sock")); err != nil {
		t.Fatal(err)
	}
	return rt
}

// TestE2EServeEightClientsOnTwoRepositories runs eight filters at once,
// four on each of two repositories, through one daemon: every one
// succeeds with its own repository's output, and every run is its own
// audit session.
func TestE2EServeEightClientsOnTwoRepositories(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	repos := []string{repo(t, map[string]string{"name.txt": "first\n"}), repo(t, map[string]string{"name.txt": "second\n"})}
	d := startServe(t, "", nil)
	var wg sync.WaitGroup
	results := make([]result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := fmt.Sprintf("<open name.txt> <write out-%d.txt>%d</write> <search first>", i, i)
			results[i] = runBinary(t, repos[i%2], in, d.env)
		}()
	}
	wg.Wait()
	for i, r := range results {
		want := []string{"first", "second"}[i%2]
		if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: name.txt ===\n"+want+"\n") || !strings.Contains(r.stdout, "=== WRITE SUCCESSFUL: out-"+strconv.Itoa(i)+".txt ===") {
			t.Fatalf("client %d: exit %d\n%s%s", i, r.code, r.stdout, r.stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(repos[i%2], "out-"+strconv.Itoa(i)+".txt")); string(b) != strconv.Itoa(i) {
			t.Fatalf("client %d wrote %q", i, b)
		}
	}
	st := d.status()
	if st.Served != 8 || len(st.Pools) != 2 || st.Sessions != 0 {
		t.Fatalf("status: %+v", st)
	}
	sessions := map[string]bool{}
	for _, dir := range repos {
		for _, rec := range auditOf(t, dir) {
			if rec.FrontEnd != "filter" {
				t.Fatalf("a record of front end %q", rec.FrontEnd)
			}
			sessions[rec.Session] = true
		}
	}
	if len(sessions) != 8 {
		t.Fatalf("%d audit sessions, want one per run (8)", len(sessions))
	}
}

// TestE2EServeIdlePoolsCloseAndTheDaemonExits: a pool idle for its
// container_pool.idle_timeout closes, and then the daemon, with no pool and
// no client for serve.idle_exit, exits by itself, leaving nothing.
func TestE2EServeIdlePoolsCloseAndTheDaemonExits(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	d := startServe(t, "", []string{"LLM_RUNTIME_SERVE_IDLE_EXIT=3s"})
	if r := runBinary(t, dir, "<open a.txt>", append(d.env, "LLM_RUNTIME_CONTAINER_POOL_IDLE_TIMEOUT=2s")); r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	select {
	case <-d.done:
	case <-time.After(2 * time.Minute): // a hang, not a speed check
		t.Fatalf("the idle daemon did not exit:\n%s", d.log())
	}
	log := d.log()
	if d.cmd.ProcessState.ExitCode() != 0 || !strings.Contains(log, "Pool closed: "+dir+" (docker): idle for 2s (container_pool.idle_timeout)") ||
		!strings.Contains(log, "Exiting: no pool and no client for 3s (serve.idle_exit)") {
		t.Fatalf("exit %d\n%s", d.cmd.ProcessState.ExitCode(), log)
	}
	if _, err := os.Stat(d.socket); err == nil {
		t.Fatal("the socket is still there after the daemon exited")
	}
}

// TestE2EServeASocketOthersCanReachIsNotUsed: a socket in a directory
// others can write may be anyone's: named, it is an error; the daemon
// will not listen there either.
func TestE2EServeASocketOthersCanReachIsNotUsed(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	sock := filepath.Join(open, "serve.sock")
	r := runBinary(t, dir, "<open a.txt>", []string{"LLM_RUNTIME_SERVER=" + sock})
	if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, "can be written by others") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBinary(t, dir, "", nil, "serve", "--socket", sock)
	if r.code != 3 || !strings.Contains(r.stderr, "can be written by others") {
		t.Fatalf("serve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestE2EServeASquattedRuntimeDirectoryIsLeftAlone: with no
// XDG_RUNTIME_DIR, the daemon's socket is in /tmp/llm-runtime-UID, which
// any user can make first. A squatter's directory (another uid's, when the
// test runs as root; a link, otherwise) must not keep the user's daemon
// from starting: it serves from the user's state directory, says so, and
// its clients find it there.
func TestE2EServeASquattedRuntimeDirectoryIsLeftAlone(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	tmp, home := testenv.ShortDir(t), testenv.ShortDir(t)
	squat := filepath.Join(tmp, fmt.Sprintf("llm-runtime-%d", os.Getuid()))
	want := "is not a directory"
	if os.Getuid() == 0 {
		if err := os.Mkdir(squat, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(squat, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		want = "belongs to uid 65534"
	} else if err := os.Symlink(t.TempDir(), squat); err != nil {
		t.Fatal(err)
	}
	env := []string{"!XDG_RUNTIME_DIR", "TMPDIR=" + tmp, "HOME=" + home, "XDG_STATE_HOME=" + filepath.Join(home, "state")}
	sock := filepath.Join(home, "state", "llm-runtime", "run", "serve.sock")

	d := startDaemon(t, binary, home, sock, env, "serve", "--verbose")
	if log := d.log(); !strings.Contains(log, want) || !strings.Contains(log, "using "+filepath.Dir(sock)+" instead") {
		t.Errorf("the daemon did not say why it left %s:\n%s", squat, log)
	}

	dir := repo(t, map[string]string{"a.txt": "A\n"})
	r := runBinary(t, dir, "<open a.txt>", env, "--verbose")
	if r.code != 0 || !strings.Contains(r.stderr, "Server: llm-runtime serve (pid "+strconv.Itoa(d.cmd.Process.Pid)+") on "+sock) {
		t.Fatalf("the client did not use the daemon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Lstat(squat); err != nil || fi.Mode()&os.ModeSymlink == 0 && !fi.IsDir() {
		t.Errorf("the squatter's %s was touched: %v", squat, err)
	}
	if r := runBinary(t, dir, "", env, "serve", "stop"); r.code != 0 {
		t.Fatalf("serve stop: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	<-d.done
}
