package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func benchWorkspace(b *testing.B) *Workspace {
	dir := b.TempDir()
	deep := filepath.Join(dir, "a/b/c/d/e/f/g")
	os.MkdirAll(deep, 0o755)
	os.WriteFile(filepath.Join(deep, "4k.txt"), bytes.Repeat([]byte("x"), 4096), 0o644)
	for i := range 200 {
		p := filepath.Join(dir, fmt.Sprintf("pkg%d/file%d.go", i%20, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, bytes.Repeat([]byte("func f() { return } // some code here\n"), 100), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "4k.txt"), bytes.Repeat([]byte("x"), 4096), 0o644)
	ws, err := OpenWorkspace(dir, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.Close() })
	return ws
}

func BenchmarkOpen4KiB(b *testing.B) {
	ws := benchWorkspace(b)
	for b.Loop() {
		if _, err := ws.Open("4k.txt"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrite4KiB(b *testing.B) {
	ws := benchWorkspace(b)
	content := bytes.Repeat([]byte("y"), 4096)
	for b.Loop() {
		if _, err := ws.Write("out/w.txt", content); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSearch scans 200 files of 100 lines (780 KB).
func BenchmarkSearch(b *testing.B) {
	ws := benchWorkspace(b)
	for b.Loop() {
		if _, err := ws.Search(context.Background(), "return"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenDeep8 opens a 4 KiB file 8 components deep: one openat and
// one fstat per directory on the way.
func BenchmarkOpenDeep8(b *testing.B) {
	ws := benchWorkspace(b)
	p := "a/b/c/d/e/f/g/4k.txt"
	for b.Loop() {
		if _, err := ws.Open(p); err != nil {
			b.Fatal(err)
		}
	}
}
