package main

// End-to-end tests of the thin client, llm-runtime-client, through the
// binaries: what it does not hand to a daemon, llm-runtime (the one beside
// it) does, with the same output, errors and exit code. What it hands to a
// daemon is TestE2EServedRunsPrintTheSameBytes's third run, and its binary
// is guarded in TestE2EServedRunsGuardTheClientsOwnFiles.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

func TestE2EThinClientLeavesToLlmRuntimeWhatNoDaemonServes(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	type clientCase struct {
		name string
		args []string
		env  []string
		in   string
	}
	cases := []clientCase{
		{name: "no daemon", args: []string{"--sandbox", "local"}, in: "<open a.txt> <write b.txt>B</write> <open b.txt>"},
		{name: "no daemon, on Docker", in: "<open a.txt> <list>"},
		{name: "server never", env: []string{"LLM_RUNTIME_SERVER=never"}, args: []string{"--sandbox", "local", "--format", "jsonl"}, in: "<open a.txt>"},
		{name: "a socket no daemon answers", args: []string{"--server", "/nonexistent/serve.sock"}, in: "<open a.txt>"},
		{name: "the run command", args: []string{"run", "--sandbox", "local", "-i", "in.txt"}},
		{name: "an old flag", args: []string{"--json", "--sandbox", "local"}, in: "<open a.txt>"},
		{name: "an old flag refused", args: []string{"--io-memory", "1g"}, in: "<open a.txt>"},
		{name: "an unknown flag", args: []string{"--bogus"}, in: "<open a.txt>"},
		{name: "an invalid setting", env: []string{"LLM_RUNTIME_OUTPUT_FORMAT=xml"}, in: "<open a.txt>"},
		{name: "exec on the local sandbox", args: []string{"--sandbox", "local", "--exec"}, in: "<exec ls>"},
		{name: "help", args: []string{"--help"}},
		{name: "a command's help", args: []string{"serve", "--help"}},
		{name: "version", args: []string{"--version"}},
		{name: "a command", args: []string{"config"}},
		{name: "an unknown command", args: []string{"frobnicate"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var res [2]result
			var dirs [2]string
			for i, bin := range []string{binary, clientBinary} {
				dirs[i] = filepath.Join(t.TempDir(), "repo")
				os.Mkdir(dirs[i], 0o755)
				os.WriteFile(filepath.Join(dirs[i], "a.txt"), []byte("A\n"), 0o644)
				os.WriteFile(filepath.Join(dirs[i], "in.txt"), []byte("<open a.txt>"), 0o644)
				res[i] = runBinaryAt(t, bin, dirs[i], c.in, c.env, c.args...)
			}
			a, b := res[0], res[1]
			if a.code != b.code || normalized(a.stdout, dirs[0]) != normalized(b.stdout, dirs[1]) || strings.ReplaceAll(a.stderr, dirs[0], "ROOT") != strings.ReplaceAll(b.stderr, dirs[1], "ROOT") {
				t.Fatalf("llm-runtime: exit %d\n%s%s\nllm-runtime-client: exit %d\n%s%s", a.code, a.stdout, a.stderr, b.code, b.stdout, b.stderr)
			}
			if a.stdout == "" && a.stderr == "" {
				t.Fatalf("nothing printed: exit %d", a.code)
			}
		})
	}
}

// TestE2EThinClientWithoutLlmRuntime: a client with no llm-runtime beside
// it or on PATH says so, and what to install.
func TestE2EThinClientWithoutLlmRuntime(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	dir := t.TempDir()
	client := filepath.Join(dir, "bin", "llm-runtime-client")
	copyFile(t, clientBinary, client)
	r := runBinaryAt(t, client, dir, "<open a.txt>", []string{"PATH=" + filepath.Join(dir, "nothing")})
	if r.code != 1 || !strings.Contains(r.stderr, "no llm-runtime beside this binary or on PATH") || r.stdout != "" {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// On PATH, it is found there.
	copyBinary(t, filepath.Join(dir, "path", "llm-runtime"))
	r = runBinaryAt(t, client, dir, "", []string{"PATH=" + filepath.Join(dir, "path")}, "version")
	if want := runBinary(t, dir, "", nil, "version"); r.code != 0 || r.stdout != want.stdout {
		t.Fatalf("exit %d\n%s%s\nwant %s", r.code, r.stdout, r.stderr, want.stdout)
	}
}

// TestE2EThinClientSaysOnceWhyADaemonWasNotUsed: a daemon whose Docker
// environment is not the client's does not take its run; llm-runtime,
// which the client runs for it, tries the daemon again and says why it was
// not used, once (-v), as it does when run itself; and an old flag's
// warning is said once, before the run.
func TestE2EThinClientSaysOnceWhyADaemonWasNotUsed(t *testing.T) {
	t.Parallel()
	// The daemon on the default socket of a runtime directory of the test's.
	rt := testenv.ShortDir(t)
	startServe(t, filepath.Join(rt, "llm-runtime", "serve.sock"), nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("A\n"), 0o644)
	// DOCKER_CONFIG (the docker CLI's, which the daemon's client does not
	// read) makes the client's Docker environment another than the daemon's.
	env := []string{"LLM_RUNTIME_SERVER=auto", "XDG_RUNTIME_DIR=" + rt, "DOCKER_CONFIG=" + t.TempDir()}
	var res [2]result
	for i, bin := range []string{binary, clientBinary} {
		res[i] = runBinaryAt(t, bin, dir, "<open a.txt>", env, "-v", "--json")
		if n := strings.Count(res[i].stderr, "Server: not used (llm-runtime serve is busy: the run's Docker environment"); res[i].code != 0 || n != 1 {
			t.Fatalf("%s: exit %d, %d lines saying why the daemon was not used:\n%s", filepath.Base(bin), res[i].code, n, res[i].stderr)
		}
		if n := strings.Count(res[i].stderr, "--json is the original llm-runtime's spelling"); n != 1 || !strings.HasPrefix(res[i].stderr, "llm-runtime: --json") {
			t.Fatalf("%s: the old flag's warning %d times, or not first:\n%s", filepath.Base(bin), n, res[i].stderr)
		}
	}
	if normalized(res[0].stdout, dir) != normalized(res[1].stdout, dir) {
		t.Fatalf("llm-runtime:\n%s\nllm-runtime-client:\n%s", res[0].stdout, res[1].stdout)
	}
}
