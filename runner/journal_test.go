package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// TestAJournalRecordsWhatAWorkspaceChanged: with a journal checkpoint as
// its recorder, a workspace's write, delete and move land in the journal
// with the contents before and after, which read back byte for byte; the
// kinds of the two packages agree.
func TestAJournalRecordsWhatAWorkspaceChanged(t *testing.T) {
	for _, k := range [][2]string{{sandbox.StateNone, journal.None}, {sandbox.StateFile, journal.File}, {sandbox.StateDir, journal.Dir}, {sandbox.StateSymlink, journal.Symlink}} {
		if k[0] != k[1] {
			t.Fatalf("kind %q in sandbox is %q in journal", k[0], k[1])
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "old.txt"), []byte("old\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)
	sb, j := localJournaled(t, dir)
	cp, err := j.Begin(journal.Meta{FrontEnd: "filter"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := sandbox.WithOptions(context.Background(), sandbox.Options{Recorder: runner.JournalRecorder{Checkpoint: cp}})
	big := bytes.Repeat([]byte("0123456789abcdef"), journal.InlineMax/16+1)
	if _, err := sb.Write(ctx, "big.bin", big); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Move(ctx, "old.txt", "new.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Delete(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	if err := cp.End(); err != nil {
		t.Fatal(err)
	}
	changes, err := j.Changes(cp.Number())
	if err != nil || len(changes) != 4 {
		t.Fatalf("%d changes, %v", len(changes), err)
	}
	want := []struct {
		path          string
		before, after string
		content       []byte // of after, or before when after is none
	}{
		{"big.bin", journal.None, journal.File, big},
		{"old.txt", journal.File, journal.None, []byte("old\n")},
		{"new.txt", journal.None, journal.File, []byte("old\n")},
		{"empty", journal.File, journal.None, []byte{}},
	}
	for i, w := range want {
		c := changes[i]
		if c.Path != w.path || c.Before.Kind != w.before || c.After.Kind != w.after {
			t.Fatalf("change %d: %+v", i, c)
		}
		st := c.After
		if st.Kind == journal.None {
			st = c.Before
		}
		if got, err := j.Content(st); err != nil || !bytes.Equal(got, w.content) {
			t.Errorf("%s: content %d bytes, %v; want %d", w.path, len(got), err, len(w.content))
		}
	}
	if changes[1].Before.Mode != 0o600 || changes[2].After.Mode != 0o600 {
		t.Errorf("modes: %o, %o", changes[1].Before.Mode, changes[2].After.Mode)
	}
}

// TestCallsAskedForAloneAreEachTheirOwnCheckpoint: operations asked for
// alone (MCP calls), running at once, each get a checkpoint of their own,
// with only their own change in it, even when one ends while another is
// being recorded.
func TestCallsAskedForAloneAreEachTheirOwnCheckpoint(t *testing.T) {
	sb, j := localJournaled(t, t.TempDir())
	r := &runner.Runner{Sandbox: sb, Journal: j, FrontEnd: "mcp"}
	const calls = 8
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Go(func() {
			name := fmt.Sprintf("f%d.txt", i)
			c := parser.Command{Kind: parser.Write, Arg: name, Args: parser.Args{Path: name}, Body: []byte(name), BodySize: int64(len(name))}
			res, err := r.DoOp(context.Background(), runner.Op{Command: c})
			if err == nil && res.Err != nil {
				err = res.Err
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	list, err := j.Index()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != calls {
		t.Fatalf("%d checkpoints for %d calls", len(list), calls)
	}
	seen := map[string]bool{}
	for _, cp := range list {
		cs, err := j.Changes(cp.Number)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || seen[cs[0].Path] {
			t.Fatalf("checkpoint %d: %+v", cp.Number, cs)
		}
		seen[cs[0].Path] = true
	}
	if r.Checkpoint() != 0 {
		t.Errorf("a checkpoint is left being filled: %d", r.Checkpoint())
	}
}

// localJournaled is a local sandbox on dir and a journal of its own,
// closed when the test ends.
func localJournaled(t testing.TB, dir string) (*sandbox.Local, *journal.Journal) {
	t.Helper()
	sb, err := sandbox.NewLocal(dir, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return sb, j
}
