package journal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

// TestSmallContentIsJournaledInTheLog: content given with the intent is
// in the log itself (one fsync makes both durable), Changes gives it back,
// Get finds it as an object written lazily or, that object lost to a
// crash, in the log; content over InlineMax once compressed is Put and
// named only, and content over it that compresses under it is inline;
// the empty content needs no store; a Data that is not what its Sum names
// is refused.
func TestSmallContentIsJournaledInTheLog(t *testing.T) {
	j := newJournal(t)
	cp, err := j.Begin(Meta{FrontEnd: "filter"})
	if err != nil {
		t.Fatal(err)
	}
	// big does not compress (random bytes); large does, to a fifth.
	small, big := []byte("package main\n"), make([]byte, InlineMax+1)
	rand.NewChaCha8([32]byte{}).Read(big)
	var large bytes.Buffer
	for i := 0; large.Len() < 4*InlineMax; i++ {
		fmt.Fprintf(&large, "func f%d(x int) int {\n\treturn x * %d\n}\n\n", i, i*7919%1000)
	}
	changes := []Change{
		{Path: "a.go", Before: State{Kind: None}, After: State{Kind: File, Mode: 0o644, Size: int64(len(small)), Data: small}},
		{Path: "big.bin", Before: State{Kind: None}, After: State{Kind: File, Mode: 0o644, Size: int64(len(big)), Data: big}},
		{Path: "empty", Before: State{Kind: File, Mode: 0o600, Data: []byte{}}, After: State{Kind: None}},
		{Path: "large.go", Before: State{Kind: None}, After: State{Kind: File, Mode: 0o644, Size: int64(large.Len()), Data: large.Bytes()}},
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
	// The contents after are in the done record, which the tail writes.
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(j.logPath())
	if !bytes.Contains(log, []byte(`"data":"cGFja2FnZSBtYWluCg=="`)) || len(log) > len(big) {
		t.Fatalf("the small content is not inline in the log, or the big one is (the log is %d bytes)", len(log))
	}
	if _, err := os.Stat(j.objectPath(Sum(big))); err != nil {
		t.Fatalf("the big content was not stored: %v", err)
	}
	if _, err := os.Stat(j.objectPath(Sum(large.Bytes()))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the large content, which compresses under InlineMax, was stored before the intent: %v", err)
	}
	got, err := j.Changes(cp.Number())
	if err != nil || len(got) != 4 {
		t.Fatal(len(got), err)
	}
	if !bytes.Equal(got[0].After.Data, small) || got[0].After.Sum != Sum(small) || got[1].After.Data != nil || got[1].After.Sum != Sum(big) || got[2].Before.Sum != Sum(nil) ||
		!bytes.Equal(got[3].After.Data, large.Bytes()) || got[3].After.Sum != Sum(large.Bytes()) {
		t.Fatalf("changes: the small or the large content is not given back from the log, or the big one is, or a sum is wrong")
	}
	for _, c := range []struct {
		st   State
		want []byte
	}{{got[0].After, small}, {got[1].After, big}, {got[2].Before, []byte{}}, {got[3].After, large.Bytes()}} {
		if b, err := j.Content(c.st); err != nil || !bytes.Equal(b, c.want) {
			t.Errorf("Content of %s: %d bytes, %v", c.st.Sum, len(b), err)
		}
	}
	// A content this small gets no object (it would take a block of the
	// disk for a few bytes): the log has it.
	if err := cp.End(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(j.objectPath(Sum(small))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the small inline content got an object: %v", err)
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

// TestContentIsCompressedInTheLogAndStoredOnce: inline content that
// compresses is compressed in the log; content already stored (what an
// earlier change left) is named, not written again; an object a crash
// left empty is read from the log; and a Prune that drops the only record
// holding a content inline writes its object first.
func TestContentIsCompressedInTheLogAndStoredOnce(t *testing.T) {
	j := newJournal(t)
	// 20 KB of source that compresses to more than lazyMin: End writes
	// its object.
	var source []byte
	rng := rand.New(rand.NewPCG(1, 2))
	for len(source) < 20<<10 {
		source = fmt.Appendf(source, "\tv%d := f(%#x, %q)\n", rng.IntN(1000), rng.Uint32(), []string{"alpha", "beta", "gamma"}[rng.IntN(3)])
	}
	next := append(slices.Clone(source), "// changed\n"...)
	change := func(before, after []byte) int64 {
		t.Helper()
		cp, err := j.Begin(Meta{})
		if err != nil {
			t.Fatal(err)
		}
		c := Change{Path: "f.go", Before: State{Kind: None}, After: State{Kind: File, Mode: 0o644, Size: int64(len(after)), Data: after}}
		if before != nil {
			c.Before = State{Kind: File, Mode: 0o644, Size: int64(len(before)), Data: before}
		}
		was, _ := os.Stat(j.logPath())
		id, err := cp.Intend([]Change{c})
		if err != nil {
			t.Fatal(err)
		}
		cp.Done(id)
		cp.End()
		if err := j.Flush(); err != nil {
			t.Fatal(err)
		}
		now, _ := os.Stat(j.logPath())
		return now.Size() - was.Size()
	}
	if n := change(nil, source); n > int64(len(source))/2 {
		t.Errorf("a change that left %d bytes of source is %d bytes of log", len(source), n)
	}
	log, _ := os.ReadFile(j.logPath())
	if !bytes.Contains(log, []byte(`"zdata":"`)) {
		t.Error("the content is not compressed in the log")
	}
	if b, _ := os.ReadFile(j.objectPath(Sum(source))); len(b) == 0 || b[0] != objZstd {
		t.Errorf("the lazily written object is not compressed: %.20q", b)
	}
	// The next change names the content before it (stored) by its sum.
	n := change(source, next)
	if m := change(next, source); m >= n {
		t.Errorf("a change whose contents are both stored is %d bytes of log, not less than one with a new content (%d)", m, n)
	}
	cs, err := j.Changes(2)
	if err != nil || len(cs) != 1 || cs[0].Before.Data != nil || cs[0].Before.Sum != Sum(source) {
		t.Fatalf("checkpoint 2's change: %d changes, %v (the content before inline: %t)", len(cs), err, len(cs) == 1 && cs[0].Before.Data != nil)
	}
	if b, err := j.Content(cs[0].Before); err != nil || !bytes.Equal(b, source) {
		t.Fatalf("the content named: %d bytes, %v", len(b), err)
	}
	// A crash left the lazily written object empty: the log has it.
	if err := os.WriteFile(j.objectPath(Sum(source)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := j.Get(Sum(source)); err != nil || !bytes.Equal(b, source) {
		t.Fatalf("Get of an object a crash left empty: %d bytes, %v", len(b), err)
	}
	// A Prune that drops checkpoint 1, the only record holding source
	// inline, while checkpoint 2 names it, writes its object first.
	if _, err := j.Prune(Retention{Keep: 2, MaxAge: time.Nanosecond, Now: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Changes(1); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("checkpoint 1 is still there: %v", err)
	}
	if log, _ := os.ReadFile(j.logPath()); bytes.Contains(log, []byte(`"zdata":"`+base64.StdEncoding.EncodeToString(encodeObject(source)[1:]))) {
		t.Fatal("the log still holds the content inline")
	}
	b, err := os.ReadFile(j.objectPath(Sum(source)))
	if err != nil {
		t.Fatal(err)
	}
	if content, err := decodeObject(b); err != nil || !bytes.Equal(content, source) {
		t.Fatalf("the object after the Prune: %d bytes, %v", len(content), err)
	}
}

// TestAContentIsHashedOnceAndNeverGivenAnotherSum: the content a change
// leaves is recognised, by its bytes, as the next change's content
// before, and given the sum and the compressed form it had; a content
// that differs, by one byte, or because the caller changed its buffer
// after the intent (an agent sends what it likes), gets its own.
func TestAContentIsHashedOnceAndNeverGivenAnotherSum(t *testing.T) {
	j := newJournal(t)
	cp, err := j.Begin(Meta{FrontEnd: "filter"})
	if err != nil {
		t.Fatal(err)
	}
	file := func(b []byte) State { return State{Kind: File, Mode: 0o644, Size: int64(len(b)), Data: b} }
	v1 := bytes.Repeat([]byte("package main // v1\n"), 300)
	buf := bytes.Repeat([]byte("package main // v2\n"), 300)
	v2 := bytes.Clone(buf)
	intend := func(before, after []byte) {
		t.Helper()
		id, err := cp.Intend([]Change{{Path: "main.go", Before: file(before), After: file(after)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := cp.Done(id); err != nil {
			t.Fatal(err)
		}
	}
	intend(v1, buf)
	buf[100] = 'X' // the caller's buffer, changed after the intent
	changed := bytes.Clone(buf)
	intend(changed, v1) // not what the last change left
	intend(v1, v2)      // what it left: recognised
	near := bytes.Clone(v2)
	near[len(near)-2] ^= 1
	intend(near, v1) // one byte off
	if err := cp.End(); err != nil {
		t.Fatal(err)
	}
	got, err := j.Changes(cp.Number())
	if err != nil {
		t.Fatal(err)
	}
	want := [][2][]byte{{v1, v2}, {changed, v1}, {v1, v2}, {near, v1}}
	if len(got) != len(want) {
		t.Fatalf("%d changes, want %d", len(got), len(want))
	}
	for i, c := range got {
		for k, st := range []State{c.Before, c.After} {
			if st.Sum != Sum(want[i][k]) {
				t.Errorf("change %d, state %d: sum %s, want %s", i+1, k, st.Sum, Sum(want[i][k]))
			}
			content := st.Data
			if content == nil {
				if content, err = j.Get(st.Sum); err != nil {
					t.Fatalf("change %d, state %d: %v", i+1, k, err)
				}
			}
			if !bytes.Equal(content, want[i][k]) {
				t.Errorf("change %d, state %d: the content is not the one given", i+1, k)
			}
		}
	}
}
