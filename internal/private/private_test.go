package private_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/internal/private"
	"github.com/llm-runtime/llm-runtime/internal/testenv"
)

// The tests run in directories of their own, never the user's.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestRuntimeDir(t *testing.T) {
	t.Parallel()
	tmp, home := t.TempDir(), t.TempDir()
	usual := filepath.Join(tmp, fmt.Sprintf("llm-runtime-%d", os.Getuid()))
	env := map[string]string{"TMPDIR": tmp, "HOME": home}
	getenv := func(k string) string { return env[k] }
	check := func(what, want, why string) {
		t.Helper()
		if got := private.RuntimeDir(getenv); got != want {
			t.Errorf("%s: RuntimeDir = %s, want %s", what, got, want)
		}
		if got := private.Squatted(getenv); !strings.Contains(got, why) || (why == "") != (got == "") {
			t.Errorf("%s: Squatted = %q, want it to say %q", what, got, why)
		}
	}
	check("nothing there yet", usual, "")
	if err := private.Dir(usual, true); err != nil {
		t.Fatal(err)
	}
	check("the user's own", usual, "")
	os.Remove(usual)
	if err := os.Symlink(t.TempDir(), usual); err != nil {
		t.Fatal(err)
	}
	fallback := filepath.Join(home, ".local", "state", "llm-runtime", "run")
	check("a link", fallback, "is not a directory: using "+fallback+" instead")
	env["XDG_STATE_HOME"] = filepath.Join(home, "st")
	check("XDG_STATE_HOME", filepath.Join(home, "st", "llm-runtime", "run"), "is not a directory")
	if err := private.Dir(private.RuntimeDir(getenv), true); err != nil {
		t.Fatalf("the fallback (parents missing) cannot be made: %v", err)
	}
	env["XDG_RUNTIME_DIR"] = "/run/user/1"
	check("XDG_RUNTIME_DIR", "/run/user/1/llm-runtime", "")
	if os.Getuid() == 0 {
		delete(env, "XDG_RUNTIME_DIR")
		os.Remove(usual)
		os.Mkdir(usual, 0o700)
		os.Chown(usual, 65534, 65534)
		check("another uid's", filepath.Join(home, "st", "llm-runtime", "run"), "belongs to uid 65534")
	}
}

func TestStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/state")
	if d, err := private.StateDir("journal"); err != nil || d != "/state/llm-runtime/journal" {
		t.Errorf("with XDG_STATE_HOME: %q, %v", d, err)
	}
	for _, state := range []string{"", "relative/state"} {
		t.Setenv("XDG_STATE_HOME", state)
		t.Setenv("HOME", "/home/u")
		if d, err := private.StateDir("audit"); err != nil || d != "/home/u/.local/state/llm-runtime/audit" {
			t.Errorf("with XDG_STATE_HOME %q: %q, %v", state, d, err)
		}
	}
}
