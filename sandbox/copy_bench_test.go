package sandbox_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/llm-runtime/llm-runtime/sandbox"
	"golang.org/x/sys/unix"
)

func BenchmarkUnpack1800(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		ws, err := sandbox.OpenWorkspace(dir, sandbox.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		var put []sandbox.CopyEntry
		var body []byte
		for d := range 85 {
			put = append(put, sandbox.CopyEntry{Path: fmt.Sprintf("d%02d", d), Mode: unix.S_IFDIR | 0o755})
			for f := range 20 {
				put = append(put, sandbox.CopyEntry{Path: fmt.Sprintf("d%02d/f%02d.go", d, f), Mode: unix.S_IFREG | 0o644, Size: 14000, Mtime: 1e18})
				body = append(body, make([]byte, 14000)...)
			}
		}
		b.StartTimer()
		if _, err := ws.Unpack(nil, put, body); err != nil {
			b.Fatal(err)
		}
		ws.Close()
	}
}

// BenchmarkManifest10k lists a replica of 10,000 files in 500 directories
// and encodes the list as the agent sends it: what copy mode's exec costs
// after each command, to find what the command changed.
func BenchmarkManifest10k(b *testing.B) {
	dir := b.TempDir()
	for d := range 500 {
		os.MkdirAll(filepath.Join(dir, fmt.Sprintf("pkg%03d/sub", d)), 0o755)
		for i := range 20 {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("pkg%03d/sub/f%02d.go", d, i)), []byte("x"), 0o644)
		}
	}
	ws, err := sandbox.OpenWorkspace(dir, sandbox.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	for b.Loop() {
		m, err := ws.Manifest()
		if err != nil || len(m) != 11000 {
			b.Fatal(len(m), err)
		}
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}
