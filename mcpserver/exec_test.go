package mcpserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/mcpserver"
	"github.com/llm-runtime/llm-runtime/prompt"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// testExec is exec as the tests configure it.
var testExec = &prompt.Exec{Whitelist: []string{"go test", "ls"}, Timeout: 90 * time.Second}

// scriptedExec is the local sandbox with an exec that answers each command
// line as scripted.
type scriptedExec struct {
	*sandbox.Local
	script map[string]func() (*sandbox.ExecResult, error)
}

func (s *scriptedExec) Exec(ctx context.Context, command string) (*sandbox.ExecResult, error) {
	return s.script[command]()
}

// TestExecThatDidNotRunHasNoExitCode: a command refused before it ran (by
// the whitelist, for a timeout before it started, exec being disabled), or
// one that never came back, has no exit_code and no duration in the
// structured content, and its text does not claim one; a command that ran
// has both.
func TestExecThatDidNotRunHasNoExitCode(t *testing.T) {
	f := start(t, nil, mcpserver.Options{Exec: testExec})
	sb := &scriptedExec{Local: f.sb.Local, script: map[string]func() (*sandbox.ExecResult, error){
		"rm -rf .": func() (*sandbox.ExecResult, error) {
			return nil, sandbox.Errorf(sandbox.CodeExecValidation, "rm is not in exec.whitelist")
		},
		"sleep 9": func() (*sandbox.ExecResult, error) {
			return nil, sandbox.Errorf(sandbox.CodeExecTimeout, "no container in time")
		},
		"true": func() (*sandbox.ExecResult, error) {
			return nil, sandbox.Errorf(sandbox.CodeExecDisabled, "exec is disabled")
		},
		// The sandbox's own mark of a command that did not come back,
		// with the changes it left: ExitCode -1.
		"lost": func() (*sandbox.ExecResult, error) {
			return &sandbox.ExecResult{ExitCode: -1, Changes: []sandbox.Change{{Path: "a", Action: sandbox.ChangeDiscarded}}},
				sandbox.Errorf(sandbox.CodeSandboxError, "what the command changed could not be read")
		},
		"false": func() (*sandbox.ExecResult, error) {
			return &sandbox.ExecResult{ExitCode: 1, Duration: 3 * time.Millisecond}, sandbox.Errorf(sandbox.CodeExecFailed, "exit code 1")
		},
	}}
	f.runner.Sandbox = sb
	for _, c := range []struct{ command, code string }{
		{"rm -rf .", sandbox.CodeExecValidation},
		{"sleep 9", sandbox.CodeExecTimeout},
		{"true", sandbox.CodeExecDisabled},
		{"lost", sandbox.CodeSandboxError},
	} {
		res, text, out := f.call(t, "exec", map[string]any{"command": c.command})
		if !res.IsError || codeOf(out) != c.code {
			t.Fatalf("%s: isError %v, %v", c.command, res.IsError, out)
		}
		for _, field := range []string{"exit_code", "duration_ms", "output"} {
			if v, ok := out[field]; ok {
				t.Errorf("%s: nothing ran, yet %s is %v", c.command, field, v)
			}
		}
		if strings.Contains(text, "exit code -1") || strings.Contains(text, "[exit code") {
			t.Errorf("%s: the text claims an exit code: %q", c.command, text)
		}
	}
	res, text, out := f.call(t, "exec", map[string]any{"command": "false"})
	if !res.IsError || out["exit_code"] != 1.0 || out["duration_ms"] != 3.0 || !strings.Contains(text, "[exit code 1 after 3ms]") {
		t.Fatalf("a command that ran and failed: %v %q", out, text)
	}
}

// TestExecDescriptionSaysTheRulesAsConfigured: the exec tool's description
// gives the whitelist, the timeout, the image's toolchains, the shell and
// whether changes are kept,
// in the sentences of the filter's prompt (prompt.ExecRules), so that a
// model learns them before its first command.
func TestExecDescriptionSaysTheRulesAsConfigured(t *testing.T) {
	for _, x := range []*prompt.Exec{
		testExec,
		{Whitelist: []string{"*"}, Shell: true, Writable: true, Timeout: 10 * time.Minute, Toolchains: []string{"go1.26.8"}},
	} {
		f := start(t, nil, mcpserver.Options{Exec: x})
		res, err := f.cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		desc := ""
		for _, tool := range res.Tools {
			if tool.Name == "exec" {
				desc = tool.Description
			}
		}
		want := append(prompt.ExecRules(*x, mcpserver.MCPTerms), "killed after "+x.Timeout.String()+"."+prompt.Toolchains(x.Toolchains)+" ")
		for _, w := range want {
			if !strings.Contains(desc, w) {
				t.Errorf("the description lacks %q:\n%s", w, desc)
			}
		}
		kept := strings.Contains(desc, "is kept")
		if kept != x.Writable || strings.Contains(desc, "<exec>") || strings.Contains(desc, "<edit>") {
			t.Errorf("writable %v: %s", x.Writable, desc)
		}
	}
	if !strings.Contains(prompt.Allowed(*testExec), "`go test`, `ls`") || prompt.Allowed(prompt.Exec{Whitelist: []string{"*"}}) != "Any command may run." {
		t.Errorf("Allowed: %q", prompt.Allowed(*testExec))
	}
}
