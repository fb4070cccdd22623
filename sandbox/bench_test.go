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
