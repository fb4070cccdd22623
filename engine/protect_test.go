package engine

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/internal/paths"
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
	os.WriteFile(filepath.Join(root, "bin/llm-runtime-client"), []byte("\x7fELF\x02"), 0o755)
	client := paths.Own{ConfigDir: filepath.Join(root, "client/config/llm-runtime"), CacheDir: filepath.Join(root, "client/cache/llm-runtime"),
		GuestCache: filepath.Join(root, "client/cache/llm-runtime/wazero"), AgentSum: filepath.Join(root, "client/cache/llm-runtime/agent-sum"),
		Binary: filepath.Join(root, "bin/llm-runtime"), Client: filepath.Join(root, "bin/llm-runtime-client")}
	daemon := paths.Own{ConfigDir: filepath.Join(root, "daemon/config/llm-runtime"), Binary: filepath.Join(root, "bin/llm-runtime")}
	refused, ids, inside := protection(root, "", config.Default(), []paths.Own{client, daemon})
	want := []string{"client/config/llm-runtime", "daemon/config/llm-runtime", "client/cache/llm-runtime", "client/cache/llm-runtime/wazero",
		"client/cache/llm-runtime/agent-sum", "bin/llm-runtime", "bin/llm-runtime-client"}
	if !slices.Equal(refused, want) {
		t.Fatalf("protected by path %q, want %q", refused, want)
	}
	if len(inside) != len(want) {
		t.Fatalf("inside: %v", inside)
	}
	// By identity: every one that exists (the sum does not), the binary
	// once, as both name it, and the thin client.
	if len(ids) != 6 {
		t.Fatalf("protected by identity: %+v", ids)
	}
	bin, _ := sandbox.IDOf(client.Binary)
	if !slices.ContainsFunc(ids, func(id sandbox.FileID) bool {
		return id.Dev == bin.Dev && id.Ino == bin.Ino && id.What == "the llm-runtime binary in use"
	}) {
		t.Fatalf("the binary is not protected by identity: %+v", ids)
	}
	cl, _ := sandbox.IDOf(client.Client)
	if !slices.ContainsFunc(ids, func(id sandbox.FileID) bool {
		return id.Dev == cl.Dev && id.Ino == cl.Ino && id.What == "the llm-runtime client in use"
	}) {
		t.Fatalf("the client is not protected by identity: %+v", ids)
	}
	// Alone, the daemon protects its own only: the client's config
	// directory is then the model's to write.
	refused, _, _ = protection(root, "", config.Default(), []paths.Own{daemon})
	if slices.Contains(refused, "client/config/llm-runtime") {
		t.Fatalf("%q", refused)
	}
}
