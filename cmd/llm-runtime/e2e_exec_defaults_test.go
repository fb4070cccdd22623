package main

// End-to-end tests of what exec does by default (issue 24): the whitelist
// and the prompt fit the image, the exec example passes the configuration
// it is printed for, a timeout shows the output so far, a sandbox image
// built on the way is reported, and the repository is copied for exec
// only when a command runs.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
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

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/prompt"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// filesNamed returns the paths under dir of the files named name.
func filesNamed(t *testing.T, dir, name string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == name {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestE2EExecCopiesTheRepositoryOnlyAtTheFirstExec: a run with exec on and
// no <exec> leaves no copy of the repository in exec.state_dir; a run with
// one makes it.
func TestE2EExecCopiesTheRepositoryOnlyAtTheFirstExec(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	dir := repo(t, map[string]string{"lazy-marker.txt": "copied\n"})
	state := t.TempDir()
	vars := []string{"LLM_RUNTIME_EXEC_STATE_DIR=" + state}

	r := runBinary(t, dir, "<open lazy-marker.txt>\n", vars, "--exec")
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: lazy-marker.txt ===\ncopied\n") {
		t.Fatalf("a run without <exec>: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if found := filesNamed(t, state, "lazy-marker.txt"); len(found) != 0 {
		t.Fatalf("a run without <exec> copied the repository into exec.state_dir: %v", found)
	}

	r = runBinary(t, dir, "<exec cat lazy-marker.txt>\n", vars, "--exec")
	if r.code != 0 || !strings.Contains(r.stdout, "=== EXEC SUCCESSFUL: cat lazy-marker.txt ===") {
		t.Fatalf("a run with <exec>: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if found := filesNamed(t, state, "lazy-marker.txt"); len(found) != 1 {
		t.Fatalf("after a run with <exec>, exec.state_dir holds %d copies of the file, want 1: %v", len(found), found)
	}
}

// execRepo is the prompt's example repository with a configuration that
// turns exec on, with the lines of its exec section given.
func execRepo(t *testing.T, execLines string) string {
	t.Helper()
	files := map[string]string{"llm-runtime.config.yaml": "exec:\n  enabled: true\n  timeout: 1m\n" + execLines}
	for name, content := range prompt.ExampleRepo {
		files[name] = content
	}
	return repo(t, files)
}

// execExampleOf returns the exec example the prompt (text format) shows,
// "" if none.
func execExampleOf(t *testing.T, p string) string {
	t.Helper()
	var found []string
	for _, l := range strings.Split(p, "\n") {
		if line, ok := strings.CutPrefix(l, "    <exec "); ok {
			found = append(found, strings.TrimSuffix(line, ">"))
		}
	}
	if len(found) > 1 {
		t.Fatalf("the prompt shows %d exec examples: %q", len(found), found)
	}
	if len(found) == 0 {
		return ""
	}
	return found[0]
}

// The prompt lists only the whitelisted commands the image can run, says
// on standard error which it left out, and its exec example is one the
// configuration allows: run through the binary, it shows what the prompt
// says, for each configuration (issue 24, items 1 and 2).
func TestE2EThePromptListsWhatTheExecImageCanRunAndItsExampleRuns(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	for _, c := range []struct {
		name    string
		exec    string   // more lines of the exec section
		allowed string   // the prompt's line of allowed commands
		left    []string // entries left out, as standard error lists them
		example string   // the exec example's command line; "" for none
	}{
		{"the default whitelist", "",
			"Allowed commands (a command must start with one of these): `ls`, `cat`, `grep`, `find`, `head`, `tail`, `wc`, `echo`, `pwd`, `true`.", nil, "ls internal/names"},
		{"go and make, which busybox has not", "  whitelist: [cat, go test, make]\n",
			"Allowed commands (a command must start with one of these): `cat`.", []string{"go test", "make"}, "cat go.mod"},
		{"an entry with its options", "  whitelist: [ls -la, wc]\n",
			"Allowed commands (a command must start with one of these): `ls -la`, `wc`.", nil, "wc -l main.go"},
		{"anything", "  whitelist: [\"*\"]\n", "Any command may run.", nil, "ls internal/names"},
		{"a shell", "  shell: true\n  whitelist: [echo]\n",
			"Allowed commands (a command must start with one of these): `echo`.", nil, "echo hello"},
		{"nothing the image has", "  whitelist: [go build, go vet]\n",
			"Allowed commands (a command must start with one of these): none.", []string{"go build", "go vet"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := execRepo(t, c.exec)
			r := runBinary(t, dir, "", nil, "prompt", "--format", "text")
			if r.code != 0 || !strings.Contains(r.stdout, "- "+c.allowed+"\n") {
				t.Fatalf("prompt: exit %d; want the line %q\n%s%s", r.code, c.allowed, r.stdout, r.stderr)
			}
			wantErr := ""
			if len(c.left) > 0 {
				wantErr = "llm-runtime: left out of the prompt: " + strings.Join(c.left, ", ") + ": the image " + dockertest.Tag("busybox") + " has no such program\n"
			}
			if r.stderr != wantErr {
				t.Errorf("prompt's standard error: %q, want %q", r.stderr, wantErr)
			}
			got := execExampleOf(t, r.stdout)
			if got != c.example {
				t.Fatalf("the exec example: %q, want %q\n%s", got, c.example, r.stdout)
			}
			if got == "" {
				return
			}
			i := slices.IndexFunc(prompt.ExecExamples, func(e prompt.Example) bool { return e.Line() == got })
			e := prompt.ExecExamples[i]
			run := runBinary(t, dir, e.Input, nil)
			if err := e.Check(run.stdout); err != nil || run.code != 0 {
				t.Fatalf("the example, run: exit %d: %v\n%s", run.code, err, run.stderr)
			}
		})
	}
}

// Every entry of the default whitelist runs in the default image, and a
// go command, which that image has not, is refused before anything runs
// (issue 24, item 1: it was allowed, and failed with "go": executable file
// not found).
func TestE2EExecTheDefaultWhitelistFitsTheDefaultImage(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	byProgram := map[string]execCase{
		"ls": {command: "ls", want: "a.txt"}, "cat": {command: "cat a.txt", want: "alpha\nbeta\n"},
		"grep": {command: "grep beta a.txt", want: "beta"}, "find": {command: "find . -name a.txt", want: "./a.txt"},
		"head": {command: "head -n 1 a.txt", want: "alpha"}, "tail": {command: "tail -n 1 a.txt", want: "beta"},
		"wc": {command: "wc -l a.txt", want: "2 a.txt"}, "echo": {command: "echo hi", want: "hi"},
		"pwd": {command: "pwd", want: "/workspace"}, "true": {command: "true"},
	}
	var cases []execCase
	for _, entry := range config.DefaultWhitelist {
		c, ok := byProgram[entry]
		if !ok {
			t.Fatalf("no command of this test runs the default whitelist's %q", entry)
		}
		cases = append(cases, c)
	}
	cases = append(cases,
		execCase{command: "go test ./...", want: `"go test ./..." is not on the whitelist`, refused: true},
		execCase{command: "make", want: `"make" is not on the whitelist`, refused: true})
	runExecs(t, "exec:\n  enabled: true\n  timeout: 1m\n", map[string]string{"a.txt": "alpha\nbeta\n"}, cases)
}

// A command killed at exec.timeout shows what it printed before, and the
// message says whether a retry can help (issue 24, item 3).
func TestE2EExecTimeoutShowsTheOutputSoFarAndWhetherARetryHelps(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	// The sleep outlasts any timeout; the echo before it has the 5 s of
	// the timeout to run.
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": "exec:\n  enabled: true\n  shell: true\n  whitelist: [echo, sleep]\n  timeout: 5s\n"})
	r := runBinary(t, dir, "<exec echo started; sleep 600>\n", nil)
	for _, want := range []string{
		"=== ERROR: EXEC_TIMEOUT ===\n",
		"Message: killed after 5s (exec.timeout); exit code 124; its output so far follows. A retry will likely be killed again: it would do the same work; do less at once",
		"Exit code: 124\n",
		"Output:\nstarted\n=== END EXEC ===\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in:\n%s", want, r.stdout)
		}
	}
}

// labelImage builds tag FROM from with one LABEL line and no layer of its
// own (so that an image of ours stays ours), labelled with the test's
// labels, with the classic builder, and removes it when the test ends.
func labelImage(t *testing.T, env dockertest.Env, tag, from, label string) {
	t.Helper()
	dockertest.BuildImage(t, env, tag, "FROM "+from+"\nLABEL "+label+"\n", nil)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// settingLine returns the line of 'llm-runtime config' for key.
func settingLine(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, key+": ") {
			return l
		}
	}
	return ""
}

// The limits an exec image of ours recommends (its label) apply where the
// user set none, and 'config', --verbose and the prompt say so; a value
// the user set stays; what a command may do is never the image's to say
// (issue 24, item 3).
func TestE2EExecImageRecommendedLimitsApplyUnlessTheUserSetThem(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	busybox := dockertest.RequireExecImage(t, env)
	tag := "llm-runtime-exec:test-recommends-" + randomHex(6)
	labelImage(t, env, tag, busybox,
		container.LabelRecommended+`="exec.timeout=2m exec.memory=768MiB exec.cpus=1024 exec.whitelist=* exec.shell=true"`)
	// The image is named in the environment, as the suite names its exec
	// images (cleanEnv).
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": "exec:\n  enabled: true\n", "a.txt": "alpha\n"})
	image := []string{"LLM_RUNTIME_EXEC_IMAGE=" + tag}
	origin := "# recommended by the image " + tag + " (label " + container.LabelRecommended + ")"

	r := runBinary(t, dir, "", image, "config")
	if r.code != 0 {
		t.Fatalf("config: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for key, want := range map[string]string{"exec.timeout": "2m", "exec.memory": "768MiB", "exec.cpus": "1024"} {
		if l := settingLine(r.stdout, key); !strings.HasPrefix(l, key+": "+want+" ") || !strings.HasSuffix(l, origin) {
			t.Errorf("config: %q; want %s from the image", l, want)
		}
	}
	for key, want := range map[string]string{"exec.whitelist": strings.Join(config.DefaultWhitelist, ","), "exec.shell": "false"} {
		if l := settingLine(r.stdout, key); !strings.HasPrefix(l, key+": "+want+" ") || !strings.HasSuffix(l, "# default") {
			t.Errorf("config: %q; the image may not set it", l)
		}
	}

	r = runBinary(t, dir, "", append(image, "LLM_RUNTIME_EXEC_TIMEOUT=45s"), "config")
	if l := settingLine(r.stdout, "exec.timeout"); !strings.HasPrefix(l, "exec.timeout: 45s ") || !strings.HasSuffix(l, "# $LLM_RUNTIME_EXEC_TIMEOUT") {
		t.Errorf("config with LLM_RUNTIME_EXEC_TIMEOUT=45s: %q", l)
	}
	if l := settingLine(r.stdout, "exec.memory"); !strings.HasSuffix(l, origin) {
		t.Errorf("config with only the timeout set: %q", l)
	}

	// More CPUs than Docker's machine has, which Docker would refuse, are
	// capped at what it has: the container's CPU quota says so (cgroup v1
	// or v2, whichever the machine has).
	cpus, err := env.Docker.CPUs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r = runBinary(t, dir, "<exec cat a.txt>\n<exec cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us>\n<exec cat /sys/fs/cgroup/cpu.max>\n", image, "-v")
	quota := strconv.Itoa(cpus * 100000)
	if !strings.Contains(r.stdout, "Output:\n"+quota+"\n") && !strings.Contains(r.stdout, "Output:\n"+quota+" 100000\n") {
		t.Errorf("exec.cpus 1024 on a machine of %d CPUs: no CPU quota of %s in\n%s", cpus, quota, r.stdout)
	}
	for _, want := range []string{
		"Exec image: exec.timeout: 2m, as the image recommends (set it to choose another)\n",
		"Exec image: exec.memory: 768MiB, as the image recommends (set it to choose another)\n",
		"Exec image: exec.cpus: 1024, as the image recommends (set it to choose another)\n",
		fmt.Sprintf("exec.cpus 1024: Docker's machine has %d CPUs; an exec container gets %d\n", cpus, cpus),
		", timeout 2m0s)\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("-v: no %q in:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "=== EXEC SUCCESSFUL: cat a.txt ===") {
		t.Errorf("the run: exit %d\n%s", r.code, r.stdout)
	}
	if p := runBinary(t, dir, "", image, "prompt"); !strings.Contains(p.stdout, "killed after 2m0s.") {
		t.Errorf("the prompt does not say the image's timeout:\n%s", p.stdout)
	}
}

// runOwn runs the binary bin as runBinary runs the test's, with XDG_CACHE_HOME
// set to cache (where the binary's sum is kept).
func runOwn(t *testing.T, bin, cache, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	denv := dockertest.Require(t)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(append(cleanEnv(), "XDG_CACHE_HOME="+cache), env...)
	r, err := collect(cmd)
	if err != nil {
		t.Fatal(err)
	}
	noContainersOf(t, denv, cmd.Process.Pid, time.Minute)
	return r
}

// ownBinary is a copy of the test's binary with bytes of its own after
// its end (a static binary runs with them), so that its sandbox image is
// one that no one has built: the run builds it, under a tag of this test
// alone, removed when the test ends.
func ownBinary(t *testing.T) (bin, ref string) {
	t.Helper()
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(t.TempDir(), "llm-runtime")
	if err := os.WriteFile(bin, append(b, randomHex(8)...), 0o755); err != nil {
		t.Fatal(err)
	}
	if ref, err = container.ImageRef(bin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
	return bin, ref
}

var builtLine = regexp.MustCompile(`^llm-runtime: built the sandbox image (llm-runtime-io:[0-9a-f]{16}) in \d+\.\ds \(once per version of llm-runtime; 'llm-runtime image build' does it ahead\)\n$`)

// A run that builds the sandbox image says so on standard error, with the
// time it took, which the output's Time elapsed does not count; a run
// that finds it built says nothing; through llm-runtime serve the client
// is told too (issue 24, item 4).
func TestE2EARunThatBuildsTheSandboxImageSaysSo(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	cache := t.TempDir()
	dir := repo(t, map[string]string{"a.txt": "alpha\n"})
	vars := []string{"LLM_RUNTIME_SERVER=never"}

	bin, ref := ownBinary(t)
	r := runOwn(t, bin, cache, dir, "<open a.txt>\n", vars)
	m := builtLine.FindStringSubmatch(r.stderr)
	if r.code != 0 || m == nil || m[1] != ref || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nalpha\n") {
		t.Fatalf("the first run: exit %d, standard error %q; want one line saying it built %s\n%s", r.code, r.stderr, ref, r.stdout)
	}
	t.Logf("%s%s", r.stderr, lineWith(r.stdout, "Time elapsed: "))
	if r := runOwn(t, bin, cache, dir, "<open a.txt>\n", vars); r.code != 0 || r.stderr != "" {
		t.Fatalf("the second run: exit %d, standard error %q; want nothing", r.code, r.stderr)
	}

	// Through a daemon of a binary whose image is not built either.
	bin, ref = ownBinary(t)
	sock := filepath.Join(t.TempDir(), "serve.sock")
	serve := exec.Command(bin, "serve", "--socket", sock)
	serve.Env = append(cleanEnv(), "XDG_CACHE_HOME="+cache)
	var serveLog bytes.Buffer
	serve.Stderr = &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { serve.Wait(); close(done) }()
	t.Cleanup(func() {
		serve.Process.Signal(syscall.SIGTERM)
		<-done
		noContainersOf(t, dockertest.Require(t), serve.Process.Pid, time.Minute)
	})
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("the daemon did not listen within a minute:\n%s", serveLog.String())
		}
	}
	r = runOwn(t, bin, cache, dir, "<open a.txt>\n", []string{"LLM_RUNTIME_SERVER=" + sock})
	m = builtLine.FindStringSubmatch(r.stderr)
	if r.code != 0 || m == nil || m[1] != ref || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nalpha\n") {
		t.Fatalf("a served run: exit %d, standard error %q; want one line saying it built %s\n%s\nthe daemon's log:\n%s", r.code, r.stderr, ref, r.stdout, serveLog.String())
	}
}

// With the Go exec image and a whitelist of go commands, the prompt lists
// them, says the timeout the image recommends, and its example is a go
// command, which passes and shows what the prompt says; 'image build go'
// said what the image needs (issue 24, items 1-3).
//
// A step of TestE2EExecGo, on its repository dir.
func goPromptTeachesAGoCommandThatRuns(t *testing.T, dir string) {
	if out := goImage.r.stdout; !strings.Contains(out, "it recommends exec.timeout 5m, exec.memory 1GiB, exec.cpus 2 (its label "+container.LabelRecommended+")") ||
		!strings.Contains(out, "    image: "+dockertest.Tag("go")+"\n    whitelist: [go build, go vet, go test,") {
		t.Errorf("image build go does not say what the image needs:\n%s", out)
	}
	// No exec.timeout: the image's recommendation applies where the user
	// set nothing.
	files := map[string]string{"llm-runtime.config.yaml": "exec:\n  enabled: true\n  whitelist: [go build, go vet, go test, make]\n"}
	for name, content := range prompt.ExampleRepo {
		files[name] = content
	}
	refill(t, dir, files)
	image := []string{"LLM_RUNTIME_EXEC_IMAGE=" + dockertest.Tag("go")} // as the suite names its images
	r := runBinary(t, dir, "", image, "prompt", "--format", "text")
	for _, want := range []string{"killed after 5m0s.", "one of these): `go build`, `go vet`, `go test`.\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the prompt lacks %q:\n%s", want, r.stdout)
		}
	}
	if want := "llm-runtime: left out of the prompt: make: the image " + dockertest.Tag("go") + " has no such program\n"; r.stderr != want {
		t.Errorf("prompt's standard error: %q, want %q", r.stderr, want)
	}
	line := execExampleOf(t, r.stdout)
	if line != "go vet ./..." {
		t.Fatalf("the exec example: %q, want go vet ./...\n%s", line, r.stdout)
	}
	e := prompt.ExecExamples[slices.IndexFunc(prompt.ExecExamples, func(e prompt.Example) bool { return e.Line() == line })]
	run := runBinary(t, dir, e.Input, image)
	if err := e.Check(run.stdout); err != nil || run.code != 0 {
		t.Fatalf("the example, run: exit %d: %v\n%s", run.code, err, run.stderr)
	}
}
