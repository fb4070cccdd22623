package main

// End-to-end tests of `llm-runtime mcp` driven by a client we did not
// write: github.com/mark3labs/mcp-go's. The binary runs as a user's MCP
// host would run it (a child process speaking JSON-RPC on its standard
// streams), in the Docker sandbox, with exec on.

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// mark3Session is one `llm-runtime mcp` process and the mark3labs client
// connected to it.
type mark3Session struct {
	t      *testing.T
	cmd    *exec.Cmd
	c      *client.Client
	waited chan error // cmd.Wait's result, once the process has exited
	stderr string     // the file the server's standard error goes to
}

// startMark3 starts `llm-runtime mcp --root dir args...` with the clean
// environment of the end-to-end tests and connects a mark3labs client to
// it. The process is started here, not by mark3labs's command transport,
// so that the test knows its pid and decides itself how long to wait for
// it to exit: that transport sends SIGTERM 2 s after closing standard
// input and SIGKILL 3 s later, which on a loaded machine could cut short a
// server that is still removing its containers. mark3labs's own stdio
// framing (transport.NewIO) runs over the pipes.
func startMark3(t *testing.T, ctx context.Context, dir string, env []string, opts []client.ClientOption, args ...string) *mark3Session {
	t.Helper()
	inR, inW, err := os.Pipe() // the server's standard input
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe() // its standard output
	if err != nil {
		t.Fatal(err)
	}
	errPath := filepath.Join(t.TempDir(), "stderr")
	errf, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"mcp", "--root", dir}, args...)...)
	cmd.Dir = t.TempDir() // --root, and only --root, names the repository
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	errf.Close()
	s := &mark3Session{t: t, cmd: cmd, waited: make(chan error, 1), stderr: errPath}
	go func() { s.waited <- cmd.Wait() }()
	t.Cleanup(func() {
		// A test that failed before closing the client: do not leave
		// the server running (its containers are then removed and
		// reported by dockertest.Require's cleanup).
		select {
		case <-s.waited:
		default:
			inW.Close()
			select {
			case <-s.waited:
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				<-s.waited
			}
		}
		outR.Close()
	})
	s.c = client.NewClient(transport.NewIO(outR, inW, nil), opts...)
	if err := s.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// log is what the server wrote on its standard error so far.
func (s *mark3Session) log() string {
	b, _ := os.ReadFile(s.stderr)
	return string(b)
}

// closeAndWait closes the client, as a host does at the end of a session,
// and waits for the server to exit on its own.
func (s *mark3Session) closeAndWait() error {
	s.t.Helper()
	if err := s.c.Close(); err != nil {
		s.t.Errorf("closing the client: %v", err)
	}
	select {
	case err := <-s.waited:
		s.waited <- err // for the cleanup
		return err
	case <-time.After(2 * time.Minute): // a hang, not a speed check
		s.t.Fatalf("the server did not exit within 2 minutes of its standard input closing\n%s", s.log())
		return nil
	}
}

// m3call is one tool call's result as a mark3labs client sees it.
type m3call struct {
	res  *mcp.CallToolResult
	text string // the text contents, joined
}

// call calls a tool; a protocol error fails the test (a failed operation
// is a result with isError, never a protocol error).
func (s *mark3Session) call(ctx context.Context, name string, args map[string]any) m3call {
	s.t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := s.c.CallTool(ctx, req)
	if err != nil {
		s.t.Fatalf("%s %v: protocol error %v\nserver log:\n%s", name, args, err, s.log())
	}
	var texts []string
	for _, c := range res.Content {
		tc, ok := mcp.AsTextContent(c)
		if !ok {
			s.t.Fatalf("%s %v: content %T is not text", name, args, c)
		}
		texts = append(texts, tc.Text)
	}
	return m3call{res: res, text: strings.Join(texts, "")}
}

// decode unmarshals the structured content into v, failing the test if
// there is none.
func (r m3call) decode(t *testing.T, v any) {
	t.Helper()
	if len(r.res.RawStructuredContent) == 0 {
		t.Fatalf("no structured content (text %q)", r.text)
	}
	if err := json.Unmarshal(r.res.RawStructuredContent, v); err != nil {
		t.Fatalf("structured content %s: %v", r.res.RawStructuredContent, err)
	}
}

// read is a read_file result: its first text is the lines, its _meta's
// "llm-runtime/read" says where they are; it has no structured content
// but an error's.
func (r m3call) read(t *testing.T) m3Read {
	t.Helper()
	var read m3Read
	if len(r.res.RawStructuredContent) != 0 && !r.res.IsError {
		t.Errorf("read_file has structured content: %s", r.res.RawStructuredContent)
	}
	if r.res.Meta == nil || r.res.Meta.AdditionalFields["llm-runtime/read"] == nil {
		t.Fatalf("read_file without _meta (text %q)", r.text)
	}
	b, _ := json.Marshal(r.res.Meta.AdditionalFields["llm-runtime/read"])
	if err := json.Unmarshal(b, &read); err != nil {
		t.Fatalf("_meta %s: %v", b, err)
	}
	if tc, ok := mcp.AsTextContent(r.res.Content[0]); ok && read.EndLine > 0 {
		read.Content = tc.Text
	}
	return read
}

// The wire form of the results, written out here rather than taken from
// package mcpserver, so that a change of a JSON name is caught.
type (
	m3Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	m3Read struct {
		Path       string   `json:"path"`
		Content    string   `json:"content"`
		StartLine  int      `json:"start_line"`
		EndLine    int      `json:"end_line"`
		TotalLines int      `json:"total_lines"`
		NextOffset int      `json:"next_offset"`
		Error      *m3Error `json:"error"`
	}
	m3Write struct {
		Path    string   `json:"path"`
		Created bool     `json:"created"`
		Bytes   int64    `json:"bytes"`
		Error   *m3Error `json:"error"`
	}
	m3Edit struct {
		Path    string   `json:"path"`
		Applied int      `json:"applied"`
		Diff    string   `json:"diff"`
		DryRun  bool     `json:"dry_run"`
		Error   *m3Error `json:"error"`
	}
	m3List struct {
		Path    string `json:"path"`
		Entries []struct {
			Path string `json:"path"`
			Kind string `json:"kind"`
			Size int64  `json:"size"`
		} `json:"entries"`
		Total    int      `json:"total"`
		Excluded int      `json:"excluded"`
		Error    *m3Error `json:"error"`
	}
	m3Search struct {
		Matches []struct {
			Path string `json:"path"`
			Line int    `json:"line"`
			Text string `json:"text"`
		} `json:"matches"`
		Total int      `json:"total"`
		Files int      `json:"files"`
		Error *m3Error `json:"error"`
	}
	m3Exec struct {
		ExitCode int              `json:"exit_code"`
		Output   string           `json:"output"`
		Changes  []map[string]any `json:"changes"`
		Error    *m3Error         `json:"error"`
	}
)

// TestE2EMCPMark3labsSession is a whole session of a mark3labs client:
// initialize, the tool list and its annotations and schemas, every tool
// called once, hostile paths refused, and the server gone, with its
// containers, once the client closes.
func TestE2EMCPMark3labsSession(t *testing.T) {
	t.Parallel()
	denv := dockertest.Require(t)
	dockertest.RequireExecImage(t, denv)

	base := t.TempDir()
	dir := filepath.Join(base, "repo")
	if err := os.MkdirAll(filepath.Join(base, "outside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "outside", "secret.txt"), []byte("OUTSIDE-SECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"lines.txt":    "one\ntwo\nthree\nfour\nfive\n",
		"src/main.go":  "package main\n\nfunc main() {}\n\nfunc helper() int { return 1 }\n",
		"src/util.go":  "package main\n\nfunc util() {}\n",
		"src/notes.md": "func notGo() is prose here\n",
		"README.md":    "func readme() is prose too\n",
		".env":         "API_KEY=ENV-SECRET\n",
		".git/HEAD":    "ref: refs/heads/main\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, ".git", "hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir() // another temporary directory, for the link to point into
	otherSecret := filepath.Join(other, "secret.txt")
	if err := os.WriteFile(otherSecret, []byte("LINKED-SECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(otherSecret, filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// A generous exec.timeout: echo is instant, but a fresh container on a
	// loaded machine is not.
	// The client probes with server/discover (protocol 2026-07-28) first,
	// and falls back to the initialize handshake if no answer comes within
	// its 5 s default: long enough, so that a loaded machine cannot switch
	// this test to the handshake (which the next test covers).
	s := startMark3(t, ctx, dir, []string{"LLM_RUNTIME_EXEC_TIMEOUT=2m"}, []client.ClientOption{client.WithDiscoverTimeout(2 * time.Minute)}, "--exec")
	pid := s.cmd.Process.Pid

	// Initialize.
	ictx, icancel := context.WithTimeout(ctx, 2*time.Minute)
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "mark3labs-e2e", Version: "1.2.1"}
	ires, err := s.c.Initialize(ictx, init)
	icancel()
	if err != nil {
		t.Fatalf("initialize: %v\nserver log:\n%s", err, s.log())
	}
	t.Logf("protocol %s (mark3labs negotiated %s), server %s %s", ires.ProtocolVersion, s.c.ProtocolVersion(), ires.ServerInfo.Name, ires.ServerInfo.Version)
	if ires.ProtocolVersion != mcp.ProtocolVersion20260728 {
		t.Errorf("protocol %s, want %s (server/discover)", ires.ProtocolVersion, mcp.ProtocolVersion20260728)
	}
	if ires.ServerInfo.Name != "llm-runtime" {
		t.Errorf("server name %q, want llm-runtime (initialize result %+v)", ires.ServerInfo.Name, ires)
	}
	if ires.Capabilities.Tools == nil {
		t.Errorf("no tools capability: %+v", ires.Capabilities)
	}
	if !strings.Contains(ires.Instructions, dir) {
		t.Errorf("instructions do not name the root %s: %q", dir, ires.Instructions)
	}

	// The tools, their annotations and schemas.
	lctx, lcancel := context.WithTimeout(ctx, 2*time.Minute)
	tools, err := s.c.ListTools(lctx, mcp.ListToolsRequest{})
	lcancel()
	if err != nil {
		t.Fatalf("tools/list: %v\nserver log:\n%s", err, s.log())
	}
	type want struct {
		readOnly, destructive bool
		in, required, out     []string
	}
	wants := map[string]want{
		// read_file has no output schema: its result is its text (and
		// _meta's numbers).
		"read_file":      {readOnly: true, in: []string{"path", "offset", "limit", "line_numbers"}, required: []string{"path"}},
		"write_file":     {destructive: true, in: []string{"path", "content"}, required: []string{"content", "path"}, out: []string{"path", "created", "bytes"}},
		"edit_file":      {destructive: true, in: []string{"path", "edits", "dry_run"}, required: []string{"edits", "path"}, out: []string{"diff", "applied", "dry_run"}},
		"list_directory": {readOnly: true, in: []string{"path", "pattern"}, out: []string{"entries", "total"}},
		"search":         {readOnly: true, in: []string{"query", "regex", "path_glob", "max_results", "context"}, required: []string{"query"}, out: []string{"matches", "total"}},
		"exec":           {destructive: true, in: []string{"command", "timeout_s"}, required: []string{"command"}, out: []string{"exit_code", "output"}},
		"delete_file":    {destructive: true, in: []string{"path"}, required: []string{"path"}, out: []string{"path", "kind", "bytes"}},
		"move_file":      {destructive: true, in: []string{"from", "to", "overwrite"}, required: []string{"from", "to"}, out: []string{"from", "to", "kind", "replaced", "entries"}},
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
		w, ok := wants[tool.Name]
		if !ok {
			continue
		}
		a := tool.Annotations
		if w.readOnly && (a.ReadOnlyHint == nil || !*a.ReadOnlyHint) {
			t.Errorf("%s: readOnlyHint %v, want true", tool.Name, a.ReadOnlyHint)
		}
		if !w.readOnly && a.ReadOnlyHint != nil && *a.ReadOnlyHint {
			t.Errorf("%s: readOnlyHint true", tool.Name)
		}
		if w.destructive && (a.DestructiveHint == nil || !*a.DestructiveHint) {
			t.Errorf("%s: destructiveHint %v, want true", tool.Name, a.DestructiveHint)
		}
		if a.OpenWorldHint == nil || *a.OpenWorldHint {
			t.Errorf("%s: openWorldHint %v, want false", tool.Name, a.OpenWorldHint)
		}
		if tool.Description == "" || tool.Title == "" {
			t.Errorf("%s: title %q, description %q", tool.Name, tool.Title, tool.Description)
		}
		if tool.InputSchema.Type != "object" {
			t.Errorf("%s: input schema type %q", tool.Name, tool.InputSchema.Type)
		}
		for _, p := range w.in {
			if _, ok := tool.InputSchema.Properties[p]; !ok {
				t.Errorf("%s: input schema has no %q: %v", tool.Name, p, tool.InputSchema.Properties)
			}
		}
		if len(tool.InputSchema.Properties) != len(w.in) {
			t.Errorf("%s: input properties %v, want %v", tool.Name, keysOf(tool.InputSchema.Properties), w.in)
		}
		req := slices.Sorted(slices.Values(tool.InputSchema.Required))
		if !slices.Equal(req, w.required) && !(len(req) == 0 && len(w.required) == 0) {
			t.Errorf("%s: required %v, want %v", tool.Name, req, w.required)
		}
		if (tool.OutputSchema.Type != "object") != (w.out == nil) {
			t.Errorf("%s: output schema type %q", tool.Name, tool.OutputSchema.Type)
		}
		for _, p := range w.out {
			if _, ok := tool.OutputSchema.Properties[p]; !ok {
				t.Errorf("%s: output schema has no %q: %v", tool.Name, p, keysOf(tool.OutputSchema.Properties))
			}
		}
	}
	slices.Sort(names)
	if wantNames := []string{"checkpoint", "delete_file", "diff", "edit_file", "exec", "list_directory", "move_file", "read_file", "search", "undo", "write_file"}; !slices.Equal(names, wantNames) {
		t.Fatalf("tools %v, want %v", names, wantNames)
	}

	// read_file, paged: lines 2-3 of 5, and where to go on.
	r := s.call(ctx, "read_file", map[string]any{"path": "lines.txt", "offset": 2, "limit": 2})
	read := r.read(t)
	if r.res.IsError || read.Content != "two\nthree\n" || read.StartLine != 2 || read.EndLine != 3 || read.TotalLines != 5 || read.NextOffset != 4 || read.Path != "lines.txt" {
		t.Errorf("read_file paged: isError %v, %+v", r.res.IsError, read)
	}
	if want := "two\nthree\n[lines 2-3 of 5; read_file with offset 4 for the rest]"; r.text != want {
		t.Errorf("read_file paged text %q, want %q", r.text, want)
	}
	// The last page: no next_offset.
	r = s.call(ctx, "read_file", map[string]any{"path": "lines.txt", "offset": read.NextOffset, "limit": 10})
	read = r.read(t)
	if r.res.IsError || read.Content != "four\nfive\n" || read.EndLine != 5 || read.NextOffset != 0 || r.text != "four\nfive\n" {
		t.Errorf("read_file last page: isError %v, %+v, text %q", r.res.IsError, read, r.text)
	}

	// write_file creates the file, and its directory.
	r = s.call(ctx, "write_file", map[string]any{"path": "gen/out.txt", "content": "hello\nworld\n"})
	var wr m3Write
	r.decode(t, &wr)
	if r.res.IsError || !wr.Created || wr.Bytes != 12 || wr.Path != "gen/out.txt" || !strings.HasPrefix(r.text, "created gen/out.txt") {
		t.Errorf("write_file: isError %v, %+v, text %q", r.res.IsError, wr, r.text)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "gen", "out.txt")); err != nil || string(b) != "hello\nworld\n" {
		t.Errorf("gen/out.txt on disk: %q, %v", b, err)
	}

	// edit_file changes it and shows the diff.
	r = s.call(ctx, "edit_file", map[string]any{"path": "gen/out.txt", "edits": []map[string]any{{"old_text": "world\n", "new_text": "mcp\n"}}})
	var ed m3Edit
	r.decode(t, &ed)
	if r.res.IsError || ed.Applied != 1 || ed.DryRun || !strings.Contains(ed.Diff, "-world\n") || !strings.Contains(ed.Diff, "+mcp\n") {
		t.Errorf("edit_file: isError %v, %+v", r.res.IsError, ed)
	}
	if !strings.HasPrefix(r.text, "edited gen/out.txt: 1 edit applied\n") || !strings.Contains(r.text, ed.Diff) {
		t.Errorf("edit_file text %q", r.text)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "gen", "out.txt")); string(b) != "hello\nmcp\n" {
		t.Errorf("after edit_file, gen/out.txt = %q", b)
	}

	// A dry run shows the diff and writes nothing.
	r = s.call(ctx, "edit_file", map[string]any{"path": "gen/out.txt", "dry_run": true, "edits": []map[string]any{{"old_text": "hello", "new_text": "bye"}}})
	ed = m3Edit{}
	r.decode(t, &ed)
	if r.res.IsError || !ed.DryRun || ed.Applied != 1 || !strings.Contains(ed.Diff, "-hello\n") || !strings.Contains(ed.Diff, "+bye\n") || !strings.Contains(r.text, "dry run, nothing written") {
		t.Errorf("edit_file dry_run: isError %v, %+v, text %q", r.res.IsError, ed, r.text)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "gen", "out.txt")); string(b) != "hello\nmcp\n" {
		t.Errorf("a dry run changed gen/out.txt: %q", b)
	}

	// move_file renames it, making the directory; delete_file deletes it.
	r = s.call(ctx, "move_file", map[string]any{"from": "gen/out.txt", "to": "gen/moved/out.txt"})
	if r.res.IsError || r.text != "moved gen/out.txt to gen/moved/out.txt" {
		t.Errorf("move_file: isError %v, text %q", r.res.IsError, r.text)
	}
	r = s.call(ctx, "delete_file", map[string]any{"path": "gen/moved/out.txt"})
	if r.res.IsError || r.text != "deleted file gen/moved/out.txt (10 bytes)" {
		t.Errorf("delete_file: isError %v, text %q", r.res.IsError, r.text)
	}
	if _, err := os.Lstat(filepath.Join(dir, "gen", "moved", "out.txt")); !os.IsNotExist(err) {
		t.Errorf("after delete_file: %v", err)
	}

	// list_directory with a pattern.
	r = s.call(ctx, "list_directory", map[string]any{"path": "src", "pattern": "*.go"})
	var ls m3List
	r.decode(t, &ls)
	var listed []string
	for _, e := range ls.Entries {
		listed = append(listed, e.Path)
		if e.Kind != "file" || e.Size == 0 {
			t.Errorf("list_directory entry %+v", e)
		}
	}
	if r.res.IsError || ls.Path != "src" || ls.Total != 2 || !slices.Equal(listed, []string{"src/main.go", "src/util.go"}) {
		t.Errorf("list_directory src *.go: isError %v, %+v", r.res.IsError, ls)
	}
	if !strings.Contains(r.text, "src/main.go  ") || !strings.Contains(r.text, "src/util.go  ") || strings.Contains(r.text, "notes.md") || !strings.Contains(r.text, "[2 entries in src") {
		t.Errorf("list_directory text %q", r.text)
	}

	// search: a regular expression in the Go files only.
	r = s.call(ctx, "search", map[string]any{"query": `^func \w+\(`, "regex": true, "path_glob": "src/**/*.go"})
	var se m3Search
	r.decode(t, &se)
	var found []string
	for _, m := range se.Matches {
		found = append(found, m.Path+":"+strconv.Itoa(m.Line)+": "+m.Text)
	}
	slices.Sort(found)
	wantFound := []string{"src/main.go:3: func main() {}", "src/main.go:5: func helper() int { return 1 }", "src/util.go:3: func util() {}"}
	if r.res.IsError || se.Total != 3 || se.Files != 2 || !slices.Equal(found, wantFound) {
		t.Errorf("search: isError %v, %+v\nmatches %q", r.res.IsError, se, found)
	}
	for _, f := range wantFound {
		if !strings.Contains(r.text, f+"\n") {
			t.Errorf("search text lacks %q: %q", f, r.text)
		}
	}
	if strings.Contains(r.text, "notes.md") || strings.Contains(r.text, "README") || !strings.Contains(r.text, "[3 matching lines in 2 files") {
		t.Errorf("search text %q", r.text)
	}

	// exec, in a fresh container.
	r = s.call(ctx, "exec", map[string]any{"command": "echo hi"})
	var ex m3Exec
	r.decode(t, &ex)
	if r.res.IsError || ex.ExitCode != 0 || ex.Output != "hi\n" || ex.Error != nil || len(ex.Changes) != 0 {
		t.Errorf("exec echo hi: isError %v, %+v, text %q", r.res.IsError, ex, r.text)
	}
	if !strings.HasPrefix(r.text, "hi\n[exit code 0 after ") {
		t.Errorf("exec text %q", r.text)
	}

	// Hostile paths: each refused as a result with isError and a code,
	// none a protocol error, nothing read or written outside.
	hostile := []struct {
		tool string
		args map[string]any
		code string
	}{
		{"read_file", map[string]any{"path": "../outside"}, "PATH_SECURITY"},
		{"read_file", map[string]any{"path": "../outside/secret.txt"}, "PATH_SECURITY"},
		{"read_file", map[string]any{"path": "/etc/passwd"}, "PATH_SECURITY"},
		{"read_file", map[string]any{"path": filepath.Join(base, "outside", "secret.txt")}, "PATH_SECURITY"},
		{"read_file", map[string]any{"path": ".env"}, "PATH_SECURITY"},
		{"read_file", map[string]any{"path": "link.txt"}, "PATH_SECURITY"},
		{"write_file", map[string]any{"path": "../x", "content": "x"}, "PATH_SECURITY"},
		{"write_file", map[string]any{"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\necho pwned\n"}, "PATH_SECURITY"},
		{"delete_file", map[string]any{"path": "../outside/secret.txt"}, "PATH_SECURITY"},
		{"delete_file", map[string]any{"path": ".env"}, "PATH_SECURITY"},
		{"move_file", map[string]any{"from": "../outside/secret.txt", "to": "stolen.txt"}, "PATH_SECURITY"},
		{"move_file", map[string]any{"from": "lines.txt", "to": ".git/hooks/pre-commit"}, "PATH_SECURITY"},
	}
	for _, h := range hostile {
		r := s.call(ctx, h.tool, h.args)
		var got struct {
			Error *m3Error `json:"error"`
		}
		r.decode(t, &got)
		if !r.res.IsError || got.Error == nil || got.Error.Code != h.code {
			t.Errorf("%s %v: isError %v, error %+v, text %q; want %s", h.tool, h.args, r.res.IsError, got.Error, r.text, h.code)
			continue
		}
		if !strings.HasPrefix(r.text, h.code+": ") {
			t.Errorf("%s %v: text %q does not start with the code", h.tool, h.args, r.text)
		}
		for _, secret := range []string{"OUTSIDE-SECRET", "ENV-SECRET", "LINKED-SECRET", "root:"} {
			if strings.Contains(r.text, secret) || strings.Contains(string(r.res.RawStructuredContent), secret) {
				t.Errorf("%s %v leaked %q: %q", h.tool, h.args, secret, r.text)
			}
		}
	}
	// Nothing was written outside the repository, nor into .git.
	if entries, _ := os.ReadDir(base); len(entries) != 2 {
		t.Errorf("%s holds %d entries, want repo and outside", base, len(entries))
	}
	if entries, _ := os.ReadDir(filepath.Join(base, "outside")); len(entries) != 1 {
		t.Errorf("outside holds %d entries, want 1", len(entries))
	}
	if entries, _ := os.ReadDir(other); len(entries) != 1 {
		t.Errorf("the link's directory holds %d entries, want 1", len(entries))
	}
	if b, _ := os.ReadFile(otherSecret); string(b) != "LINKED-SECRET\n" {
		t.Errorf("the link's target changed: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".git", "hooks", "pre-commit")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".git/hooks/pre-commit: %v, want it absent", err)
	}

	// The server's containers exist while the session lasts...
	octx, ocancel := context.WithTimeout(ctx, time.Minute)
	ours, err := denv.Docker.Ours(octx, container.LabelOwnerPID, strconv.Itoa(pid))
	ocancel()
	if err != nil {
		t.Fatal(err)
	}
	if len(ours) == 0 {
		t.Errorf("no container of server process %d during the session: is it in the Docker sandbox?", pid)
	}
	// ...and the server exits, removing them, when the client closes.
	if err := s.closeAndWait(); err != nil {
		t.Errorf("the server exited with %v\n%s", err, s.log())
	}
	noContainersOf(t, denv, pid, time.Minute)
	// Every call was audited, with the front end and the client's name.
	recs := mark3Audit(t, dir)
	if len(recs) != 10+len(hostile) {
		t.Errorf("%d audit records, want %d", len(recs), 10+len(hostile))
	}
	denied := 0
	for _, rec := range recs {
		if rec.Outcome == "denied" && rec.Code == "PATH_SECURITY" {
			denied++
		}
	}
	if denied != len(hostile) {
		t.Errorf("%d audit records denied with PATH_SECURITY, want %d", denied, len(hostile))
	}
	if l := s.log(); l != "" {
		t.Logf("server standard error:\n%s", l)
	}
	t.Logf("session of %d tool calls with %d container(s) in %s", 10+len(hostile), len(ours), time.Since(start).Round(time.Millisecond))
}

// TestE2EMCPMark3labsLegacyHandshake is a mark3labs client pinned to the
// last protocol version with the initialize handshake (2025-11-25), as
// hosts built on older SDKs speak, against a server without --exec: the
// handshake, five tools and no exec, a read, a refusal, the audit, and
// the server gone with its containers once the client closes.
func TestE2EMCPMark3labsLegacyHandshake(t *testing.T) {
	t.Parallel()
	denv := dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n", ".env": "API_KEY=ENV-SECRET\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := startMark3(t, ctx, dir, nil, []client.ClientOption{client.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION)})
	pid := s.cmd.Process.Pid

	ictx, icancel := context.WithTimeout(ctx, 2*time.Minute)
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "mark3labs-e2e", Version: "1.2.1"}
	ires, err := s.c.Initialize(ictx, init)
	icancel()
	if err != nil {
		t.Fatalf("initialize: %v\nserver log:\n%s", err, s.log())
	}
	if ires.ProtocolVersion != mcp.LATEST_LEGACY_PROTOCOL_VERSION || s.c.ProtocolVersion() != mcp.LATEST_LEGACY_PROTOCOL_VERSION {
		t.Errorf("protocol %s (client %s), want %s", ires.ProtocolVersion, s.c.ProtocolVersion(), mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	}
	if ires.ServerInfo.Name != "llm-runtime" || ires.ServerInfo.Version == "" {
		t.Errorf("server info %+v", ires.ServerInfo)
	}

	lctx, lcancel := context.WithTimeout(ctx, 2*time.Minute)
	tools, err := s.c.ListTools(lctx, mcp.ListToolsRequest{})
	lcancel()
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if want := []string{"checkpoint", "delete_file", "diff", "edit_file", "list_directory", "move_file", "read_file", "search", "undo", "write_file"}; !slices.Equal(names, want) {
		t.Errorf("tools without --exec: %v, want %v", names, want)
	}

	// exec is not listed, and not callable either.
	xctx, xcancel := context.WithTimeout(ctx, 2*time.Minute)
	xreq := mcp.CallToolRequest{}
	xreq.Params.Name = "exec"
	xreq.Params.Arguments = map[string]any{"command": "echo hi"}
	xres, err := s.c.CallTool(xctx, xreq)
	xcancel()
	switch {
	case err != nil:
		t.Logf("exec without --exec: protocol error %v", err)
	case xres.IsError:
		t.Logf("exec without --exec: isError %s", xres.RawStructuredContent)
	default:
		t.Errorf("exec without --exec ran: %+v", xres)
	}

	r := s.call(ctx, "read_file", map[string]any{"path": "a.txt"})
	read := r.read(t)
	if r.res.IsError || read.Content != "A\n" || read.TotalLines != 1 || read.NextOffset != 0 || r.text != "A\n" {
		t.Errorf("read_file a.txt: isError %v, %+v, text %q", r.res.IsError, read, r.text)
	}
	r = s.call(ctx, "read_file", map[string]any{"path": ".env"})
	read = m3Read{}
	r.decode(t, &read) // an error's structured content
	if !r.res.IsError || read.Error == nil || read.Error.Code != "PATH_SECURITY" || strings.Contains(r.text, "ENV-SECRET") {
		t.Errorf("read_file .env: isError %v, %+v, text %q", r.res.IsError, read, r.text)
	}

	if err := s.closeAndWait(); err != nil {
		t.Errorf("the server exited with %v\n%s", err, s.log())
	}
	noContainersOf(t, denv, pid, time.Minute)
	recs := mark3Audit(t, dir)
	if len(recs) != 2 || recs[0].Target != "a.txt" || recs[0].Outcome != "ok" || recs[1].Target != ".env" || recs[1].Code != "PATH_SECURITY" {
		t.Errorf("audit records %+v, want the read of a.txt and the refusal of .env", recs)
	}
}

func keysOf(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// m3Audit is what the tests look at of an audit record.
type m3Audit struct {
	Session   string `json:"session"`
	Op        string `json:"op"`
	Target    string `json:"target"`
	Outcome   string `json:"outcome"`
	Code      string `json:"code"`
	FrontEnd  string `json:"front_end"`
	Client    string `json:"client"`
	Container string `json:"container"`
}

// mark3Audit exports the audit records of the repository dir and checks
// that they are of one session of the mark3labs client of these tests,
// each operation run in a container.
func mark3Audit(t *testing.T, dir string) []m3Audit {
	t.Helper()
	r := runBinary(t, dir, "", nil, "audit", "export", "--repo", dir)
	if r.code != 0 {
		t.Fatalf("audit export: exit %d\n%s", r.code, r.stderr)
	}
	var recs []m3Audit
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l == "" {
			continue
		}
		var rec m3Audit
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("audit record %q: %v", l, err)
		}
		if rec.FrontEnd != "mcp" || rec.Client != "mark3labs-e2e 1.2.1" {
			t.Errorf("audit record %+v: want front end mcp, client \"mark3labs-e2e 1.2.1\"", rec)
		}
		if !strings.HasPrefix(rec.Container, container.NamePrefix) {
			t.Errorf("audit record %+v: not run in a container of the Docker sandbox", rec)
		}
		if len(recs) > 0 && rec.Session != recs[0].Session {
			t.Errorf("audit records of two sessions: %s and %s", recs[0].Session, rec.Session)
		}
		recs = append(recs, rec)
	}
	return recs
}
