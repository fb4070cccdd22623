package llmruntime_test

// The import rules of DESIGN.md: cmd wires everything, the engine opens a
// session of the parts, the front ends (the filter's runner, the MCP
// server) run operations on it, and the parts do not import the
// orchestration, the CLI or each other where the design keeps them apart.

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/llm-runtime/llm-runtime/"

// forbidden maps a package to the packages it must not import.
var forbidden = map[string][]string{
	"parser":       {"config", "sandbox", "output", "runner", "engine", "mcpserver", "cmd", "pool", "audit", "runtime"},
	"sandbox":      {"config", "output", "runner", "engine", "mcpserver", "cmd", "pool", "audit", "runtime"},
	"config":       {"output", "runner", "cmd", "pool", "audit", "runtime"},
	"output":       {"config", "runner", "cmd", "pool", "audit", "runtime"},
	"runner":       {"config", "cmd", "engine", "mcpserver", "serve"},
	"engine":       {"cmd", "mcpserver", "serve"},
	"serve":        {"cmd", "mcpserver", "pool", "runtime/container"},
	"mcpserver":    {"cmd", "config", "pool", "audit", "runtime", "serve"},
	"pool":         {"config", "audit", "runtime", "sandbox", "runner", "cmd"},
	"audit":        {"config", "pool", "runtime", "runner", "cmd"},
	"runtime/wasm": {"config", "pool", "audit", "runner", "cmd"},
	"edit":         {"config", "sandbox", "output", "runner", "cmd", "pool", "audit", "runtime", "parser"},
	"prompt":       {"config", "sandbox", "output", "runner", "cmd", "pool", "audit", "runtime", "parser"},
	"egress":       {"config", "sandbox", "output", "runner", "engine", "mcpserver", "serve", "cmd", "pool", "audit", "runtime", "journal", "parser"},
	"whitelist":    {"config", "output", "runner", "engine", "mcpserver", "serve", "cmd", "pool", "audit", "runtime", "journal"},
	"journal":      {"config", "sandbox", "output", "runner", "engine", "mcpserver", "serve", "cmd", "pool", "audit", "runtime", "parser"},
}

func TestImportsPointOneWay(t *testing.T) {
	checked := 0
	for pkg, bad := range forbidden {
		files, _ := filepath.Glob(filepath.Join(filepath.FromSlash(pkg), "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			for _, imp := range ast.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				rel, ok := strings.CutPrefix(path, module)
				if !ok {
					continue
				}
				for _, b := range bad {
					if rel == b || strings.HasPrefix(rel, b+"/") {
						t.Errorf("%s imports %s: %s must not depend on %s", f, path, pkg, b)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package files found")
	}
}

// TestEveryTestBinaryRunsInItsOwnDirectories: each package with tests
// has a TestMain that runs them through internal/testenv, so that no test
// writes to its user's cache, configuration, state or temporary
// directories, and what a test process makes there goes with it.
func TestEveryTestBinaryRunsInItsOwnDirectories(t *testing.T) {
	dirs := map[string]bool{}
	withMain := map[string]bool{}
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		dirs[filepath.Dir(p)] = true
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(src), "\nfunc TestMain(m *testing.M) {") &&
			(strings.Contains(string(src), "testenv.Main(m") || strings.Contains(string(src), "testenv.Isolate()")) {
			withMain[filepath.Dir(p)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 10 {
		t.Fatalf("found tests in only %d directories", len(dirs))
	}
	for d := range dirs {
		if !withMain[d] {
			t.Errorf("%s: no TestMain runs its tests through internal/testenv (func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) })", d)
		}
	}
}

// TestTheThinClientLinksNoSandbox: llm-runtime-client starts in a few
// milliseconds because it links configuration and the daemon's protocol
// alone; a package that opens a sandbox, the audit store or a guest
// runtime, linked by any path, would bring their start-up back (package
// initialisation ran 22 ms of llm-runtime's 42-46 ms start on 309
// packages).
func TestTheThinClientLinksNoSandbox(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./cmd/llm-runtime-client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	heavy := []string{module + "engine", module + "runtime/", module + "audit", module + "journal", module + "pool", module + "runner",
		module + "mcpserver", module + "gocache", module + "serve", "github.com/cockroachdb/", "github.com/moby/", "github.com/docker/",
		"github.com/tetratelabs/wazero", "k8s.io/", "github.com/modelcontextprotocol/", "google.golang.org/protobuf", "github.com/prometheus/"}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		if d == module+"serve/wire" {
			continue
		}
		for _, h := range heavy {
			if d == strings.TrimSuffix(h, "/") || strings.HasPrefix(d, h) {
				t.Errorf("llm-runtime-client links %s", d)
			}
		}
	}
	if len(deps) > 250 {
		t.Errorf("llm-runtime-client links %d packages; it linked 219 when this test was written", len(deps))
	}
}
