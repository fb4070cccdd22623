package main

import (
	"fmt"
	"strings"

	"github.com/llm-runtime/llm-runtime/engine"
	"github.com/llm-runtime/llm-runtime/internal/filtercli"
	"github.com/llm-runtime/llm-runtime/prompt"
)

type promptCmd struct {
	Sandbox     string `placeholder:"NAME" help:"docker, kubernetes or local (kubernetes and local cannot exec: with exec enabled they are refused). Overrides the 'sandbox' setting."`
	Exec        *bool  `name:"exec" negatable:"" help:"As with exec enabled (exec.enabled: true); --no-exec: as with it off."`
	LineNumbers bool   `name:"line-numbers" help:"As with files' lines numbered (output.line_numbers: true)."`
	Format      string `enum:"markdown,text" default:"markdown" help:"markdown (headings, code fences) or text."`
}

func (promptCmd) Help() string {
	return `Prints a system prompt that teaches a model the command language as this run
is configured (the repository's configuration file, flags, LLM_RUNTIME_*
variables): the commands it may use (<exec> only when exec is enabled, with
the entries of its whitelist that exec.image can run), the limits, how
results are framed, the error codes, and examples; with output.line_numbers
(--line-numbers), how numbered lines read. With exec, it asks the image
which programs are on its PATH (from the label of an image llm-runtime
built, else by looking in its filesystem, once per image), and says on
standard error which entries it left out; the exec example is one that the
whitelist allows. The test suite runs every example through the parser and
the sandbox, so the prompt says what the tool does.

Examples:

  llm-runtime prompt > system-prompt.md
  llm-runtime prompt --exec --format text`
}

func (p promptCmd) Run(e env, c *cli) error {
	_, _, cfg, err := c.load(e, &filtercli.Overrides{Sandbox: p.Sandbox, Exec: p.Exec, LineNumbers: p.LineNumbers})
	if err != nil {
		return err
	}
	if err := cfg.CheckSandbox(); err != nil {
		return fail(exitConfig, "%v", err)
	}
	s := prompt.Settings{
		MaxFileSize:      cfg.Security.MaxFileSize,
		MaxWriteSize:     cfg.Security.MaxWriteSize,
		MaxSearchResults: cfg.Search.MaxResults,
		MaxListEntries:   cfg.List.MaxEntries,
		Excluded:         cfg.Security.ExcludedPaths,
		LineNumbers:      cfg.Output.LineNumbers,
		Journal:          cfg.Journal.Enabled,
	}
	x, missing, err := engine.PromptExec(e.ctx, cfg, version)
	if err != nil {
		return exitOf(err)
	}
	s.Exec = x
	if len(missing) > 0 {
		fmt.Fprintf(e.stderr, "llm-runtime: left out of the prompt: %s: the image %s has no such program\n", strings.Join(missing, ", "), cfg.Exec.Image)
	}
	text, err := prompt.Render(s, p.Format)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	_, err = fmt.Fprint(e.stdout, text)
	return err
}
