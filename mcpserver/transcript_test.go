package mcpserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/mcpserver"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

var updateTranscripts = flag.Bool("update", false, "rewrite the responses of testdata/transcripts/*.txtar from what the server says")

// A transcript is a txtar archive: a comment, then sections. "repo/PATH"
// sections are files of the repository, "requests" the lines the client
// sends ($ROOT is the repository's path), "responses" the lines the
// server must answer, in order, with $ROOT for the repository's path.
type transcriptArchive struct {
	comment string
	files   []transcriptFile
}

type transcriptFile struct {
	name string
	data string
}

// parseTranscript parses the txtar format (golang.org/x/tools/txtar).
func parseTranscript(s string) *transcriptArchive {
	a := &transcriptArchive{}
	cur := &a.comment
	for line := range strings.Lines(s) {
		t := strings.TrimRight(line, "\r\n")
		if name, ok := strings.CutPrefix(t, "-- "); ok && strings.HasSuffix(name, " --") && len(name) > 3 {
			a.files = append(a.files, transcriptFile{name: strings.TrimSpace(strings.TrimSuffix(name, " --"))})
			cur = &a.files[len(a.files)-1].data
			continue
		}
		*cur += line
	}
	return a
}

func (a *transcriptArchive) format() string {
	var b strings.Builder
	b.WriteString(withNewline(a.comment))
	for _, f := range a.files {
		fmt.Fprintf(&b, "-- %s --\n%s", f.name, withNewline(f.data))
	}
	return b.String()
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

func (a *transcriptArchive) section(name string) (string, bool) {
	for _, f := range a.files {
		if f.name == name {
			return f.data, true
		}
	}
	return "", false
}

func nonEmptyLines(s string) []string {
	var out []string
	for line := range strings.Lines(s) {
		if line = strings.TrimRight(line, "\r\n"); strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}

func TestTranscript(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "transcripts", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no transcripts in testdata/transcripts")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			runTranscript(t, path)
		})
	}
}

func runTranscript(t *testing.T, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := parseTranscript(string(raw))
	reqText, ok := a.section("requests")
	if !ok {
		t.Fatalf("%s has no requests section", path)
	}

	root := t.TempDir()
	for _, f := range a.files {
		name, ok := strings.CutPrefix(f.name, "repo/")
		if !ok {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	roots := []string{root}
	if real, err := filepath.EvalSymlinks(root); err == nil && real != root {
		roots = append(roots, real)
	}

	sb, err := sandbox.NewLocal(root, sandbox.Limits{MaxWriteSize: sandbox.DefaultMaxWriteSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	r := &runner.Runner{Sandbox: sb, MaxWriteSize: sandbox.DefaultMaxWriteSize, FrontEnd: "mcp", Roots: roots}
	srv := mcpserver.New(mcpserver.Options{Runner: r, Root: root, Version: "test"})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	runErr := make(chan error, 1)
	go func() {
		err := srv.Run(ctx, &mcpserver.StdioTransport{In: inR, Out: outW})
		outW.Close()
		runErr <- err
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReaderSize(outR, 1<<20)
		for {
			line, err := br.ReadString('\n')
			if line = strings.TrimRight(line, "\n"); line != "" {
				lines <- line
			}
			if err != nil {
				return
			}
		}
	}()

	var got []string
	// next reads server lines up to and including a response (an object
	// with an id and no method); anything before it is kept too.
	next := func(req string) {
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("the server closed its output; no response to %s", req)
				}
				got = append(got, line)
				if isResponse(line) {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no response to %s in 10s; so far:\n%s", req, strings.Join(got, "\n"))
			}
		}
	}
	for _, req := range nonEmptyLines(reqText) {
		req = strings.ReplaceAll(req, "$ROOT", root)
		if _, err := io.WriteString(inW, req+"\n"); err != nil {
			t.Fatalf("writing %s: %v", req, err)
		}
		if expectsResponse(req) {
			next(req)
		}
	}
	inW.Close()
	// Whatever the server says after the input ends is part of the
	// transcript (it should be nothing).
	for line := range lines {
		got = append(got, line)
	}
	select {
	case err := <-runErr:
		if err != nil && err != io.EOF {
			t.Logf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the input was closed")
	}

	normal := make([]string, len(got))
	for i, line := range got {
		normal[i] = normalizeLine(line, roots)
	}

	if *updateTranscripts {
		text := strings.Join(normal, "\n") + "\n"
		replaced := false
		for i := range a.files {
			if a.files[i].name == "responses" {
				a.files[i].data, replaced = text, true
			}
		}
		if !replaced {
			a.files = append(a.files, transcriptFile{name: "responses", data: text})
		}
		if err := os.WriteFile(path, []byte(a.format()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}

	respText, _ := a.section("responses")
	want := nonEmptyLines(respText)
	for i := 0; i < max(len(want), len(normal)); i++ {
		switch {
		case i >= len(normal):
			t.Errorf("response %d: missing; want\n%s", i+1, want[i])
		case i >= len(want):
			t.Errorf("response %d: unexpected\n%s", i+1, normal[i])
		default:
			eq, err := sameJSON(normal[i], want[i])
			if err != nil {
				t.Errorf("response %d: %v\ngot:  %s\nwant: %s", i+1, err, normal[i], want[i])
			} else if !eq {
				t.Errorf("response %d differs\ngot:  %s\nwant: %s", i+1, normal[i], want[i])
			}
		}
	}
	if t.Failed() {
		t.Log("run with -update to rewrite the goldens, and review the diff")
	}
}

// expectsResponse reports whether the server answers a line: everything
// but a notification (a JSON object with a method and no id).
func expectsResponse(line string) bool {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return true // malformed: a parse error comes back
	}
	_, hasID := m["id"]
	_, hasMethod := m["method"]
	return hasID || !hasMethod
}

// isResponse reports whether a server line answers a request.
func isResponse(line string) bool {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return true // not JSON at all: let the comparison show it
	}
	_, hasID := m["id"]
	_, hasMethod := m["method"]
	return hasID && !hasMethod
}

var (
	durationMS   = regexp.MustCompile(`"duration_ms":\s*\d+`)
	durationText = regexp.MustCompile(`after \d+(\.\d+)?(ns|µs|us|ms|s|m\d+(\.\d+)?s)`)
)

// normalizeLine replaces what varies from run to run: the repository's
// path and durations.
func normalizeLine(line string, roots []string) string {
	for _, root := range roots {
		q, _ := json.Marshal(root)
		line = strings.ReplaceAll(line, string(q[1:len(q)-1]), "$ROOT")
	}
	line = durationMS.ReplaceAllString(line, `"duration_ms":0`)
	line = durationText.ReplaceAllString(line, "after $$DURATION")
	return line
}

// sameJSON compares two JSON texts as values: key order and spacing do
// not matter.
func sameJSON(got, want string) (bool, error) {
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		return false, fmt.Errorf("got is not JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		return false, fmt.Errorf("the golden is not JSON: %v", err)
	}
	return reflect.DeepEqual(g, w), nil
}
