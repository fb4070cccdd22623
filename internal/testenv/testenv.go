// Package testenv keeps a test process off its user's machine: every test
// binary of the project runs its tests through Main, which gives the
// process its own temporary, cache, configuration, state and runtime
// directories (TMPDIR and the XDG variables), drops the user's own
// LLM_RUNTIME_* settings, and removes all of it when the tests end. What
// the tests leave on Docker is dockertest's to remove; the suite's own
// check (tools/gotest) proves that nothing was left anywhere.
//
// Go's own caches are kept where they were (GOCACHE and GOENV are set to
// the user's before XDG_CACHE_HOME and XDG_CONFIG_HOME move), so that a
// test that builds a program builds it warm; and so are the binaries of
// make k8s-binaries (LLM_RUNTIME_K8S_BIN), which the Kubernetes tests run.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Knobs are the LLM_RUNTIME_ variables that steer the tests rather than
// llm-runtime, and so pass through: the rest are the user's settings,
// which a test must not inherit.
var Knobs = []string{
	"LLM_RUNTIME_REQUIRE_DOCKER", // Docker tests fail instead of skipping
	"LLM_RUNTIME_REQUIRE_K8S",    // Kubernetes tests fail instead of skipping
	"LLM_RUNTIME_REQUIRE_USERNS", // the userns-remap daemon's test fails instead of skipping
	"LLM_RUNTIME_K8S_BIN",        // where make k8s-binaries put the control plane
	"LLM_RUNTIME_SEARCH_TREE",    // sandbox's BenchmarkSearchTree: the tree
	"LLM_RUNTIME_SEARCH_QUERY",   // and the query
}

// knob says whether the variable name passes through.
func knob(name string) bool {
	if strings.HasPrefix(name, "LLM_RUNTIME_TEST_") {
		return true
	}
	for _, k := range Knobs {
		if name == k {
			return true
		}
	}
	return false
}

// Dir is the process's own directory, under which TMPDIR and the XDG
// directories are; "" before Main.
var Dir string

// Main runs the tests of m in a private environment and removes it after,
// with every cleanup given, in order, between the two. It returns the
// exit code: the tests', or 1 when something could not be removed.
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
func Main(m *testing.M, cleanups ...func() error) int {
	if err := Isolate(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	code := m.Run()
	for _, c := range cleanups {
		if err := c(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: cleanup:", err)
			code = max(code, 1)
		}
	}
	if err := Remove(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		code = max(code, 1)
	}
	return code
}

// Isolate makes the process's own directories and points the environment
// at them. It is Main's first half, for a TestMain that needs the two
// apart.
func Isolate() error {
	if Dir != "" {
		return nil
	}
	// Go's caches and the control plane's binaries stay the user's: they
	// are found through the variables about to move.
	if os.Getenv("GOCACHE") == "" {
		if d, err := os.UserCacheDir(); err == nil {
			os.Setenv("GOCACHE", filepath.Join(d, "go-build"))
		}
	}
	if os.Getenv("GOENV") == "" {
		if d, err := os.UserConfigDir(); err == nil {
			os.Setenv("GOENV", filepath.Join(d, "go", "env"))
		}
	}
	if os.Getenv("LLM_RUNTIME_K8S_BIN") == "" {
		if d, err := os.UserCacheDir(); err == nil {
			os.Setenv("LLM_RUNTIME_K8S_BIN", filepath.Join(d, "llm-runtime", "k8s-bin"))
		}
	}
	// A short name: unix socket paths under it are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "lrt-")
	if err != nil {
		return err
	}
	dir, err = filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	// Like /tmp, the temporary directory is one that other users can
	// reach (tests run helpers as uid 65534); the others are private.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "LLM_RUNTIME_") && !knob(name) {
			os.Unsetenv(name)
		}
	}
	for name, sub := range map[string]string{"TMPDIR": "tmp", "XDG_CACHE_HOME": "cache", "XDG_CONFIG_HOME": "config",
		"XDG_STATE_HOME": "state", "XDG_RUNTIME_DIR": "run", "XDG_DATA_HOME": "data"} {
		d := filepath.Join(dir, sub)
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
		if sub == "tmp" {
			if err := os.Chmod(d, 0o1777); err != nil {
				return err
			}
		}
		os.Setenv(name, d)
	}
	Dir = dir
	return nil
}

// Remove removes the process's directories; what could not be removed
// (a file a container made as another user, say) is an error that names
// it.
func Remove() error {
	if Dir == "" {
		return nil
	}
	err := os.RemoveAll(Dir)
	if err != nil {
		// Directories a test made read-only: open them and try again.
		filepath.WalkDir(Dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
		err = os.RemoveAll(Dir)
	}
	if err != nil {
		return fmt.Errorf("the test process's directory %s could not be removed: %v", Dir, err)
	}
	Dir = ""
	return nil
}

// ShortDir returns a new directory with a short path, removed when t
// ends, for unix sockets: their paths are limited to 107 bytes, and
// t.TempDir's, which hold the test's name, can be too long for a socket a
// few levels below. It is under the process's own directory when there is
// one.
func ShortDir(t testing.TB) string {
	t.Helper()
	base := Dir
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
