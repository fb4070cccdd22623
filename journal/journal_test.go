package journal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func open(t testing.TB, dir string) *Journal {
	t.Helper()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func newJournal(t testing.TB) *Journal {
	return open(t, filepath.Join(t.TempDir(), "journal"))
}

func objectFiles(t *testing.T, j *Journal) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(filepath.Join(j.Dir(), "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func TestOpenMakesAPrivateLayout(t *testing.T) {
	j := newJournal(t)
	for name, want := range map[string]fs.FileMode{".": fs.ModeDir | 0o700, "objects": fs.ModeDir | 0o700, "log": 0o600, "lock": 0o600} {
		fi, err := os.Stat(filepath.Join(j.Dir(), name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
}

func TestOpenRefusesADirectoryOthersCanWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("Open of a directory anyone can write: %v", err)
	}
}

func TestPutGetRoundTripsAndStoresContentOnce(t *testing.T) {
	j := newJournal(t)
	random := make([]byte, 10000)
	rand.Read(random)
	for _, content := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("package main\n"), 1000), random} {
		sum, err := j.Put(content)
		if err != nil {
			t.Fatal(err)
		}
		if sum != Sum(content) {
			t.Errorf("Put named %d bytes %s, want their SHA-256 %s", len(content), sum, Sum(content))
		}
		again, err := j.Put(content)
		if err != nil || again != sum {
			t.Fatalf("second Put: %s, %v", again, err)
		}
		got, err := j.Get(sum)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, content) {
			t.Errorf("Get(%s) returned %d bytes, want the %d put", sum, len(got), len(content))
		}
	}
	if files := objectFiles(t, j); len(files) != 4 {
		t.Errorf("4 contents, each put twice, made %d files: %v", len(files), files)
	}
}

func TestPutCompressesOnlyWhenItPays(t *testing.T) {
	j := newJournal(t)
	text := bytes.Repeat([]byte("func f() { return nil }\n"), 400)
	random := make([]byte, 8192)
	rand.Read(random)
	for _, c := range []struct {
		name    string
		content []byte
		header  byte
	}{
		{"text", text, objZstd},
		{"random", random, objRaw},
		{"small", []byte("tiny"), objRaw},
	} {
		sum, err := j.Put(c.content)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(j.objectPath(sum))
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != c.header {
			t.Errorf("%s: stored with header %d, want %d", c.name, b[0], c.header)
		}
		if c.header == objZstd && len(b) > len(c.content)/8 {
			t.Errorf("%s: %d bytes compressed to %d", c.name, len(c.content), len(b))
		}
		if c.header == objRaw && len(b) != len(c.content)+1 {
			t.Errorf("%s: %d bytes stored as %d", c.name, len(c.content), len(b))
		}
	}
}

func TestGetReportsADamagedObject(t *testing.T) {
	j := newJournal(t)
	for _, content := range [][]byte{bytes.Repeat([]byte("compressible "), 500), []byte("raw content")} {
		sum, err := j.Put(content)
		if err != nil {
			t.Fatal(err)
		}
		p := j.objectPath(sum)
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0x40
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := j.Get(sum); !errors.Is(err, ErrDamaged) {
			t.Errorf("Get of a flipped byte: %q, %v; want ErrDamaged", got, err)
		}
	}
	if _, err := j.Get("../../log"); err == nil {
		t.Error("Get took a path for a sum")
	}
	if _, err := j.Get(Sum([]byte("never put"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get of a missing object: %v", err)
	}
}

func TestPutRefusesContentOver256MiB(t *testing.T) {
	if _, err := newJournal(t).Put(make([]byte, MaxObject+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put of 256 MiB + 1: %v", err)
	}
}

// change journals content as the new content of path, made from nothing.
// commit journals changes, done, in a checkpoint of their own begun with
// meta and ended, and returns its number.
func commit(t testing.TB, j *Journal, meta Meta, changes ...Change) int {
	t.Helper()
	cp, err := j.Begin(meta)
	if err != nil {
		t.Fatal(err)
	}
	id, err := cp.Intend(changes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Done(id); err != nil {
		t.Fatal(err)
	}
	if err := cp.End(); err != nil {
		t.Fatal(err)
	}
	return cp.Number()
}

func fileChange(t testing.TB, j *Journal, path string, before, after []byte) Change {
	t.Helper()
	c := Change{Path: path, Before: State{Kind: None}, After: State{Kind: File, Mode: 0o644, Size: int64(len(after))}}
	var err error
	if c.After.Sum, err = j.Put(after); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		c.Before = State{Kind: File, Mode: 0o644, Size: int64(len(before))}
		if c.Before.Sum, err = j.Put(before); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestCheckpointsAreNumberedAndListNewestFirst(t *testing.T) {
	j := newJournal(t)
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for i := 1; i <= 3; i++ {
		cp, err := j.Begin(Meta{Session: "s", FrontEnd: "filter", Name: "n", Time: start.Add(time.Duration(i))})
		if err != nil {
			t.Fatal(err)
		}
		if cp.Number() != i {
			t.Errorf("checkpoint %d numbered %d", i, cp.Number())
		}
		if i < 3 {
			if err := cp.End(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Another Journal of the same directory goes on from there.
	k := open(t, j.Dir())
	cp, err := k.Begin(Meta{FrontEnd: "mcp"})
	if err != nil || cp.Number() != 4 {
		t.Fatalf("a second opener's checkpoint: %v, %v; want 4", cp, err)
	}
	list, err := j.Checkpoints()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Fatalf("%d checkpoints listed, want 4", len(list))
	}
	for i, ci := range list {
		if ci.Number != 4-i {
			t.Errorf("listed %d at %d", ci.Number, i)
		}
	}
	if ci := list[1]; ci.Ended || !ci.Meta.Time.Equal(start.Add(3)) || ci.Meta.Session != "s" || ci.Meta.FrontEnd != "filter" || ci.Meta.Name != "n" {
		t.Errorf("checkpoint 3: %+v", ci)
	}
	if !list[2].Ended {
		t.Errorf("checkpoint 2 not ended: %+v", list[2])
	}
}

func TestChangesHoldsDoneChangesInOrderAndNotAbortedOnes(t *testing.T) {
	j := newJournal(t)
	cp, err := j.Begin(Meta{FrontEnd: "filter"})
	if err != nil {
		t.Fatal(err)
	}
	a := fileChange(t, j, "a.go", nil, []byte("a"))
	b := fileChange(t, j, "b.go", []byte("b0"), []byte("b1"))
	c := fileChange(t, j, "c.go", nil, []byte("c"))
	d := Change{Path: "dir/link", Before: State{Kind: None}, After: State{Kind: Symlink, Target: "../a.go"}}
	e := Change{Path: "dir", Before: State{Kind: None}, After: State{Kind: Dir, Mode: 0o755}}
	id1, err := cp.Intend([]Change{a})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := cp.Intend([]Change{b})
	if err != nil {
		t.Fatal(err)
	}
	id3, err := cp.Intend([]Change{e, d, c})
	if err != nil {
		t.Fatal(err)
	}
	id4, err := cp.Intend([]Change{a})
	if err != nil {
		t.Fatal(err)
	}
	if !(id1 < id2 && id2 < id3 && id3 < id4) {
		t.Errorf("intent numbers %d %d %d %d do not rise", id1, id2, id3, id4)
	}
	// Outcomes in another order than the intents.
	if err := cp.Done(id3); err != nil {
		t.Fatal(err)
	}
	if err := cp.Abort(id2, "refused"); err != nil {
		t.Fatal(err)
	}
	if err := cp.Done(id1); err != nil {
		t.Fatal(err)
	}
	if err := cp.Done(id1); err == nil {
		t.Error("a second outcome for an intent was taken")
	}
	got, err := j.Changes(cp.Number())
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{a, e, d, c}
	if !equalChanges(got, want) {
		t.Errorf("Changes:\n got %+v\nwant %+v", got, want)
	}
	list, err := j.Checkpoints()
	if err != nil {
		t.Fatal(err)
	}
	if ci := list[0]; ci.Changes != 4 || ci.Pending != 1 || strings.Join(ci.Paths, " ") != "a.go dir dir/link c.go" {
		t.Errorf("checkpoint: %+v", ci)
	}
	if _, err := j.Changes(7); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("Changes of a checkpoint never made: %v", err)
	}
	// The intent still open is this running process's: not pending.
	if p, err := j.Pending(); err != nil || len(p) != 0 {
		t.Errorf("Pending in the process that intends: %v, %v", p, err)
	}
}

func equalChanges(a, b []Change) bool {
	if len(a) != len(b) {
		return false
	}
	// Data is compared where both have it: content stored already is
	// named by its Sum alone.
	same := func(x, y State) bool {
		return x.Kind == y.Kind && x.Mode == y.Mode && x.Size == y.Size && x.Sum == y.Sum && x.Target == y.Target &&
			(x.Data == nil || y.Data == nil || bytes.Equal(x.Data, y.Data))
	}
	for i := range a {
		if a[i].Path != b[i].Path || !same(a[i].Before, b[i].Before) || !same(a[i].After, b[i].After) {
			return false
		}
	}
	return true
}

func TestIntendRefusesWhatItCannotRecord(t *testing.T) {
	j := newJournal(t)
	cp, err := j.Begin(Meta{})
	if err != nil {
		t.Fatal(err)
	}
	missing := Change{Path: "a", Before: State{Kind: None}, After: State{Kind: File, Sum: Sum([]byte("never put"))}}
	for _, c := range []Change{
		missing,
		{Path: "a", Before: State{Kind: "fifo"}, After: State{Kind: None}},
		{Path: "a", Before: State{Kind: None}, After: State{Kind: File, Sum: "abc"}},
		{Path: "a", Before: State{Kind: None}, After: State{Kind: Dir, Mode: 0o40755}},
	} {
		if _, err := cp.Intend([]Change{c}); err == nil {
			t.Errorf("Intend took %+v", c)
		}
	}
	if _, err := cp.Intend(nil); err == nil {
		t.Error("Intend took no changes")
	}
}

func TestPathsAndTargetsThatAreNotUTF8RoundTripExactly(t *testing.T) {
	j := newJournal(t)
	cp, err := j.Begin(Meta{})
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"caf\xe9.txt", "\xff\xfe/\x80", "ok/é.go", "quote\"back\\slash\n<tag>&\u2028", "nul\x00in"}
	var changes []Change
	for _, p := range paths {
		changes = append(changes, Change{Path: p, Before: State{Kind: None}, After: State{Kind: Symlink, Target: "\xc3\x28" + p}})
	}
	id, err := cp.Intend(changes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Done(id); err != nil {
		t.Fatal(err)
	}
	if err := j.Flush(); err != nil { // for another Journal to read
		t.Fatal(err)
	}
	got, err := open(t, j.Dir()).Changes(cp.Number())
	if err != nil {
		t.Fatal(err)
	}
	if !equalChanges(got, changes) {
		t.Errorf("paths came back changed:\n got %+v\nwant %+v", got, changes)
	}
}

func TestOpenCutsATornTailAndKeepsWhatWasWhole(t *testing.T) {
	j := newJournal(t)
	cp, err := j.Begin(Meta{})
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := os.Stat(j.logPath())
	for _, tail := range [][]byte{
		{0x30}, // a header cut short
		frame(nil, []byte(`{"type":"end","checkpoint":1}`))[:20], // a payload cut short
		make([]byte, 300), // zeros a crash left
		append(frame(nil, []byte(`{"type":"end","checkpoint":1}`))[:30], 0, 0), // whole length, wrong bytes
	} {
		f, err := os.OpenFile(j.logPath(), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(tail)
		f.Close()
		if list, err := j.Checkpoints(); err != nil || len(list) != 1 {
			t.Fatalf("reading with a torn tail %q: %v, %v", tail, list, err)
		}
		k := open(t, j.Dir())
		fi, _ := os.Stat(j.logPath())
		if fi.Size() != whole.Size() {
			t.Errorf("tail %q: the log is %d bytes after Open, want %d", tail, fi.Size(), whole.Size())
		}
		if p, err := k.Pending(); err != nil || len(p) != 0 {
			t.Errorf("Pending: %v, %v", p, err)
		}
	}
	// The next record follows the last whole one.
	if err := cp.End(); err != nil {
		t.Fatal(err)
	}
	if list, err := j.Checkpoints(); err != nil || !list[0].Ended {
		t.Fatalf("after a torn tail, End: %v, %v", list, err)
	}
}

func TestDamageInTheMiddleIsReportedNotCut(t *testing.T) {
	j := newJournal(t)
	for range 3 {
		cp, err := j.Begin(Meta{Session: "session"})
		if err != nil {
			t.Fatal(err)
		}
		cp.End()
	}
	j.Flush()
	b, _ := os.ReadFile(j.logPath())
	i := bytes.Index(b, []byte("session"))
	b[i] = 'S'
	os.WriteFile(j.logPath(), b, 0o600)
	if _, err := j.Checkpoints(); !errors.Is(err, ErrDamaged) {
		t.Errorf("Checkpoints of a damaged log: %v", err)
	}
	if _, err := Open(j.Dir()); !errors.Is(err, ErrDamaged) {
		t.Errorf("Open of a damaged log: %v", err)
	}
	if after, _ := os.ReadFile(j.logPath()); !bytes.Equal(after, b) {
		t.Error("the damaged log was changed")
	}
}

func TestMatchesComparesKindModeAndContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("hello"), 0o640)
	os.Chmod(p, 0o640)
	os.Symlink("f", filepath.Join(dir, "l"))
	os.Mkdir(filepath.Join(dir, "d"), 0o750)
	os.Chmod(filepath.Join(dir, "d"), 0o750)
	stat := func(name string) fs.FileInfo {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			return nil
		}
		return fi
	}
	read := func() ([]byte, error) { return os.ReadFile(p) }
	link := func() ([]byte, error) { s, err := os.Readlink(filepath.Join(dir, "l")); return []byte(s), err }
	file := State{Kind: File, Mode: 0o640, Size: 5, Sum: Sum([]byte("hello"))}
	for _, c := range []struct {
		state   State
		name    string
		content func() ([]byte, error)
		want    bool
	}{
		{file, "f", read, true},
		{State{Kind: File, Mode: 0o644, Size: 5, Sum: file.Sum}, "f", read, false},
		{State{Kind: File, Mode: 0o640, Size: 5, Sum: Sum([]byte("jello"))}, "f", read, false},
		{State{Kind: None}, "f", read, false},
		{State{Kind: None}, "missing", nil, true},
		{file, "missing", nil, false},
		{State{Kind: Symlink, Target: "f"}, "l", link, true},
		{State{Kind: Symlink, Target: "g"}, "l", link, false},
		{State{Kind: Dir, Mode: 0o750}, "d", nil, true},
		{State{Kind: Dir, Mode: 0o755}, "d", nil, false},
		{file, "d", read, false},
	} {
		if got := Matches(c.state, stat(c.name), c.content); got != c.want {
			t.Errorf("Matches(%+v, %s) = %v", c.state, c.name, got)
		}
	}
}
