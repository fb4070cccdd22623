package engine

import (
	"context"
	"slices"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/prompt"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/whitelist"
)

// PromptExec is what the prompt, and the MCP exec tool's description, say
// of exec as cfg configures it; nil when exec cannot run (ExecEnabled is
// false). It asks the exec image which programs it has, once per image
// (ExecImage: settings the image recommends and the user did not set are
// applied to cfg): the whitelist's entries whose program the image lacks
// are left out, and returned as missing; the example is one that passes
// the whitelist and whose program the image has.
func PromptExec(ctx context.Context, cfg *config.Config, version string) (x *prompt.Exec, missing []string, err error) {
	if !ExecEnabled(cfg) {
		return nil, nil, nil
	}
	d, err := container.Connect(ctx, version)
	if err != nil {
		return nil, nil, fail(KindSandbox, "%v", err)
	}
	defer d.Close()
	var more []string
	for _, e := range prompt.ExecExamples {
		more = append(more, e.Line())
	}
	xi, err := ExecImage(ctx, d, cfg, more...)
	if err != nil {
		return nil, nil, err
	}
	return promptExec(cfg, xi)
}

// promptExec is PromptExec's answer for the image xi.
func promptExec(cfg *config.Config, xi *container.ExecImage) (*prompt.Exec, []string, error) {
	c := cfg.Exec
	runnable, missing := xi.Runnable(c.Whitelist)
	allows := func(line string) bool {
		programs, err := whitelist.CheckCommand(line, c.Whitelist, c.Shell, c.Writable)
		return err == nil && !slices.ContainsFunc(programs, func(p string) bool { return !xi.Has(p) })
	}
	return &prompt.Exec{Whitelist: runnable, Shell: c.Shell, Writable: c.Writable, Timeout: c.Timeout, Toolchains: xi.Toolchains, Network: c.Reachable(), Allows: allows}, missing, nil
}
