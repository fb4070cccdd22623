package main

// End-to-end tests, through the binary, of what the MCP tools tell a
// model: exec's rules before its first command, no exit code for a command
// that did not run, search's context lines, numbered reads, and results
// that do not say the same thing twice.

import (
	"context"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// TestE2EMCPExecSaysItsRulesAndRefusalsHaveNoExitCode: the exec tool's
// description gives the configured whitelist, timeout and what becomes of
// changes; a command refused by the whitelist or by a policy comes back
// with its code and without an exit_code (nothing ran), and one that ran
// has its exit code.
func TestE2EMCPExecSaysItsRulesAndRefusalsHaveNoExitCode(t *testing.T) {
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
	wantAll(t, desc, "`echo`, `curl`", "killed after 45s", "No shell", "changes are discarded: change files with edit_file or write_file")

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
