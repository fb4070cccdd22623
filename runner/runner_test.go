package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/llm-runtime/llm-runtime/audit"
	"github.com/llm-runtime/llm-runtime/output"
	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

func setup(t *testing.T, files map[string]string) (string, sandbox.Sandbox) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sb, err := sandbox.NewLocal(dir, sandbox.Limits{MaxWriteSize: 64, MaxSearchResults: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return dir, sb
}

func run(t *testing.T, sb sandbox.Sandbox, format, input string) (string, output.Summary) {
	t.Helper()
	var out bytes.Buffer
	rep, err := output.New(format, &out)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Sandbox: sb, Report: rep, MaxWriteSize: 64}
	sum, err := r.Run(context.Background(), strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), sum
}

var elapsed = regexp.MustCompile(`Time elapsed: \d+\.\d\ds`)

func TestRunPrintsTheFramingLineForLine(t *testing.T) {
	dir, sb := setup(t, map[string]string{"go.mod": "module x\n", "a.txt": "no newline", "src/a.go": "// TODO one\n// TODO two\n// TODO three\n"})
	input := "Reading: <open go.mod> <open a.txt>\n" +
		"<write notes.txt>\nProject uses Go\n</write> <write notes.txt>v2</write>\n" +
		"<open missing.txt> <exec ls> <search TODO> <open ../x> <write big.txt>" + strings.Repeat("x", 65) + "</write>\n" +
		"<open unterminated"
	got, sum := run(t, sb, "text", input)
	want := `=== LLM TOOL START ===
=== COMMAND: <open go.mod> ===
=== FILE: go.mod ===
module x
=== END FILE ===
=== END COMMAND ===
=== COMMAND: <open a.txt> ===
=== FILE: a.txt ===
no newline
=== END FILE (no newline at end) ===
=== END COMMAND ===
=== COMMAND: <write notes.txt> ===
=== WRITE SUCCESSFUL: notes.txt ===
Action: CREATED
Bytes written: 16
=== END COMMAND ===
=== COMMAND: <write notes.txt> ===
=== WRITE SUCCESSFUL: notes.txt ===
Action: UPDATED
Bytes written: 2
=== END COMMAND ===
=== COMMAND: <open missing.txt> ===
=== ERROR: FILE_NOT_FOUND ===
Message: no such file: missing.txt
Command: <open missing.txt>
=== END COMMAND ===
=== COMMAND: <exec ls> ===
=== ERROR: EXEC_DISABLED ===
Message: exec is disabled: the local sandbox has no container boundary and cannot run commands
Command: <exec ls>
=== END COMMAND ===
=== COMMAND: <search TODO> ===
=== SEARCH: TODO ===
src/a.go:1: // TODO one
src/a.go:2: // TODO two
Matches: 3 in 1 file (showing the first 2)
=== END SEARCH ===
=== END COMMAND ===
=== COMMAND: <open ../x> ===
=== ERROR: PATH_SECURITY ===
Message: path "../x" leaves the repository
Command: <open ../x>
=== END COMMAND ===
=== COMMAND: <write big.txt> ===
=== ERROR: RESOURCE_LIMIT ===
Message: content is 65 bytes; the limit (security.max_write_size) is 64 bytes; nothing was written
Command: <write big.txt>
=== END COMMAND ===
=== COMMAND: <open unterminated ===
=== ERROR: PARSE_ERROR ===
Message: no '>' before the end of input
Command: <open unterminated
=== END COMMAND ===
=== LLM TOOL COMPLETE ===
Commands executed: 10
Time elapsed: 0.00s
=== END ===
`
	if g := elapsed.ReplaceAllString(got, "Time elapsed: 0.00s"); g != want {
		t.Fatalf("output:\n%s\nwant:\n%s", g, want)
	}
	if sum.Commands != 10 || sum.Failed != 5 {
		t.Fatalf("summary %+v", sum)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "v2" {
		t.Fatalf("notes.txt = %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "big.txt")); err == nil {
		t.Fatal("an oversized write created a file")
	}
}

func TestRunWithNoCommands(t *testing.T) {
	_, sb := setup(t, nil)
	got, _ := run(t, sb, "text", "just prose, <b>html</b> and a < sign")
	want := "=== LLM TOOL START ===\n=== LLM TOOL COMPLETE ===\nCommands executed: 0\nTime elapsed: 0.00s\n=== END ===\n"
	if elapsed.ReplaceAllString(got, "Time elapsed: 0.00s") != want {
		t.Fatalf("got %q", got)
	}
}

func TestRunJSONLinesOneObjectPerCommand(t *testing.T) {
	_, sb := setup(t, map[string]string{"a.txt": "hi\n", "raw.txt": "\xff\xfe", "empty.txt": ""})
	got, _ := run(t, sb, "jsonl", "<open a.txt> <open raw.txt> <open empty.txt> <write b.txt>x</write> <search nothing-matches> <open nope>")
	sc := bufio.NewScanner(strings.NewReader(got))
	var recs []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		recs = append(recs, m)
	}
	if len(recs) != 6 {
		t.Fatalf("%d lines, want 6:\n%s", len(recs), got)
	}
	checks := []struct {
		i     int
		field string
		want  any
	}{
		{0, "content", "hi\n"}, {0, "ok", true}, {0, "command", "open"}, {0, "index", 1.0}, {0, "tag", "<open a.txt>"},
		{1, "content_base64", "//4="},
		{2, "content", ""},
		{3, "action", "CREATED"}, {3, "bytes_written", 1.0}, {3, "path", "b.txt"},
		{4, "total_matches", 0.0},
		{5, "ok", false},
	}
	for _, c := range checks {
		if recs[c.i][c.field] != c.want {
			t.Errorf("line %d: %s = %#v, want %#v", c.i+1, c.field, recs[c.i][c.field], c.want)
		}
	}
	if m, ok := recs[4]["matches"].([]any); !ok || len(m) != 0 {
		t.Errorf("search with no match: matches = %#v, want []", recs[4]["matches"])
	}
	if e, _ := recs[5]["error"].(map[string]any); e["code"] != "FILE_NOT_FOUND" {
		t.Errorf("error: %#v", recs[5]["error"])
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	_, sb := setup(t, map[string]string{"a.txt": "a"})
	var out bytes.Buffer
	rep, _ := output.New("text", &out)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &Runner{Sandbox: sb, Report: rep, MaxWriteSize: 64}
	sum, err := r.Run(ctx, strings.NewReader("<open a.txt>"))
	if err == nil || sum.Commands != 0 || !strings.Contains(out.String(), "=== END ===") {
		t.Fatalf("err %v, summary %+v, output %q", err, sum, out.String())
	}
}

// syncWriter is a bytes.Buffer safe to read while Run writes to it.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string { w.mu.Lock(); defer w.mu.Unlock(); return w.buf.String() }

// TestRunEndsWhenCancelledWhileWaitingForInput: cancelled while the input
// is open, a run ends at once, and its output says it was interrupted, in
// both formats.
func TestRunEndsWhenCancelledWhileWaitingForInput(t *testing.T) {
	for format, first := range map[string]string{"text": "=== END COMMAND ===", "jsonl": "\n"} {
		t.Run(format, func(t *testing.T) {
			_, sb := setup(t, map[string]string{"a.txt": "A\n"})
			var out syncWriter
			rep, _ := output.New(format, &out)
			pr, pw := io.Pipe() // never closed: the input stays open, as a model's would
			defer pw.Close()
			ctx, cancel := context.WithCancel(context.Background())
			r := &Runner{Sandbox: sb, Report: rep, MaxWriteSize: 64}
			done := make(chan error, 1)
			var sum output.Summary
			go func() {
				var err error
				sum, err = r.Run(ctx, pr)
				done <- err
			}()
			io.WriteString(pw, "<open a.txt>\n")
			for !strings.Contains(out.String(), first) {
				runtime.Gosched()
			}
			// Run is now blocked reading more input.
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v, want context.Canceled", err)
			}
			if !sum.Interrupted || sum.Commands != 1 {
				t.Errorf("summary %+v, want 1 command, interrupted", sum)
			}
			got := out.String()
			want := "=== FILE: a.txt ===\nA\n=== END FILE ===\n=== END COMMAND ===\n=== LLM TOOL INTERRUPTED ===\nCommands executed: 1\nThe run was interrupted: no command after these ran.\nTime elapsed: "
			if format == "jsonl" {
				want = `"content":"A\n"}` + "\n" + `{"interrupted":true,"commands_executed":1}` + "\n"
			}
			if !strings.Contains(got, want) || strings.Contains(got, "COMPLETE") {
				t.Fatalf("output:\n%s\nwant it to hold:\n%s", got, want)
			}
		})
	}
}

func TestRunToTheEndOfItsInputIsNotInterrupted(t *testing.T) {
	_, sb := setup(t, map[string]string{"a.txt": "A\n"})
	for _, format := range []string{"text", "jsonl"} {
		var out bytes.Buffer
		rep, _ := output.New(format, &out)
		r := &Runner{Sandbox: sb, Report: rep, MaxWriteSize: 64}
		sum, err := r.Run(context.Background(), strings.NewReader("<open a.txt>"))
		if err != nil || sum.Interrupted || strings.Contains(out.String(), "nterrupted") {
			t.Errorf("%s: %v, %+v\n%s", format, err, sum, out.String())
		}
	}
}

func TestCtxReaderReadsOnlyWhenAsked(t *testing.T) {
	src := &countingReader{data: []byte("abcdef")}
	r := newCtxReader(context.Background(), src)
	p := make([]byte, 2)
	for i, want := range []string{"ab", "cd", "ef"} {
		n, err := r.Read(p)
		if err != nil || string(p[:n]) != want || src.reads != i+1 {
			t.Fatalf("read %d: %q %v after %d reads of the source", i, p[:n], err, src.reads)
		}
	}
	if _, err := r.Read(p); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
	if _, err := r.Read(p); err != io.EOF {
		t.Fatalf("after the end: %v", err)
	}
}

type countingReader struct {
	data  []byte
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	c.reads++
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

func TestInRootTakesAbsolutePathsInTheRepositoryRelativeToIt(t *testing.T) {
	r := &Runner{Roots: []string{"/home/u/proj", "/link/proj"}}
	for p, want := range map[string]string{
		"/home/u/proj/go.mod":     "go.mod",
		"/link/proj/a/b.go":       "a/b.go",
		"/home/u/proj":            ".",
		"/home/u/proj/":           ".",
		"/home/u/proj/../x":       "../x", // the sandbox refuses it
		"/home/u/project2/go.mod": "/home/u/project2/go.mod",
		"/etc/passwd":             "/etc/passwd",
		"go.mod":                  "go.mod",
	} {
		if got := r.inRoot(p); got != want {
			t.Errorf("inRoot(%q) = %q, want %q", p, got, want)
		}
	}
}

// recorder keeps records, or fails.
type recorder struct {
	recs []*audit.Record
	err  error
}

func (r *recorder) Append(rec *audit.Record) error {
	if r.err != nil {
		return r.err
	}
	r.recs = append(r.recs, rec)
	return nil
}

// TestDoRunsOneCommandAndRecordsItFirst: Do is the operation path a front
// end other than the filter uses: its record is in the audit log when it
// returns, and when the log fails there is no result to show.
func TestDoRunsOneCommandAndRecordsItFirst(t *testing.T) {
	_, sb := setup(t, map[string]string{"a.txt": "A\n"})
	rec := &recorder{}
	r := &Runner{Sandbox: sb, MaxWriteSize: 64, Audit: rec, Repo: "/repo"}
	res, err := r.Do(context.Background(), parser.CommandOf(parser.Open, "a.txt"))
	if err != nil || res.File == nil || string(res.File.Content) != "A\n" {
		t.Fatalf("Do: %+v %v", res, err)
	}
	if len(rec.recs) != 1 || rec.recs[0].Op != "open" || rec.recs[0].Target != "a.txt" || rec.recs[0].Outcome != audit.OK {
		t.Fatalf("records: %+v", rec.recs)
	}
	res, err = r.Do(context.Background(), parser.CommandOf(parser.Open, "missing"))
	if err != nil || res.Err == nil || res.Err.Code != sandbox.CodeFileNotFound || len(rec.recs) != 2 || rec.recs[1].Code != sandbox.CodeFileNotFound {
		t.Fatalf("a failing command: %+v %v, records %d", res, err, len(rec.recs))
	}
	rec.err = errors.New("disk full")
	if res, err := r.Do(context.Background(), parser.CommandOf(parser.Open, "a.txt")); err == nil || res != nil {
		t.Fatalf("with the audit log failing: %+v %v", res, err)
	}
}
