package sandbox_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// mirrorFixture is a repository and its mirror, synced.
type mirrorFixture struct {
	root, tree string
	ws         *sandbox.Workspace
	m          *sandbox.Mirror
	state      string
}

func newMirror(t *testing.T, files map[string]string) *mirrorFixture {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		write(t, filepath.Join(root, p), c)
	}
	f := &mirrorFixture{root: root, state: filepath.Join(t.TempDir(), "mirror")}
	f.open(t)
	t.Cleanup(func() {
		if f.m != nil {
			f.m.Close()
			f.ws.Close()
		}
	})
	return f
}

func (f *mirrorFixture) open(t *testing.T) sandbox.MirrorStats {
	t.Helper()
	ws, err := sandbox.OpenWorkspace(f.root, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := sandbox.OpenMirror(ws, f.state, f.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if unwatched {
		sandbox.Unwatched(m)
	}
	f.ws, f.m, f.tree = ws, m, m.Tree()
	s, err := m.Sync()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unwatched makes the mirrors of the tests walk whole every time, as
// without inotify; eachMode runs a test both ways.
var unwatched bool

func eachMode(t *testing.T, fn func(t *testing.T)) {
	for _, mode := range []bool{false, true} {
		name := "watched"
		if mode {
			name = "unwatched"
		}
		t.Run(name, func(t *testing.T) {
			unwatched = mode
			defer func() { unwatched = false }()
			fn(t)
		})
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func changesOf(cs []sandbox.Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %s", c.Action, c.Path)
		if c.Reason != "" {
			fmt.Fprintf(&b, ": %s", c.Reason)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func TestMirrorCopiesOnlyWhatTheRulesAllow(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		f := newMirror(t, map[string]string{
			"main.go": "package main\n", "sub/x.go": "package sub\n",
			".env": "SECRET=1\n", "sub/deep/id_rsa": "KEY\n", ".git/config": "[core]\n", "sub/.git": "gitdir: ../x\n",
		})
		os.Symlink("main.go", filepath.Join(f.root, "link"))
		syscall.Mkfifo(filepath.Join(f.root, "fifo"), 0o644)
		if err := f.m.Close(); err != nil {
			t.Fatal(err)
		}
		f.ws.Close()
		f.open(t) // the FIFO and link were made after the first sync
		for _, p := range []string{"main.go", "sub/x.go", "link"} {
			if !exists(filepath.Join(f.tree, p)) {
				t.Errorf("%s is not in the copy", p)
			}
		}
		for _, p := range []string{".env", "sub/deep/id_rsa", ".git", "sub/.git", "fifo"} {
			if exists(filepath.Join(f.tree, p)) {
				t.Errorf("%s is in the copy", p)
			}
		}
		if l, _ := os.Readlink(filepath.Join(f.tree, "link")); l != "main.go" {
			t.Errorf("link -> %q", l)
		}
	})
}

func TestMirrorAppliesWhatAWriteCouldAndRefusesTheRest(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		f := newMirror(t, map[string]string{"main.go": "package main\n", "old.go": "x\n", "keep.go": "k\n", "dir/a.go": "a\n"})
		tr := func(p string) string { return filepath.Join(f.tree, p) }
		write(t, tr("main.go"), "package main // changed\n")
		write(t, tr("gen/one.go"), "1\n")
		write(t, tr("gen/two.go"), "2\n")
		os.Remove(tr("old.go"))
		os.RemoveAll(tr("dir"))
		write(t, tr("tool.sh"), "#!/bin/sh\n")
		os.Chmod(tr("tool.sh"), 0o755)
		write(t, tr("rootme"), "ELF")
		syscall.Chmod(tr("rootme"), 0o4755)
		write(t, tr("grp"), "g")
		syscall.Chmod(tr("grp"), 0o2755)
		write(t, tr(".git/config"), "[core]\n\tfsmonitor = touch /tmp/X\n")
		write(t, tr("sub/.git"), "gitdir: evil\n")
		write(t, tr(".env"), "planted\n")
		write(t, tr("llm-runtime.config.yaml"), "exec:\n  shell: true\n")
		write(t, tr("deep/llm-runtime.config.yaml"), "x\n")
		os.Symlink("/etc/passwd", tr("out"))
		syscall.Mkfifo(tr("pipe"), 0o644)
		os.Link(tr("keep.go"), tr("hard.go"))
		if sf, err := os.Create(tr("sparse.img")); err == nil {
			sf.Truncate(1 << 30) // 1 GiB of holes
			sf.Close()
		}

		cs, err := f.m.Finish(t.Context(), true)
		if err != nil {
			t.Fatal(err)
		}
		got := changesOf(cs)
		for _, want := range []string{
			"updated main.go\n", "created gen/\n", "created gen/one.go\n", "created gen/two.go\n",
			"deleted old.go\n", "deleted dir/a.go\n", "deleted dir/\n", "created tool.sh\n", "created hard.go\n",
			"refused rootme: has the setuid bit", "refused grp: has the setgid bit",
			"refused .git: .git is excluded", "refused sub/.git: sub/.git is excluded", "refused .env: .env is excluded",
			"refused llm-runtime.config.yaml: ", "refused deep/llm-runtime.config.yaml: ",
			"refused out: a symbolic link", "refused pipe: a named pipe", "refused sparse.img: a sparse file of 1 GiB",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("changes lack %q:\n%s", want, got)
			}
		}
		if strings.Contains(got, "keep.go") {
			t.Errorf("keep.go is unchanged, but listed:\n%s", got)
		}
		r := func(p string) string { return filepath.Join(f.root, p) }
		if b, _ := os.ReadFile(r("main.go")); string(b) != "package main // changed\n" {
			t.Errorf("main.go = %q", b)
		}
		for _, p := range []string{"gen/one.go", "gen/two.go", "tool.sh", "hard.go"} {
			if !exists(r(p)) {
				t.Errorf("%s did not land", p)
			}
		}
		if fi, _ := os.Stat(r("tool.sh")); fi == nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("tool.sh mode %v, want 0755", fi.Mode())
		}
		var st syscall.Stat_t
		if syscall.Stat(r("hard.go"), &st) != nil || st.Nlink != 1 {
			t.Errorf("hard.go is a hard link in the repository (%d links)", st.Nlink)
		}
		for _, p := range []string{"old.go", "dir", "rootme", "grp", ".git", "sub/.git", ".env", "llm-runtime.config.yaml", "deep/llm-runtime.config.yaml", "out", "pipe", "sparse.img"} {
			if exists(r(p)) {
				t.Errorf("%s is in the repository", p)
			}
		}
		// The copy is put back: the refused objects are gone from it.
		if _, err := f.m.Sync(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"rootme", ".git", "out", "pipe", ".env"} {
			if exists(tr(p)) {
				t.Errorf("%s is still in the copy", p)
			}
		}
		if cs, _ := f.m.Finish(t.Context(), true); len(cs) != 0 {
			t.Errorf("a second finish with nothing done: %s", changesOf(cs))
		}
	})
}

func TestMirrorDiscardsAReadOnlyCommandsWrites(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		f := newMirror(t, map[string]string{"a.go": "a\n", "b.go": "b\n"})
		write(t, filepath.Join(f.tree, "a.go"), "changed\n")
		write(t, filepath.Join(f.tree, "c.out"), "coverage\n")
		os.Remove(filepath.Join(f.tree, "b.go"))
		cs, err := f.m.Finish(t.Context(), false)
		if err != nil {
			t.Fatal(err)
		}
		if got := changesOf(cs); got != "discarded a.go\ndiscarded b.go\ndiscarded c.out\n" {
			t.Errorf("changes:\n%s", got)
		}
		if b, _ := os.ReadFile(filepath.Join(f.root, "a.go")); string(b) != "a\n" || exists(filepath.Join(f.root, "c.out")) || !exists(filepath.Join(f.root, "b.go")) {
			t.Error("the repository changed")
		}
		s, err := f.m.Sync()
		if err != nil {
			t.Fatal(err)
		}
		if s.Copied != 2 {
			t.Errorf("Sync copied %d files back, want 2", s.Copied)
		}
		if b, _ := os.ReadFile(filepath.Join(f.tree, "a.go")); string(b) != "a\n" || exists(filepath.Join(f.tree, "c.out")) || !exists(filepath.Join(f.tree, "b.go")) {
			t.Error("the copy was not put back")
		}
	})
}

func TestMirrorDoesNotOverwriteWhatChangedInTheRepositoryMeanwhile(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		f := newMirror(t, map[string]string{"a.go": "a\n", "b.go": "b\n"})
		write(t, filepath.Join(f.tree, "a.go"), "command\n")
		os.Remove(filepath.Join(f.tree, "b.go"))
		write(t, filepath.Join(f.tree, "c.go"), "command\n")
		write(t, filepath.Join(f.root, "a.go"), "user!\n")
		write(t, filepath.Join(f.root, "b.go"), "user!\n")
		write(t, filepath.Join(f.root, "c.go"), "user!\n")
		cs, _ := f.m.Finish(t.Context(), true)
		got := changesOf(cs)
		for _, p := range []string{"a.go", "b.go", "c.go"} {
			if b, _ := os.ReadFile(filepath.Join(f.root, p)); string(b) != "user!\n" {
				t.Errorf("%s = %q: the user's change was lost", p, b)
			}
			if !strings.Contains(got, "refused "+p+": ") {
				t.Errorf("%s not refused:\n%s", p, got)
			}
		}
	})
}

func TestMirrorCopiesOnlyWhatChangedSinceTheLastRun(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		files := map[string]string{}
		for i := range 50 {
			files[fmt.Sprintf("p%d/f.go", i)] = "x\n"
		}
		f := newMirror(t, files)
		f.m.Close()
		f.ws.Close()
		write(t, filepath.Join(f.root, "p3/f.go"), "changed\n")
		if s := f.open(t); s.Copied != 1 {
			t.Errorf("the second run copied %d files, want 1", s.Copied)
		}
		// A mirror in use is not opened again: another process takes
		// another.
		f.ws.Close()
		f.m = nil
		ws, _ := sandbox.OpenWorkspace(f.root, sandbox.Limits{})
		defer ws.Close()
		if _, err := sandbox.OpenMirror(ws, f.state, f.root, nil); err == nil {
			t.Fatal("a mirror in use was opened twice")
		}
	})
}

func TestMirrorLooksAtWhatTheCommandLockedAway(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		f := newMirror(t, map[string]string{"a.go": "a\n"})
		write(t, filepath.Join(f.tree, "locked/x.go"), "x\n")
		os.Chmod(filepath.Join(f.tree, "locked/x.go"), 0)
		os.Chmod(filepath.Join(f.tree, "locked"), 0)
		cs, err := f.m.Finish(t.Context(), true)
		if err != nil {
			t.Fatal(err)
		}
		if got := changesOf(cs); !slices.Contains(strings.Split(got, "\n"), "created locked/x.go") {
			t.Errorf("changes:\n%s", got)
		}
	})
}

// BenchmarkMirror10k is what a writable exec adds on a repository of
// 10,000 files: a Sync before the command and a Finish after it that
// applies three changed files.
func BenchmarkMirror10k(b *testing.B) {
	root := b.TempDir()
	for d := range 500 {
		for i := range 20 {
			p := filepath.Join(root, fmt.Sprintf("pkg%03d/sub/f%02d.go", d, i))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(strings.Repeat("x", 2000+i*100)), 0o644)
		}
	}
	ws, err := sandbox.OpenWorkspace(root, sandbox.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	m, err := sandbox.OpenMirror(ws, filepath.Join(b.TempDir(), "m"), root, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var syncing, finishing time.Duration
	for n := range b.N {
		start := time.Now()
		if _, err := m.Sync(); err != nil {
			b.Fatal(err)
		}
		syncing += time.Since(start)
		for i := range 3 {
			os.WriteFile(filepath.Join(m.Tree(), fmt.Sprintf("pkg%03d/sub/f%02d.go", i, n%20)), []byte(fmt.Sprint(n)), 0o644)
		}
		start = time.Now()
		cs, err := m.Finish(b.Context(), true)
		finishing += time.Since(start)
		if err != nil || len(cs) != 3 {
			b.Fatalf("%v %v", cs, err)
		}
	}
	b.ReportMetric(float64(syncing.Milliseconds())/float64(b.N), "sync-ms/op")
	b.ReportMetric(float64(finishing.Milliseconds())/float64(b.N), "finish-ms/op")
}

// tree lists what is under dir, skipping what the default rules exclude,
// one line per object: its path, kind, mode and content or link target.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.Name() == ".git" || fi.Name() == ".env" {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		}
		out = append(out, line)
		return nil
	})
	return out
}

// TestMirrorFollowsEveryKindOfChange changes the repository, then the
// copy, in every way a program can (deep new trees, renames of files and
// directories, removals, mode changes, truncation, writes through a shared
// mapping, hard links), and checks that Sync makes the copy the
// repository's again and that Finish carries the copy's changes back.
func TestMirrorFollowsEveryKindOfChange(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		f := newMirror(t, map[string]string{
			"a/b/c.go": "c\n", "a/b/d.go": "d\n", "keep/k.go": "k\n", "mv/m.go": "m\n", "rm/r/x.go": "x\n", "t.go": "truncate me\n", "map.go": "0123456789\n",
		})
		change := func(base string) {
			r := func(p string) string { return filepath.Join(base, p) }
			write(t, r("new/deep/er/n.go"), "n\n")
			write(t, r("a/b/c.go"), "c changed\n")
			os.Rename(r("a/b/d.go"), r("a/d2.go"))
			os.Rename(r("mv"), r("moved"))
			os.RemoveAll(r("rm"))
			os.Chmod(r("keep/k.go"), 0o755)
			os.Truncate(r("t.go"), 4)
			mf, err := os.OpenFile(r("map.go"), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			mem, err := syscall.Mmap(int(mf.Fd()), 0, 11, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
			if err != nil {
				t.Fatal(err)
			}
			mf.Close() // the mapping outlives the descriptor
			copy(mem, "MAPPED")
			syscall.Munmap(mem)
			os.Link(r("keep/k.go"), r("keep/k2.go"))
		}
		// The repository changes: Sync brings the copy along.
		change(f.root)
		if _, err := f.m.Sync(); err != nil {
			t.Fatal(err)
		}
		if got, want := tree(t, f.tree), tree(t, f.root); !slices.Equal(got, want) {
			t.Fatalf("after Sync the copy is\n%s\nthe repository\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// Now a command changes the copy the same ways: Finish lands it all.
		f2 := newMirror(t, map[string]string{
			"a/b/c.go": "c\n", "a/b/d.go": "d\n", "keep/k.go": "k\n", "mv/m.go": "m\n", "rm/r/x.go": "x\n", "t.go": "truncate me\n", "map.go": "0123456789\n",
		})
		change(f2.tree)
		cs, err := f2.m.Finish(t.Context(), true)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Action == sandbox.ChangeRefused {
				t.Errorf("refused: %+v", c)
			}
		}
		got := tree(t, f2.root)
		if want := tree(t, f2.tree); !slices.Equal(got, want) {
			t.Fatalf("after Finish the repository is\n%s\nthe copy\n%s\nchanges:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), changesOf(cs))
		}
		if !slices.Contains(got, "map.go -rw-r--r-- MAPPED6789\n") {
			t.Errorf("the write through a mapping was missed: %q", got)
		}
	})
}

// TestMirrorNeverChangesGitEvenWhenItIsNotExcluded: with .git taken off
// security.excluded_paths (to run git in exec), .git is in the copy, and
// nothing a command does to it, at any depth, is applied.
func TestMirrorNeverChangesGitEvenWhenItIsNotExcluded(t *testing.T) {
	root := t.TempDir()
	for p, c := range map[string]string{".git/config": "[core]\n", ".git/HEAD": "ref: refs/heads/main\n", "sub/.git/config": "[core]\n", "a.go": "a\n"} {
		write(t, filepath.Join(root, p), c)
	}
	ws, err := sandbox.OpenWorkspace(root, sandbox.Limits{Excluded: []string{".env"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	m, err := sandbox.OpenMirror(ws, filepath.Join(t.TempDir(), "m"), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	tr := func(p string) string { return filepath.Join(m.Tree(), p) }
	if !exists(tr(".git/HEAD")) {
		t.Fatal(".git was not copied though it is not excluded")
	}
	write(t, tr(".git/config"), "[core]\n\tfsmonitor = touch x\n")
	write(t, tr(".git/hooks/pre-commit"), "#!/bin/sh\n")
	os.Remove(tr(".git/HEAD"))
	write(t, tr("sub/.git/config"), "[core]\n\tpager = x\n")
	write(t, tr("new/.GIT/config"), "x\n")
	write(t, tr("a.go"), "changed\n")
	cs, err := m.Finish(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	got := changesOf(cs)
	for _, p := range []string{".git/config", ".git/hooks", ".git/HEAD", "sub/.git/config", "new/.GIT"} {
		if !strings.Contains(got, "refused "+p+": git's own files") {
			t.Errorf("%s not refused:\n%s", p, got)
		}
	}
	if !strings.Contains(got, "updated a.go\n") {
		t.Errorf("a.go did not land:\n%s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(root, ".git/config")); string(b) != "[core]\n" || !exists(filepath.Join(root, ".git/HEAD")) || exists(filepath.Join(root, ".git/hooks")) {
		t.Error(".git changed in the repository")
	}
}
