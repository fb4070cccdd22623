// Package wasmtest builds Go guests for tests, with the standard
// toolchain, caching the result by the hash of their sources.
package wasmtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

var mu sync.Mutex

// moduleRoot is the repository root, found from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Build builds the guest package at dir (relative to the repository root,
// like "guests/redact") with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
//
// and returns the .wasm file. The result is cached in the cache directory
// (the test process's own: internal/testenv) by the hash of the guest's
// and the guest SDK's sources.
func Build(t testing.TB, dir string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	root := moduleRoot()
	h := sha256.New()
	for _, d := range []string{dir, "guests/guest", "guests/policy", "guests/transform", "go.mod"} {
		hashTree(h, filepath.Join(root, d))
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "llm-runtime-test-guests", hex.EncodeToString(h.Sum(nil)[:8]), filepath.Base(dir)+".wasm")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	os.MkdirAll(filepath.Dir(out), 0o755)
	// A temporary file of this process's own: test binaries of several
	// packages build the same guests at once (go test runs packages in
	// parallel), and one must not rename or overwrite another's half
	// written file. The rename is atomic; the last one wins, with the
	// same content.
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-ldflags=-s", "-o", tmp, "./"+dir)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building guest %s: %v\n%s", dir, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func hashTree(h interface{ Write([]byte) (int, error) }, path string) {
	var files []string
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".mod")) {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
}
