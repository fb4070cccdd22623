package main

// End-to-end tests of exec in the Go image (llm-runtime image build go),
// through the binary, on the real daemon: the go command builds, vets and
// tests a module, its build cache outlives the run, and with exec.writable
// what it writes (go.sum, a binary) lands in the repository.

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

var goImage struct {
	done chan struct{} // closed once the build ended
	r    result
	took time.Duration
}

// startGoImage starts building this process's Go image
// (dockertest.Tag("go"), never the user's llm-runtime-exec:go) with
// 'image build go --tag', in the background: TestMain calls it, so that
// the Go tests, which need a minute for the build on a loaded machine,
// find the image built when their turn comes.
func startGoImage() {
	goImage.done = make(chan struct{})
	go func() {
		defer close(goImage.done)
		start := time.Now()
		cmd := exec.Command(binary, "image", "build", "go", "--tag", dockertest.Tag("go"))
		cmd.Dir = os.TempDir()
		cmd.Env = cleanEnv()
		r, err := collect(cmd)
		if err != nil {
			r = result{stderr: err.Error(), code: -1}
		}
		goImage.r, goImage.took = r, time.Since(start)
	}()
}

// requireGoImage waits for the Go image that TestMain started building.
func requireGoImage(t *testing.T) {
	t.Helper()
	dockertest.Require(t)
	<-goImage.done
	t.Logf("image build go took %s: %s", goImage.took.Round(time.Millisecond), strings.TrimSpace(goImage.r.stdout))
	if r := goImage.r; r.code != 0 || !strings.Contains(r.stdout, dockertest.Tag("go")+" (") {
		t.Fatalf("image build go: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// goExec is one line of --format jsonl output for an <exec> in the Go image.
type goExec struct {
	execLine
	DurationMS float64 `json:"duration_ms"`
	Changes    []struct{ Path, Action, Reason string }
}

// change returns the action of the change to path, "" if there is none.
func (g goExec) change(path string) string {
	for _, c := range g.Changes {
		if c.Path == path {
			return c.Action
		}
	}
	return ""
}

// runGo runs each command as an <exec> in the repository dir, in one run
// of the binary, and returns their results.
func runGo(t *testing.T, dir string, commands ...string) []goExec {
	t.Helper()
	var in strings.Builder
	for _, c := range commands {
		in.WriteString("<exec " + c + ">\n")
	}
	r := runBinary(t, dir, in.String(), []string{"LLM_RUNTIME_EXEC_IMAGE=" + dockertest.Tag("go")}, "--format", "jsonl")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != len(commands) {
		t.Fatalf("exit %d, %d lines for %d commands\n%s\n%s", r.code, len(lines), len(commands), r.stdout, r.stderr)
	}
	out := make([]goExec, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &out[i]); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if out[i].Argument != commands[i] {
			t.Fatalf("line %d is for %q, want %q", i+1, out[i].Argument, commands[i])
		}
	}
	return out
}

// goConfig configures exec for the Go image (which runGo names); a cold
// build compiles the standard library on one CPU, hence the generous
// timeout.
func goConfig(writable bool, whitelist string) string {
	return "exec:\n  enabled: true\n  timeout: 5m\n  memory: 1GiB\n" +
		"  writable: " + map[bool]string{true: "true", false: "false"}[writable] + "\n  whitelist: " + whitelist + "\n"
}

// TestE2EExecGo runs the Go image's steps in turn on one repository, so
// that they share its build cache, as a model's work on one repository
// does: only the first compiles the standard library (a minute or more of
// CPU on a loaded machine), and the others build warm.
func TestE2EExecGo(t *testing.T) {
	t.Parallel()
	requireGoImage(t)
	dir := repo(t, nil)
	for _, step := range []struct {
		name string
		run  func(*testing.T, string)
	}{
		{"BuildsVetsAndTestsAModuleAndItsCacheOutlivesTheRun", goBuildsVetsAndTests},
		{"WritableTidiesFromAFileProxyAndBuildsABinary", goWritableTidies},
		{"ThePromptOfTheGoImageTeachesAGoCommandThatRuns", goPromptTeachesAGoCommandThatRuns},
	} {
		if !t.Run(step.name, func(t *testing.T) { step.run(t, dir) }) {
			return
		}
	}
}

// refill makes dir hold files and nothing else (its exec state, kept by
// its path, stays).
func refill(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goBuildsVetsAndTests: read only, go test, build and vet succeed and
// leave nothing in the repository, a coverage profile is discarded, the
// first go test compiles the module and not the standard library (the
// image's seed has it), and in a later run of the binary go test is
// "(cached)". The first step of TestE2EExecGo.
func goBuildsVetsAndTests(t *testing.T, dir string) {
	refill(t, dir, map[string]string{
		"llm-runtime.config.yaml": goConfig(false, "[go build, go vet, go test]"),
		"go.mod":                  "module example.com/m\n\ngo 1.26\n",
		"m.go":                    "package m\n\n// Add returns a + b.\nfunc Add(a, b int) int { return a + b }\n",
		"m_test.go":               "package m\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(2, 3) != 5 {\n\t\tt.Fatal(\"Add(2, 3) != 5\")\n\t}\n}\n",
	})
	// go test first: the repository's first, on an empty build cache of
	// its own.
	res := runGo(t, dir, "go test ./...")
	// The repository's first go test found the standard library compiled
	// and vetted in the image's seed: what it put in its own build cache
	// is the module's alone, compiled, vetted and linked (4 outputs).
	// Compiled, the standard library it imports is a hundred outputs and
	// more; its vet facts, some seventy.
	if n := cacheOutputs(t, dir); n == 0 || n > 12 {
		t.Errorf("the repository's build cache holds %d outputs after its first go test; want the module's alone (the standard library, compiled and its vet facts, comes from the image's seed)", n)
	}
	res = append(res, runGo(t, dir, "go build ./...", "go vet ./...", "go test -coverprofile=c.out ./...")...)
	for _, r := range res {
		if !r.OK {
			t.Fatalf("%s failed: %+v", r.Argument, r)
		}
		t.Logf("%s: %.0f ms\n%s", r.Argument, r.DurationMS, r.Output)
	}
	cold := res[0]
	if !strings.Contains(cold.Output, "ok  \texample.com/m\t") || strings.Contains(cold.Output, "(cached)") {
		t.Errorf("the first go test: %q", cold.Output)
	}
	for _, r := range res[:3] {
		if len(r.Changes) != 0 {
			t.Errorf("%s changed the workspace: %+v", r.Argument, r.Changes)
		}
	}
	cover := res[3]
	if !strings.Contains(cover.Output, "coverage: 100.0% of statements") || cover.change("c.out") != "discarded" || len(cover.Changes) != 1 {
		t.Errorf("go test -coverprofile: changes %+v, output %q; want c.out discarded", cover.Changes, cover.Output)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.out")); !os.IsNotExist(err) {
		t.Errorf("c.out is in the repository (%v), though exec is read-only", err)
	}

	// A later run: a new container, the same cache.
	warm := runGo(t, dir, "go test ./...")[0]
	if !warm.OK || !strings.Contains(warm.Output, "(cached)") {
		t.Fatalf("the second go test: %+v", warm)
	}
	t.Logf("go test ./...: %.0f ms the first time (the standard library from the image's seed), %.0f ms cached in a later run (%.1fx)", cold.DurationMS, warm.DurationMS, cold.DurationMS/warm.DurationMS)
}

// cacheOutputs counts the outputs in the repository dir's go build cache
// (in exec's state, in package gocache's layout).
func cacheOutputs(t *testing.T, dir string) int {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(filepath.Join(container.RepoStateDir(filepath.Join(stateDir, "exec"), real), "cache", "go-prog", "o"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// goWritableTidies: with exec.writable, go mod tidy fetches a module from
// a file proxy in the repository and writes go.sum, and go build -o writes
// a binary; both land in the repository. A step of TestE2EExecGo.
//
// The variables go mod tidy needs here (GOPROXY without direct, GOSUMDB)
// pass the whitelist's checks through env, which refuse the other GO*
// variables (GOFLAGS=-toolexec=... runs any program).
func goWritableTidies(t *testing.T, dir string) {
	files := map[string]string{
		"go.mod":  "module example.com/m\n\ngo 1.26\n\nrequire example.com/dep v1.0.0\n",
		"main.go": "package main\n\nimport \"example.com/dep\"\n\nfunc main() { println(dep.Hello()) }\n",
	}
	for name, content := range fileProxy(t, "example.com/dep", "v1.0.0", map[string]string{
		"go.mod": "module example.com/dep\n\ngo 1.26\n",
		"dep.go": "package dep\n\n// Hello says hello.\nfunc Hello() string { return \"hello\" }\n",
	}) {
		files["proxy/"+name] = content
	}
	// Not GOFLAGS=-mod=mod: it would take the place of the image's
	// GOFLAGS=-modcacherw, and leave a module cache its owner cannot
	// remove; go mod tidy needs no -mod.
	const tidy = "env GOPROXY=file:///workspace/proxy GOSUMDB=off go mod tidy"

	files["llm-runtime.config.yaml"] = goConfig(true, "[env, go mod tidy, go build]")
	refill(t, dir, files)
	// GOPROXY with direct would make go run git: refused by the checks.
	if r := runGo(t, dir, "env GOPROXY=direct go mod tidy")[0]; r.OK || r.Error == nil || r.Error.Code != "EXEC_VALIDATION" {
		t.Errorf("env GOPROXY=direct go mod tidy: %+v; want EXEC_VALIDATION", r)
	}
	res := runGo(t, dir, tidy, "go build -o app .")
	for _, r := range res {
		t.Logf("%s: %.0f ms, changes %+v\n%s", r.Argument, r.DurationMS, r.Changes, r.Output)
	}
	if r := res[0]; !r.OK || r.change("go.sum") != "created" {
		t.Errorf("%s: %+v; want go.sum created", tidy, r)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil || !strings.Contains(string(sum), "example.com/dep v1.0.0 h1:") || !strings.Contains(string(sum), "example.com/dep v1.0.0/go.mod h1:") {
		t.Errorf("go.sum: %v\n%s", err, sum)
	}
	if r := res[1]; !r.OK || r.change("app") != "created" {
		t.Errorf("go build -o app .: %+v; want app created", r)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "app")); err != nil || !bytes.HasPrefix(b, []byte("\x7fELF")) {
		t.Errorf("app is not the binary go built: %v, %d bytes", err, len(b))
	}
}

// fileProxy returns the files of a GOPROXY=file:// directory that serves
// module path at version, with files (names relative to the module's root).
func fileProxy(t *testing.T, path, version string, files map[string]string) map[string]string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(path + "@" + version + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	at := path + "/@v/"
	return map[string]string{
		at + "list":            version + "\n",
		at + version + ".info": `{"Version":"` + version + `","Time":"2026-01-01T00:00:00Z"}` + "\n",
		at + version + ".mod":  files["go.mod"],
		at + version + ".zip":  buf.String(),
	}
}
