package prompt_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/output"
	"github.com/llm-runtime/llm-runtime/prompt"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// run runs input through the parser, the runner and a local sandbox on a
// fresh copy of the example repository, and returns the text output.
func run(t *testing.T, input string) string { return runWith(t, input, output.Options{}) }

func runWith(t *testing.T, input string, o output.Options) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range prompt.ExampleRepo {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sb, err := sandbox.NewLocal(dir, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	var out bytes.Buffer
	rep, _ := output.NewWith("text", &out, o)
	r := &runner.Runner{Sandbox: sb, Report: rep, MaxWriteSize: sandbox.DefaultMaxWriteSize, Roots: []string{dir}}
	if _, err := r.Run(context.Background(), strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestExamplesShowWhatThePromptSays runs every example but exec's (the
// end-to-end tests run that one in a container) and checks that the
// answer shows the lines the prompt says, in order.
func TestExamplesShowWhatThePromptSays(t *testing.T) {
	for _, e := range prompt.Examples {
		if e.Exec {
			continue
		}
		t.Run(e.Title, func(t *testing.T) {
			if err := e.Check(run(t, e.Input)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestExamplesShowWhatThePromptSaysWithLineNumbers: with
// output.line_numbers on, the examples show what the prompt says, the
// files' lines numbered; and the prompt says how numbered lines read only
// then.
func TestExamplesShowWhatThePromptSaysWithLineNumbers(t *testing.T) {
	for _, e := range prompt.Examples {
		if e.Exec {
			continue
		}
		t.Run(e.Title, func(t *testing.T) {
			if err := e.WithLineNumbers().Check(runWith(t, e.Input, output.Options{LineNumbers: true})); err != nil {
				t.Fatal(err)
			}
		})
	}
	s := prompt.Settings{MaxFileSize: 1 << 20, MaxWriteSize: 100 << 10, MaxSearchResults: 100, MaxListEntries: 1000}
	for _, on := range []bool{false, true} {
		s.LineNumbers = on
		p, _ := prompt.Render(s, "markdown")
		if strings.Contains(p, prompt.LineNumbersRule) != on || strings.Contains(p, "     1\tmodule example.com/app") != on {
			t.Errorf("line numbers %v:\n%s", on, p)
		}
	}
}

func TestRenderSaysWhatIsConfigured(t *testing.T) {
	s := prompt.Settings{MaxFileSize: 1 << 20, MaxWriteSize: 100 << 10, MaxSearchResults: 100, MaxListEntries: 1000, Excluded: []string{".git", ".env"}}
	for _, format := range []string{"markdown", "text"} {
		p, err := prompt.Render(s, format)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"<open PATH:N-M>", "<edit PATH>", "<list>", "`.git`, `.env`", "1 MiB", "100 KiB", "EDIT_NO_MATCH", "<open main.go:9-11>", "INVALID_QUERY", "N from 1 to 20", "<search greeting in *.go -C 1>"} {
			if !strings.Contains(p, want) {
				t.Errorf("%s: no %q", format, want)
			}
		}
		for _, not := range []string{"<exec", "EXEC_"} {
			if strings.Contains(p, not) {
				t.Errorf("%s: exec is off, but the prompt says %q", format, not)
			}
		}
	}
	allows := func(line string) bool { return strings.HasPrefix(line, "go test") || strings.HasPrefix(line, "ls ") }
	s.Exec = &prompt.Exec{Whitelist: []string{"go test", "ls"}, Timeout: 30_000_000_000, Allows: allows}
	p, _ := prompt.Render(s, "markdown")
	for _, want := range []string{"<exec COMMAND>", "`go test`, `ls`", "in a fresh container with no network, killed after 30s", "No shell", "discarded", "EXEC_VALIDATION", "<exec ls internal/names>"} {
		if !strings.Contains(p, want) {
			t.Errorf("with exec: no %q", want)
		}
	}
	// With exec.network allowlist, the hosts a command reaches, and how.
	s.Exec.Network = []string{"proxy.golang.org", "sum.golang.org"}
	p, _ = prompt.Render(s, "markdown")
	if want := "in a fresh container whose only network is HTTP and HTTPS to proxy.golang.org, sum.golang.org (through the proxy HTTPS_PROXY and HTTP_PROXY name, which refuses every other host), killed after 30s"; !strings.Contains(p, want) || strings.Contains(p, "no network") {
		t.Errorf("with exec.network allowlist: no %q, or still \"no network\"", want)
	}
	if _, err := prompt.Render(s, "html"); err == nil {
		t.Error("an unknown format was accepted")
	}
}

// The exec example is the first candidate the configuration allows, and
// there is none when it allows none: an example never shows a command the
// configuration refuses.
func TestTheExecExampleIsOneTheConfigurationAllows(t *testing.T) {
	s := prompt.Settings{MaxFileSize: 1 << 20, MaxWriteSize: 100 << 10, MaxSearchResults: 100, MaxListEntries: 1000}
	for _, c := range []struct {
		allowed []string // prefixes of the lines allowed
		want    string   // the example's input; "" for none
	}{
		{[]string{"ls", "cat"}, "<exec ls internal/names>"},
		{[]string{"cat"}, "<exec cat go.mod>"},
		{[]string{"go vet", "go test"}, "<exec go vet ./...>"},
		{[]string{"go test"}, "<exec go test ./...>"},
		{[]string{"pwd", "true"}, "<exec pwd>"},
		{[]string{"make"}, ""},
		{nil, ""},
	} {
		allows := func(line string) bool {
			for _, a := range c.allowed {
				if line == a || strings.HasPrefix(line, a+" ") {
					return true
				}
			}
			return false
		}
		s.Exec = &prompt.Exec{Whitelist: c.allowed, Allows: allows}
		p, err := prompt.Render(s, "text")
		if err != nil {
			t.Fatal(err)
		}
		e := s.Exec.Example()
		switch {
		case c.want == "" && (e != nil || strings.Contains(p, "    <exec ")):
			t.Errorf("%q: an exec example, though none is allowed:\n%s", c.allowed, p)
		case c.want != "" && (e == nil || e.Input != c.want || !strings.Contains(p, "    "+c.want+"\n")):
			t.Errorf("%q: example %+v, want %s", c.allowed, e, c.want)
		}
	}
	s.Exec = &prompt.Exec{Whitelist: []string{"ls"}}
	if s.Exec.Example() != nil {
		t.Error("an Exec without Allows has an example")
	}
	for _, e := range prompt.ExecExamples {
		if !e.Exec || e.Input != "<exec "+e.Line()+">" || e.Shows[0] != "=== EXEC SUCCESSFUL: "+e.Line()+" ===" {
			t.Errorf("%+v: not an exec example of its line", e)
		}
	}
}

// TestThePromptTeachesDiffAndUndoOnlyWithTheJournal: <diff> and <undo>
// work only with journal.enabled, and the prompt says so by teaching them
// then alone.
func TestThePromptTeachesDiffAndUndoOnlyWithTheJournal(t *testing.T) {
	s := prompt.Settings{MaxFileSize: 1 << 20, MaxWriteSize: 100 << 10, MaxSearchResults: 100, MaxListEntries: 1000}
	for _, on := range []bool{false, true} {
		s.Journal = on
		p, _ := prompt.Render(s, "markdown")
		if strings.Contains(p, "`<diff>`") != on || strings.Contains(p, "`<undo>`") != on {
			t.Errorf("journal %v: <diff> %v, <undo> %v", on, strings.Contains(p, "`<diff>`"), strings.Contains(p, "`<undo>`"))
		}
	}
}

// TestTheJournalsExamplesShowWhatThePromptSays runs each example of
// <diff> and <undo> after its earlier reply, with a journal, and checks
// that the answer shows the lines the prompt says.
func TestTheJournalsExamplesShowWhatThePromptSays(t *testing.T) {
	for _, e := range prompt.JournalExamples {
		t.Run(e.Title, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range prompt.ExampleRepo {
				p := filepath.Join(dir, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(content), 0o644)
			}
			sb, err := sandbox.NewLocal(dir, sandbox.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer sb.Close()
			j, err := journal.Open(filepath.Join(t.TempDir(), "journal"))
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			ws, err := sandbox.OpenWorkspace(dir, sandbox.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			var out string
			for _, in := range []string{e.Before, e.Input} {
				var b bytes.Buffer
				rep, _ := output.New("text", &b)
				r := &runner.Runner{Sandbox: sb, Report: rep, MaxWriteSize: sandbox.DefaultMaxWriteSize, Roots: []string{dir}, Journal: j, Restorer: ws}
				if _, err := r.Run(context.Background(), strings.NewReader(in)); err != nil {
					t.Fatal(err)
				}
				out = b.String()
			}
			if err := e.Check(out); err != nil {
				t.Fatal(err)
			}
		})
	}
	s := prompt.Settings{MaxFileSize: 1 << 20, MaxWriteSize: 100 << 10, MaxSearchResults: 100, MaxListEntries: 1000, Journal: true}
	if p, _ := prompt.Render(s, "markdown"); !strings.Contains(p, "<undo>") || !strings.Contains(p, prompt.JournalExamples[0].Title) {
		t.Errorf("the prompt with the journal lacks its examples")
	}
}
