package runner_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/llm-runtime/llm-runtime/internal/pairbench"
	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// paired times an operation on two local sandboxes, one without a
// journal and one journaling each operation (pairbench), one after the
// other in each iteration. op is called with the iteration's number.
func paired(b *testing.B, seed func(dir string), op func(ctx context.Context, sb *sandbox.Local, i int) error) {
	var sbs [2]*sandbox.Local
	for k := range sbs {
		dir := b.TempDir()
		seed(dir)
		sb, err := sandbox.NewLocal(dir, sandbox.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		defer sb.Close()
		sbs[k] = sb
	}
	p := pairbench.New(b)
	for i := 0; b.Loop(); i++ {
		for k, sb := range sbs {
			p.Time(k == 1, context.Background(), func(ctx context.Context) error { return op(ctx, sb, i) })
		}
	}
	p.Report()
}

// BenchmarkWrite4KiB is a local sandbox's <write> of a 4 KiB file over
// the one it wrote last (the file and its directory fsynced), without and
// with its record (the content before read through the walk's
// descriptor, both contents inline in the intent, the log's fsync,
// while the new content is written beside the file): see paired.
func BenchmarkWrite4KiB(b *testing.B) {
	content := make([]byte, 4096)
	for i := range content {
		content[i] = "func main() {\n\treturn\n}\n"[i%24]
	}
	paired(b, func(string) {}, func(ctx context.Context, sb *sandbox.Local, i int) error {
		binary.LittleEndian.PutUint64(content, uint64(i)) // new content each time
		_, err := sb.Write(ctx, "src/main.go", content)
		return err
	})
}

// BenchmarkEdit3Blocks100KiB is a local sandbox's <edit> of a 100 KiB Go
// file with 3 blocks, without and with its record (see paired): each edit
// leaves a content never seen before, as a model's do.
func BenchmarkEdit3Blocks100KiB(b *testing.B) {
	paired(b, seedBig, edit3Blocks)
}

// BenchmarkEdit3Blocks100KiBBackToBack is BenchmarkEdit3Blocks100KiB's
// journaled edits alone, one right after the other: each waits for what
// the journal's tail (see journal.Flush) has left to do of the one
// before, which an edit with a model's reply between does not.
func BenchmarkEdit3Blocks100KiBBackToBack(b *testing.B) {
	dir := b.TempDir()
	seedBig(dir)
	sb, err := sandbox.NewLocal(dir, sandbox.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	p := pairbench.New(b)
	for i := 0; b.Loop(); i++ {
		p.Time(true, context.Background(), func(ctx context.Context) error { return edit3Blocks(ctx, sb, i) })
	}
	p.Report()
}

// seedBig writes big.go, 100 KiB of Go, in dir.
func seedBig(dir string) {
	var src strings.Builder
	for i := 0; src.Len() < 100<<10-100; i++ {
		if i%600 == 10 {
			fmt.Fprintf(&src, "// rev %c 0\n", 'a'+i/600)
		}
		fmt.Fprintf(&src, "func f%d(x int) int {\n\treturn x + %d\n}\n\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.go"), []byte(src.String()), 0o644); err != nil {
		panic(err)
	}
}

// edit3Blocks is the i-th edit of big.go: three blocks, which leave a
// content never seen before.
func edit3Blocks(ctx context.Context, sb *sandbox.Local, i int) error {
	var body strings.Builder
	for _, c := range "abc" {
		fmt.Fprintf(&body, "<<<<<<< SEARCH\n// rev %c %d\n=======\n// rev %c %d\n>>>>>>> REPLACE\n", c, i, c, i+1)
	}
	_, err := sb.Edit(ctx, "big.go", []byte(body.String()))
	return err
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
	sb, j := localJournaled(b, dir)
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

// sourceRepo copies up to n source files of the Go installation (real
// code, which compresses as a user's does) into a new directory, and
// returns it and the files' names.
func sourceRepo(tb testing.TB, n int) (string, []string) {
	goroot := runtime.GOROOT()
	dir := tb.TempDir()
	var names []string
	for _, top := range []string{"src", "test"} {
		filepath.WalkDir(filepath.Join(goroot, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil || len(names) >= n {
				return fs.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil || len(b) > 64<<10 {
				return nil
			}
			rel, _ := filepath.Rel(goroot, p)
			os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755)
			if os.WriteFile(filepath.Join(dir, rel), b, 0o644) == nil {
				names = append(names, filepath.ToSlash(rel))
			}
			return nil
		})
	}
	if len(names) < n {
		tb.Skipf("the Go installation has %d source files under 64 KiB, not %d", len(names), n)
	}
	return dir, names
}

// journalSession plays a session of replies on a repository of files
// source files, each reply its own checkpoint: two files edited (a line
// changed in the middle), and every tenth reply a new file written and a
// scratch file deleted. It returns the bytes the changes wrote (the new
// content of each file changed), the size of the journal's files, and
// the disk they take (whole blocks).
func journalSession(tb testing.TB, files, replies int) (changed, stored, blocks int64) {
	dir, names := sourceRepo(tb, files)
	sb, err := sandbox.NewLocal(dir, sandbox.Limits{})
	if err != nil {
		tb.Fatal(err)
	}
	defer sb.Close()
	jdir := filepath.Join(tb.TempDir(), "journal")
	j, err := journal.Open(jdir)
	if err != nil {
		tb.Fatal(err)
	}
	defer j.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for r := range replies {
		cp, err := j.Begin(journal.Meta{FrontEnd: "filter"})
		if err != nil {
			tb.Fatal(err)
		}
		ctx := sandbox.WithOptions(context.Background(), sandbox.Options{Recorder: runner.JournalRecorder{Checkpoint: cp}})
		write := func(name string, content []byte) {
			if _, err := sb.Write(ctx, name, content); err != nil {
				tb.Fatal(err)
			}
			changed += int64(len(content))
		}
		for range 2 {
			name := names[rng.IntN(len(names))]
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				tb.Fatal(err)
			}
			lines := strings.SplitAfter(string(b), "\n")
			i := len(lines) / 2
			lines[i] = fmt.Sprintf("\t// reply %d changed this line\n", r)
			write(name, []byte(strings.Join(lines, "")))
		}
		if r%10 == 0 {
			src, _ := os.ReadFile(filepath.Join(dir, names[rng.IntN(len(names))]))
			write(fmt.Sprintf("scratch/new%d.go", r), src)
			if r > 0 {
				if _, err := sb.Delete(ctx, fmt.Sprintf("scratch/new%d.go", r-10)); err != nil {
					tb.Fatal(err)
				}
			}
		}
		if err := cp.End(); err != nil {
			tb.Fatal(err)
		}
	}
	j.Close()
	filepath.WalkDir(jdir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				stored += fi.Size()
				blocks += fi.Sys().(*syscall.Stat_t).Blocks * 512
			}
		}
		return nil
	})
	return changed, stored, blocks
}

// BenchmarkJournalOfASession: the journal of a 1,000-reply session on a
// repository of 10,000 files, against the bytes its changes wrote.
func BenchmarkJournalOfASession(b *testing.B) {
	for b.Loop() {
		changed, stored, blocks := journalSession(b, 10000, 1000)
		b.ReportMetric(float64(changed)/1e6, "MB-changed")
		b.ReportMetric(float64(stored)/1e6, "MB-journal")
		b.ReportMetric(float64(stored)/float64(changed), "journal/changed")
		b.ReportMetric(float64(blocks)/float64(changed), "disk/changed")
	}
}
