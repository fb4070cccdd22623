package container_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container"
)

// The image tag is the binary's SHA-256, remembered between runs: the
// remembered sum must follow every change of the content, even one that
// keeps the size and the modification time.
func TestImageRefFollowsTheContentThroughItsCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	bin := filepath.Join(t.TempDir(), "agent")
	want := func(content string) string {
		s := sha256.Sum256([]byte(content))
		return container.ImageName + ":" + hex.EncodeToString(s[:])[:16]
	}
	check := func(content string) {
		t.Helper()
		for range 2 { // hashed, then remembered
			ref, err := container.ImageRef(bin)
			if err != nil || ref != want(content) {
				t.Fatalf("ref %q, %v; want %q", ref, err, want(content))
			}
		}
	}
	if err := os.WriteFile(bin, []byte("first binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(bin)
	check("first binary")
	b, err := os.ReadFile(filepath.Join(cache, "llm-runtime", "agent-sum"))
	if err != nil || !strings.Contains(string(b), strings.TrimPrefix(want("first binary"), container.ImageName+":")) {
		t.Fatalf("the sum was not remembered: %q, %v", b, err)
	}

	// Same size, same modification time, other bytes, same inode.
	f, err := os.OpenFile(bin, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("other"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(bin, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	check("other binary")

	// An unusable cache directory costs only the hash.
	t.Setenv("XDG_CACHE_HOME", filepath.Join(bin, "not-a-directory"))
	check("other binary")
}

func TestPushRefNamesARegistryAndTakesTheImagesTag(t *testing.T) {
	for ref, want := range map[string]string{
		"registry.example.com/llm-runtime-io":      "registry.example.com/llm-runtime-io:abc",
		"127.0.0.1:5000/tools/llm-runtime-io":      "127.0.0.1:5000/tools/llm-runtime-io:abc",
		"localhost/llm-runtime-io:v1":              "localhost/llm-runtime-io:v1",
		"registry.example.com/x@sha256:" + sha64(): "error",
		"llm-runtime-io":                           "error",
		"library/llm-runtime-io":                   "error",
		"Registry.example.com/UPPER":               "error",
	} {
		got, err := container.PushRef("llm-runtime-io:abc", ref)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("PushRef(%q) = %q (%v), want %q", ref, got, err, want)
		}
	}
}

func sha64() string { return strings.Repeat("a", 64) }
