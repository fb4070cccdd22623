package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// age makes every file under the journal's objects two hours old, past
// what a Prune spares.
func age(t *testing.T, j *Journal) {
	t.Helper()
	old := time.Now().Add(-2 * time.Hour)
	filepath.WalkDir(filepath.Join(j.Dir(), "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Chtimes(p, old, old)
		}
		return nil
	})
}

// checkpoints makes n ended checkpoints in j, the i-th (from 0) begun at
// t0 + i hours, each writing file i with content unique to it and a
// shared one; it returns the sums of the unique contents.
func checkpoints(t *testing.T, j *Journal, n int, t0 time.Time) []string {
	t.Helper()
	var sums []string
	for i := range n {
		unique := []byte(fmt.Sprintf("content of checkpoint %d, large enough to be put %0100d", i, i))
		shared := []byte("the same in every checkpoint")
		c1 := fileChange(t, j, fmt.Sprintf("f%d", i), nil, unique)
		c2 := Change{Path: "shared", Before: State{Kind: None}, After: State{Kind: File, Size: int64(len(shared)), Data: shared}}
		commit(t, j, Meta{FrontEnd: "filter", Time: t0.Add(time.Duration(i) * time.Hour)}, c1, c2)
		sums = append(sums, c1.After.Sum)
	}
	return sums
}

// TestPruneDropsTheOldestAndWhatOnlyTheyNamed: by age, never the last
// Keep; numbering goes on; the objects only dropped checkpoints named go,
// those kept ones name stay and read; another process's handle reads the
// new log and numbers on from it.
func TestPruneDropsTheOldestAndWhatOnlyTheyNamed(t *testing.T) {
	j := newJournal(t)
	other := open(t, j.Dir())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sums := checkpoints(t, j, 30, t0)
	age(t, j)
	// At t0 + 40 h, checkpoints 1-15 (begun at 0-14 h) are more than 25 h
	// old; with Keep 20, only 10 may go.
	res, err := j.Prune(Retention{MaxAge: 25 * time.Hour, Keep: 20, Now: t0.Add(40 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Checkpoints != 10 || res.Through != 10 || res.Objects != 10 || res.Bytes <= 0 {
		t.Fatalf("pruned %+v, want checkpoints 1-10 and their 10 objects", res)
	}
	list, err := j.Checkpoints()
	if err != nil || len(list) != 20 || list[0].Number != 30 || list[19].Number != 11 {
		t.Fatalf("after: %d checkpoints (%v), newest %+v", len(list), err, list[0])
	}
	if _, err := j.Changes(10); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("Changes of a pruned checkpoint: %v", err)
	}
	for i, sum := range sums {
		_, err := os.Stat(j.objectPath(sum))
		if gone := i < 10; gone != errors.Is(err, os.ErrNotExist) {
			t.Errorf("object of checkpoint %d: %v", i+1, err)
		}
	}
	changes, err := j.Changes(11)
	if err != nil || len(changes) != 2 {
		t.Fatal(changes, err)
	}
	for _, c := range changes {
		if _, err := j.Content(c.After); err != nil {
			t.Errorf("content of a kept checkpoint: %v", err)
		}
	}
	// The other handle reads the new log, and numbering goes on.
	cp, err := other.Begin(Meta{FrontEnd: "mcp"})
	if err != nil || cp.Number() != 31 {
		t.Fatalf("the next checkpoint from another handle: %v, %v", cp, err)
	}
	// Pruned again with nothing old: nothing goes.
	if res, err := j.Prune(Retention{MaxAge: 25 * time.Hour, Keep: 20, Now: t0}); err != nil || res.Checkpoints != 0 {
		t.Errorf("a second prune: %+v %v", res, err)
	}
}

// TestPruneBySizeAndWhatStays: by size, the oldest first, down to the
// limit; a checkpoint with an intent that has no outcome, or not ended by
// a running process, stays, with every one after it; recent objects and
// temporary files stay, old ones go.
func TestPruneBySizeAndWhatStays(t *testing.T) {
	j := newJournal(t)
	t0 := time.Now().Add(-time.Hour)
	checkpoints(t, j, 10, t0)
	fi, _ := os.Stat(j.logPath())
	// Room for about half of it.
	res, err := j.Prune(Retention{MaxBytes: fi.Size() / 2, Now: t0.Add(24 * time.Hour)})
	if err != nil || res.Checkpoints < 4 || res.Checkpoints > 7 || res.Left > fi.Size()/2 {
		t.Fatalf("by size: %+v %v (log was %d bytes)", res, err, fi.Size())
	}
	// An intent with no outcome holds its checkpoint, and those after it.
	cp, _ := j.Begin(Meta{})
	c := fileChange(t, j, "x", nil, []byte("in progress"))
	if _, err := cp.Intend([]Change{c}); err != nil {
		t.Fatal(err)
	}
	checkpoints(t, j, 3, t0)
	before, _ := j.Checkpoints()
	if res, err := j.Prune(Retention{MaxAge: time.Nanosecond, Now: t0.Add(48 * time.Hour)}); err != nil || res.Checkpoints != len(before)-4 {
		t.Fatalf("with an intent in progress: %+v %v, want all but it and the 3 after it", res, err)
	}
	// A temporary file a crash left: spared while recent, removed after.
	tmp := filepath.Join(j.Dir(), "objects", ".tmp-crash")
	os.WriteFile(tmp, []byte("half"), 0o600)
	os.WriteFile(j.logPath()+".prune", []byte("half a log"), 0o600)
	if res, _ := j.Prune(Retention{}); res.Temporary != 0 {
		t.Errorf("a recent temporary file was removed: %+v", res)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(tmp, old, old)
	os.Chtimes(j.logPath()+".prune", old, old)
	if res, _ := j.Prune(Retention{}); res.Temporary != 1 {
		t.Errorf("an old temporary file stayed: %+v", res)
	}
	for _, p := range []string{tmp, j.logPath() + ".prune"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s stayed: %v", p, err)
		}
	}
}

func TestPruneIfDuePrunesOnceADay(t *testing.T) {
	j := newJournal(t)
	journaled(t, j, 5, "s")
	old := Retention{Keep: 2, MaxAge: time.Nanosecond, Now: time.Now().Add(time.Hour)}
	res, due, err := j.PruneIfDue(old)
	if err != nil || !due || res.Checkpoints != 3 {
		t.Fatalf("the first PruneIfDue: %+v, due %t, %v; want 3 checkpoints pruned", res, due, err)
	}
	journaled(t, j, 3, "t")
	if res, due, err := j.PruneIfDue(old); err != nil || due || res.Checkpoints != 0 {
		t.Fatalf("a PruneIfDue the same day: %+v, due %t, %v; want none", res, due, err)
	}
	yesterday := time.Now().Add(-PruneEvery - time.Minute)
	if err := os.Chtimes(filepath.Join(j.Dir(), "pruned"), yesterday, yesterday); err != nil {
		t.Fatal(err)
	}
	if res, due, err := j.PruneIfDue(old); err != nil || !due || res.Checkpoints != 3 {
		t.Fatalf("a PruneIfDue a day later: %+v, due %t, %v; want 3 checkpoints pruned", res, due, err)
	}
}
