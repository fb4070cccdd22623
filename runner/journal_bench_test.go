package runner_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// BenchmarkWrite4KiB is a local sandbox's <write> of a 4 KiB file over
// another, as today (the file and its directory fsynced); with
// journaled, the same write with its record: the content before read
// through the walk's descriptor, both contents inline in the intent, the
// log's fsync.
func BenchmarkWrite4KiB(b *testing.B) {
	for _, journaled := range []bool{false, true} {
		name := "plain"
		if journaled {
			name = "journaled"
		}
		b.Run(name, func(b *testing.B) {
			sb, err := sandbox.NewLocal(b.TempDir(), sandbox.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			defer sb.Close()
			ctx := context.Background()
			if journaled {
				j, err := journal.Open(filepath.Join(b.TempDir(), "journal"))
				if err != nil {
					b.Fatal(err)
				}
				defer j.Close()
				cp, err := j.Begin(journal.Meta{FrontEnd: "filter"})
				if err != nil {
					b.Fatal(err)
				}
				defer cp.End()
				ctx = sandbox.WithOptions(ctx, sandbox.Options{Recorder: runner.JournalRecorder{Checkpoint: cp}})
			}
			content := make([]byte, 4096)
			for i := range content {
				content[i] = "func main() {\n\treturn\n}\n"[i%24]
			}
			var n uint64
			for b.Loop() {
				n++
				binary.LittleEndian.PutUint64(content, n)
				if _, err := sb.Write(ctx, "src/main.go", content); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
