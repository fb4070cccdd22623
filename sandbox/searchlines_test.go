package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// TestSearchLinesMergeContextAndShowEveryMatchAsAMatch: matches close
// together share their context, each line is shown once, a match that is
// also another's context is shown as a match, and groups apart are broken.
func TestSearchLinesMergeContextAndShowEveryMatchAsAMatch(t *testing.T) {
	dir := t.TempDir()
	var f strings.Builder
	for i := 1; i <= 12; i++ {
		w := "line"
		if i == 3 || i == 4 || i == 10 {
			w = "hit"
		}
		fmt.Fprintf(&f, "%s %d\n", w, i)
	}
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte(f.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("hit b\n"), 0o644)
	sb, err := sandbox.NewLocal(dir, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	search := func(q parser.Query) (*sandbox.SearchResult, error) {
		q.Text = "hit"
		return sb.Search(context.Background(), q)
	}
	res, err := search(parser.Query{Context: 2})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for l := range res.Lines() {
		s := fmt.Sprintf("%s-%d-%s", l.Path, l.Line, l.Text)
		if l.Match {
			s = fmt.Sprintf("%s:%d:%s", l.Path, l.Line, l.Text)
		}
		if l.Break {
			got = append(got, "--")
		}
		got = append(got, s)
	}
	want := []string{
		"a.txt-1-line 1", "a.txt-2-line 2", "a.txt:3:hit 3", "a.txt:4:hit 4", "a.txt-5-line 5", "a.txt-6-line 6",
		"--", "a.txt-8-line 8", "a.txt-9-line 9", "a.txt:10:hit 10", "a.txt-11-line 11", "a.txt-12-line 12",
		"--", "b.txt:1:hit b",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without context: matches only, no breaks.
	res, _ = search(parser.Query{})
	n := 0
	for l := range res.Lines() {
		if !l.Match || l.Break {
			t.Fatalf("without context: %+v", l)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("%d lines without context", n)
	}
	// Out of 0 to MaxContext: refused, saying the rule.
	for _, c := range []int{-1, sandbox.MaxContext + 1} {
		_, err := search(parser.Query{Context: c})
		if e := sandbox.AsError(err); e == nil || e.Code != sandbox.CodeInvalidQuery || !strings.Contains(e.Message, "from 1 to 20") {
			t.Errorf("context %d: %v", c, err)
		}
	}
}
