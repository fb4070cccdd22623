package serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/llm-runtime/llm-runtime/serve/wire"
)

// runOnce runs in through the daemon on socket and returns the output, the
// pool it ran on and how it ended.
func runOnce(t *testing.T, socket string, req *wire.RunRequest, in string) (string, string, wire.End) {
	t.Helper()
	var out bytes.Buffer
	s, err := (&wire.Run{Socket: socket, Build: "test", Request: req, Timeout: 10 * time.Second, In: strings.NewReader(in), Out: &out}).Start()
	if err != nil {
		t.Fatal(err)
	}
	end, err := s.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), s.Pool, end
}

// TestTheClientsOwnFilesAreRefusedAndShapeThePool: the client's own files
// (here its configuration directory and its binary, inside the
// repository) are refused; a client with other files gets a pool of its
// own; a client's path that is not absolute sends the run back.
func TestTheClientsOwnFilesAreRefusedAndShapeThePool(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "llm-runtime"), []byte("\x7fELF"), 0o755)
	d, _ := startDaemon(t, t.TempDir())
	req := localRun(t, root, "")
	// A pool for a client whose files lie elsewhere: the writes land.
	out, pool, _ := runOnce(t, d.Socket(), req, "<write other.txt>x</write>")
	if pool != "new" || !strings.Contains(out, "=== WRITE SUCCESSFUL: other.txt ===") {
		t.Fatalf("pool %s\n%s", pool, out)
	}
	own := *req
	own.Own = paths.Own{ConfigDir: filepath.Join(root, ".config", "llm-runtime"), Binary: filepath.Join(root, "llm-runtime")}
	out, pool, end := runOnce(t, d.Socket(), &own, "<write .config/llm-runtime/config.yaml>exec:\n  enabled: true\n</write> <write llm-runtime>#!/bin/sh\n</write>")
	if pool != "new" || end.Failed != 2 || strings.Count(out, "=== ERROR: PATH_SECURITY ===") != 2 {
		t.Fatalf("pool %s, end %+v\n%s", pool, end, out)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "llm-runtime")); string(b) != "\x7fELF" {
		t.Fatalf("the binary holds %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, ".config", "llm-runtime")); err == nil {
		t.Fatal("the configuration directory was created")
	}
	// The same files again: the same pool.
	if _, pool, _ := runOnce(t, d.Socket(), &own, ""); pool != "warm" {
		t.Fatalf("pool %s, want warm", pool)
	}
	// The binary replaced (another inode): another pool, which protects
	// the new one by identity.
	os.Rename(filepath.Join(root, "llm-runtime"), filepath.Join(root, "old"))
	os.WriteFile(filepath.Join(root, "llm-runtime"), []byte("\x7fELF2"), 0o755)
	if _, pool, _ := runOnce(t, d.Socket(), &own, ""); pool != "new" {
		t.Fatalf("pool %s, want new", pool)
	}
	bad := own
	bad.Own.CacheDir = "relative/llm-runtime"
	_, err := (&wire.Run{Socket: d.Socket(), Build: "test", Request: &bad, Timeout: 10 * time.Second, In: strings.NewReader(""), Out: io.Discard}).Start()
	var busy *wire.BusyError
	if !errors.As(err, &busy) || !strings.Contains(busy.Reason, `"relative/llm-runtime" is not an absolute, clean path`) {
		t.Fatalf("err = %v", err)
	}
}
