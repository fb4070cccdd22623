package main

// End-to-end tests, through the binary, of what the MCP tools tell a
// model: exec's rules before its first command, no exit code for a command
// that did not run, search's context lines, numbered reads, and results
// that do not say the same thing twice.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// TestE2EMCPExecSaysItsRulesAndRefusalsHaveNoExitCode: the exec tool's
// description gives the whitelisted commands the exec image can run (not
// curl, which busybox has not), the timeout and what becomes of changes; a command refused by the whitelist or by a policy comes back
// with its code and without an exit_code (nothing ran), and one that ran
// has its exit code.
func TestE2EMCPExecSaysItsRulesAndRefusalsHaveNoExitCode(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	guest := wasmtest.Build(t, "guests/protect-secrets")
	dir := repo(t, map[string]string{"a.txt": "a\n"})
	s := startMCP(t, dir, []string{"LLM_RUNTIME_EXEC_WHITELIST=echo,curl", "LLM_RUNTIME_EXEC_TIMEOUT=45s"}, "--exec", "--policy", guest)

	tools, err := s.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	desc := ""
	for _, tool := range tools.Tools {
		if tool.Name == "exec" {
			desc = tool.Description
		}
	}
	if strings.Contains(desc, "curl") {
		t.Errorf("the description offers curl, which the image cannot run:\n%s", desc)
	}
	wantAll(t, desc, "one of these): `echo`.", "killed after 45s", "No shell", "changes are discarded: change files with edit_file or write_file")

	for _, c := range []struct{ command, code string }{
		{"rm -rf .", sandbox.CodeExecValidation},     // not on the whitelist
		{"curl http://example.com", "POLICY_DENIED"}, // on it, but protect-secrets denies network tools
	} {
		res, text := s.call(t, "exec", map[string]any{"command": c.command})
		var raw map[string]any
		into(t, res, &raw)
		if code := errorCode(t, res); code != c.code {
			t.Fatalf("%s: %s %s", c.command, code, text)
		}
		for _, field := range []string{"exit_code", "duration_ms", "output"} {
			if v, ok := raw[field]; ok {
				t.Errorf("%s: nothing ran, yet %s is %v", c.command, field, v)
			}
		}
		if strings.Contains(text, "exit code") {
			t.Errorf("%s: the text claims an exit code: %s", c.command, text)
		}
	}
	res, text := s.call(t, "exec", map[string]any{"command": "echo ran"})
	mustSucceed(t, res, text)
	var raw map[string]any
	into(t, res, &raw)
	if raw["exit_code"] != 0.0 || raw["output"] != "ran\n" || raw["duration_ms"] == nil {
		t.Fatalf("a command that ran: %v", raw)
	}
}

// rawMCP is 'llm-runtime mcp' spoken to a line at a time, so that a test
// sees the bytes a client receives.
type rawMCP struct {
	t     *testing.T
	in    io.WriteCloser
	lines *bufio.Reader
}

// startRawMCP starts 'llm-runtime mcp --root dir args...' and initializes
// a session; cleanup closes its input, waits for it and checks it left no
// container.
func startRawMCP(t *testing.T, dir string, env []string, args ...string) *rawMCP {
	t.Helper()
	denv := dockertest.Require(t)
	cmd := exec.Command(binary, append([]string{"mcp", "--root", dir}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stderr = &logWriter{t: t}
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
		noContainersOf(t, denv, cmd.Process.Pid, time.Minute)
	})
	s := &rawMCP{t: t, in: in, lines: bufio.NewReaderSize(out, 1<<20)}
	s.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e-raw","version":"1"}}}`)
	io.WriteString(in, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	return s
}

// send writes one request and returns the line that answers it.
func (s *rawMCP) send(msg string) string {
	s.t.Helper()
	if _, err := io.WriteString(s.in, msg+"\n"); err != nil {
		s.t.Fatal(err)
	}
	line, err := s.lines.ReadString('\n')
	if err != nil {
		s.t.Fatalf("no answer to %s: %v", msg, err)
	}
	return line
}

// callTool calls a tool and returns the answer's line and its result.
func (s *rawMCP) callTool(id int, name string, args map[string]any) (string, rawResult) {
	s.t.Helper()
	a, _ := json.Marshal(args)
	line := s.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, name, a))
	var r struct{ Result rawResult }
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		s.t.Fatalf("%s: %v", line, err)
	}
	return line, r.Result
}

// rawResult is a tools/call result as it is on the wire.
type rawResult struct {
	Meta    map[string]map[string]any `json:"_meta"`
	Content []struct {
		Type, Text string
	}
	StructuredContent map[string]any
	IsError           bool
}

func (r rawResult) text() string {
	var b strings.Builder
	for _, c := range r.Content {
		b.WriteString(c.Text)
	}
	return b.String()
}

// TestE2EMCPResultsSayThingsOnceAndReadsCanBeNumbered, through the binary
// on the Docker sandbox with exec on the default whitelist: tools/list is
// under 6 KB; a read of a 4 KiB file is the file once, as its text, with
// the numbers in _meta; read_file's line_numbers numbers a page from its
// offset; search's context shows grep -C's lines, and a context out of
// range is refused saying the rule.
func TestE2EMCPResultsSayThingsOnceAndReadsCanBeNumbered(t *testing.T) {
	t.Parallel()
	file := strings.Repeat(strings.Repeat("x", 63)+"\n", 64)
	dir := repo(t, map[string]string{"4k.txt": file, "five.txt": "one\ntwo\nhit three\nfour\nfive\n"})
	s := startRawMCP(t, dir, nil, "--exec")

	list := s.send(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	var l struct {
		Result struct {
			Tools []struct {
				Name         string
				OutputSchema json.RawMessage
			}
		}
	}
	json.Unmarshal([]byte(list), &l)
	if len(l.Result.Tools) != 11 || len(list) >= 10000 {
		t.Errorf("tools/list: %d tools, %d bytes", len(l.Result.Tools), len(list))
	}
	for _, tool := range l.Result.Tools {
		if (tool.OutputSchema == nil) != (tool.Name == "read_file") {
			t.Errorf("%s: output schema %s", tool.Name, tool.OutputSchema)
		}
	}

	line, r := s.callTool(2, "read_file", map[string]any{"path": "4k.txt"})
	if r.IsError || len(r.Content) != 1 || r.Content[0].Text != file || r.StructuredContent != nil || r.Meta["llm-runtime/read"]["total_lines"] != 64.0 {
		t.Fatalf("read_file: %.300s", line)
	}
	if len(line) > len(file)+300 {
		t.Errorf("a read of %d bytes is answered with %d", len(file), len(line))
	}
	t.Logf("through the binary: tools/list %d bytes; read_file of 4 KiB %d bytes (%.2fx)", len(list), len(line), float64(len(line))/float64(len(file)))

	_, r = s.callTool(3, "read_file", map[string]any{"path": "five.txt", "offset": 2, "limit": 2, "line_numbers": true})
	if want := "     2\ttwo\n     3\thit three\n[lines 2-3 of 5; read_file with offset 4 for the rest]"; r.text() != want {
		t.Errorf("numbered page: %q, want %q", r.text(), want)
	}

	_, r = s.callTool(4, "search", map[string]any{"query": "hit", "context": 1})
	if want := "five.txt-2- two\nfive.txt:3: hit three\nfive.txt-4- four\n[1 matching line in 1 file]"; r.IsError || r.text() != want {
		t.Errorf("search with context: %q, want %q", r.text(), want)
	}
	_, r = s.callTool(5, "search", map[string]any{"query": "hit", "context": 21})
	if e, _ := r.StructuredContent["error"].(map[string]any); !r.IsError || e["code"] != "INVALID_ARGUMENTS" || !strings.Contains(r.text(), "from 1 to 20") {
		t.Errorf("context 21: %v %s", r.IsError, r.text())
	}
}

// TestE2EFilterNumbersLinesWhenAsked: --line-numbers, and
// $LLM_RUNTIME_OUTPUT_LINE_NUMBERS, number a FILE block's lines from the
// range's first, on the Docker sandbox and through a daemon alike (the
// same bytes); JSONL's content stays the file's; without it nothing
// changes; and the prompt says how numbered lines read.
func TestE2EFilterNumbersLinesWhenAsked(t *testing.T) {
	t.Parallel()
	files := map[string]string{"a.txt": "one\ntwo\n=== END FILE ===\nfour"}
	in := "<open a.txt> <open a.txt:2-3>"
	want := "=== FILE: a.txt ===\n     1\tone\n     2\ttwo\n     3\t=== END FILE ===\n     4\tfour\n=== END FILE (no newline at end) ===\n"
	wantRange := "=== FILE: a.txt (lines 2-3 of 4) ===\n     2\ttwo\n     3\t=== END FILE ===\n=== END FILE ===\n"
	dir := repo(t, files)
	own := runBinary(t, dir, in, []string{"LLM_RUNTIME_SERVER=never"}, "--line-numbers")
	wantAll(t, own.stdout, want, wantRange)
	if env := runBinary(t, dir, in, []string{"LLM_RUNTIME_SERVER=never", "LLM_RUNTIME_OUTPUT_LINE_NUMBERS=true"}); normalized(env.stdout, dir) != normalized(own.stdout, dir) {
		t.Errorf("the variable and the flag differ:\n%s\n%s", env.stdout, own.stdout)
	}
	plain := runBinary(t, dir, in, []string{"LLM_RUNTIME_SERVER=never"})
	wantAll(t, plain.stdout, "=== FILE: a.txt ===\none\ntwo\n\\=== END FILE ===\nfour\n")
	j := runBinary(t, dir, "<open a.txt:2-3>", []string{"LLM_RUNTIME_SERVER=never"}, "--line-numbers", "--format", "jsonl")
	var rec struct {
		Content string
		Lines   struct{ Start int }
	}
	if err := json.Unmarshal([]byte(j.stdout), &rec); err != nil || rec.Content != "two\n=== END FILE ===\n" || rec.Lines.Start != 2 {
		t.Errorf("jsonl: %v %s", err, j.stdout)
	}

	d := startServe(t, "", nil)
	other := repo(t, files)
	srv := runBinary(t, other, in, d.env, "--line-numbers")
	if normalized(srv.stdout, other) != normalized(own.stdout, dir) || d.status().Served != 1 {
		t.Errorf("through the daemon (%d served):\n%s\nits own pool:\n%s", d.status().Served, srv.stdout, own.stdout)
	}

	p := runBinary(t, dir, "", nil, "prompt", "--line-numbers")
	wantAll(t, p.stdout, "as `cat -n` prints it", "     1\tmodule example.com/app")
	if p := runBinary(t, dir, "", nil, "prompt"); strings.Contains(p.stdout, "cat -n") {
		t.Errorf("the prompt speaks of numbers that are not there")
	}
}
