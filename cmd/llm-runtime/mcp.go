package main

import (
	"errors"
	"io"
	"log/slog"
	"os"

	"github.com/llm-runtime/llm-runtime/engine"
	"github.com/llm-runtime/llm-runtime/internal/filtercli"
	"github.com/llm-runtime/llm-runtime/mcpserver"
)

// mcpCmd serves the engine as an MCP server on standard input and output.
type mcpCmd struct {
	Sandbox   string   `placeholder:"NAME" help:"Where operations run: docker, kubernetes or local (only docker runs <exec>: the others refuse exec.enabled). Overrides the 'sandbox' setting."`
	NoPool    bool     `name:"no-pool" help:"A fresh container per operation (container_pool.enabled: false)."`
	Exec      *bool    `name:"exec" negatable:"" help:"List the exec tool (exec.enabled: true); --no-exec: not in this session, whatever the file or the environment say."`
	Policy    []string `placeholder:"FILE.wasm" sep:"none" help:"Add a policy guest, after those of the configuration (repeatable)."`
	Transform []string `placeholder:"FILE.wasm" sep:"none" help:"Add a transform guest, after those of the configuration (repeatable)."`
	LogFile   string   `name:"log-file" placeholder:"FILE" help:"Append the server's log to FILE (what --verbose reports, and the protocol's own log) instead of standard error."`
}

func (mcpCmd) Help() string {
	return `Serve the repository to an MCP client (Claude Code, Claude Desktop, VS Code,
Cursor, an agent built on an SDK) over standard input and output: the same
sandbox, policies, transforms and audit log as the filter, with a pool that
stays warm for the whole session. Standard output carries JSON-RPC and nothing
else; --verbose logs to standard error, or to --log-file.

Tools: read_file {path, offset?, limit?, line_numbers?},
write_file {path, content}, edit_file {path, edits: [{old_text, new_text}],
dry_run?}, list_directory {path?, pattern?}, search {query, regex?,
path_glob?, max_results?, context?}, and with --exec (exec.enabled) exec
{command, timeout_s?}, whose description gives the whitelist, the timeout
and whether a command's changes are kept. read_file's result is the file's
text alone (where its lines are: _meta "llm-runtime/read"); the other tools
also give structured content.

The root is --root and only --root: roots a client announces are not asked
for and widen nothing; a path outside the root is refused (PATH_SECURITY).
Every call is audited, durable before its result is sent, with the front end
(mcp) and the client's name and version. The server exits, removing its
containers, when the client closes standard input or on SIGTERM.

Examples:

  claude mcp add --transport stdio llm-runtime -- llm-runtime mcp --root "$PWD"
  llm-runtime mcp --root ~/src/project --exec --verbose --log-file /tmp/llm-runtime-mcp.log
  llm-runtime mcp --root . --sandbox local     # no Docker, no exec`
}

func (m *mcpCmd) Run(e env, c *cli) error {
	o := filtercli.Overrides{Sandbox: m.Sandbox, NoPool: m.NoPool, Exec: m.Exec, Policy: m.Policy, Transform: m.Transform}
	root, file, cfg, err := c.load(e, &o)
	if err != nil {
		return err
	}
	if err := cfg.CheckSandbox(); err != nil {
		return fail(exitConfig, "%v", err)
	}
	logw := e.stderr
	if m.LogFile != "" {
		f, err := os.OpenFile(m.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fail(exitUsage, "--log-file: %v", err)
		}
		defer f.Close()
		logw = f
	}
	// The session's log goes where the server's does, never to standard
	// output.
	c2 := *c
	sessEnv := e
	sessEnv.stderr = logw
	sess, err := c2.openSession(sessEnv, root, file, cfg, "mcp")
	if err != nil {
		return err
	}
	defer sess.Close()
	// The exec tool's description says what the exec image can run, as
	// the filter's prompt does.
	x, _, err := engine.PromptExec(e.ctx, cfg, version)
	if err != nil {
		return exitOf(err)
	}
	var logger *slog.Logger
	if c.verbose() {
		logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	srv := mcpserver.New(mcpserver.Options{
		Runner:    sess.Runner,
		Root:      root,
		Exec:      x,
		MaxResult: cfg.MCP.MaxResult,
		Version:   version,
		Logger:    logger,
		Journal:   sess.Runner.Journal != nil,
	})
	// Our own standard streams are closed with the session, which unblocks
	// a read in progress; an injected reader (a test) is left alone.
	t := &mcpserver.StdioTransport{In: io.NopCloser(e.stdin), Out: nopCloser{e.stdout}}
	if f, ok := e.stdin.(*os.File); ok {
		t.In = f
	}
	err = srv.Run(e.ctx, t)
	switch {
	case err == nil, errors.Is(err, io.EOF), e.ctx.Err() != nil:
		return nil // the client closed its end, or we were told to stop
	}
	return fail(exitUsage, "mcp: %v", err)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
