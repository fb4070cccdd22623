package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/llm-runtime/llm-runtime/parser"
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
		if _, err := ws.Search(context.Background(), parser.Query{Text: "return"}); err != nil {
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

// BenchmarkEdit3Blocks100KiB edits a 100 KiB Go file with 3 blocks, back
// and forth, the atomic replace (and its fsyncs) included.
func BenchmarkEdit3Blocks100KiB(b *testing.B) {
	ws := benchWorkspace(b)
	var src bytes.Buffer
	for i := 0; src.Len() < 100<<10; i++ {
		fmt.Fprintf(&src, "func f%d(x int) int {\n\treturn x + %d\n}\n\n", i, i)
	}
	if _, err := ws.Write("big.go", src.Bytes()[:100<<10-100]); err != nil {
		b.Fatal(err)
	}
	blk := func(s, r string) string {
		return "<<<<<<< SEARCH\n" + s + "\n=======\n" + r + "\n>>>>>>> REPLACE\n"
	}
	there := []byte(blk("\treturn x + 10", "\treturn x - 10") + blk("\treturn x + 500", "\treturn x - 500") + blk("\treturn x + 1000", "\treturn x - 1000"))
	back := []byte(blk("\treturn x - 10", "\treturn x + 10") + blk("\treturn x - 500", "\treturn x + 500") + blk("\treturn x - 1000", "\treturn x + 1000"))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		body := there
		if i%2 == 1 {
			body = back
		}
		if _, err := ws.Edit("big.go", body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList10k lists everything under a tree of 10,000 files (500
// directories of 20): with list.max_entries at its default (1,000 listed,
// 10,750 counted), and with every entry listed.
func BenchmarkList10k(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchList(b, 0) })
	b.Run("all", func(b *testing.B) { benchList(b, 20000) })
}

func benchList(b *testing.B, max int) {
	dir := b.TempDir()
	for d := range 500 {
		for i := range 20 {
			p := filepath.Join(dir, fmt.Sprintf("pkg%03d/sub/f%02d.go", d/2, d*20+i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("package x\n"), 0o644)
		}
	}
	ws, err := OpenWorkspace(dir, Limits{MaxListEntries: max})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	for b.Loop() {
		l, err := ws.List(context.Background(), ".", true)
		if err != nil || l.Total < 10000 {
			b.Fatal(l.Total, err)
		}
	}
}

// BenchmarkSearchTree searches the tree in $LLM_RUNTIME_SEARCH_TREE (a
// generated one of 2,000 files, 25 MB, when unset) for a literal, to
// compare with `rg -n` on the same tree.
func BenchmarkSearchTree(b *testing.B) {
	dir := os.Getenv("LLM_RUNTIME_SEARCH_TREE")
	if dir == "" {
		dir = b.TempDir()
		line := []byte("\tfunc return err nil if for range value key map string int package import\n")
		for d := range 100 {
			for f := range 20 {
				var buf bytes.Buffer
				for i := 0; buf.Len() < 12500; i++ {
					buf.Write(line)
					if (d*20+f+i)%300 == 0 {
						buf.WriteString("\tneedle_here\n")
					}
				}
				p := filepath.Join(dir, fmt.Sprintf("pkg%03d/f%02d.go", d, f))
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, buf.Bytes(), 0o644)
			}
		}
	}
	ws, err := OpenWorkspace(dir, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	for b.Loop() {
		r, err := ws.Search(context.Background(), parser.Query{Text: cmpOr(os.Getenv("LLM_RUNTIME_SEARCH_QUERY"), "needle_here")})
		if err != nil || r.Total == 0 {
			b.Fatal(r, err)
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
