package sandbox_test

// Changesets (issue 25 §2): complete, bounded and cancellable.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// TestMirrorFindsWhatAHardLinkChanged: a file of the copy written through
// a second name, which is then removed, has changed, and Finish says so;
// watched or not.
func TestMirrorFindsWhatAHardLinkChanged(t *testing.T) {
	t.Parallel()
	for _, watched := range []bool{true, false} {
		f := newMirrorOf(t, map[string]string{"a/f": "original\n", "b/keep": "k\n", "c/d/e": "e\n"}, watched)
		tr := func(p string) string { return filepath.Join(f.tree, p) }
		// A first command leaves a link between two files of the copy
		// (it lands as a file of its own); a second writes one through
		// the other.
		if err := os.Link(tr("c/d/e"), tr("b/e2")); err != nil {
			t.Fatal(err)
		}
		if cs, err := f.m.Finish(t.Context(), true); err != nil || changesOf(cs) != "created b/e2\n" {
			t.Fatalf("%v\n%s", err, changesOf(cs))
		}
		if err := os.Link(tr("a/f"), tr("b/g")); err != nil {
			t.Fatal(err)
		}
		writeInPlace(t, tr("b/g"), "POISON\n")
		os.Remove(tr("b/g"))
		writeInPlace(t, tr("b/e2"), "through the link\n")
		cs, err := f.m.Finish(t.Context(), false)
		if err != nil {
			t.Fatal(err)
		}
		if got := changesOf(cs); got != "discarded a/f\ndiscarded b/e2\ndiscarded c/d/e\n" {
			t.Errorf("watched %v: changes\n%s", watched, got)
		}
		if _, err := f.m.Sync(); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]string{"a/f": "original\n", "c/d/e": "e\n", "b/e2": "e\n"} {
			if b, _ := os.ReadFile(tr(p)); string(b) != want {
				t.Errorf("watched %v: the copy's %s = %q after the next Sync", watched, p, b)
			}
		}
	}
}

// writeInPlace writes content over the file p, in place (its inode).
func writeInPlace(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newMirrorOf is newMirror, watched or not, for tests that run in
// parallel.
func newMirrorOf(t *testing.T, files map[string]string, watched bool) *mirrorFixture {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		write(t, filepath.Join(root, p), c)
	}
	ws, err := sandbox.OpenWorkspace(root, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := sandbox.OpenMirror(ws, filepath.Join(t.TempDir(), "mirror"), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !watched {
		sandbox.Unwatched(m)
	}
	t.Cleanup(func() { m.Close(); ws.Close() })
	if _, err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	return &mirrorFixture{root: root, tree: m.Tree(), ws: ws, m: m}
}

// TestMirrorSeesAFileOfTheRepositoryChangedThroughAnotherName: a file of
// the repository with a second name outside it is written through that
// name: no event in the repository says so, and the next Sync copies it
// all the same.
func TestMirrorSeesAFileOfTheRepositoryChangedThroughAnotherName(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write(t, filepath.Join(root, "a/f"), "original\n")
	outside := filepath.Join(t.TempDir(), "other-name")
	if err := os.Link(filepath.Join(root, "a/f"), outside); err != nil {
		t.Skipf("no hard link across these directories: %v", err)
	}
	ws, err := sandbox.OpenWorkspace(root, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	m, err := sandbox.OpenMirror(ws, filepath.Join(t.TempDir(), "mirror"), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Sync(); err != nil { // whole: it sees the file has two names
		t.Fatal(err)
	}
	writeInPlace(t, outside, "changed elsewhere\n")
	if _, err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(m.Tree(), "a/f")); string(b) != "changed elsewhere\n" {
		t.Errorf("the copy's a/f = %q", b)
	}
}

// TestMirrorReplacesADirectoryWithAFile, both ways: a directory of the
// repository replaced by a file leaves nothing of it in the record (no
// phantom change after), and one replaced by a command is applied whole.
func TestMirrorReplacesADirectoryWithAFile(t *testing.T) {
	t.Parallel()
	for _, watched := range []bool{true, false} {
		f := newMirrorOf(t, map[string]string{"todir/f": "f\n", "todir/sub/g": "g\n", "other": "o\n"}, watched)
		os.RemoveAll(filepath.Join(f.root, "todir"))
		write(t, filepath.Join(f.root, "todir"), "a file now\n")
		if _, err := f.m.Sync(); err != nil {
			t.Fatal(err)
		}
		if cs, err := f.m.Finish(t.Context(), true); err != nil || len(cs) != 0 {
			t.Errorf("watched %v: nothing was done, and Finish says %v\n%s", watched, err, changesOf(cs))
		}
		// The command turns it back into a directory, and another into a file.
		tr := func(p string) string { return filepath.Join(f.tree, p) }
		os.Remove(tr("todir"))
		write(t, tr("todir/new"), "n\n")
		os.Remove(tr("other"))
		write(t, tr("other/x"), "x\n")
		cs, err := f.m.Finish(t.Context(), true)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := changesOf(cs), "deleted other\ncreated other/\ncreated other/x\ndeleted todir\ncreated todir/\ncreated todir/new\n"; got != want {
			t.Errorf("watched %v: changes\n%swant\n%s", watched, got, want)
		}
		os.RemoveAll(tr("todir"))
		write(t, tr("todir"), "file again\n")
		cs, err = f.m.Finish(t.Context(), true)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := changesOf(cs), "created todir\ndeleted todir/\ndeleted todir/new\n"; got != want {
			t.Errorf("watched %v: changes\n%swant\n%s", watched, got, want)
		}
		if b, _ := os.ReadFile(filepath.Join(f.root, "todir")); string(b) != "file again\n" {
			t.Errorf("todir = %q", b)
		}
	}
}

// chain makes a chain of depth directories named d under dir, with a
// file at its end, as a command does with renames (each level made at the
// top, the chain moved into it).
func chain(t *testing.T, dir string, depth int) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "d", "end"), "end\n")
	for range depth - 1 {
		if err := os.Rename(filepath.Join(dir, "d"), filepath.Join(dir, "x")); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(filepath.Join(dir, "d"), 0o755)
		if err := os.Rename(filepath.Join(dir, "x"), filepath.Join(dir, "d", "d")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMirrorBoundsAChangesetsDepth: a chain deeper than MaxDepth is
// applied as none, with the reason; the copy is put back. Under the bound,
// a 1,000-deep chain lands.
func TestMirrorBoundsAChangesetsDepth(t *testing.T) {
	t.Parallel()
	f := newMirrorOf(t, map[string]string{"keep.go": "k\n"}, true)
	write(t, filepath.Join(f.tree, "new.go"), "beside it\n")
	chain(t, f.tree, 100)
	cs, err := f.m.Finish(t.Context(), true)
	var se *sandbox.Error
	if !errors.As(err, &se) || se.Code != sandbox.CodeResourceLimit || !strings.Contains(se.Message, "more than exec.max_depth (64)") {
		t.Fatalf("a 100-deep chain: %v", err)
	}
	if got := changesOf(cs); got != "refused d: the command made a path 65 levels deep, more than exec.max_depth (64)\nrefused new.go: the command made a path 65 levels deep, more than exec.max_depth (64)\n" {
		t.Errorf("changes:\n%s", got)
	}
	if exists(filepath.Join(f.root, "d")) || exists(filepath.Join(f.root, "new.go")) || exists(filepath.Join(f.tree, "d")) {
		t.Error("the chain is in the repository, or still in the copy")
	}
	f.m.SetBounds(sandbox.Bounds{MaxDepth: 1001}) // the chain's end is 1,001 components deep
	chain(t, f.tree, 1000)
	start := time.Now()
	cs, err = f.m.Finish(t.Context(), true)
	t.Logf("a 1,000-deep chain applied in %s", time.Since(start))
	if err != nil || len(cs) != 1001 {
		t.Fatalf("%v: %d changes", err, len(cs))
	}
	end := filepath.Join(f.root, strings.Repeat("d/", 1000)+"end")
	if b, err := os.ReadFile(end); err != nil || string(b) != "end\n" {
		t.Errorf("the chain's end: %q %v", b, err)
	}
	if cs, err := f.m.Finish(t.Context(), true); err != nil || len(cs) != 0 {
		t.Errorf("a second Finish: %v %s", err, changesOf(cs))
	}
}

// TestMirrorBoundsAChangesetsSize: more changes than MaxChanges are
// applied as none; discarded, they are taken out all the same.
func TestMirrorBoundsAChangesetsSize(t *testing.T) {
	t.Parallel()
	f := newMirrorOf(t, map[string]string{"keep.go": "k\n"}, true)
	f.m.SetBounds(sandbox.Bounds{MaxChanges: 50})
	for _, apply := range []bool{true, false} {
		for i := range 60 {
			write(t, filepath.Join(f.tree, "gen", strings.Repeat("x", i+1)), "x\n")
		}
		write(t, filepath.Join(f.tree, "keep.go"), "changed\n")
		cs, err := f.m.Finish(t.Context(), apply)
		var se *sandbox.Error
		if apply && (!errors.As(err, &se) || se.Code != sandbox.CodeResourceLimit || !strings.Contains(se.Message, "more than 50 files and directories (exec.max_changes)")) {
			t.Fatalf("over the bound: %v", err)
		}
		if !apply && err != nil {
			t.Fatal(err)
		}
		// Discarded, what a directory holds goes with it: not past the bound.
		want := "discarded gen\ndiscarded keep.go\n"
		if apply {
			want = "refused gen: the command changed more than 50 files and directories (exec.max_changes)\nrefused keep.go: the command changed more than 50 files and directories (exec.max_changes)\n"
		}
		if got := changesOf(cs); got != want {
			t.Errorf("apply %v: changes:\n%s", apply, got)
		}
		if exists(filepath.Join(f.root, "gen")) || exists(filepath.Join(f.tree, "gen")) {
			t.Error("gen is in the repository, or still in the copy")
		}
		if _, err := f.m.Sync(); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(f.tree, "keep.go")); string(b) != "k\n" {
			t.Errorf("the copy's keep.go = %q", b)
		}
	}
	// Past the bound even in the directories the repository has: the copy
	// is made again from the repository.
	for i := range 60 {
		write(t, filepath.Join(f.tree, strings.Repeat("y", i+1)), "y\n")
	}
	cs, _ := f.m.Finish(t.Context(), true)
	if got := changesOf(cs); !strings.HasPrefix(got, "refused .: the command changed more than 50") {
		t.Errorf("changes:\n%s", got)
	}
	if _, err := f.m.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, f.tree), tree(t, f.root); !slices.Equal(got, want) {
		t.Errorf("the copy is\n%s\nthe repository\n%s", got, want)
	}
}

// cancelAfter is a context that is cancelled once Err has been asked n
// times: Finish asks before each change, so it is cancelled at the n-th.
type cancelAfter struct {
	context.Context
	n atomic.Int64
}

func (c *cancelAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// TestMirrorACancelledFinishAppliesNothing: cancelled at any change of a
// changeset (a new tree of 200 files, an update, a deletion), Finish
// applies none of it, leaves nothing of its own in the repository, and
// discards every change; the copy is put back.
func TestMirrorACancelledFinishAppliesNothing(t *testing.T) {
	t.Parallel()
	for _, at := range []int64{0, 1, 50, 150, 203} {
		f := newMirrorOf(t, map[string]string{"a.go": "a\n", "gone.go": "g\n", "z/keep": "k\n"}, true)
		before := tree(t, f.root)
		for i := range 200 {
			write(t, filepath.Join(f.tree, "gen", strings.Repeat("f", i%20+1), "n"+strings.Repeat("x", i/20)), "new\n")
		}
		write(t, filepath.Join(f.tree, "a.go"), "changed\n")
		os.Remove(filepath.Join(f.tree, "gone.go"))
		ctx := &cancelAfter{Context: t.Context()}
		ctx.n.Store(at)
		cs, err := f.m.Finish(ctx, true)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled at %d: %v\n%s", at, err, changesOf(cs))
		}
		for _, c := range cs {
			if c.Action != sandbox.ChangeDiscarded {
				t.Errorf("cancelled at %d: %+v", at, c)
			}
		}
		if got := tree(t, f.root); !slices.Equal(got, before) {
			t.Errorf("cancelled at %d, the repository is\n%s\nwas\n%s", at, strings.Join(got, "\n"), strings.Join(before, "\n"))
		}
		if _, err := f.m.Sync(); err != nil {
			t.Fatal(err)
		}
		if got, want := tree(t, f.tree), tree(t, f.root); !slices.Equal(got, want) {
			t.Errorf("cancelled at %d, the copy is\n%s\nthe repository\n%s", at, got, want)
		}
	}
}

// TestMirrorCopiesASparseFileAsSparse: a sparse file of 1 GiB in the
// repository costs its copy what it costs the repository on disk, and the
// copy's size on disk is bounded.
func TestMirrorCopiesASparseFileAsSparse(t *testing.T) {
	t.Parallel()
	f := newMirrorOf(t, map[string]string{"a.go": "a\n"}, true)
	sf, err := os.Create(filepath.Join(f.root, "sparse.img"))
	if err != nil {
		t.Fatal(err)
	}
	sf.WriteAt([]byte("head"), 0)
	sf.WriteAt([]byte("middle"), 512<<20)
	sf.Truncate(1 << 30)
	sf.Close()
	var src syscall.Stat_t
	syscall.Stat(filepath.Join(f.root, "sparse.img"), &src)
	if src.Blocks*512 > 1<<20 {
		t.Skipf("this file system keeps no holes (%d bytes on disk)", src.Blocks*512)
	}
	if _, err := f.m.Sync(); err != nil {
		t.Fatal(err)
	}
	var dst syscall.Stat_t
	if err := syscall.Stat(filepath.Join(f.tree, "sparse.img"), &dst); err != nil {
		t.Fatal(err)
	}
	if dst.Size != 1<<30 || dst.Blocks*512 > 1<<20 {
		t.Errorf("the copy is %d bytes, %d on disk; the repository's %d on disk", dst.Size, dst.Blocks*512, src.Blocks*512)
	}
	b := make([]byte, 6)
	cf, _ := os.Open(filepath.Join(f.tree, "sparse.img"))
	cf.ReadAt(b, 512<<20)
	cf.Close()
	if string(b) != "middle" {
		t.Errorf("the copy holds %q at 512 MiB", b)
	}
	// Bounded: 3 MiB of real content, in a copy of at most 2 MiB.
	f.m.SetBounds(sandbox.Bounds{MaxSize: 2 << 20})
	write(t, filepath.Join(f.root, "big.bin"), strings.Repeat("x", 3<<20))
	_, err = f.m.Sync()
	var se *sandbox.Error
	if !errors.As(err, &se) || se.Code != sandbox.CodeResourceLimit || !strings.Contains(se.Message, "more than 2 MiB on disk (sandbox_copy_max_size)") {
		t.Fatalf("a copy past its bound: %v", err)
	}
	f.m.SetBounds(sandbox.Bounds{MaxSize: 8 << 20})
	if _, err := f.m.Sync(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(f.tree, "big.bin")); err != nil || fi.Size() != 3<<20 {
		t.Errorf("big.bin in the copy: %v %v", fi, err)
	}
}

// TestMirrorBoundsAndReleasesItsWatches: the repository's directories are
// watched up to a bound, past which every Sync is whole (and sees every
// change all the same); Rest releases the watches, and the next Sync,
// whole, watches again. The copy's directories are never watched.
func TestMirrorBoundsAndReleasesItsWatches(t *testing.T) {
	t.Parallel()
	files := map[string]string{}
	for _, d := range []string{"a", "b", "c", "d", "e"} {
		files[d+"/f"] = d + "\n"
	}
	f := newMirrorOf(t, files, true)
	if n := f.m.Watches(); n != 6 {
		t.Fatalf("%d watches for 6 directories", n)
	}
	for i := range 50 { // directories of the command's, in the copy
		os.MkdirAll(filepath.Join(f.tree, "a", strings.Repeat("x", i+1)), 0o755)
	}
	if _, err := f.m.Finish(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := f.m.Watches(); n != 6 {
		t.Errorf("%d watches after a command made 50 directories in its copy", n)
	}
	f.m.Rest()
	if n := f.m.Watches(); n != 0 {
		t.Errorf("%d watches after Rest", n)
	}
	write(t, filepath.Join(f.root, "c/f"), "changed while resting\n")
	if _, err := f.m.Sync(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(f.tree, "c/f")); string(b) != "changed while resting\n" || f.m.Watches() != 6 {
		t.Errorf("after Rest, Sync copied %q and watches %d directories", b, f.m.Watches())
	}
	// Past the bound: no watch, every Sync whole.
	sandbox.SetMaxWatches(f.m, 3)
	f.m.Rest()
	if _, err := f.m.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := f.m.Watches(); n != 0 {
		t.Errorf("%d watches past a bound of 3", n)
	}
	write(t, filepath.Join(f.root, "e/f"), "changed unwatched\n")
	if _, err := f.m.Sync(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(f.tree, "e/f")); string(b) != "changed unwatched\n" {
		t.Errorf("unwatched, Sync copied %q", b)
	}
}

// TestPrefixesHoldWhatIsUnderThem: a path is held by a set of paths when
// it is one of them or under one, whatever sorts between ("a-b" between
// "a" and "a/b").
func TestPrefixesHoldWhatIsUnderThem(t *testing.T) {
	t.Parallel()
	p := sandbox.NewPrefixes([]string{"a/b", "a", "c/d", "a-b/x", "e/f/g"})
	for rel, want := range map[string]bool{
		"a": true, "a/b": true, "a/z/y": true, "a-b": false, "a-b/x": true, "a-b/x/y": true, "a-b/y": false,
		"c": false, "c/d": true, "c/d/e": true, "c/de": false, "c/d-e": false, "e/f": false, "e/f/g/h": true, "b": false,
	} {
		if got := p.Holds(rel); got != want {
			t.Errorf("%s: %v, want %v", rel, got, want)
		}
	}
}

// TestMirrorFindsAWriteMadeAsSoonAsTheCommandStarts: a command that
// rewrites a file the Sync just copied, at once, to the same size, and
// sets its modification time back, has changed it: no command starts
// before the clock of file times has passed what Sync recorded.
func TestMirrorFindsAWriteMadeAsSoonAsTheCommandStarts(t *testing.T) {
	t.Parallel()
	f := newMirrorOf(t, map[string]string{"a": "000\n"}, true)
	for i := range 20 {
		write(t, filepath.Join(f.root, "a"), fmt.Sprintf("%03d\n", i+1))
		if _, err := f.m.Sync(); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(f.tree, "a")
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		writeInPlace(t, p, "XXX\n")
		os.Chtimes(p, fi.ModTime(), fi.ModTime())
		cs, err := f.m.Finish(t.Context(), false)
		if err != nil || changesOf(cs) != "discarded a\n" {
			t.Fatalf("round %d: %v\n%s", i, err, changesOf(cs))
		}
	}
}

// landingRecorder journals in memory, and makes the repository change
// under the changeset (intrude) when its first intent is recorded: after
// the changes were decided on and recorded, before they land.
type landingRecorder struct {
	intents  [][]sandbox.PathChange
	outcomes []string
	intrude  func()
}

func (r *landingRecorder) Intend(cs []sandbox.PathChange) (uint64, error) {
	r.intents = append(r.intents, cs)
	if len(r.intents) == 1 {
		r.intrude()
	}
	return uint64(len(r.intents)), nil
}
func (r *landingRecorder) Done(id uint64) error {
	r.outcomes = append(r.outcomes, fmt.Sprint("done ", id))
	return nil
}
func (r *landingRecorder) Abort(id uint64, why string) error {
	r.outcomes = append(r.outcomes, fmt.Sprint("abort ", id, ": ", why))
	return nil
}

// TestMirrorJournalsWhatLandedOfAChangesetThatPartlyFailed: a command
// removes a directory, rewrites a file and makes one; someone puts a file
// in the directory after the changeset was journaled and before it lands.
// The directory stays (refused), the rest lands, and the journal says so:
// the first intent, which named all of it, is aborted, and what landed is
// journaled again as done, so that an undo takes back exactly that.
func TestMirrorJournalsWhatLandedOfAChangesetThatPartlyFailed(t *testing.T) {
	t.Parallel()
	f := newMirrorOf(t, map[string]string{"a.go": "a\n", "old/x.txt": "x\n"}, true)
	write(t, filepath.Join(f.tree, "a.go"), "changed\n")
	write(t, filepath.Join(f.tree, "new.txt"), "new\n")
	os.RemoveAll(filepath.Join(f.tree, "old"))
	rec := &landingRecorder{intrude: func() { write(t, filepath.Join(f.root, "old/intruder.txt"), "mine\n") }}
	ctx := sandbox.WithOptions(t.Context(), sandbox.Options{Recorder: rec})
	cs, err := f.m.Finish(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	paths := func(cs []sandbox.PathChange) string {
		var ps []string
		for _, c := range cs {
			ps = append(ps, c.Path)
		}
		slices.Sort(ps)
		return strings.Join(ps, " ")
	}
	if len(rec.intents) != 2 || paths(rec.intents[0]) != "a.go new.txt old old/x.txt" || paths(rec.intents[1]) != "a.go new.txt old/x.txt" {
		t.Fatalf("intents: %d\n%s", len(rec.intents), func() string {
			var b strings.Builder
			for _, in := range rec.intents {
				b.WriteString(paths(in) + "\n")
			}
			return b.String()
		}())
	}
	if len(rec.outcomes) != 2 || !strings.HasPrefix(rec.outcomes[0], "abort 1: ") || rec.outcomes[1] != "done 2" {
		t.Fatalf("outcomes: %q", rec.outcomes)
	}
	if b, _ := os.ReadFile(filepath.Join(f.root, "a.go")); string(b) != "changed\n" {
		t.Errorf("a.go = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(f.root, "new.txt")); string(b) != "new\n" {
		t.Errorf("new.txt = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(f.root, "old/intruder.txt")); string(b) != "mine\n" {
		t.Errorf("old/intruder.txt = %q", b)
	}
	refused := false
	for _, c := range cs {
		refused = refused || c.Action == sandbox.ChangeRefused && strings.TrimSuffix(c.Path, "/") == "old"
	}
	if !refused {
		t.Errorf("the directory's removal is not refused:\n%s", changesOf(cs))
	}
}
