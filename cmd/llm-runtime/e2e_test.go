package main

// End-to-end tests: they build the binary once and drive it the way a user
// does, through its standard input, output and exit code.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// binary is llm-runtime as built for the tests; clientBinary is its thin
// client, built beside it (where the client finds llm-runtime).
var binary, clientBinary string

func TestMain(m *testing.M) {
	// The process's own temporary, cache, config, state and runtime
	// directories (so no daemon of the developer's serves a test's run:
	// the default socket is one where none listens, unless a test starts
	// one there).
	if err := testenv.Isolate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "llm-runtime-e2e-")
	if err != nil {
		panic(err)
	}
	binary, clientBinary = filepath.Join(dir, "llm-runtime"), filepath.Join(dir, "llm-runtime-client")
	stateDir = filepath.Join(dir, "state")
	for bin, pkg := range map[string]string{binary: ".", clientBinary: "../llm-runtime-client"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", filepath.Base(bin), err, out)
			os.Exit(1)
		}
	}
	// Its sandbox image is this process's alone, removed at the end.
	if err := dockertest.AppendRunID(binary); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// This binary's sandbox image, built now (if Docker answers), so that
	// the first test to run the binary does not build it, and say so on
	// its standard error.
	prebuild := exec.Command(binary, "image", "build")
	prebuild.Env = cleanEnv()
	prebuild.Run()
	// And the Go image, which the Go tests need late in the run.
	startGoImage()
	code := m.Run()
	<-goImage.done // its image is removed with the others
	var errs []error
	errs = append(errs, removeVolumesUnder(dir))
	if ref, err := container.ImageRef(binary); err == nil {
		errs = append(errs, dockertest.RemoveImages(ref))
	}
	errs = append(errs, dockertest.Teardown(), os.RemoveAll(dir), testenv.Remove())
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "cleaning up:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// removeVolumesUnder removes copy mode's volumes whose copy was in dir:
// those of the runs of the tests.
func removeVolumesUnder(dir string) error {
	ctx := context.Background()
	d, err := container.Connect(ctx, "test")
	if err != nil {
		return nil
	}
	defer d.Close()
	// And the agent's volume of copy mode's exec, of this binary's image.
	agent := ""
	if ref, err := container.ImageRef(binary); err == nil {
		agent = container.AgentVolumePrefix + strings.TrimPrefix(ref, container.ImageName+":")
	}
	vs, err := d.Volumes(ctx, "", "")
	if err != nil {
		return nil // no Docker: nothing of ours on it
	}
	var errs []error
	for _, v := range vs {
		if strings.HasPrefix(v.Labels[container.LabelState], dir+"/") || v.Name == agent {
			if _, err := d.RemoveVolume(ctx, v.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

type result struct {
	stdout, stderr string
	code           int
}

// runBinary runs the binary in dir with stdin and extra environment
// variables (NAME=VALUE sets one over cleanEnv's, !NAME unsets it), and
// checks that it left no container behind.
func runBinary(t *testing.T, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	return runBinaryAt(t, binary, dir, stdin, env, args...)
}

// collect runs cmd and returns what it printed and its exit code; an error
// only when it could not run.
func collect(cmd *exec.Cmd) (result, error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return result{}, err
	}
	return result{out.String(), errb.String(), code}, nil
}

// noContainersOf fails unless every container started by process pid is
// gone within wait.
func noContainersOf(t *testing.T, env dockertest.Env, pid int, wait time.Duration) {
	t.Helper()
	left, err := dockertest.Gone(env.Docker, container.LabelOwnerPID, strconv.Itoa(pid), wait)
	if err != nil {
		t.Fatal(err)
	}
	if left > 0 {
		t.Fatalf("%d container(s) of process %d still existed, now removed", left, pid)
	}
}

// cleanEnv is the test process's environment (its own directories:
// testenv) without LLM_RUNTIME_ settings, so the developer's own setup
// cannot leak in, and with this process's exec image as exec.image (a
// test that wants another names it in its environment, which comes after).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LLM_RUNTIME_") && !strings.HasPrefix(kv, "XDG_STATE_HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env, "XDG_STATE_HOME="+stateDir, "LLM_RUNTIME_EXEC_STATE_DIR="+filepath.Join(stateDir, "exec"),
		"LLM_RUNTIME_EXEC_IMAGE="+dockertest.Tag("busybox"))
	if rt := dockertest.ExecRuntime(); rt != "" {
		env = append(env, "LLM_RUNTIME_EXEC_RUNTIME="+rt) // every exec under that runtime (gVisor's runsc)
	}
	return env
}

// withEnv is base with the variables of extra set (NAME=VALUE) or unset
// (!NAME).
func withEnv(base, extra []string) []string {
	out := base
	for _, kv := range extra {
		if name, ok := strings.CutPrefix(kv, "!"); ok {
			out = slices.DeleteFunc(slices.Clone(out), func(e string) bool { return strings.HasPrefix(e, name+"=") })
			continue
		}
		out = append(out, kv)
	}
	return out
}

// stateDir holds the audit log of every run of the end-to-end tests, so
// they never write to the developer's own.
var stateDir string

func repo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var timeLine = regexp.MustCompile(`(?m)^Time elapsed: \d+\.\d\ds$`)

func TestE2EReadsConfigsFromAPipe(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"config.yaml": "port: 8080\n", "api.yaml": "version: 2\n"})
	r := runBinary(t, dir, "Read configs: <open config.yaml> <open api.yaml>\n", nil)
	want := `=== LLM TOOL START ===
=== COMMAND: <open config.yaml> ===
=== FILE: config.yaml ===
port: 8080
=== END FILE ===
=== END COMMAND ===
=== COMMAND: <open api.yaml> ===
=== FILE: api.yaml ===
version: 2
=== END FILE ===
=== END COMMAND ===
=== LLM TOOL COMPLETE ===
Commands executed: 2
Time elapsed: X
=== END ===
`
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !timeLine.MatchString(r.stdout) {
		t.Fatalf("no Time elapsed line in:\n%s", r.stdout)
	}
	if got := timeLine.ReplaceAllString(r.stdout, "Time elapsed: X"); got != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", got, want)
	}
}

// The acceptance line: a three-line file holding $(rm -rf /), a
// backtick and a tab is written exactly.
func TestE2EWritesShellSyntaxByteForByte(t *testing.T) {
	t.Parallel()
	dir := repo(t, nil)
	content := "echo $(rm -rf /)\nrun `whoami` now\n\tindented with a tab\n"
	r := runBinary(t, dir, "<write danger.sh>\n"+content+"</write>\n", nil)
	if r.code != 0 || !strings.Contains(r.stdout, "=== WRITE SUCCESSFUL: danger.sh ===\nAction: CREATED\nBytes written: 55\n") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(dir, "danger.sh"))
	if err != nil || string(got) != content {
		t.Fatalf("on disk %q (%v), want %q", got, err, content)
	}
}

func TestE2ELabelledWriteHoldsTheClosingTag(t *testing.T) {
	t.Parallel()
	dir := repo(t, nil)
	in := "<write:EOF docs/howto.md>\nUse <write PATH>text</write> to write.\n</write:EOF>"
	r := runBinary(t, dir, in, nil)
	got, _ := os.ReadFile(filepath.Join(dir, "docs/howto.md"))
	if r.code != 0 || string(got) != "Use <write PATH>text</write> to write.\n" {
		t.Fatalf("exit %d, file %q\n%s", r.code, got, r.stdout)
	}
}

func TestE2EInputAndOutputFiles(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	in := filepath.Join(t.TempDir(), "reply.txt")
	out := filepath.Join(t.TempDir(), "results.txt")
	os.WriteFile(in, []byte("<open a.txt>"), 0o644)
	r := runBinary(t, dir, "ignored stdin <open nope>", nil, "--input", in, "--output", out)
	b, _ := os.ReadFile(out)
	if r.code != 0 || r.stdout != "" || !strings.Contains(string(b), "=== FILE: a.txt ===\nA\n=== END FILE ===") {
		t.Fatalf("exit %d, stdout %q, file:\n%s", r.code, r.stdout, b)
	}
	if r := runBinary(t, dir, "", nil, "--input", filepath.Join(dir, "missing")); r.code != 1 || !strings.Contains(r.stderr, "--input") {
		t.Fatalf("missing input: exit %d, %q", r.code, r.stderr)
	}
}

func TestE2EJSONLines(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	r := runBinary(t, dir, "<open a.txt> <write b.txt>B</write> <open ../x>", nil, "--format", "jsonl")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("exit %d, %d lines:\n%s", r.code, len(lines), r.stdout)
	}
	type record struct {
		Command string `json:"command"`
		OK      bool   `json:"ok"`
		Content string `json:"content"`
		Action  string `json:"action"`
		Error   struct{ Code string }
	}
	var recs []record
	for _, l := range lines {
		var x record
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		recs = append(recs, x)
	}
	if recs[0].Content != "A\n" || recs[1].Action != "CREATED" || recs[2].OK || recs[2].Error.Code != "PATH_SECURITY" {
		t.Fatalf("records: %+v", recs)
	}
}

func TestE2EUnterminatedCommandIsAnError(t *testing.T) {
	t.Parallel()
	dir := repo(t, nil)
	for _, in := range []string{"<open a.txt", "<write a.txt>\nhalf a file"} {
		r := runBinary(t, dir, in, nil)
		if r.code != 0 || !strings.Contains(r.stdout, "=== ERROR: PARSE_ERROR ===") || !strings.Contains(r.stdout, "Commands executed: 1") {
			t.Fatalf("%q: exit %d\n%s", in, r.code, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a.txt")); err == nil {
		t.Fatal("an unterminated write wrote a file")
	}
}

func TestE2EOddBytesNeverCrashIt(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\r\n"})
	in := "\x00\xff\xfe prose\r\n<open a.txt>\r\n<open \xff\x00>\r\n<write c.txt>\r\nx\r\n</write>\r\n<search \xc3\x28>"
	r := runBinary(t, dir, in, nil)
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\r\n=== END FILE ===") ||
		!strings.Contains(r.stdout, `=== COMMAND: <open \xff\x00> ===`) || !strings.Contains(r.stdout, "Commands executed: 4") {
		t.Fatalf("exit %d\n%q\n%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "c.txt")); string(b) != "x\r\n" {
		t.Fatalf("c.txt = %q", b)
	}
}

func TestE2EHostilePathsStayInside(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "repo")
	outside := filepath.Join(base, "outside")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("SECRET"), 0o644)
	os.Symlink("../outside/secret.txt", filepath.Join(dir, "link"))
	os.Symlink("../outside", filepath.Join(dir, "dirlink"))
	in := "<open ../outside/secret.txt> <open link> <open dirlink/secret.txt> <open " + filepath.Join(outside, "secret.txt") + ">" +
		"<write dirlink/evil.txt>x</write> <write ../outside/evil.txt>x</write> <write link>x</write> <open .env> <write .git/config>x</write>"
	r := runBinary(t, dir, in, nil, "--format", "jsonl")
	if r.code != 0 || strings.Contains(r.stdout, "SECRET") {
		t.Fatalf("exit %d\n%s", r.code, r.stdout)
	}
	if n := strings.Count(r.stdout, `"code":"PATH_SECURITY"`); n != 9 {
		t.Fatalf("%d PATH_SECURITY errors, want 9:\n%s", n, r.stdout)
	}
	entries, _ := os.ReadDir(outside)
	if b, _ := os.ReadFile(filepath.Join(outside, "secret.txt")); len(entries) != 1 || string(b) != "SECRET" {
		t.Fatalf("outside changed: %d entries, secret %q", len(entries), b)
	}
}

func TestE2EConfigurationErrorsNameKeyAndLine(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": "container_pool:\n  enabled: true\n  sise: 3\n"})
	r := runBinary(t, dir, "", nil)
	if r.code != 2 || !strings.Contains(r.stderr, "llm-runtime.config.yaml:3: container_pool.sise: unknown key") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	r = runBinary(t, repo(t, nil), "", []string{"LLM_RUNTIME_CONTAINER_POOL_SIZE=0"})
	if r.code != 2 || !strings.Contains(r.stderr, "$LLM_RUNTIME_CONTAINER_POOL_SIZE: container_pool.size: 0 is out of range") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBinary(t, repo(t, nil), "", nil, "--sandbox", "vm"); r.code != 2 || !strings.Contains(r.stderr, `--sandbox: sandbox: "vm" is not one of docker, kubernetes, local`) {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBinary(t, repo(t, nil), "", nil, "--no-such-flag"); r.code != 1 {
		t.Fatalf("unknown flag: exit %d", r.code)
	}
}

func TestE2EPrecedenceFileEnvironmentFlags(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": "output:\n  format: jsonl\nsearch:\n  max_results: 1\n", "a.txt": "needle\nneedle\n"})
	// The file says jsonl and max_results 1.
	r := runBinary(t, dir, "<search needle>", nil)
	if !strings.HasPrefix(r.stdout, "{") || !strings.Contains(r.stdout, `"total_matches":2`) || strings.Count(r.stdout, `"line":`) != 2 {
		t.Fatalf("file not applied:\n%s", r.stdout)
	}
	// A flag beats the file.
	if r := runBinary(t, dir, "<search needle>", nil, "--format", "text"); !strings.HasPrefix(r.stdout, "=== LLM TOOL START ===") {
		t.Fatalf("flag did not beat the file:\n%s", r.stdout)
	}
	// The environment beats the file, and a flag beats the environment.
	r = runBinary(t, dir, "<search needle>", []string{"LLM_RUNTIME_OUTPUT_FORMAT=text"})
	if !strings.HasPrefix(r.stdout, "=== LLM TOOL START ===") {
		t.Fatalf("environment did not beat the file:\n%s", r.stdout)
	}
	r = runBinary(t, dir, "<search needle>", []string{"LLM_RUNTIME_OUTPUT_FORMAT=jsonl"}, "--format", "text")
	if !strings.HasPrefix(r.stdout, "=== LLM TOOL START ===") {
		t.Fatalf("flag did not beat the environment:\n%s", r.stdout)
	}
	// The model cannot rewrite the configuration that binds it.
	r = runBinary(t, dir, "<write llm-runtime.config.yaml>output:\n  format: text\n</write>", nil)
	if !strings.Contains(r.stdout, `"code":"PATH_SECURITY"`) {
		t.Fatalf("configuration file was writable:\n%s", r.stdout)
	}
	r = runBinary(t, dir, "", nil, "config")
	if !strings.Contains(r.stdout, "output.format: jsonl") || !strings.Contains(r.stdout, "llm-runtime.config.yaml:2") {
		t.Fatalf("config:\n%s", r.stdout)
	}
}

// TestE2EStreamsEachResultBeforeReadingOn keeps standard input open and
// checks that each command's result arrives while the model is still
// "writing".
// startStreaming starts the binary on dir with its input a pipe, and
// returns waitFor, which reads its output up to a line equal to want, and
// fails the test (saying why) if none comes within 2 minutes: a hang, not
// a speed check.
func startStreaming(t *testing.T, dir, why string) (cmd *exec.Cmd, stdin io.WriteCloser, waitFor func(want string)) {
	t.Helper()
	cmd = exec.Command(binary)
	cmd.Dir, cmd.Env = dir, cleanEnv()
	stdin, _ = cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, stdin, func(want string) {
		t.Helper()
		deadline := time.After(2 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("output ended before %q", want)
				}
				if l == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %q %s", want, why)
			}
		}
	}
}

func TestE2EStreamsEachResultBeforeReadingOn(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n", "b.txt": "B\n"})
	cmd, stdin, waitFor := startStreaming(t, dir, "while input is still open: results are not streamed")
	io.WriteString(stdin, "First I read <open a.txt>")
	waitFor("A")
	waitFor("=== END COMMAND ===")
	io.WriteString(stdin, " then <open b.txt> and I keep talking")
	waitFor("B")
	stdin.Close()
	waitFor("Commands executed: 2")
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestE2EMemoryStaysFlat pipes 200 MB of prose without commands and checks
// that the process's peak resident memory is that of a run of one command,
// give or take what a garbage collector starved of CPU lets the heap grow
// by: it does not grow with the input. (The baseline, ~45-50 MB, is mostly
// the binary's own pages, and differs between builds.)
func TestE2EMemoryStaysFlat(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("pipes 200 MB")
	}
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	// peakOf runs a filter over prose bytes of prose and then one open, and
	// returns its own peak resident set, VmHWM, as it reports it with -v.
	// (The rusage of wait4 also counts the children a process reaped, and
	// varies with them, so it is only logged.)
	peakOf := func(prose int) int {
		t.Helper()
		cmd := exec.Command(binary, "--format", "jsonl", "-v")
		cmd.Dir = dir
		cmd.Env = cleanEnv()
		stdin, _ := cmd.StdinPipe()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := []byte(strings.Repeat("The model thinks aloud, a < b and c > d, <b>bold</b> ", 19) + "\n")
		chunk := bytes.Repeat(line, 1024)
		for total := 0; total < prose; {
			n, err := stdin.Write(chunk)
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		io.WriteString(stdin, "<open a.txt>")
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), `"content":"A\n"`) || strings.Count(out.String(), "\n") != 1 {
			t.Fatalf("output: %q", out.String())
		}
		m := regexp.MustCompile(`peak memory: (\d+) kB`).FindStringSubmatch(errb.String())
		if m == nil {
			t.Fatalf("no peak memory in -v output: %s", errb.String())
		}
		peak, _ := strconv.Atoi(m[1])
		t.Logf("%d MB of prose: peak resident %.1f MB (rusage of the tree %.1f MB)", prose>>20, float64(peak)/1024,
			float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)/1024)
		return peak
	}
	base, big := peakOf(0), peakOf(200<<20)
	// Measured: +4.5 MB on a quiet machine, +16.3 MB (35.2 to 51.5) at
	// load 16 with two CPU hogs. A process that kept its input would grow
	// by 200 MB and more.
	if big-base > 32*1024 {
		t.Fatalf("peak resident %d MB after 200 MB of prose, %d MB after none: it grew by more than 32 MB", big/1024, base/1024)
	}
}

func TestE2EVersionAndHelp(t *testing.T) {
	t.Parallel()
	r := runBinary(t, t.TempDir(), "", nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "llm-runtime ") {
		t.Fatalf("version: %d %q", r.code, r.stdout)
	}
	r = runBinary(t, t.TempDir(), "", nil, "--help")
	for _, want := range []string{"<write PATH>CONTENT</write>", "--input=FILE", "Exit codes", "echo 'Read configs"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if r.code != 0 {
		t.Fatalf("--help exit %d", r.code)
	}
}
