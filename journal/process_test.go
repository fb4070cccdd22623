package journal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The tests of several processes run this test binary again as each of
// them, with LLM_RUNTIME_TEST_JOURNAL_HELPER saying what to do in the
// journal at LLM_RUNTIME_TEST_JOURNAL_DIR.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("LLM_RUNTIME_TEST_JOURNAL_HELPER")
	if mode == "" {
		t.Skip("a helper the tests of several processes run")
	}
	dir := os.Getenv("LLM_RUNTIME_TEST_JOURNAL_DIR")
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	switch mode {
	case "checkpoints":
		n, _ := strconv.Atoi(os.Getenv("LLM_RUNTIME_TEST_JOURNAL_N"))
		for i := range n {
			c := fileChange(t, j, fmt.Sprintf("%d/%d", os.Getpid(), i), nil, []byte(fmt.Sprint(os.Getpid(), i)))
			commit(t, j, Meta{Session: fmt.Sprint(os.Getpid()), FrontEnd: "filter"}, c)
		}
	case "lost-done":
		// A change made, its Done returned, and the process gone before
		// the tail wrote the done record (os.Exit runs no deferred Close).
		repo := filepath.Join(filepath.Dir(dir), "repo")
		after := []byte(strings.Repeat("the content the change left\n", 100))
		cp, err := j.Begin(Meta{FrontEnd: "filter"})
		if err != nil {
			t.Fatal(err)
		}
		id, err := cp.Intend([]Change{{Path: "f", Before: State{Kind: None}, After: State{Kind: File, Mode: 0o644, Size: int64(len(after)), Data: after}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, "f"), after, 0o644); err != nil {
			t.Fatal(err)
		}
		j.tail.add(func() error { select {} }) // the tail, stuck: Done's work waits behind
		if err := cp.Done(id); err != nil {
			t.Fatal(err)
		}
		os.Exit(0)
	case "loop":
		// Journaled changes to one file, forever, until killed: a
		// checkpoint of three, every fifth aborted, the file replaced
		// atomically (so it holds one state or the other).
		repo := filepath.Join(filepath.Dir(dir), "repo")
		var cp *Checkpoint
		for i := 0; ; i++ {
			if i%3 == 0 {
				if cp != nil {
					cp.End()
				}
				if cp, err = j.Begin(Meta{FrontEnd: "filter"}); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(repo, "f")
			before, err := os.ReadFile(p)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			after := bytes.Repeat([]byte(fmt.Sprintf("change %d\n", i)), 1+i%50)
			// The contents as a sandbox gives them: the one before inline,
			// the one after named by sum, held by the done record.
			c := Change{Path: "f", Before: State{Kind: None}, After: State{Kind: File, Mode: 0o644, Size: int64(len(after)), Data: after}}
			if before != nil {
				c.Before = State{Kind: File, Mode: 0o644, Size: int64(len(before)), Data: before}
			}
			if i%7 == 6 {
				c = fileChange(t, j, "f", before, after) // or Put first
			}
			fmt.Printf("put %d\n", i)
			id, err := cp.Intend([]Change{c})
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("intent %d\n", id)
			if i%5 == 4 {
				if err := cp.Abort(id, "refused"); err != nil {
					t.Fatal(err)
				}
			} else {
				tmp := filepath.Join(repo, ".tmp")
				if err := os.WriteFile(tmp, after, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, p); err != nil {
					t.Fatal(err)
				}
				fmt.Printf("changed %d\n", id)
				if err := cp.Done(id); err != nil {
					t.Fatal(err)
				}
			}
			// Done and Abort return before their record is written: a
			// kill here leaves the intent pending.
			fmt.Printf("returned %d\n", id)
			if err := j.Flush(); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("outcome %d\n", id)
		}
	}
}

func helper(t *testing.T, mode, dir string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), append(env, "LLM_RUNTIME_TEST_JOURNAL_HELPER="+mode, "LLM_RUNTIME_TEST_JOURNAL_DIR="+dir)...)
	cmd.Stderr = os.Stderr
	return cmd
}

// logRecords reads every record of the log at dir, and fails unless the
// log is whole to its last byte.
func logRecords(t *testing.T, dir string) []record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	end, err := records(b, 0, func(r *record, _ int64, _ []byte) error {
		recs = append(recs, *r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if end != int64(len(b)) {
		t.Fatalf("the log is whole to %d of its %d bytes", end, len(b))
	}
	return recs
}

func TestProcessesAppendingAtOnceKeepOneOrderedLog(t *testing.T) {
	const procs, each = 4, 50
	dir := filepath.Join(t.TempDir(), "journal")
	var wg sync.WaitGroup
	errs := make([]error, procs)
	for i := range procs {
		cmd := helper(t, "checkpoints", dir, fmt.Sprint("LLM_RUNTIME_TEST_JOURNAL_N=", each))
		wg.Go(func() {
			if out, err := cmd.Output(); err != nil {
				errs[i] = fmt.Errorf("helper %d: %v\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var begins []int
	var last uint64
	byPID := map[int]int{}
	for _, r := range logRecords(t, dir) {
		switch r.Type {
		case recBegin:
			begins = append(begins, r.Checkpoint)
			byPID[r.PID]++
		case recIntent:
			if r.Intent <= last {
				t.Errorf("intent %d after %d", r.Intent, last)
			}
			last = r.Intent
		}
	}
	want := make([]int, procs*each)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(begins, want) {
		t.Errorf("checkpoints in the log's order: %v, want 1..%d", begins, procs*each)
	}
	if len(byPID) != procs {
		t.Errorf("checkpoints by process: %v", byPID)
	}
	list, err := open(t, dir).Checkpoints()
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range list {
		if !ci.Ended || ci.Changes != 1 || ci.Pending != 0 {
			t.Errorf("checkpoint %+v", ci)
		}
	}
}

func TestKilledMidWriteTheJournalRecoversExactly(t *testing.T) {
	const iterations = 8
	for iter := range iterations {
		base := t.TempDir()
		dir := filepath.Join(base, "journal")
		os.Mkdir(filepath.Join(base, "repo"), 0o755)
		cmd := helper(t, "loop", dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Killed after a random number of its steps, in the next one.
		lines := 1 + rand.IntN(200)
		sc := bufio.NewScanner(out)
		var reported uint64
		for range lines {
			if !sc.Scan() {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("iteration %d: the helper stopped: %v", iter, sc.Err())
			}
			step, n, _ := strings.Cut(sc.Text(), " ")
			id, err := strconv.ParseUint(n, 10, 64)
			if err != nil {
				t.Fatalf("helper said %q", sc.Text())
			}
			if step == "outcome" {
				reported = id
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait() // a zombie would still look alive

		j := open(t, dir)
		// Open cut any torn tail: the log is whole.
		recs := logRecords(t, dir)
		open := map[uint64]Change{}
		for _, r := range recs {
			switch r.Type {
			case recIntent:
				open[r.Intent] = r.Changes[0]
			case recDone, recAbort:
				delete(open, r.Intent)
			}
		}
		pending, err := j.Pending()
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, in := range pending {
			ids = append(ids, in.ID)
		}
		want := slices.Sorted(func(yield func(uint64) bool) {
			for id := range open {
				if !yield(id) {
					return
				}
			}
		})
		if !slices.Equal(ids, want) {
			t.Errorf("iteration %d: Pending %v, the log's intents without an outcome %v", iter, ids, want)
		}
		if len(pending) > 1 {
			t.Errorf("iteration %d: %d intents pending of a process that made one at a time", iter, len(pending))
		}
		p := filepath.Join(base, "repo", "f")
		read := func() ([]byte, error) { return os.ReadFile(p) }
		for _, in := range pending {
			if in.ID <= reported {
				t.Errorf("iteration %d: intent %d pending, but the helper reported its outcome", iter, in.ID)
			}
			fi, _ := os.Lstat(p)
			c := in.Changes[0]
			var found []byte
			applied := Matches(c.After, fi, func() ([]byte, error) {
				b, err := read()
				found = b
				return b, err
			})
			if !applied && !Matches(c.Before, fi, read) {
				t.Errorf("iteration %d: the file holds neither side of pending intent %d", iter, in.ID)
			}
			if err := j.Resolve(in.ID, applied, found); err != nil {
				t.Fatal(err)
			}
		}
		if p, err := j.Pending(); err != nil || len(p) != 0 {
			t.Errorf("iteration %d: pending after Resolve: %v, %v", iter, p, err)
		}
		// The journal's last done change says what the file holds.
		list, err := j.Checkpoints()
		if err != nil {
			t.Fatal(err)
		}
		var last *Change
		for _, ci := range list {
			changes, err := j.Changes(ci.Number)
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) > 0 {
				last = &changes[len(changes)-1]
				break
			}
		}
		got, err := os.ReadFile(p)
		if last == nil && !errors.Is(err, fs.ErrNotExist) || last != nil && last.After.Sum != Sum(got) {
			t.Errorf("iteration %d: the file holds %q, the journal's last change %+v", iter, got, last)
		}
		// Every content a done change left can be read back, the last one's
		// found on disk by Resolve when its done record was lost.
		for _, ci := range list {
			changes, err := j.Changes(ci.Number)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range changes {
				for _, st := range []State{c.Before, c.After} {
					if b, err := j.Content(st); st.Kind == File && (err != nil || Sum(b) != st.Sum) {
						t.Errorf("iteration %d: checkpoint %d: the content %s of %s: %v", iter, ci.Number, st.Sum, c.Path, err)
					}
				}
			}
		}
		t.Logf("iteration %d: killed after %d steps, %d records, %d pending", iter, lines, len(recs), len(pending))
	}
}

// TestADoneLostWithItsProcessIsFoundOnDisk: the intent names the content
// a change leaves by its sum only (Later), and the done record that holds
// it is written after Done returns: a process gone before that leaves a
// pending intent, which Resolve settles with the content read from disk,
// and the journal then gives it back as if the done record had held it.
func TestADoneLostWithItsProcessIsFoundOnDisk(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "journal")
	os.Mkdir(filepath.Join(base, "repo"), 0o755)
	if out, err := helper(t, "lost-done", dir).Output(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	j := open(t, dir)
	pending, err := j.Pending()
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending: %+v, %v", pending, err)
	}
	in := pending[0]
	a := in.Changes[0].After
	if !a.Later || a.Data != nil {
		t.Fatalf("the state after in the intent: later %t, %d bytes inline", a.Later, len(a.Data))
	}
	if _, err := j.Get(a.Sum); err == nil {
		t.Fatal("the content the lost done record was to hold is in the journal")
	}
	p := filepath.Join(base, "repo", "f")
	fi, _ := os.Lstat(p)
	var found []byte
	if !Matches(a, fi, func() ([]byte, error) { b, err := os.ReadFile(p); found = b; return b, err }) {
		t.Fatal("the file does not hold the state after")
	}
	if err := j.Resolve(in.ID, true); err == nil {
		t.Fatal("Resolve took an applied intent without the content it names by sum only")
	}
	if err := j.Resolve(in.ID, true, []byte("something else")); err == nil {
		t.Fatal("Resolve took a content that is not the one named")
	}
	if err := j.Resolve(in.ID, true, found); err != nil {
		t.Fatal(err)
	}
	changes, err := open(t, dir).Changes(in.Checkpoint)
	if err != nil || len(changes) != 1 || !bytes.Equal(changes[0].After.Data, found) || changes[0].After.Later {
		t.Fatalf("the change, read by another: %d changes, %v", len(changes), err)
	}
	if b, err := j.Get(a.Sum); err != nil || !bytes.Equal(b, found) {
		t.Fatalf("Get: %d bytes, %v", len(b), err)
	}
}
