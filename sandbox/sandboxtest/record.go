package sandboxtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// fakeRecorder keeps what it is asked, and fails an intent when told (a
// journal's adapter is tested with the real journal in package runner).
type fakeRecorder struct {
	intents [][]sandbox.PathChange
	outcome []string
	fail    bool
	dir     string   // the repository, where an intent must find each file as it was
	early   []string // changes found made before their intent returned
}

func (f *fakeRecorder) Intend(cs []sandbox.PathChange) (uint64, error) {
	for _, c := range cs {
		if c.Before.Kind != sandbox.StateFile {
			continue
		}
		// A file's new content may be written beside it meanwhile (staged),
		// never in its place before the record is durable.
		if b, err := os.ReadFile(filepath.Join(f.dir, c.Path)); err != nil || string(b) != string(c.Before.Data) {
			f.early = append(f.early, fmt.Sprintf("%s holds %q (%v) while its change is recorded", c.Path, b, err))
		}
	}
	if f.fail {
		return 0, errors.New("disk full")
	}
	f.intents = append(f.intents, cs)
	return uint64(len(f.intents)), nil
}
func (f *fakeRecorder) Done(id uint64) error {
	f.outcome = append(f.outcome, fmt.Sprint("done ", id))
	return nil
}
func (f *fakeRecorder) Abort(id uint64, reason string) error {
	f.outcome = append(f.outcome, fmt.Sprint("abort ", id, ": ", reason))
	return nil
}

// describe is a change as a line: path, kinds, modes and contents.
func describe(c sandbox.PathChange) string {
	state := func(s sandbox.PathState) string {
		switch s.Kind {
		case sandbox.StateFile:
			return fmt.Sprintf("file %o %q", s.Mode, s.Data)
		case sandbox.StateSymlink:
			return "symlink " + s.Target
		case sandbox.StateDir:
			return fmt.Sprintf("dir %o", s.Mode)
		}
		return s.Kind
	}
	return c.Path + ": " + state(c.Before) + " -> " + state(c.After)
}

// testRecord: write, edit, delete and move, given a Recorder, journal what
// each path held and holds after, read on the descriptors of the change
// (in the agent, for a sandbox whose agent makes them, sent to the host
// in the middle of the request), before it is made; a change whose record
// fails is not made; one that fails after its record is aborted.
func testRecord(t *testing.T, newSandbox Factory) {
	dir := filepath.Join(t.TempDir(), "repo")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "a.go"), []byte("package a\n"), 0o640)
	os.MkdirAll(filepath.Join(dir, "pkg/sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "pkg/sub/b.go"), []byte("package b\n"), 0o600)
	os.Symlink("a.go", filepath.Join(dir, "link"))
	os.Mkdir(filepath.Join(dir, "empty"), 0o750)
	sb := newSandbox(t, dir, Limits)
	defer sb.Close()
	rec := &fakeRecorder{dir: dir}
	ctx := sandbox.WithOptions(context.Background(), sandbox.Options{Recorder: rec})
	steps := []struct {
		do   func() error
		want []string
	}{
		{func() error { _, err := sb.Write(ctx, "new.txt", []byte("new\n")); return err }, []string{`new.txt: none -> file 644 "new\n"`}},
		{func() error { _, err := sb.Write(ctx, "d1/d2/x.txt", []byte("x\n")); return err }, []string{"d1: none -> dir 755", "d1/d2: none -> dir 755", `d1/d2/x.txt: none -> file 644 "x\n"`}},
		{func() error { _, err := sb.Write(ctx, "a.go", []byte("package a // v2\n")); return err }, []string{`a.go: file 640 "package a\n" -> file 640 "package a // v2\n"`}},
		{func() error {
			_, err := sb.Edit(ctx, "a.go", []byte("<<<<<<< SEARCH\npackage a // v2\n=======\npackage a // v3\n>>>>>>> REPLACE\n"))
			return err
		}, []string{`a.go: file 640 "package a // v2\n" -> file 640 "package a // v3\n"`}},
		{func() error { _, err := sb.Delete(ctx, "link"); return err }, []string{"link: symlink a.go -> none"}},
		{func() error { _, err := sb.Delete(ctx, "empty"); return err }, []string{"empty: dir 750 -> none"}},
		{func() error {
			_, err := sb.Move(sandbox.WithOptions(ctx, sandbox.Options{Recorder: rec, Overwrite: true}), "new.txt", "a.go")
			return err
		}, []string{`new.txt: file 644 "new\n" -> none`, `a.go: file 640 "package a // v3\n" -> file 644 "new\n"`}},
		{func() error { _, err := sb.Move(ctx, "pkg", "lib/pkg"); return err }, []string{
			"lib: none -> dir 755", // made on its way
			"pkg: dir 755 -> none", "lib/pkg: none -> dir 755",
			"pkg/sub: dir 755 -> none", "lib/pkg/sub: none -> dir 755",
			`pkg/sub/b.go: file 600 "package b\n" -> none`, `lib/pkg/sub/b.go: none -> file 600 "package b\n"`,
		}},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		var got []string
		for _, c := range rec.intents[i] {
			got = append(got, describe(c))
		}
		if strings.Join(got, "\n") != strings.Join(s.want, "\n") {
			t.Errorf("step %d recorded:\n%s\nwant:\n%s", i+1, strings.Join(got, "\n"), strings.Join(s.want, "\n"))
		}
	}
	if len(rec.outcome) != len(steps) || rec.outcome[len(steps)-1] != fmt.Sprint("done ", len(steps)) {
		t.Errorf("outcomes %q", rec.outcome)
	}
	// A delete refused after its record (a directory not empty): aborted.
	if _, err := sb.Delete(ctx, "lib/pkg"); sandbox.AsError(err).Code != sandbox.CodeIsDirectory {
		t.Fatalf("delete of a full directory: %v", err)
	}
	if last := rec.outcome[len(rec.outcome)-1]; !strings.HasPrefix(last, fmt.Sprint("abort ", len(steps)+1, ": lib/pkg is a directory that is not empty")) {
		t.Errorf("the failed delete's outcome: %q", last)
	}
	// A record that fails: nothing is done.
	rec.fail = true
	if _, err := sb.Write(ctx, "a.go", []byte("lost\n")); err == nil || !strings.Contains(err.Error(), "could not be journaled, so it was not made: disk full") {
		t.Fatalf("a write whose record failed: %v", err)
	}
	if _, err := sb.Edit(ctx, "a.go", []byte("<<<<<<< SEARCH\nnew\n=======\nlost\n>>>>>>> REPLACE\n")); err == nil || !strings.Contains(err.Error(), "could not be journaled") {
		t.Fatalf("an edit whose record failed: %v", err)
	}
	if _, err := sb.Delete(ctx, "lib/pkg/sub/b.go"); err == nil {
		t.Fatal("a delete whose record failed was made")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.go")); string(b) != "new\n" {
		t.Errorf("a.go = %q", b)
	}
	// The new contents, written beside a.go while the records failed, are
	// gone with them.
	if left, _ := filepath.Glob(filepath.Join(dir, ".llm-runtime-*")); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
	if len(rec.early) > 0 {
		t.Errorf("changes made before their record:\n%s", strings.Join(rec.early, "\n"))
	}
	if _, err := os.Stat(filepath.Join(dir, "lib/pkg/sub/b.go")); err != nil {
		t.Errorf("b.go: %v", err)
	}
}
