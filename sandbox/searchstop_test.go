package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// costly is a regular expression whose match costs the length of a line
// times about 4,500 steps (Go's regexp is linear, but in the size of its
// program too): about a minute for a line of a megabyte. It is under
// sandbox.MaxRegexpSize, so only the time limit can stop it.
var costly = parser.Query{Text: `(.*.*...){500}x`, Regex: true}

// hostile is a repository of files that costly takes minutes to search.
func hostile(t *testing.T, files map[string]string) (*sandbox.Local, string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return local(t, dir, sandbox.Limits{SearchTimeout: 100 * time.Millisecond}), dir
}

func local(t *testing.T, dir string, limits sandbox.Limits) *sandbox.Local {
	t.Helper()
	sb, err := sandbox.NewLocal(dir, limits)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// TestSearchRefusesARegularExpressionOverTheSizeLimit: a pattern that
// compiles to more than MaxRegexpSize instructions is INVALID_QUERY,
// saying its size and the limit, in both ways of asking; the largest
// everyday patterns are well under it.
func TestSearchRefusesARegularExpressionOverTheSizeLimit(t *testing.T) {
	sb := local(t, t.TempDir(), sandbox.Limits{})
	ctx := context.Background()
	_, err := sb.Search(ctx, parser.Query{Text: `(.*.*...){1000}x`, Regex: true})
	want := fmt.Sprintf("it compiles to 9003 instructions, and the limit is %d", sandbox.MaxRegexpSize)
	if e := sandbox.AsError(err); e == nil || e.Code != sandbox.CodeInvalidQuery || !strings.Contains(e.Message, want) {
		t.Fatalf("got %v, want INVALID_QUERY saying %q", err, want)
	}
	var names []string
	for i := 0; len(strings.Join(names, "|")) < 4000; i++ {
		names = append(names, fmt.Sprintf("handle%05d", i*7919%100000))
	}
	for _, q := range []string{`func\s+\w+\(`, `(?i)(create|update|delete|select)\s+(from|into|table)\s+\w+`, `\w{1,1000}`,
		`[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}`, strings.Join(names, "|")} {
		if _, err := sb.Search(ctx, parser.Query{Text: q, Regex: true}); err != nil {
			t.Errorf("%.40s: %v", q, err)
		}
	}
}

// TestSearchKeepsItsTimeLimitInsideALongLine: one line of a megabyte,
// which costly takes about a minute to match, stops at search.timeout.
// (Before, the limit was looked at only between files, and the one file
// was searched to its end, with no Partial.)
func TestSearchKeepsItsTimeLimitInsideALongLine(t *testing.T) {
	sb, _ := hostile(t, map[string]string{"one.txt": strings.Repeat("y", sandbox.DefaultMaxFileSize-1)})
	res, err := sb.Search(context.Background(), costly)
	if err != nil {
		t.Fatal(err)
	}
	if want := "stopped at search.timeout (100ms) after 0 files; "; !strings.HasPrefix(res.Partial, want) {
		t.Fatalf("Partial %q, want it to start %q", res.Partial, want)
	}
}

// TestSearchKeepsItsTimeLimitBetweenLinesAndDropsTheQueue: twenty files
// of lines that each take milliseconds (matched whole: each is cheap
// enough) stop at search.timeout, and the files still queued are not
// searched.
func TestSearchKeepsItsTimeLimitBetweenLinesAndDropsTheQueue(t *testing.T) {
	files := map[string]string{}
	line := strings.Repeat("y", 999) + "\n"
	for i := range 20 {
		files[fmt.Sprintf("f%02d.txt", i)] = strings.Repeat(line, 1000)
	}
	sb, _ := hostile(t, files)
	// About 60 steps a byte: 6 ms a line, 6 s a file, 2 minutes in all.
	res, err := sb.Search(context.Background(), parser.Query{Text: `(.*.*...){60}x`, Regex: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "stopped at search.timeout (100ms) after 0 files; "; !strings.HasPrefix(res.Partial, want) {
		t.Fatalf("Partial %q, want it to start %q", res.Partial, want)
	}
}

// TestSearchGivesWayToItsContextWithWhatItFound: cancelled while it
// matches a costly line, a search returns at once with the matches it
// found before, and says it was interrupted. One worker (GOMAXPROCS 1)
// searches the files in order, so a.txt is done when b.txt has been read.
func TestSearchGivesWayToItsContextWithWhatItFound(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a needle\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte(strings.Repeat("y", sandbox.DefaultMaxFileSize-1)), 0o644)
	sb := local(t, dir, sandbox.Limits{SearchTimeout: 0}) // no time limit
	read := closedAfterReading(t, filepath.Join(dir, "b.txt"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-read
		cancel()
	}()
	res, err := sb.Search(ctx, parser.Query{Text: costly.Text + "|needle", Regex: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "interrupted after 1 file (the run was stopped)"; !strings.HasPrefix(res.Partial, want) {
		t.Fatalf("Partial %q, want it to start %q", res.Partial, want)
	}
	if res.Total != 1 || len(res.Matches) != 1 || res.Matches[0].Path != "a.txt" {
		t.Fatalf("got %+v, want the match of a.txt", res)
	}
	// Already cancelled, it searches nothing.
	if _, err := sb.Search(ctx, parser.Query{Text: "needle"}); code(err) != sandbox.CodeCanceled {
		t.Fatalf("a cancelled search: %v, want CANCELED", err)
	}
}

// code is err's code, or "" for none.
func code(err error) string {
	if e := sandbox.AsError(err); e != nil {
		return e.Code
	}
	return ""
}

// closedAfterReading returns a channel closed when the file at path has
// been opened and closed without being written (inotify's
// IN_CLOSE_NOWRITE): a search has read it.
func closedAfterReading(t *testing.T, path string) <-chan struct{} {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_CLOSE_NOWRITE); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		buf := make([]byte, 4096)
		unix.Read(fd, buf) // one event: the only one watched for
		close(done)
	}()
	return done
}

// TestSearchOnlyLooksAtTheFilesNamed: Options.Only restricts a search to
// its files (the policies' second search: the files they allowed), and
// Skip still leaves one out.
func TestSearchOnlyLooksAtTheFilesNamed(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		os.WriteFile(filepath.Join(dir, name), []byte("needle\n"), 0o644)
	}
	sb := local(t, dir, sandbox.Limits{})
	res, err := sb.Search(sandbox.WithOptions(context.Background(), sandbox.Options{Only: []string{"a.txt", "c.txt"}, Skip: []string{"c.txt"}}), parser.Query{Text: "needle"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 1 || res.Files != 1 || res.Matches[0].Path != "a.txt" {
		t.Fatalf("got %+v, want a.txt alone", res)
	}
}
