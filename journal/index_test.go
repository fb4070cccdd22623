package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// journaled begins and ends n checkpoints of one change each, session
// named, and returns the changes.
func journaled(t testing.TB, j *Journal, n int, session string) []Change {
	t.Helper()
	var all []Change
	for i := range n {
		c := Change{Path: fmt.Sprintf("%s/%d.txt", session, i), Before: State{Kind: None},
			After: State{Kind: File, Mode: 0o644, Size: 2, Data: []byte(fmt.Sprintf("%02d", i))}}
		c.After.Sum = Sum(c.After.Data)
		commit(t, j, Meta{Session: session}, c)
		all = append(all, c)
	}
	// As a process's would be a moment later, for the others to read.
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	return all
}

func numbers(t *testing.T, j *Journal) []int {
	t.Helper()
	list, err := j.Index()
	if err != nil {
		t.Fatal(err)
	}
	var ns []int
	for _, e := range list {
		ns = append(ns, e.Number)
	}
	return ns
}

func TestOpenStartsFromTheHeadAndReadsOnlyWhatFollows(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	journaled(t, j, 5, "early")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "head")); err != nil {
		t.Fatalf("Close saved no head: %v", err)
	}
	// Damage a record the head covers: an Open that starts from the head
	// does not read it, so does not see it.
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	i := bytes.Index(b, []byte("early/1.txt"))
	b[i] = 'E'
	if err := os.WriteFile(filepath.Join(dir, "log"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	k := open(t, dir)
	if got := numbers(t, k); fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("the index after Open: %v", got)
	}
	// Another process appends; this one catches up with it.
	other := open(t, dir)
	late := journaled(t, other, 2, "late")
	if got := numbers(t, k); fmt.Sprint(got) != "[1 2 3 4 5 6 7]" {
		t.Fatalf("the index after another process's checkpoints: %v", got)
	}
	cs, err := k.Changes(7, 6)
	if err != nil || !equalChanges(cs, []Change{late[1], late[0]}) {
		t.Fatalf("Changes(7, 6) = %+v, %v", cs, err)
	}
	if cp, err := k.Begin(Meta{}); err != nil || cp.Number() != 8 {
		t.Fatalf("the next checkpoint: %v, %v", cp, err)
	}
	// What reads the damaged record finds the damage.
	if _, err := k.Changes(2); !errors.Is(err, ErrDamaged) {
		t.Errorf("Changes(2) over the damaged record: %v", err)
	}
	if _, err := k.Checkpoints(); !errors.Is(err, ErrDamaged) {
		t.Errorf("Checkpoints over the damaged record: %v", err)
	}
}

func TestOpenReadsTheWholeLogWhenTheHeadDoesNotNameIt(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "journal")
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	journaled(t, j, 3, "a")
	j.Close()
	other, err := Open(filepath.Join(root, "other"))
	if err != nil {
		t.Fatal(err)
	}
	journaled(t, other, 6, "bbbbbbbbbbbbbbbb")
	other.Close()
	b, _ := os.ReadFile(filepath.Join(root, "other", "log"))
	head, _ := os.ReadFile(filepath.Join(dir, "head"))
	for _, tc := range []struct {
		name    string
		replace func()
	}{
		// The same file, other records: the frame the head names is not there.
		{"rewritten in place", func() { os.WriteFile(filepath.Join(dir, "log"), b, 0o600) }},
		// Another file (as a Prune leaves).
		{"replaced", func() {
			os.WriteFile(filepath.Join(dir, "log.new"), b, 0o600)
			os.Rename(filepath.Join(dir, "log.new"), filepath.Join(dir, "log"))
		}},
		{"a head that is not JSON", func() { os.WriteFile(filepath.Join(dir, "head"), []byte("{"), 0o600) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, "head"), head, 0o600)
			tc.replace()
			k, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			if got := numbers(t, k); fmt.Sprint(got) != "[1 2 3 4 5 6]" {
				t.Errorf("the index: %v, want the other log's 6 checkpoints", got)
			}
			if cs, err := k.Changes(6); err != nil || len(cs) != 1 || cs[0].Path != "bbbbbbbbbbbbbbbb/5.txt" {
				t.Errorf("Changes(6) = %+v, %v", cs, err)
			}
		})
	}
}

func TestTheIndexSurvivesAPrune(t *testing.T) {
	j := newJournal(t)
	journaled(t, j, 6, "s")
	if _, err := j.Prune(Retention{Keep: 2, MaxAge: time.Nanosecond, Now: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := numbers(t, j); fmt.Sprint(got) != "[5 6]" {
		t.Fatalf("the index after a prune: %v", got)
	}
	if _, err := j.Changes(3); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("Changes of a pruned checkpoint: %v", err)
	}
	j.Close()
	k := open(t, j.Dir())
	if got := numbers(t, k); fmt.Sprint(got) != "[5 6]" {
		t.Fatalf("the index after a prune and an Open: %v", got)
	}
	if cp, err := k.Begin(Meta{}); err != nil || cp.Number() != 7 {
		t.Fatalf("the next checkpoint: %v, %v", cp, err)
	}
}
