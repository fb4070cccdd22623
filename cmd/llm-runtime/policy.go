package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/runtime/wasm"
)

type policyCmd struct {
	Test  policyTestCmd  `cmd:"" help:"Show what a guest decides for the commands in some model output."`
	Check policyCheckCmd `cmd:"" help:"Check a guest's ABI and say what it exports."`
}

type policyTestCmd struct {
	Module       string   `arg:"" placeholder:"MODULE.wasm" help:"The guest."`
	Input        []string `arg:"" optional:"" placeholder:"TEXT" help:"Model output with commands in it (after --); standard input if none."`
	ModuleConfig string   `name:"module-config" placeholder:"JSON" help:"The module's configuration, as JSON."`
}

func (p policyTestCmd) Help() string {
	return `Examples:

  llm-runtime policy test guests/protect-secrets/protect-secrets.wasm -- '<write .env>x</write> <open README.md>'
  llm-runtime policy test guests/redact/redact.wasm -- 'aws_key=AKIAIOSFODNN7EXAMPLE'

A policy prints its decision for each command; a transform prints the text
as it would rewrite it.`
}

func (p policyTestCmd) Run(e env) error {
	var cfg json.RawMessage
	if p.ModuleConfig != "" {
		if !json.Valid([]byte(p.ModuleConfig)) {
			return fail(exitUsage, "--module-config is not JSON")
		}
		cfg = json.RawMessage(p.ModuleConfig)
	}
	m, err := wasm.Compile(e.ctx, wasm.Spec{Path: p.Module, Config: cfg})
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	defer m.Close(e.ctx)
	text := strings.Join(p.Input, " ")
	if len(p.Input) == 0 {
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return fail(exitUsage, "reading standard input: %v", err)
		}
		text = string(b)
	}
	if m.HasPolicy() {
		ps := parser.New(strings.NewReader(text), parser.Options{})
		n := 0
		for {
			cmd, err := ps.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fail(exitUsage, "%v", err)
			}
			n++
			if cmd.Err != nil {
				fmt.Fprintf(e.stdout, "%s  PARSE_ERROR  %v\n", cmd.Tag(), cmd.Err)
				continue
			}
			start := time.Now()
			rep, err := m.Decide(e.ctx, runner.PolicyRequest(cmd, "policy-test"))
			took := time.Since(start)
			switch {
			case err != nil:
				fmt.Fprintf(e.stdout, "%s  deny (POLICY_ERROR)  %v  [%s]\n", cmd.Tag(), err, took.Round(time.Microsecond))
			case rep.Decision == "rewrite":
				fmt.Fprintf(e.stdout, "%s  rewrite -> %s  %s  [%s]\n", cmd.Tag(), parser.Printable(rep.Argument), rep.Reason, took.Round(time.Microsecond))
			default:
				fmt.Fprintf(e.stdout, "%s  %s  %s  [%s]\n", cmd.Tag(), rep.Decision, rep.Reason, took.Round(time.Microsecond))
			}
		}
		if n == 0 && !m.HasTransform() {
			fmt.Fprintln(e.stdout, "no commands in the input; give one like: -- '<open .env>'")
		}
	}
	if m.HasTransform() {
		out, changes, err := m.Transform(e.ctx, wasm.TransformRequest{Op: "open", Output: text})
		if err != nil {
			return fail(exitUsage, "transform: %v", err)
		}
		fmt.Fprintf(e.stdout, "%s\n(%s)\n", out, plural(changes, "change"))
	}
	return nil
}

type policyCheckCmd struct {
	Module string `arg:"" placeholder:"MODULE.wasm" help:"The guest."`
}

func (p policyCheckCmd) Run(e env, c *cli) error {
	if root, err := filepath.Abs(c.Root); err == nil {
		if _, inside := paths.Within(root, p.Module); inside {
			fmt.Fprintf(e.stderr, "llm-runtime: warning: %s is inside the repository %s: a run refuses to write it from the sandbox, but anything else that can write the repository can replace this policy; keep guests outside\n", p.Module, paths.RealPath(root))
		}
	}
	start := time.Now()
	m, err := wasm.Compile(e.ctx, wasm.Spec{Path: p.Module})
	if err != nil {
		return fail(exitConfig, "%v", err)
	}
	defer m.Close(e.ctx)
	compiled := time.Since(start)
	if err := m.Instantiate(e.ctx); err != nil {
		return fail(exitConfig, "%v", err)
	}
	var roles []string
	if m.HasPolicy() {
		roles = append(roles, "policy")
	}
	if m.HasTransform() {
		roles = append(roles, "transform")
	}
	exports := m.Exports()
	sort.Strings(exports)
	abi := fmt.Sprintf("ABI version %d", m.ABI())
	if m.ABI() < wasm.ABIVersion {
		abi += fmt.Sprintf(" (this llm-runtime speaks %d: delete and move are denied without asking it)", wasm.ABIVersion)
	}
	fmt.Fprintf(e.stdout, "%s: %s, %s\n", m.Name(), abi, strings.Join(roles, " and "))
	fmt.Fprintf(e.stdout, "exports: %s\n", strings.Join(exports, ", "))
	fmt.Fprintf(e.stdout, "compiled in %s, instantiated in %s (compilation cache: %s)\n",
		compiled.Round(time.Millisecond), (time.Since(start) - compiled).Round(time.Millisecond), paths.GuestCacheDir())
	return nil
}
