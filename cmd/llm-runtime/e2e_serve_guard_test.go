package main

// End-to-end tests of what the daemon guards (issue 25, section 1): a run
// through llm-runtime serve refuses the writes a direct run refuses,
// whatever the daemon's own environment, and a session that fails inside
// the daemon ends alone.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// runBinaryAt is runBinary with another copy of the binary: bin.
func runBinaryAt(t *testing.T, bin, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	denv := dockertest.Require(t)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = withEnv(cleanEnv(), env)
	r, err := collect(cmd)
	if err != nil {
		t.Fatal(err)
	}
	noContainersOf(t, denv, cmd.Process.Pid, time.Minute)
	return r
}

// copyBinary copies the binary to path, executable: the same build, so
// the same sandbox image and a daemon that takes its runs.
func copyBinary(t *testing.T, path string) {
	t.Helper()
	copyFile(t, binary, path)
}

// copyFile copies the executable from to path.
func copyFile(t *testing.T, from, path string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestE2EServedRunsGuardTheClientsOwnFiles: the client's binary (and the
// thin client's), its
// configuration directory and its caches (the guests' compilation cache,
// the agent's sum), inside the repository, are refused through a daemon
// whose own environment is elsewhere (a systemd unit, another shell)
// exactly as a direct run refuses them. Before, the daemon guarded only
// its own: the binary became a shell script, a configuration that turned
// exec on for every program landed, a file was planted in the guests'
// cache. Each repository first gets a pool from a client of another
// environment, so a pool opened for other guards is not reused.
func TestE2EServedRunsGuardTheClientsOwnFiles(t *testing.T) {
	t.Parallel()
	// The daemon's environment: its own home, configuration and cache.
	home := t.TempDir()
	d := startServe(t, "", []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "XDG_CACHE_HOME=" + filepath.Join(home, "cache")})
	const evilConfig = "exec:\n  enabled: true\n  whitelist: [\"*\"]\nsecurity:\n  excluded_paths: []\n"
	type guardCase struct {
		name string
		// env is the client's environment for the repository dir, bin the
		// binary to run ("" the test's own), in the input.
		env func(dir string) []string
		bin func(dir string) string
		in  string
		// keep are files of the repository that must hold what they held,
		// absent those that must not exist.
		keep, absent []string
	}
	cases := []guardCase{
		{name: "the configuration directory", env: func(dir string) []string {
			return []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, ".config")}
		}, in: "<write .config/llm-runtime/config.yaml>\n" + evilConfig + "</write> <write .config/llm-runtime>x</write>" +
			" <move a.txt .config/llm-runtime/config.yaml>",
			absent: []string{".config/llm-runtime"}},
		{name: "the home directory", env: func(dir string) []string {
			return []string{"HOME=" + dir, "!XDG_CONFIG_HOME", "!XDG_CACHE_HOME"}
		}, in: "<write .config/llm-runtime/config.yaml>\n" + evilConfig + "</write> <write .cache/llm-runtime/wazero/planted>x</write>",
			absent: []string{".config/llm-runtime", ".cache/llm-runtime/wazero"}},
		{name: "the caches, through a link", env: func(dir string) []string {
			link := filepath.Join(t.TempDir(), "cache")
			if err := os.Symlink(filepath.Join(dir, ".cache"), link); err != nil {
				t.Fatal(err)
			}
			return []string{"XDG_CACHE_HOME=" + link}
		}, in: "<write .cache/llm-runtime/wazero/planted>x</write> <write .cache/llm-runtime/agent-sum>0 0 0 0.0 0.0 = 00</write>",
			absent: []string{".cache/llm-runtime/wazero"}},
		{name: "the binary", bin: func(dir string) string {
			bin := filepath.Join(dir, "bin", "llm-runtime")
			copyBinary(t, bin)
			return bin
		}, in: "<write bin/llm-runtime>#!/bin/sh\ntouch pwned\n</write> <write ./bin//llm-runtime>x</write>" +
			// Nor deleted, moved away, replaced by a move, or carried off
			// with its directory.
			" <delete bin/llm-runtime> <move bin/llm-runtime x> <move a.txt bin/llm-runtime --overwrite> <move bin bin2>",
			keep: []string{"bin/llm-runtime"}},
		// The thin client, which a model loop starts on every reply: guarded
		// whether it hands the run to the daemon or runs llm-runtime (the one
		// beside it) for it.
		{name: "the thin client", bin: func(dir string) string {
			copyBinary(t, filepath.Join(dir, "bin", "llm-runtime"))
			client := filepath.Join(dir, "bin", "llm-runtime-client")
			copyFile(t, clientBinary, client)
			return client
		}, in: "<write bin/llm-runtime-client>#!/bin/sh\ntouch pwned\n</write> <write ./bin//llm-runtime-client>x</write>" +
			" <delete bin/llm-runtime-client> <move bin/llm-runtime-client x> <move a.txt bin/llm-runtime-client --overwrite>" +
			" <write bin/llm-runtime>x</write>",
			keep: []string{"bin/llm-runtime-client", "bin/llm-runtime"}},
	}
	for _, sb := range []string{"docker", "local"} {
		for _, c := range cases {
			t.Run(sb+"/"+c.name, func(t *testing.T) {
				var dirs [2]string
				var res [2]result
				for i, server := range []string{"never", d.socket} {
					dirs[i] = filepath.Join(t.TempDir(), "repo")
					os.MkdirAll(filepath.Join(dirs[i], ".cache"), 0o755)
					os.WriteFile(filepath.Join(dirs[i], "a.txt"), []byte("A\n"), 0o644)
					bin := binary
					if c.bin != nil {
						bin = c.bin(dirs[i])
					}
					env := []string{"LLM_RUNTIME_SERVER=" + server}
					if c.env != nil {
						env = append(env, c.env(dirs[i])...)
					}
					before := map[string]string{}
					for _, k := range c.keep {
						b, err := os.ReadFile(filepath.Join(dirs[i], k))
						if err != nil {
							t.Fatal(err)
						}
						before[k] = string(b)
					}
					served := d.status().Served
					if i == 1 {
						// A pool on this repository, opened for a client
						// whose files are elsewhere.
						if r := runBinary(t, dirs[i], "<open a.txt>", []string{"LLM_RUNTIME_SERVER=" + server}, "--sandbox", sb); r.code != 0 {
							t.Fatalf("the first run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
						}
						served++
					}
					res[i] = runBinaryAt(t, bin, dirs[i], c.in, env, "--sandbox", sb)
					if i == 1 {
						if after := d.status().Served; after != served+1 {
							t.Fatalf("the daemon served %d runs, want %d: the run did not go through it\n%s%s", after, served+1, res[i].stdout, res[i].stderr)
						}
					}
					r := res[i]
					if n := strings.Count(r.stdout, "=== COMMAND: "); r.code != 0 || n == 0 || strings.Count(r.stdout, "=== ERROR: PATH_SECURITY ===") != n {
						t.Errorf("%s: not every command was refused with PATH_SECURITY: exit %d\n%s%s", server, r.code, r.stdout, r.stderr)
					}
					for _, k := range c.keep {
						if b, _ := os.ReadFile(filepath.Join(dirs[i], k)); string(b) != before[k] {
							t.Errorf("%s: %s changed: %.40q", server, k, b)
						}
					}
					for _, k := range c.absent {
						if _, err := os.Lstat(filepath.Join(dirs[i], k)); err == nil {
							t.Errorf("%s: %s was created", server, k)
						}
					}
				}
				if res[0].code != res[1].code || normalized(res[0].stdout, dirs[0]) != normalized(res[1].stdout, dirs[1]) || res[0].stderr != res[1].stderr {
					t.Fatalf("direct: exit %d\n%s%s\nthrough the daemon: exit %d\n%s%s", res[0].code, res[0].stdout, res[0].stderr, res[1].code, res[1].stdout, res[1].stderr)
				}
			})
		}
	}
}

// hooks is the binary built with the tag llmruntime_testhooks
// (serve/testhooks.go): in its daemon, an <open> of a path that starts
// with lrt-test-panic panics in the session, as a bug would. Built once,
// beside the test's binary, and removed with it.
var hooks struct {
	once sync.Once
	path string
	err  error
}

func hooksBinary(t *testing.T) string {
	t.Helper()
	hooks.once.Do(func() {
		path := filepath.Join(filepath.Dir(binary), "llm-runtime-testhooks")
		build := exec.Command("go", "build", "-tags", "llmruntime_testhooks", "-o", path, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			hooks.err = fmt.Errorf("building llm-runtime with the test hooks: %v\n%s", err, out)
			return
		}
		hooks.path = path
	})
	if hooks.err != nil {
		t.Fatal(hooks.err)
	}
	return hooks.path
}

// TestE2EServeAPanicEndsItsSessionAlone: a panic in a session of the
// daemon (a bug, made here by a build with the test hooks) ends that run
// alone, with exit 70 and a message that says so, a record in its audit
// session and the stack in the daemon's log; a session beside it on the
// same pool goes on to its end, and the daemon serves the next run. Before,
// the panic killed the daemon and every run on it.
func TestE2EServeAPanicEndsItsSessionAlone(t *testing.T) {
	t.Parallel()
	bin := hooksBinary(t)
	dir := repo(t, map[string]string{"a.txt": "A\n", "lrt-test-panic.txt": "P\n"})
	d := startServeBin(t, bin, "", nil)

	// A session that stays open on the pool.
	cmd := exec.Command(bin, "--sandbox", "local")
	cmd.Dir = dir
	cmd.Env = withEnv(cleanEnv(), d.env)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	held := &session{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			held.lines <- sc.Text()
		}
		close(held.lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if got := held.send("<open a.txt>"); !slices.Contains(got, "A") {
		t.Fatalf("the held session: %q", got)
	}
	if st := d.status(); st.Sessions != 1 {
		t.Fatalf("the held session does not run through the daemon: %+v", st)
	}

	r := runBinaryAt(t, bin, dir, "<open a.txt> <open lrt-test-panic.txt> <open a.txt>", d.env, "--sandbox", "local", "-v")
	if r.code != exitInternal || !strings.Contains(r.stderr, ", pool warm") || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\n") || strings.Contains(r.stdout, "P\n") || strings.Contains(r.stdout, "=== END ===") ||
		!strings.Contains(r.stderr, "internal error (a bug of llm-runtime) in a session on "+dir+": a test build's session hook: <open lrt-test-panic.txt>; this run ended here, the daemon serves on") {
		t.Fatalf("the run that panicked: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The held session goes on to its end.
	held.send("<open a.txt>")
	stdin.Close()
	var rest []string
	for l := range held.lines {
		rest = append(rest, l)
	}
	if err := cmd.Wait(); err != nil || !slices.Contains(rest, "Commands executed: 2") {
		t.Fatalf("the held session: %v %q", err, rest)
	}
	// The next run, on a new pool.
	if r := runBinaryAt(t, bin, dir, "<open a.txt>", d.env, "--sandbox", "local", "-v"); r.code != 0 || !strings.Contains(r.stdout, "\nA\n") || !strings.Contains(r.stderr, ", pool new") {
		t.Fatalf("the next run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if log := d.log(); !strings.Contains(log, "llm-runtime serve: internal error (a bug of llm-runtime) in a session on "+dir) ||
		!strings.Contains(log, "goroutine ") || !strings.Contains(log, "serve.panicking.Open") {
		t.Fatalf("the daemon's log has no stack:\n%s", log)
	}
	var found bool
	for _, rec := range auditOf(t, dir) {
		found = found || rec.Op == "session" && rec.Outcome == "error" && rec.Code == "INTERNAL_ERROR"
	}
	if !found {
		t.Fatalf("no audit record of the internal error: %+v", auditOf(t, dir))
	}
}
