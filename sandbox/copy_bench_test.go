package sandbox_test

import (
	"fmt"
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
