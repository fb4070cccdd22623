package runner_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// journaledRepo is a local sandbox on a repository of files files, and a
// journal with one checkpoint in which the first changed of them were
// rewritten.
func journaledRepo(b *testing.B, files, changed int) (*sandbox.Local, *journal.Journal, int, string) {
	dir := b.TempDir()
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("pkg%d/file%d.go", i%100, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(fmt.Sprintf("package pkg\n\n// file %d\nfunc F%d() {}\n", i, i)), 0o644)
	}
	sb, err := sandbox.NewLocal(dir, sandbox.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sb.Close() })
	j, err := journal.Open(filepath.Join(b.TempDir(), "journal"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	cp, err := j.Begin(journal.Meta{FrontEnd: "filter"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := sandbox.WithOptions(context.Background(), sandbox.Options{Recorder: runner.JournalRecorder{Checkpoint: cp}})
	for i := range changed {
		if _, err := sb.Write(ctx, fmt.Sprintf("pkg%d/file%d.go", i%100, i), []byte(fmt.Sprintf("package pkg\n\n// file %d, changed\nfunc F%d() { return }\n", i, i))); err != nil {
			b.Fatal(err)
		}
	}
	cp.End()
	return sb, j, cp.Number(), dir
}

// BenchmarkDiff100Of10000: the diff of a checkpoint that changed 100 files
// of a repository of 10,000 (the journal is read whole, and each file's
// diff made).
func BenchmarkDiff100Of10000(b *testing.B) {
	_, j, n, _ := journaledRepo(b, 10000, 100)
	for b.Loop() {
		cs, err := j.Changes(n)
		if err != nil {
			b.Fatal(err)
		}
		var out strings.Builder
		if err := runner.WriteDiff(&out, j, journal.Net(cs)); err != nil || strings.Count(out.String(), "+++ b/") != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkUndo1000: an undo of a checkpoint that rewrote 1,000 files,
// each put back through a workspace with the sandbox's rules, the undo
// itself journaled; then the undo undone, for the next round.
func BenchmarkUndo1000(b *testing.B) {
	_, j, n, dir := journaledRepo(b, 1000, 1000)
	ws, err := sandbox.OpenWorkspace(dir, sandbox.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	for b.Loop() {
		res, err := runner.Undo(j, ws, []int{n}, journal.Meta{FrontEnd: "cli"}, false)
		if err != nil || len(res.Restored) != 1000 {
			b.Fatal(err, len(res.Conflicts))
		}
		b.StopTimer()
		if _, err := runner.Undo(j, ws, []int{res.Checkpoint}, journal.Meta{FrontEnd: "cli"}, false); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
