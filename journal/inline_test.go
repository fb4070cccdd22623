package journal

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"testing"
)

// TestSmallContentIsJournaledInTheLog: content given with the intent is
// in the log itself (one fsync makes both durable), Changes gives it back,
// Get finds it as an object written lazily or, that object lost to a
// crash, in the log; content over InlineMax is Put and named only; the
// empty content needs no store; a Data that is not what its Sum names is
// refused.
func TestSmallContentIsJournaledInTheLog(t *testing.T) {
	j := newJournal(t)
	cp, err := j.Begin(Meta{FrontEnd: "filter"})
	if err != nil {
		t.Fatal(err)
	}
	small, big := []byte("package main\n"), bytes.Repeat([]byte("x"), InlineMax+1)
	changes := []Change{
		{Path: "a.go", Before: State{Kind: None}, After: State{Kind: File, Mode: 0o644, Size: int64(len(small)), Data: small}},
		{Path: "big.txt", Before: State{Kind: None}, After: State{Kind: File, Mode: 0o644, Size: int64(len(big)), Data: big}},
		{Path: "empty", Before: State{Kind: File, Mode: 0o600, Data: []byte{}}, After: State{Kind: None}},
	}
	id, err := cp.Intend(changes)
	if err != nil {
		t.Fatal(err)
	}
	if changes[0].After.Sum != "" {
		t.Fatal("Intend changed the caller's changes")
	}
	if err := cp.Done(id); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(j.logPath())
	if !bytes.Contains(log, []byte(`"data":"cGFja2FnZSBtYWluCg=="`)) || bytes.Contains(log, []byte(`"data":"eHh4`)) {
		t.Fatalf("the small content is not inline in the log, or the big one is")
	}
	got, err := j.Changes(cp.Number())
	if err != nil || len(got) != 3 {
		t.Fatal(got, err)
	}
	if !bytes.Equal(got[0].After.Data, small) || got[0].After.Sum != Sum(small) || got[1].After.Data != nil || got[1].After.Sum != Sum(big) || got[2].Before.Sum != Sum(nil) {
		t.Fatalf("changes: %+v", got)
	}
	for _, c := range []struct {
		st   State
		want []byte
	}{{got[0].After, small}, {got[1].After, big}, {got[2].Before, []byte{}}} {
		if b, err := j.Content(c.st); err != nil || !bytes.Equal(b, c.want) {
			t.Errorf("Content of %s: %d bytes, %v", c.st.Sum, len(b), err)
		}
	}
	// Its object is written at the checkpoint's end, without fsync; lost
	// to a crash, the log has it.
	if _, err := os.Stat(j.objectPath(Sum(small))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the inline content's object was written before the checkpoint's end: %v", err)
	}
	if b, err := j.Get(Sum(small)); err != nil || !bytes.Equal(b, small) {
		t.Errorf("Get from the log: %q, %v", b, err)
	}
	if err := cp.End(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(j.objectPath(Sum(small))); err != nil {
		t.Fatalf("the inline content's object was not written: %v", err)
	}
	if b, err := j.Get(Sum(small)); err != nil || !bytes.Equal(b, small) {
		t.Errorf("Get from the log: %q, %v", b, err)
	}
	if _, err := j.Get(Sum([]byte("never stored"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get of content stored nowhere: %v", err)
	}
	bad := []Change{{Path: "x", Before: State{Kind: None}, After: State{Kind: File, Sum: Sum([]byte("other")), Data: small}}}
	if _, err := cp.Intend(bad); err == nil {
		t.Error("Intend took Data that is not what its Sum names")
	}
}
