package gocache

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The program that TestGoBuild builds: few enough standard packages to
// compile in seconds (net/http would be three times as many).
const (
	goMod  = "module example.com/hello\n\ngo 1.24\n"
	mainGo = `package main

import (
	"encoding/json"
	"fmt"
)

func main() {
	b, _ := json.Marshal(map[string]int{"answer": 42})
	fmt.Println(string(b))
}
`
	wantOutput = "{\"answer\":42}\n"
)

// compileRE matches a compile in go build -x's output, and its package.
var compileRE = regexp.MustCompile(`(?m)^\S*/compile(?:\.exe)? .*? -p (\S+) `)

// TestGoBuild: the real go command with this package as its
// GOCACHEPROG. A first build seeds a directory; a second build, of the
// same program in another directory with the seed as Base and a new
// Dir, compiles only the program's own package and puts only its outputs
// in Dir.
func TestGoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(self, ` '"`) {
		// GOCACHEPROG is split on spaces, with quotes.
		t.Skipf("the test binary's path %q would need quoting in GOCACHEPROG", self)
	}

	seed := t.TempDir()
	start := time.Now()
	out1, _ := goBuild(t, goCmd, self, "", seed)
	t.Logf("first build, seeding: %v, %d compiles", time.Since(start).Round(time.Millisecond), len(compiles(out1)))
	first := compiles(out1)
	for _, pkg := range []string{"main", "fmt", "encoding/json", "runtime"} {
		if !slices.Contains(first, pkg) {
			t.Errorf("the first build did not compile %s: %v", pkg, first)
		}
	}
	seedFiles := files(t, seed)
	readOnly(t, seed)
	before := snapshot(t, seed)

	dir := t.TempDir()
	start = time.Now()
	out2, bin := goBuild(t, goCmd, self, seed, dir)
	second := compiles(out2)
	t.Logf("second build, on the seed: %v, compiled %v", time.Since(start).Round(time.Millisecond), second)
	if !slices.Equal(second, []string{"main"}) {
		t.Errorf("the second build compiled %v, want only main\n%s", second, out2)
	}

	got, err := exec.Command(bin).Output()
	if err != nil || string(got) != wantOutput {
		t.Errorf("the second build's program: %q, %v; want %q", got, err, wantOutput)
	}

	// Dir has the entries and outputs of main's compile and no more: no
	// entry that the seed has, and far fewer than it.
	var entries, outputs []string
	for _, f := range files(t, dir) {
		switch {
		case strings.Contains(f, ".tmp-"):
			t.Errorf("temporary file left in Dir: %s", f)
		case strings.HasPrefix(f, "a/"):
			entries = append(entries, f)
		case strings.HasPrefix(f, "o/"):
			outputs = append(outputs, f)
		default:
			t.Errorf("unexpected file in Dir: %s", f)
		}
		if slices.Contains(seedFiles, f) && strings.HasPrefix(f, "a/") {
			t.Errorf("the second build put %s, which the seed has", f)
		}
	}
	t.Logf("seed: %d files; Dir: %d entries, %d outputs", len(seedFiles), len(entries), len(outputs))
	if len(entries) == 0 || len(outputs) == 0 {
		t.Errorf("the second build put nothing in Dir: %v", files(t, dir))
	}
	if len(entries) > 10 {
		t.Errorf("the second build put %d entries in Dir, want those of one package: %v", len(entries), entries)
	}
	if after := snapshot(t, seed); !maps.Equal(before, after) {
		t.Error("the second build changed Base")
	}
}

// goBuild copies the program to a new directory and builds it there,
// with the test binary as GOCACHEPROG on base and dir, and returns go
// build -x's output and the program's path.
func goBuild(t *testing.T, goCmd, self, base, dir string) (string, string) {
	t.Helper()
	src := t.TempDir()
	for name, content := range map[string]string{"go.mod": goMod, "main.go": mainGo} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command(goCmd, "build", "-x", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = goEnv(t, map[string]string{
		"GOCACHEPROG": self,
		progEnv:       "1",
		progBaseEnv:   base,
		progDirEnv:    dir,
		// cmd/go still wants a GOCACHE; a new one, so that nothing comes
		// from another cache.
		"GOCACHE":     t.TempDir(),
		"GOFLAGS":     "-mod=mod",
		"CGO_ENABLED": "0",
		"GOTOOLCHAIN": "local",
		"GOENV":       "off",
		"GOWORK":      "off",
		"GOPROXY":     "off",
		"GOPATH":      t.TempDir(),
	})
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out.String())
	}
	return out.String(), bin
}

// goEnv is the process's environment without its Go settings, and with
// set.
func goEnv(t *testing.T, set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := set[name]; ok || strings.HasPrefix(name, "GO") || name == "CGO_ENABLED" {
			continue
		}
		env = append(env, kv)
	}
	for name, value := range set {
		env = append(env, name+"="+value)
	}
	return env
}

// compiles lists the packages that go build -x's output shows compiled,
// sorted.
func compiles(out string) []string {
	var pkgs []string
	for _, m := range compileRE.FindAllStringSubmatch(out, -1) {
		pkgs = append(pkgs, m[1])
	}
	slices.Sort(pkgs)
	return pkgs
}
