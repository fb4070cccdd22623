package main

// End-to-end tests of 'llm-runtime mcp' with the go-sdk's own client
// (mcp.CommandTransport), against the built binary and the real daemon.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/llm-runtime/llm-runtime/edit"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
	"github.com/llm-runtime/llm-runtime/sandbox"
	"github.com/llm-runtime/llm-runtime/sandbox/sandboxtest"
)

// mcpPatience bounds one call on a loaded machine.
const mcpPatience = 3 * time.Minute

// mcpServer is a running 'llm-runtime mcp' and the go-sdk client session
// on it.
type mcpServer struct {
	cs       *mcp.ClientSession
	cmd      *exec.Cmd
	progress atomic.Int32 // progress notifications received
}

// startMCP starts 'llm-runtime mcp --root dir args...' with the go-sdk's
// CommandTransport and initializes a session as the client
// "e2e-go-sdk 1.0". Closing the session (done by cleanup if the test did
// not) ends the server; cleanup then checks it left no container.
func startMCP(t *testing.T, dir string, env []string, args ...string) *mcpServer {
	t.Helper()
	denv := dockertest.Require(t)
	cmd := exec.Command(binary, append([]string{"mcp", "--root", dir}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stderr = &logWriter{t: t}
	s := &mcpServer{cmd: cmd}
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-go-sdk", Version: "1.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { s.progress.Add(1) },
	})
	ctx, cancel := context.WithTimeout(context.Background(), mcpPatience)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connecting to llm-runtime mcp: %v", err)
	}
	s.cs = cs
	t.Cleanup(func() {
		cs.Close()
		if cmd.Process != nil {
			noContainersOf(t, denv, cmd.Process.Pid, time.Minute)
		}
	})
	return s
}

// logWriter passes a server's standard error to the test log.
type logWriter struct {
	t  *testing.T
	mu sync.Mutex
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Logf("server: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// call calls a tool and returns its result and its text; a protocol
// error fails the test.
func (s *mcpServer) call(t *testing.T, name string, args map[string]any) (*mcp.CallToolResult, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mcpPatience)
	defer cancel()
	res, err := s.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return res, resultText(res)
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// into decodes a result's structured content into v.
func into(t *testing.T, res *mcp.CallToolResult, v any) {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
}

// readMeta decodes a read_file result's _meta ("llm-runtime/read") into v.
func readMeta(t *testing.T, res *mcp.CallToolResult, v any) {
	t.Helper()
	b, err := json.Marshal(res.Meta["llm-runtime/read"])
	if err != nil || string(b) == "null" {
		t.Fatalf("no _meta: %v %v", res.Meta, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// toolError is the error of a structured result.
type toolError struct {
	Error *struct {
		Code, Message, Detail string
	} `json:"error"`
}

// errorCode is the code of a result, "" when it succeeded; a result that
// says isError without a code, or a code without isError, fails the test.
func errorCode(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	var e toolError
	into(t, res, &e)
	switch {
	case res.IsError && e.Error == nil:
		t.Fatalf("isError without a code: %s", resultText(res))
	case !res.IsError && e.Error != nil:
		t.Fatalf("a code without isError: %+v", e.Error)
	case e.Error == nil:
		return ""
	}
	if !strings.HasPrefix(resultText(res), e.Error.Code+": ") && !strings.Contains(resultText(res), "\n"+e.Error.Code+": ") {
		t.Errorf("the text does not give the code %s: %s", e.Error.Code, resultText(res))
	}
	return e.Error.Code
}

func mustSucceed(t *testing.T, res *mcp.CallToolResult, text string) {
	t.Helper()
	if c := errorCode(t, res); c != "" {
		t.Fatalf("failed with %s: %s", c, text)
	}
}

// ourContainers lists the containers of process pid, by role.
func ourContainers(t *testing.T, env dockertest.Env, pid int) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := env.Docker.Ours(ctx, container.LabelOwnerPID, strconv.Itoa(pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, c := range list {
		if c.State == "running" {
			out[c.Labels[container.LabelRole]] = append(out[c.Labels[container.LabelRole]], c.ID)
		}
	}
	return out
}

// running returns the exec container of process pid in which a process
// runs the command line cmd, or "".
func running(t *testing.T, env dockertest.Env, pid int, cmd string) string {
	t.Helper()
	for _, id := range ourContainers(t, env, pid)["exec"] {
		out, _ := exec.Command("docker", "top", id).Output()
		if strings.Contains(string(out), cmd) {
			return id
		}
	}
	return ""
}

// await polls cond until it holds, failing the test after wait.
func await(t *testing.T, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", wait, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const conflicted = "keep\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> branch\nend\n"

// TestE2EMCPGoSDKClientUsesEveryTool: a client written by others
// initializes, lists the tools and uses each of them, with a policy
// deciding; exec reports progress, a cancelled exec is killed with its
// container, 16 calls run at once, and every call is audited with the
// front end and the client.
func TestE2EMCPGoSDKClientUsesEveryTool(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	guest := wasmtest.Build(t, "guests/protect-secrets")
	var long strings.Builder
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&long, "line %d\n", i)
	}
	dir := repo(t, map[string]string{
		"long.txt":     long.String(),
		"conflict.txt": conflicted,
		"main.go":      "package main\n\nfunc main() { println(\"TODO: one\") }\n",
		"sub/util.go":  "package sub\n\n// TODO: two\nfunc Util() {}\n",
		"notes.md":     "TODO: not Go\n",
		".env":         "KEEP=1\n",
	})
	// .env is left to the policy: the sandbox's exclusions answer first.
	s := startMCP(t, dir, []string{"LLM_RUNTIME_SECURITY_EXCLUDED_PATHS=.git", "LLM_RUNTIME_EXEC_WHITELIST=echo,cat,sleep,true"},
		"--exec", "--policy", guest)

	if info := s.cs.InitializeResult().ServerInfo; info.Name != "llm-runtime" || !strings.HasPrefix(info.Version, "dev") && info.Version == "" {
		t.Errorf("server info %+v", info)
	}
	ctx := context.Background()
	tools, err := s.cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
		a := tool.Annotations
		if a == nil || a.OpenWorldHint == nil || *a.OpenWorldHint {
			t.Errorf("%s: openWorldHint is not false: %+v", tool.Name, a)
			continue
		}
		readOnly := tool.Name == "read_file" || tool.Name == "list_directory" || tool.Name == "search" || tool.Name == "diff"
		destructive := !readOnly && tool.Name != "checkpoint"
		if a.ReadOnlyHint != readOnly || !readOnly && (a.DestructiveHint == nil || *a.DestructiveHint != destructive) {
			t.Errorf("%s: annotations %+v", tool.Name, a)
		}
		// read_file's result is its text: no output schema.
		if tool.InputSchema == nil || (tool.OutputSchema == nil) != (tool.Name == "read_file") {
			t.Errorf("%s: input schema %v, output schema %v", tool.Name, tool.InputSchema, tool.OutputSchema)
		}
	}
	slices.Sort(names)
	if want := []string{"checkpoint", "delete_file", "diff", "edit_file", "exec", "list_directory", "move_file", "read_file", "search", "undo", "write_file"}; !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}

	t.Run("read_file pages a long file", func(t *testing.T) {
		res, text := s.call(t, "read_file", map[string]any{"path": "long.txt"})
		mustSucceed(t, res, text)
		// The lines are the first text; where they are is in _meta.
		var r struct {
			StartLine  int `json:"start_line"`
			EndLine    int `json:"end_line"`
			TotalLines int `json:"total_lines"`
			NextOffset int `json:"next_offset"`
		}
		readMeta(t, res, &r)
		lines := res.Content[0].(*mcp.TextContent).Text
		if r.StartLine != 1 || r.EndLine != 2000 || r.TotalLines != 3000 || r.NextOffset != 2001 || !strings.HasSuffix(lines, "line 2000\n") {
			t.Fatalf("first page: %+v", r)
		}
		wantAll(t, text, "line 1\n", "[lines 1-2000 of 3000; read_file with offset 2001 for the rest]")
		res, text = s.call(t, "read_file", map[string]any{"path": "long.txt", "offset": 2001, "limit": 5000})
		mustSucceed(t, res, text)
		var raw map[string]any
		readMeta(t, res, &raw)
		if raw["end_line"] != 3000.0 || raw["next_offset"] != nil || !strings.HasPrefix(text, "line 2001\n") || !strings.HasSuffix(text, "line 3000\n") {
			t.Fatalf("last page: %v\n%s", raw, text)
		}
		// An absolute path inside the repository is the repository's.
		res, text = s.call(t, "read_file", map[string]any{"path": filepath.Join(dir, "notes.md")})
		mustSucceed(t, res, text)
		if text != "TODO: not Go\n" {
			t.Fatalf("absolute path: %q", text)
		}
	})

	t.Run("move_file and delete_file", func(t *testing.T) {
		res, text := s.call(t, "write_file", map[string]any{"path": "scratch/a.txt", "content": "scratch\n"})
		mustSucceed(t, res, text)
		res, text = s.call(t, "move_file", map[string]any{"from": "scratch", "to": "tmp/scratch"})
		mustSucceed(t, res, text)
		if b, _ := os.ReadFile(filepath.Join(dir, "tmp/scratch/a.txt")); string(b) != "scratch\n" || text != "moved scratch to tmp/scratch (a directory, 1 entry under it)" {
			t.Fatalf("move: %q, %s", b, text)
		}
		res, text = s.call(t, "delete_file", map[string]any{"path": "tmp/scratch"})
		if !res.IsError || !strings.HasPrefix(text, "IS_DIRECTORY: ") {
			t.Fatalf("delete of a directory that is not empty: %s", text)
		}
		for _, p := range []string{"tmp/scratch/a.txt", "tmp/scratch", "tmp"} {
			res, text = s.call(t, "delete_file", map[string]any{"path": p})
			mustSucceed(t, res, text)
		}
		if _, err := os.Lstat(filepath.Join(dir, "tmp")); !os.IsNotExist(err) {
			t.Fatalf("tmp is still there: %v", err)
		}
		res, text = s.call(t, "move_file", map[string]any{"from": "conflict.txt", "to": "../moved.txt"})
		if !res.IsError || !strings.HasPrefix(text, "PATH_SECURITY: ") {
			t.Fatalf("move out of the repository: %s", text)
		}
	})

	t.Run("write_file and edit_file", func(t *testing.T) {
		res, text := s.call(t, "write_file", map[string]any{"path": "new/dir/file.txt", "content": "one\ntwo\n"})
		mustSucceed(t, res, text)
		if b, _ := os.ReadFile(filepath.Join(dir, "new/dir/file.txt")); string(b) != "one\ntwo\n" || !strings.Contains(text, "created new/dir/file.txt") {
			t.Fatalf("write: %q, %s", b, text)
		}
		// A dry run shows the diff and writes nothing.
		edits := []map[string]any{{"old_text": "<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> branch\n", "new_text": "ours and theirs\n"}}
		res, text = s.call(t, "edit_file", map[string]any{"path": "conflict.txt", "edits": edits, "dry_run": true})
		mustSucceed(t, res, text)
		if b, _ := os.ReadFile(filepath.Join(dir, "conflict.txt")); string(b) != conflicted {
			t.Fatalf("a dry run wrote: %q", b)
		}
		wantAll(t, text, "would edit", "-=======", "+ours and theirs")
		// Conflict markers are lines like any other: the edits are given
		// as such, not as SEARCH/REPLACE text.
		res, text = s.call(t, "edit_file", map[string]any{"path": "conflict.txt", "edits": edits})
		mustSucceed(t, res, text)
		if b, _ := os.ReadFile(filepath.Join(dir, "conflict.txt")); string(b) != "keep\nours and theirs\nend\n" {
			t.Fatalf("edit: %q\n%s", b, text)
		}
		res, text = s.call(t, "edit_file", map[string]any{"path": "conflict.txt", "edits": []map[string]any{{"old_text": "nowhere", "new_text": "x"}}})
		if c := errorCode(t, res); c != sandbox.CodeEditNoMatch {
			t.Fatalf("no match: %s %s", c, text)
		}
	})

	t.Run("list_directory and search", func(t *testing.T) {
		res, text := s.call(t, "list_directory", map[string]any{"pattern": "**/*.go"})
		mustSucceed(t, res, text)
		var l struct {
			Entries []sandbox.Entry `json:"entries"`
			Total   int             `json:"total"`
		}
		into(t, res, &l)
		if len(l.Entries) != 2 || l.Total != 2 || l.Entries[0].Path != "main.go" && l.Entries[1].Path != "main.go" {
			t.Fatalf("list **/*.go: %+v\n%s", l, text)
		}
		res, text = s.call(t, "list_directory", map[string]any{"path": "sub"})
		mustSucceed(t, res, text)
		wantAll(t, text, "sub/util.go  ", "[1 entry in sub]")
		res, text = s.call(t, "search", map[string]any{"query": `TODO: \w+`, "regex": true, "path_glob": "*.go", "max_results": 1})
		mustSucceed(t, res, text)
		var sr struct {
			Matches   []struct{ Path, Text string } `json:"matches"`
			Total     int                           `json:"total"`
			Truncated string                        `json:"truncated"`
		}
		into(t, res, &sr)
		if len(sr.Matches) != 1 || sr.Total != 2 || sr.Truncated == "" {
			t.Fatalf("search: %+v\n%s", sr, text)
		}
		// A literal query is literal, whatever it looks like.
		res, text = s.call(t, "search", map[string]any{"query": `re:" in *.go`})
		mustSucceed(t, res, text)
		wantAll(t, text, "(no matches)")
	})

	t.Run("a policy denial", func(t *testing.T) {
		res, text := s.call(t, "write_file", map[string]any{"path": ".env", "content": "STOLEN=1\n"})
		if c := errorCode(t, res); c != "POLICY_DENIED" || !strings.Contains(text, "protect-secrets") {
			t.Fatalf("%s: %s", c, text)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, ".env")); string(b) != "KEEP=1\n" {
			t.Fatalf(".env = %q", b)
		}
	})

	t.Run("exec", func(t *testing.T) {
		res, text := s.call(t, "exec", map[string]any{"command": "echo hi"})
		mustSucceed(t, res, text)
		var x struct {
			ExitCode   int    `json:"exit_code"`
			Output     string `json:"output"`
			DurationMS *int64 `json:"duration_ms"`
		}
		into(t, res, &x)
		if x.ExitCode != 0 || x.Output != "hi\n" || x.DurationMS == nil {
			t.Fatalf("exec: %+v\n%s", x, text)
		}
		res, text = s.call(t, "exec", map[string]any{"command": "cat missing.txt"})
		into(t, res, &x)
		if c := errorCode(t, res); c != sandbox.CodeExecFailed || x.ExitCode != 1 || !strings.Contains(x.Output, "missing.txt") {
			t.Fatalf("a failing command: %s %+v\n%s", c, x, text)
		}
		res, text = s.call(t, "exec", map[string]any{"command": "rm -rf ."})
		if c := errorCode(t, res); c != sandbox.CodeExecValidation {
			t.Fatalf("not on the whitelist: %s %s", c, text)
		}
	})

	t.Run("a long exec reports progress", func(t *testing.T) {
		before := s.progress.Load()
		ctx, cancel := context.WithTimeout(context.Background(), mcpPatience)
		defer cancel()
		p := &mcp.CallToolParams{Name: "exec", Arguments: map[string]any{"command": "sleep 5"}}
		p.SetProgressToken("sleep-5")
		res, err := s.cs.CallTool(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		mustSucceed(t, res, resultText(res))
		// One every 2 s while it runs: at least 2 in 5 s.
		if n := s.progress.Load() - before; n < 2 {
			t.Fatalf("%d progress notifications during a 5 s command", n)
		}
	})

	t.Run("a cancelled exec is killed with its container", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := &mcp.CallToolParams{Name: "exec", Arguments: map[string]any{"command": "sleep 600"}}
		p.SetProgressToken("sleep-600")
		done := make(chan error, 1)
		go func() {
			_, err := s.cs.CallTool(ctx, p)
			done <- err
		}()
		pid := s.cmd.Process.Pid
		await(t, 2*time.Minute, "sleep 600 never ran", func() bool { return running(t, env, pid, "sleep 600") != "" })
		cancel()
		if err := <-done; err == nil {
			t.Fatal("a cancelled call returned a result")
		}
		// Far less than the 600 s the command would run.
		await(t, 90*time.Second, "the command outlived the cancelled call", func() bool { return running(t, env, pid, "sleep 600") == "" })
		res, text := s.call(t, "exec", map[string]any{"command": "echo still serving"})
		mustSucceed(t, res, text)
	})

	t.Run("16 calls at once", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 16)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name, args := "read_file", map[string]any{"path": "long.txt", "offset": i*100 + 1, "limit": 1}
				want := fmt.Sprintf("line %d\n", i*100+1)
				if i%4 == 3 {
					name, args, want = "search", map[string]any{"query": "TODO", "path_glob": "*.go"}, "main.go:3:"
				}
				ctx, cancel := context.WithTimeout(context.Background(), mcpPatience)
				defer cancel()
				res, err := s.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
				if err != nil || res.IsError || !strings.Contains(resultText(res), want) {
					errs <- fmt.Sprintf("call %d: %v %v", i, err, res)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("every call is audited with the front end and the client", func(t *testing.T) {
		recs := auditOf(t, dir)
		ops := map[string]int{}
		for _, r := range recs {
			if r.FrontEnd != "mcp" || r.Client != "e2e-go-sdk 1.0" {
				t.Fatalf("record %+v", r)
			}
			ops[r.Op]++
		}
		// The cancelled command is audited too, as run in its container.
		cancelled := false
		for _, r := range recs {
			cancelled = cancelled || r.Target == "sleep 600" && r.Code == "CANCELED" && r.Container != ""
		}
		if !cancelled {
			t.Errorf("no record of the cancelled command")
		}
		// 5 reads + 16 calls' 12, 1 write + the denied one, 3 edits, 2 lists, 2 + 4 searches, 6 execs.
		for op, n := range map[string]int{"open": 15, "write": 2, "edit": 3, "list": 2, "search": 6, "exec": 6} {
			if ops[op] < n {
				t.Errorf("%d %s records, want %d: %v", ops[op], op, n, ops)
			}
		}
	})
}

// TestE2EMCPHostilePathsThroughTheTools runs the sandbox conformance
// suite's hostile cases through read_file, write_file and edit_file.
func TestE2EMCPHostilePathsThroughTheTools(t *testing.T) {
	t.Parallel()
	fx := sandboxtest.NewFixture(t)
	outside := sandboxtest.TreeHash(t, fx.Outside)
	l := sandboxtest.Limits
	// The fixture's llm-runtime.config.yaml says sandbox: local; the flag
	// keeps Docker, and the variables the suite's limits.
	s := startMCP(t, fx.Dir, []string{
		"LLM_RUNTIME_SECURITY_MAX_FILE_SIZE=" + strconv.FormatInt(l.MaxFileSize, 10),
		"LLM_RUNTIME_SECURITY_MAX_WRITE_SIZE=" + strconv.FormatInt(l.MaxWriteSize, 10),
	}, "--sandbox", "docker")
	ran := 0
	for _, op := range sandboxtest.Hostile(fx) {
		switch {
		case !utf8Valid(op.Arg) || !utf8Valid(op.Content):
			continue // JSON strings are Unicode: invalid UTF-8 cannot be sent
		case op.Name == "absolute path inside the repository":
			op.Code, op.Want = "", "hello\n" // the front ends take it relative to the root
		}
		var res *mcp.CallToolResult
		var text string
		switch op.Kind {
		case "open":
			res, text = s.call(t, "read_file", map[string]any{"path": op.Arg})
		case "write":
			res, text = s.call(t, "write_file", map[string]any{"path": op.Arg, "content": op.Content})
		case "edit":
			edits := []map[string]any{}
			if blocks, err := edit.Parse([]byte(op.Content)); err == nil {
				for _, b := range blocks {
					edits = append(edits, map[string]any{"old_text": strings.Join(b.Search, "\n"), "new_text": strings.Join(b.Replace, "\n")})
				}
			}
			res, text = s.call(t, "edit_file", map[string]any{"path": op.Arg, "edits": edits})
		default:
			continue
		}
		ran++
		if c := errorCode(t, res); c != op.Code {
			t.Errorf("%s: %s %q: %s, want %q: %s", op.Name, op.Kind, op.Arg, c, op.Code, text)
			continue
		}
		if strings.Contains(text, sandboxtest.Secret) {
			t.Errorf("%s: the secret outside the repository leaked", op.Name)
		}
		if op.Code != "" {
			continue
		}
		var got string
		switch op.Kind {
		case "open":
			got = text
		default:
			var w struct {
				Path string `json:"path"`
			}
			into(t, res, &w)
			b, _ := os.ReadFile(filepath.Join(fx.Dir, w.Path))
			got = string(b)
		}
		if got != op.Want {
			t.Errorf("%s: got %q, want %q", op.Name, got, op.Want)
		}
	}
	if ran < 70 {
		t.Fatalf("only %d cases ran", ran)
	}
	if sandboxtest.TreeHash(t, fx.Outside) != outside {
		t.Fatal("something outside the repository changed")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestE2EMCPPoolLivesAsLongAsTheServer: an idle server shrinks its pool
// to startup_containers, replaces a container that was killed, and
// keeps serving.
func TestE2EMCPPoolLivesAsLongAsTheServer(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	s := startMCP(t, dir, []string{
		"LLM_RUNTIME_CONTAINER_POOL_SIZE=3", "LLM_RUNTIME_CONTAINER_POOL_STARTUP_CONTAINERS=1",
		"LLM_RUNTIME_CONTAINER_POOL_IDLE_TIMEOUT=2s", "LLM_RUNTIME_CONTAINER_POOL_HEALTH_CHECK_INTERVAL=1s",
		"LLM_RUNTIME_CONTAINER_POOL_SPARE_DELAY=0s",
	}, "--verbose")
	pid := s.cmd.Process.Pid
	pooled := func() []string { return ourContainers(t, env, pid)["io"] }
	// Calls at once until the pool has grown past startup_containers.
	await(t, 3*time.Minute, "the pool never grew past 1 container", func() bool {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.call(t, "search", map[string]any{"query": "A"})
			}()
		}
		wg.Wait()
		return len(pooled()) > 1
	})
	// Idle, it shrinks back to startup_containers.
	await(t, 3*time.Minute, "the idle pool did not shrink to 1 container", func() bool { return len(pooled()) == 1 })
	// A container killed from outside is replaced, and reads go on.
	killed := pooled()[0]
	dockertest.ForceRemove(killed)
	res, text := s.call(t, "read_file", map[string]any{"path": "a.txt"})
	mustSucceed(t, res, text)
	if text != "A\n" {
		t.Fatalf("read after the kill: %q", text)
	}
	await(t, 3*time.Minute, "the killed container was not replaced", func() bool {
		ids := pooled()
		return len(ids) == 1 && ids[0] != killed
	})
}

// TestE2EMCPServerLeavesNothingWhenItsClientGoes: a client that closes
// standard input, or dies mid-call (its pipes close), or a server killed
// with SIGKILL mid-call, leaves no container behind.
func TestE2EMCPServerLeavesNothingWhenItsClientGoes(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	for _, how := range []string{"stdin closed", "client killed mid-call", "server killed mid-call"} {
		t.Run(how, func(t *testing.T) {
			dir := repo(t, map[string]string{"a.txt": "A\n"})
			cmd := exec.Command(binary, "mcp", "--root", dir, "--exec")
			cmd.Env = append(cleanEnv(), "LLM_RUNTIME_EXEC_WHITELIST=sleep")
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = &logWriter{t: t}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			lines := bufio.NewScanner(stdout)
			send := func(msg string) {
				if _, err := io.WriteString(stdin, msg+"\n"); err != nil {
					t.Fatal(err)
				}
			}
			send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`)
			if !lines.Scan() || !strings.Contains(lines.Text(), `"serverInfo"`) {
				t.Fatalf("initialize: %q %v", lines.Text(), lines.Err())
			}
			send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
			send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a.txt"}}}`)
			if !lines.Scan() || !strings.Contains(lines.Text(), `"A\n"`) {
				t.Fatalf("read_file: %q %v", lines.Text(), lines.Err())
			}
			switch how {
			case "stdin closed":
				stdin.Close()
			case "client killed mid-call", "server killed mid-call":
				send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"exec","arguments":{"command":"sleep 600"}}}`)
				await(t, 2*time.Minute, "sleep 600 never ran", func() bool { return running(t, env, pid, "sleep 600") != "" })
				if how == "server killed mid-call" {
					cmd.Process.Signal(syscall.SIGKILL)
				} else {
					stdin.Close() // the client's end of both pipes goes with it
					stdout.Close()
				}
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case <-waited:
			case <-time.After(2 * time.Minute):
				cmd.Process.Kill()
				t.Fatal("the server did not exit when its client went")
			}
			noContainersOf(t, env, pid, time.Minute)
		})
	}
}
