package mcpserver_test

// In-process tests, over the SDK's in-memory transports, with the local
// sandbox (and, for exec, a sandbox whose commands run until told).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/llm-runtime/llm-runtime/mcpserver"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// slowExec is the local sandbox with an exec that runs until its context
// ends, or for a while.
type slowExec struct {
	*sandbox.Local
	ran      time.Duration
	canceled atomic.Bool
	started  chan struct{}
}

func (s *slowExec) Exec(ctx context.Context, command string) (*sandbox.ExecResult, error) {
	close(s.started)
	select {
	case <-ctx.Done():
		s.canceled.Store(true)
		return nil, sandbox.AsError(ctx.Err())
	case <-time.After(s.ran):
		return &sandbox.ExecResult{ExitCode: 0, Output: []byte("done\n"), Duration: s.ran}, nil
	}
}

type fixture struct {
	dir      string
	cs       *mcp.ClientSession
	sb       *slowExec
	runner   *runner.Runner
	progress atomic.Int32
}

func start(t *testing.T, files map[string]string, o mcpserver.Options) *fixture {
	return startB(t, files, o)
}

func startB(t testing.TB, files map[string]string, o mcpserver.Options) *fixture {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local, err := sandbox.NewLocal(dir, sandbox.Limits{MaxFileSize: 1 << 20, MaxWriteSize: 1 << 16, MaxSearchResults: 100, MaxLineLength: 200})
	if err != nil {
		t.Fatal(err)
	}
	sb := &slowExec{Local: local, ran: time.Hour, started: make(chan struct{})}
	o.Runner = &runner.Runner{Sandbox: sb, MaxWriteSize: 1 << 16, FrontEnd: "mcp", Roots: []string{dir}}
	o.Root = dir
	srv := mcpserver.New(o)
	st, ct := mcp.NewInMemoryTransports()
	ctx, cancel := context.WithCancel(context.Background())
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, sb: sb, runner: o.Runner}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "unit", Version: "0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { f.progress.Add(1) },
	}).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.cs = cs
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
		cancel()
		sb.Close()
	})
	return f
}

func (f *fixture) call(t *testing.T, name string, args map[string]any) (*mcp.CallToolResult, string, map[string]any) {
	t.Helper()
	res, err := f.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		text.WriteString(c.(*mcp.TextContent).Text)
	}
	// The structured content, or read_file's _meta.
	var out map[string]any
	b, _ := json.Marshal(res.StructuredContent)
	json.Unmarshal(b, &out)
	if m, ok := res.Meta[mcpserver.MetaRead]; ok {
		b, _ := json.Marshal(m)
		json.Unmarshal(b, &out)
	}
	return res, text.String(), out
}

func codeOf(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestExecIsListedOnlyWhenEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		o := mcpserver.Options{}
		if enabled {
			o.Exec = testExec
		}
		f := start(t, nil, o)
		res, err := f.cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		has := false
		for _, tool := range res.Tools {
			has = has || tool.Name == "exec"
		}
		if has != enabled || len(res.Tools) != 7+boolInt(enabled) {
			t.Fatalf("exec enabled %v: %d tools, exec listed %v", enabled, len(res.Tools), has)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestResultsStayUnderTheCap: a file, a search and a listing larger than
// the cap are cut, and each says how to get the rest; the whole result
// stays under MaxResult.
func TestResultsStayUnderTheCap(t *testing.T) {
	var big strings.Builder
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(&big, "%04d %s\n", i, strings.Repeat("x", 60))
	}
	files := map[string]string{"big.txt": big.String(), "one-line.txt": strings.Repeat("y", 20000) + "\n"}
	for i := range 300 {
		files[fmt.Sprintf("d/file-%03d.txt", i)] = "match me\n"
	}
	const limit = 8 << 10
	f := start(t, files, mcpserver.Options{MaxResult: limit})
	size := func(res *mcp.CallToolResult) int {
		b, _ := json.Marshal(res)
		return len(b)
	}

	res, text, out := f.call(t, "read_file", map[string]any{"path": "big.txt"})
	next := int(out["next_offset"].(float64))
	if res.IsError || next < 2 || next > 100 || out["end_line"].(float64) != float64(next-1) || out["total_lines"].(float64) != 2000 {
		t.Fatalf("paged read: %v", out)
	}
	if !strings.Contains(text, fmt.Sprintf("read_file with offset %d for the rest", next)) || size(res) > limit+1024 {
		t.Fatalf("%d bytes: %s", size(res), text[len(text)-200:])
	}
	// The next page starts where the first stopped.
	_, text, _ = f.call(t, "read_file", map[string]any{"path": "big.txt", "offset": next, "limit": 1})
	if !strings.HasPrefix(text, fmt.Sprintf("%04d ", next)) {
		t.Fatalf("page 2: %q", text)
	}
	// A line longer than the cap is cut, said, and skipped by next_offset.
	res, text, out = f.call(t, "read_file", map[string]any{"path": "one-line.txt"})
	if res.IsError || out["next_offset"] != nil || !strings.Contains(text, "is longer than the result's limit") || size(res) > limit+1024 {
		t.Fatalf("one long line: %v %d", out["next_offset"], size(res))
	}

	res, text, out = f.call(t, "search", map[string]any{"query": "match me"})
	if res.IsError || out["total"].(float64) != 300 || len(out["matches"].([]any)) >= 100 || !strings.Contains(text, "mcp.max_result") || size(res) > limit+1024 {
		t.Fatalf("search: total %v, %d listed, %d bytes", out["total"], len(out["matches"].([]any)), size(res))
	}
	res, text, out = f.call(t, "list_directory", map[string]any{"path": "d"})
	if res.IsError || out["total"].(float64) != 300 || len(out["entries"].([]any)) >= 300 || !strings.Contains(text, "list a subdirectory") || size(res) > limit+1024 {
		t.Fatalf("list: total %v, %d listed, %d bytes", out["total"], len(out["entries"].([]any)), size(res))
	}
}

func TestErrorsAreToolResultsWithCodes(t *testing.T) {
	f := start(t, map[string]string{"a.txt": "a\n"}, mcpserver.Options{})
	for _, c := range []struct {
		tool string
		args map[string]any
		code string
	}{
		{"read_file", map[string]any{"path": "../etc/passwd"}, sandbox.CodePathSecurity},
		{"read_file", map[string]any{"path": "missing"}, sandbox.CodeFileNotFound},
		{"write_file", map[string]any{"path": ".git/config", "content": "x"}, sandbox.CodePathSecurity},
		{"write_file", map[string]any{"path": "big", "content": strings.Repeat("z", 1<<16+1)}, sandbox.CodeResourceLimit},
		{"edit_file", map[string]any{"path": "a.txt", "edits": []any{}}, sandbox.CodeEditSyntax},
		{"edit_file", map[string]any{"path": "a.txt", "edits": []any{map[string]any{"old_text": "", "new_text": "b"}}}, sandbox.CodeEditSyntax},
		{"list_directory", map[string]any{"path": "a.txt"}, sandbox.CodeNotDirectory},
		{"read_file", map[string]any{"path": "."}, sandbox.CodeIsDirectory},
		{"edit_file", map[string]any{"path": "a.txt", "edits": []any{map[string]any{"old_text": "zzz", "new_text": "b"}}}, sandbox.CodeEditNoMatch},
		{"search", map[string]any{"query": "(", "regex": true}, sandbox.CodeInvalidQuery},
		{"exec", map[string]any{"command": "true"}, ""}, // not listed: a protocol error, below
	} {
		if c.tool == "exec" {
			if _, err := f.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "exec", Arguments: c.args}); err == nil {
				t.Errorf("exec is not listed, yet it was called")
			}
			continue
		}
		res, text, out := f.call(t, c.tool, c.args)
		if !res.IsError || codeOf(out) != c.code || !strings.HasPrefix(text, c.code+": ") {
			t.Errorf("%s %v: isError %v, code %q, text %q; want %s", c.tool, c.args, res.IsError, codeOf(out), text, c.code)
		}
		// In the tools' words, not the command language's.
		if strings.Contains(text, "<open") || strings.Contains(text, "<list") || strings.Contains(text, "SEARCH") {
			t.Errorf("%s: %s", c.tool, text)
		}
	}
	// Arguments that do not fit the schema are the tool's error too.
	res, text, _ := f.call(t, "read_file", map[string]any{"offset": 1})
	if !res.IsError || !strings.Contains(text, "path") {
		t.Fatalf("missing path: %v %s", res.IsError, text)
	}
}

func TestEditFileTakesEditsAsLines(t *testing.T) {
	f := start(t, map[string]string{"crlf.txt": "a\r\nb\r\nc\r\n", "m.txt": "x\n=======\ny\n"}, mcpserver.Options{})
	// CRLF is kept; old_text's own terminators do not matter.
	res, text, out := f.call(t, "edit_file", map[string]any{"path": "crlf.txt", "edits": []any{map[string]any{"old_text": "b\n", "new_text": "B1\nB2"}}})
	if res.IsError || out["applied"].(float64) != 1 {
		t.Fatalf("%s", text)
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, "crlf.txt")); string(b) != "a\r\nB1\r\nB2\r\nc\r\n" {
		t.Fatalf("crlf: %q", b)
	}
	// A marker line is searchable: the edit is not SEARCH/REPLACE text.
	res, text, _ = f.call(t, "edit_file", map[string]any{"path": "m.txt", "edits": []any{
		map[string]any{"old_text": "=======", "new_text": ""},
		map[string]any{"old_text": "y", "new_text": ">>>>>>> REPLACE"},
	}})
	if res.IsError {
		t.Fatalf("%s", text)
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, "m.txt")); string(b) != "x\n>>>>>>> REPLACE\n" {
		t.Fatalf("markers: %q", b)
	}
}

func TestEditFileReplacesAllWhenTold(t *testing.T) {
	f := start(t, map[string]string{"r.go": "old()\nx\nold()\n\told()\n"}, mcpserver.Options{})
	// Without replace_all, several places are ambiguous, and the error
	// says how to ask for all of them in edit_file's words.
	res, text, out := f.call(t, "edit_file", map[string]any{"path": "r.go", "edits": []any{map[string]any{"old_text": "old()", "new_text": "new()"}}})
	if !res.IsError || codeOf(out) != sandbox.CodeEditAmbiguous || !strings.Contains(text, "set its replace_all") || strings.Contains(text, "SEARCH") {
		t.Fatalf("without replace_all: %s", text)
	}
	res, text, out = f.call(t, "edit_file", map[string]any{"path": "r.go", "edits": []any{map[string]any{"old_text": "old()", "new_text": "new()", "replace_all": true}}})
	if res.IsError || !strings.Contains(text, "edit 1 replaced 2 places (lines 1, 3)") {
		t.Fatalf("replace_all: %s", text)
	}
	if got := fmt.Sprint(out["replaced"]); got != "[map[block:1 lines:[1 3]]]" {
		t.Errorf("structured replaced = %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, "r.go")); string(b) != "new()\nx\nnew()\n\told()\n" {
		t.Fatalf("file: %q", b)
	}
	// Only loose matches left: refused, in edit_file's words.
	res, text, _ = f.call(t, "edit_file", map[string]any{"path": "r.go", "edits": []any{map[string]any{"old_text": "old()", "new_text": "new()", "replace_all": true}}})
	if !res.IsError || !strings.Contains(text, "replace_all replaces exact matches only") {
		t.Fatalf("loose only: %s", text)
	}
}

func TestDeleteAndMoveFiles(t *testing.T) {
	f := start(t, map[string]string{"a.txt": "a\n", "b.txt": "b\n", "pkg/x.go": "package x\n", "sub/y.txt": "y\n"}, mcpserver.Options{})
	res, text, out := f.call(t, "move_file", map[string]any{"from": "pkg", "to": "internal/my pkg"})
	if res.IsError || text != "moved pkg to internal/my pkg (a directory, 1 entry under it)" || out["kind"] != "dir" {
		t.Fatalf("move a directory: %s %v", text, out)
	}
	res, text, out = f.call(t, "move_file", map[string]any{"from": "a.txt", "to": "b.txt"})
	if !res.IsError || codeOf(out) != sandbox.CodeFileExists {
		t.Fatalf("move over a file: %s", text)
	}
	res, text, out = f.call(t, "move_file", map[string]any{"from": "a.txt", "to": "b.txt", "overwrite": true})
	if res.IsError || out["replaced"] != true || !strings.Contains(text, "the file that was there is replaced") {
		t.Fatalf("move with overwrite: %s", text)
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, "b.txt")); string(b) != "a\n" {
		t.Fatalf("b.txt: %q", b)
	}
	res, text, out = f.call(t, "delete_file", map[string]any{"path": "b.txt"})
	if res.IsError || text != "deleted file b.txt (2 bytes)" || out["bytes"] != float64(2) {
		t.Fatalf("delete: %s %v", text, out)
	}
	res, text, out = f.call(t, "delete_file", map[string]any{"path": "sub"})
	if !res.IsError || codeOf(out) != sandbox.CodeIsDirectory || !strings.Contains(text, "list_directory shows what is in it") || strings.Contains(text, "<list") {
		t.Fatalf("delete a directory that is not empty: %s", text)
	}
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"delete_file", map[string]any{"path": ".git/config"}},
		{"move_file", map[string]any{"from": "sub/y.txt", "to": ".env"}},
		{"move_file", map[string]any{"from": "sub/y.txt", "to": "../y.txt"}},
	} {
		if res, text, out := f.call(t, c.tool, c.args); !res.IsError || codeOf(out) != sandbox.CodePathSecurity {
			t.Errorf("%s %v: %s", c.tool, c.args, text)
		}
	}
}

// TestExecProgressAndCancel: a running exec reports progress while the
// client waits, and a cancelled call cancels the command's context.
func TestExecProgressAndCancel(t *testing.T) {
	f := start(t, nil, mcpserver.Options{Exec: testExec, ProgressEvery: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	p := &mcp.CallToolParams{Name: "exec", Arguments: map[string]any{"command": "sleep 600"}}
	p.SetProgressToken("t")
	done := make(chan error, 1)
	go func() {
		_, err := f.cs.CallTool(ctx, p)
		done <- err
	}()
	<-f.sb.started
	await(t, "no progress while the command ran", func() bool { return f.progress.Load() >= 2 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled call returned a result")
	}
	await(t, "the command's context was not cancelled", f.sb.canceled.Load)
}

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
