package main

import (
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/prompt"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// TestE2EPromptTeachesTheCommandsAsConfigured: 'llm-runtime prompt' says
// what the configuration allows (exec only when on, its whitelist, the
// limits), in both formats, and its exec example, run through the binary
// in the exec image, shows what the prompt says (the others run in the
// prompt package's tests) (issue 13 §6).
func TestE2EPromptTeachesTheCommandsAsConfigured(t *testing.T) {
	t.Parallel()
	dir := repo(t, prompt.ExampleRepo)
	off := runBinary(t, dir, "", []string{"LLM_RUNTIME_SECURITY_MAX_FILE_SIZE=2MiB"}, "prompt")
	if off.code != 0 || !strings.HasPrefix(off.stdout, "# Working on the repository\n") || strings.Contains(off.stdout, "<exec") || !strings.Contains(off.stdout, "up to 2 MiB") {
		t.Fatalf("prompt: exit %d\n%s%s", off.code, off.stdout, off.stderr)
	}
	if r := runBinary(t, dir, "", nil, "prompt", "--exec", "--sandbox", "local"); r.code != 2 || strings.Contains(r.stdout, "<exec") {
		t.Errorf("the local sandbox cannot exec, but prompt --exec --sandbox local: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// With exec, the prompt lists the whitelisted commands the exec image
	// can run (the busybox image has no go), and its example is one of
	// them, which shows what the prompt says (e2e_exec_defaults_test.go
	// runs it for several configurations).
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	on := runBinary(t, dir, "", []string{"LLM_RUNTIME_EXEC_WHITELIST=ls,go test"}, "prompt", "--exec", "--format", "text")
	for _, want := range []string{"COMMANDS\n========\n", "<exec COMMAND>", "one of these): `ls`.\n", "    <exec ls internal/names>\n"} {
		if !strings.Contains(on.stdout, want) {
			t.Errorf("prompt --exec --format text lacks %q:\n%s", want, on.stdout)
		}
	}
	e := prompt.ExecExamples[0]
	if err := e.Check(runBinary(t, dir, e.Input, nil, "--exec").stdout); err != nil {
		t.Fatal(err)
	}
}
