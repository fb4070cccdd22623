package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/internal/testenv"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestTheClientsOwnFilesAreProtectedWithTheDaemonsOwn: a daemon's session
// protects the union of its client's files and its own, by path inside the
// repository and by identity, the client's first.
func TestTheClientsOwnFilesAreProtectedWithTheDaemonsOwn(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, d := range []string{"client/config/llm-runtime", "client/cache/llm-runtime/wazero", "daemon/config/llm-runtime", "bin"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "bin/llm-runtime"), []byte("\x7fELF"), 0o755)
	client := Own{ConfigDir: filepath.Join(root, "client/config/llm-runtime"), CacheDir: filepath.Join(root, "client/cache/llm-runtime"),
		GuestCache: filepath.Join(root, "client/cache/llm-runtime/wazero"), AgentSum: filepath.Join(root, "client/cache/llm-runtime/agent-sum"),
		Binary: filepath.Join(root, "bin/llm-runtime")}
	daemon := Own{ConfigDir: filepath.Join(root, "daemon/config/llm-runtime"), Binary: filepath.Join(root, "bin/llm-runtime")}
	paths, ids, inside := protection(root, "", config.Default(), []Own{client, daemon})
	want := []string{"client/config/llm-runtime", "daemon/config/llm-runtime", "client/cache/llm-runtime", "client/cache/llm-runtime/wazero",
		"client/cache/llm-runtime/agent-sum", "bin/llm-runtime"}
	if !slices.Equal(paths, want) {
		t.Fatalf("protected by path %q, want %q", paths, want)
	}
	if len(inside) != len(want) {
		t.Fatalf("inside: %v", inside)
	}
	// By identity: every one that exists (the sum does not), the binary
	// once, as both name it.
	if len(ids) != 5 {
		t.Fatalf("protected by identity: %+v", ids)
	}
	bin, _ := sandbox.IDOf(client.Binary)
	if !slices.ContainsFunc(ids, func(id sandbox.FileID) bool {
		return id.Dev == bin.Dev && id.Ino == bin.Ino && id.What == "the llm-runtime binary in use"
	}) {
		t.Fatalf("the binary is not protected by identity: %+v", ids)
	}
	// Alone, the daemon protects its own only: the client's config
	// directory is then the model's to write.
	paths, _, _ = protection(root, "", config.Default(), []Own{daemon})
	if slices.Contains(paths, "client/config/llm-runtime") {
		t.Fatalf("%q", paths)
	}
}

func TestOwnFilesAreRealPaths(t *testing.T) {
	t.Parallel()
	o := OwnFiles()
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	for _, p := range o.Paths() {
		if p == "" || RealPath(p) != p {
			t.Fatalf("%q is not a real path: %+v", p, o)
		}
	}
	if !strings.HasSuffix(o.GuestCache, "/llm-runtime/wazero") || !strings.HasSuffix(o.AgentSum, "/llm-runtime/agent-sum") {
		t.Fatalf("%+v", o)
	}
	for _, bad := range []Own{{ConfigDir: "relative/llm-runtime"}, {Binary: "/a/../b"}, {CacheDir: "/a/"}} {
		if bad.Check() == nil {
			t.Errorf("%+v passes the check", bad)
		}
	}
}
