// Package mcpserver is the MCP front end: it serves the engine's operations
// (read_file, write_file, edit_file, delete_file, move_file,
// list_directory, search and, when exec is enabled, exec; diff and undo
// when changes are journaled) as the tools of a Model Context Protocol server, each
// call one operation on the runner's path (policies, sandbox, transforms, a
// durable audit record before the result is sent).
//
// Every tool has a typed input schema. A failed operation is a tool result
// with isError, its text "CODE: message", and its structured content
// {"error": {"code", "message", "detail"}} (ErrorInfo), never a protocol
// error. Each result's text is capped (Options.MaxResult), and what is cut
// says how to get the rest.
//
// # Text and structured content
//
// Clients differ in which of a result's two forms they give the model:
// Claude Code, Codex and opencode give it the structured content whenever
// there is one (JSON.stringify of it, the text dropped), others only the
// text. So each form must hold everything the model needs, and a tool
// whose result is mostly a payload for the model is better without
// structured content at all:
//
//   - read_file has no output schema and no structured content: its text
//     is the file's lines (and a second text, a note, when there is more
//     to read), sent once and read as it is by every client, not as an
//     escaped JSON string; where the lines are in the file is in the
//     result's _meta (MetaRead, ReadMeta) for programs.
//   - write_file, edit_file, list_directory, search and exec have an
//     output schema and structured content that programs use (exit_code,
//     changes, matches, entries, applied), and their text says the same
//     for the clients that read only the text.
//
// Output schemas are trimmed to the fields and their types (trimOutput):
// tools/list is sent whole to every client, and a model reads only the
// descriptions and input schemas.
package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/llm-runtime/llm-runtime/edit"
	"github.com/llm-runtime/llm-runtime/output"
	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/prompt"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Options configure a server.
type Options struct {
	// Runner runs every operation; its FrontEnd should be "mcp".
	Runner *runner.Runner
	// Root is the repository, as the instructions name it.
	Root string
	// Exec, if set, lists the exec tool, whose description says these
	// rules: the whitelist, the shell, the timeout, whether changes are
	// kept (prompt.ExecRules, as the filter's prompt says them).
	Exec *prompt.Exec
	// MaxResult bounds the text of one result, structured content
	// included (mcp.max_result); 0 is DefaultMaxResult.
	MaxResult int64
	// Version is the server's, in its initialize result.
	Version string
	// Logger, if set, logs the server's activity.
	Logger *slog.Logger
	// ProgressEvery is how often a running exec reports progress when the
	// client asked for it; 0 is DefaultProgressEvery.
	ProgressEvery time.Duration
	// Journal lists the diff and undo tools: changes are journaled
	// (journal.enabled, the Runner's Journal).
	Journal bool
}

// DefaultMaxResult is the default of Options.MaxResult: under the 25,000
// tokens Claude Code accepts by default (MAX_MCP_OUTPUT_TOKENS).
const DefaultMaxResult = 80 << 10

// DefaultProgressEvery is how often a running exec reports progress: well
// inside the 5 s that keeps a client's resetting request timeout alive.
const DefaultProgressEvery = 2 * time.Second

// DefaultReadLines is how many lines read_file returns without a limit.
const DefaultReadLines = 2000

// New returns the server. Serve it with Run on a transport
// (&mcp.StdioTransport{} for standard input and output).
func New(o Options) *mcp.Server {
	if o.MaxResult <= 0 {
		o.MaxResult = DefaultMaxResult
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "llm-runtime", Title: "llm-runtime sandbox", Version: o.Version}, &mcp.ServerOptions{
		Instructions: instructions(o),
		Logger:       o.Logger,
		// Tools only; no logging capability.
		Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{}},
	})
	h := &handler{o: o}
	no := false
	closed := &no // openWorldHint: the tools touch the repository only
	yes := true
	addTextTool(s, &mcp.Tool{
		Name:        "read_file",
		Title:       "Read a file",
		Description: "Read a text file, by lines; a longer one is paged (the result says the offset to read on from).",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: closed},
	}, h.readFile)
	addTool(s, &mcp.Tool{
		Name:        "write_file",
		Title:       "Write a file",
		Description: "Create or replace a file, atomically, making missing directories.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: closed},
	}, h.writeFile)
	addTool(s, &mcp.Tool{
		Name:  "edit_file",
		Title: "Edit a file",
		Description: "Change a file: each edit's old_text, whole lines matching one place exactly (else one place ignoring white space at line ends; " +
			"new_text then takes the file's indentation), becomes its new_text. All edits apply or none; the result is a unified diff.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: closed},
	}, h.editFile)
	addTool(s, &mcp.Tool{
		Name:        "delete_file",
		Title:       "Delete a file",
		Description: "Delete a file, a symbolic link (not its target) or an empty directory.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: closed},
	}, h.deleteFile)
	addTool(s, &mcp.Tool{
		Name:        "move_file",
		Title:       "Move a file",
		Description: "Move or rename a file, link or directory, making missing directories; a file at to is replaced only with overwrite.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: closed},
	}, h.moveFile)
	addTool(s, &mcp.Tool{
		Name:        "list_directory",
		Title:       "List a directory",
		Description: "List a directory: directories first, files with sizes, links with targets.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: closed},
	}, h.listDirectory)
	addTool(s, &mcp.Tool{
		Name:        "search",
		Title:       "Search files",
		Description: "Find the lines of the repository's text files that hold query; excluded, .gitignored, binary and oversized files are skipped and counted.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: closed},
	}, h.search)
	if o.Journal {
		addTool(s, &mcp.Tool{
			Name:        "diff",
			Title:       "Show changes",
			Description: "A unified diff of today's changes to the repository (every call that changed something is a checkpoint), of one path, or of one checkpoint.",
			Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: closed},
		}, h.diff)
		addTool(s, &mcp.Tool{
			Name:        "undo",
			Title:       "Undo changes",
			Description: "Take back the last call's changes (or every checkpoint after to), each file only if nothing changed it since; an undo is a checkpoint, so undo again takes it back.",
			Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: closed},
		}, h.undo)
		addTool(s, &mcp.Tool{
			Name:        "checkpoint",
			Title:       "Name a checkpoint",
			Description: "Group the calls that follow into one checkpoint of this name (one undo takes them all back), until the next checkpoint call; an empty name ends the grouping.",
			// It changes nothing, but is not read-only: it names the
			// checkpoints of the calls after it.
			Annotations: &mcp.ToolAnnotations{DestructiveHint: &no, OpenWorldHint: closed},
		}, h.checkpoint)
	}
	if o.Exec != nil {
		addTool(s, &mcp.Tool{
			Name:        "exec",
			Title:       "Run a command",
			Description: execDescription(*o.Exec),
			Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: closed},
		}, h.exec)
	}
	return s
}

// MCPTerms are the tools' words for prompt.ExecRules.
var MCPTerms = prompt.ExecTerms{Run: "call", Change: "edit_file or write_file"}

// execDescription is the exec tool's description: the rules of exec as
// configured, the same sentences the filter's prompt says.
func execDescription(x prompt.Exec) string {
	return fmt.Sprintf("Run a command line in a fresh container %s, on a copy of the repository, killed after %s.%s ", prompt.Network(x.Network), x.Timeout, prompt.Toolchains(x.Toolchains)) +
		strings.Join(prompt.ExecRules(x, MCPTerms), " ")
}

func instructions(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "These tools work on one repository, %s, inside llm-runtime's sandbox, and on nothing else. ", o.Root)
	b.WriteString("Paths are relative to the repository (an absolute path inside it works too); a path outside it, an excluded file (.env, keys, .git) or one the policies deny is refused with a code such as PATH_SECURITY or POLICY_DENIED. ")
	b.WriteString("Read with read_file (paged by lines), change with edit_file (whole-line old_text/new_text) or write_file, find with search and list_directory. ")
	if o.Exec != nil {
		b.WriteString("exec runs a whitelisted command in a fresh container on a copy of the repository. ")
	}
	b.WriteString("Every call is recorded in an audit log.")
	return b.String()
}

type handler struct{ o Options }

// budget is what a result's payload may take of MaxResult: all but 1 KiB
// for the fixed fields and the notes.
func (h *handler) budget() int { return int(h.o.MaxResult) - 1024 }

// payloadCap is the most bytes of one text payload (a file's lines, an
// output, a diff): it is in the text and, escaped, in the structured
// content, so it gets a third of the budget in the text and the rest for
// its JSON; fit then cuts further whatever escaping would push over.
// read_file's lines are in the text only, but keep the same cap: a page
// three times as large would pass the 25,000 tokens Claude Code takes
// from one result for dense text.
func (h *handler) payloadCap() int { return h.budget() / 3 }

// jsonLen is the length of s as a JSON string.
func jsonLen(s string) int {
	b, _ := json.Marshal(s)
	return len(b)
}

// fit cuts s, by lines, until it and its JSON fit in the budget.
func (h *handler) fit(s string) (string, int, bool) {
	out, n, cut := cutLines(s, h.payloadCap())
	for len(out)+jsonLen(out) > h.budget() && len(out) > 0 {
		out, n, _ = cutLines(out, len(out)/2)
		cut = true
	}
	return out, n, cut
}

// ErrorInfo is a failed operation, the "error" of the structured content
// of every tool's error result (read_file's too); output schemas leave it
// out (see trimOutput).
type ErrorInfo struct {
	Code    string `json:"code" jsonschema:"the error code: PATH_SECURITY, FILE_NOT_FOUND, POLICY_DENIED, EXEC_TIMEOUT..."`
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty" jsonschema:"more to read, in lines (the closest lines of a failed edit)"`
}

// do runs one operation for the client of req. The error is the
// operation's own (a *sandbox.Error, with the result) or the audit log's
// (without: the result must not be shown).
func (h *handler) do(ctx context.Context, req *mcp.CallToolRequest, op runner.Op) (*output.Result, error) {
	op.Client = clientOf(req)
	res, err := h.o.Runner.DoOp(ctx, op)
	if err != nil {
		return nil, fmt.Errorf("the operation's audit record could not be written, so its result is withheld: %w", err)
	}
	if res.Err != nil {
		return res, res.Err
	}
	return res, nil
}

// clientOf is the client's name and version, as its initialize gave them.
func clientOf(req *mcp.CallToolRequest) string {
	if req == nil || req.Session == nil {
		return ""
	}
	p := req.Session.InitializeParams()
	if p == nil || p.ClientInfo == nil {
		return ""
	}
	return strings.TrimSpace(p.ClientInfo.Name + " " + p.ClientInfo.Version)
}

// errorInfo is an operation's error as the structured content gives it,
// in the tools' words where the message speaks the command language.
func errorInfo(e *sandbox.Error) *ErrorInfo {
	msg := e.Message
	if strings.HasPrefix(e.Code, "EDIT_") {
		msg = editWords.Replace(msg)
	}
	msg = openHint.ReplaceAllString(msg, "; read_file reads it")
	msg = listHint.ReplaceAllString(msg, "; list_directory shows what is in it")
	return &ErrorInfo{Code: e.Code, Message: msg, Detail: e.Detail}
}

var (
	// editWords are an edit's errors in edit_file's words.
	editWords = strings.NewReplacer("open the block with <<<<<<< SEARCH ALL", "set its replace_all",
		"a SEARCH ALL replaces", "replace_all replaces", "edit block ", "edit ", "SEARCH lines", "old_text lines", "to SEARCH", "to old_text",
		"its SEARCH", "its old_text", "its REPLACE", "its new_text", "to REPLACE", "to new_text", "no block was applied", "no edit was applied", "earlier blocks", "earlier edits")
	openHint = regexp.MustCompile(`; <open [^>]*> reads it`)
	listHint = regexp.MustCompile(`; <list [^>]*> shows what is in it`)
)

// text is the error as the result's text gives it: "CODE: message", and
// the detail's lines under it.
func (e *ErrorInfo) text() string {
	t := e.Code + ": " + e.Message
	if e.Detail != "" {
		t += "\n" + e.Detail
	}
	return t
}

func textResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}

// ReadInput is read_file's arguments.
type ReadInput struct {
	Path   string `json:"path" jsonschema:"relative to the repository"`
	Offset int    `json:"offset,omitempty" jsonschema:"the first line, from 1"`
	Limit  int    `json:"limit,omitempty" jsonschema:"how many lines (default 2000)"`
	// LineNumbers numbers the lines as output.line_numbers does the
	// filter's (output.NumberLines).
	LineNumbers bool `json:"line_numbers,omitempty" jsonschema:"number the lines, as cat -n (not part of the file)"`
}

// ReadMeta is where a read_file result's lines are in the file, in the
// result's _meta under MetaRead, for programs: read_file has no structured
// content (see addTextTool), its text is the file.
type ReadMeta struct {
	Path       string `json:"path"`
	StartLine  int    `json:"start_line"`            // the first line returned
	EndLine    int    `json:"end_line"`              // the last line returned; 0 when none is
	TotalLines int    `json:"total_lines"`           // how many lines the file has
	NextOffset int    `json:"next_offset,omitempty"` // the offset to read on from; absent at the end of the file
}

// MetaRead is the _meta key of a read_file result's ReadMeta.
const MetaRead = "llm-runtime/read"

// readFile answers with the file's lines as the first text content,
// exactly (numbered if asked), and what a model should know about them
// (the rest to read, a line cut, an empty file) as a second.
func (h *handler) readFile(ctx context.Context, req *mcp.CallToolRequest, in ReadInput) (*mcp.CallToolResult, struct{}, error) {
	start, limit := max(in.Offset, 1), in.Limit
	if limit <= 0 {
		limit = DefaultReadLines
	}
	res, err := h.do(ctx, req, runner.Op{Command: parser.Command{Kind: parser.Open, Arg: in.Path,
		Args: parser.Args{Path: in.Path, Lines: &parser.Range{Start: start, End: start + limit - 1}}}})
	if err != nil {
		return nil, struct{}{}, err
	}
	f := res.File
	total := 0
	if f.Lines != nil {
		total = f.Lines.Total
	}
	lines := f.Content
	if in.LineNumbers {
		lines = output.NumberLines(lines, start)
	}
	content, n, cut := h.fit(string(lines))
	meta := ReadMeta{Path: f.Path, StartLine: start, TotalLines: total}
	if n > 0 {
		meta.EndLine = start + n - 1
	}
	next := start + n
	if cut && n == 0 {
		next = start + 1 // one line longer than the cap: shown cut, the next offset skips it
		meta.EndLine = start
	}
	if next <= total {
		meta.NextOffset = next
	}
	var notes []string
	switch {
	case total == 0:
		notes = append(notes, "(empty file)")
	case cut && n == 0:
		notes = append(notes, fmt.Sprintf("[line %d is longer than the result's limit (mcp.max_result); its first %d bytes are shown]", start, len(content)))
	}
	if meta.NextOffset > 0 {
		notes = append(notes, fmt.Sprintf("[lines %d-%d of %d; read_file with offset %d for the rest]", start, meta.EndLine, total, meta.NextOffset))
	}
	r := &mcp.CallToolResult{Meta: mcp.Meta{MetaRead: meta}}
	if content != "" {
		r.Content = append(r.Content, &mcp.TextContent{Text: content})
	}
	if len(notes) > 0 {
		note := strings.Join(notes, "\n")
		if content != "" && !strings.HasSuffix(content, "\n") {
			note = "\n" + note // a client that joins the texts as they are keeps the note on its own line
		}
		r.Content = append(r.Content, &mcp.TextContent{Text: note})
	}
	return r, struct{}{}, nil
}

// cutLines returns the whole lines of s that fit in max bytes and how many
// they are, and whether any was left out; a first line longer than max
// comes back cut to max, as 0 lines.
func cutLines(s string, max int) (string, int, bool) {
	if len(s) <= max {
		return s, strings.Count(s, "\n") + boolInt(s != "" && !strings.HasSuffix(s, "\n")), false
	}
	i := strings.LastIndexByte(s[:max], '\n')
	if i < 0 {
		return s[:max], 0, true
	}
	return s[:i+1], strings.Count(s[:i+1], "\n"), true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// WriteInput is write_file's arguments.
type WriteInput struct {
	Path    string `json:"path" jsonschema:"relative to the repository"`
	Content string `json:"content" jsonschema:"the whole new content"`
}

// WriteOutput is write_file's result.
type WriteOutput struct {
	Path    string `json:"path,omitempty"`
	Created bool   `json:"created,omitempty" jsonschema:"the file is new"`
	Bytes   int64  `json:"bytes,omitempty"`
	// HostToolFile is the pattern of security.host_tool_files the file
	// matches.
	HostToolFile string     `json:"host_tool_file,omitempty" jsonschema:"set when tools on the host run or obey this file: the change is marked for the user's review"`
	Error        *ErrorInfo `json:"error,omitempty"`
}

// hostToolNote is what a write_file or edit_file text says of a host tool
// file.
func hostToolNote(pattern string) string {
	if pattern == "" {
		return ""
	}
	return fmt.Sprintf("\n[tools on the host run or obey this file (security.host_tool_files: %s): the change is marked for the user's review]", pattern)
}

func (h *handler) writeFile(ctx context.Context, req *mcp.CallToolRequest, in WriteInput) (*mcp.CallToolResult, WriteOutput, error) {
	body := []byte(in.Content)
	res, err := h.do(ctx, req, runner.Op{Command: parser.Command{Kind: parser.Write, Arg: in.Path, Args: parser.Args{Path: in.Path}, Body: body, BodySize: int64(len(body))}})
	if err != nil {
		return nil, WriteOutput{}, err
	}
	w := res.Write
	verb := "replaced"
	if w.Created {
		verb = "created"
	}
	return textResult(fmt.Sprintf("%s %s (%s)", verb, w.Path, sandbox.FormatSize(w.Bytes)) + hostToolNote(w.HostTool)), WriteOutput{Path: w.Path, Created: w.Created, Bytes: w.Bytes, HostToolFile: w.HostTool}, nil
}

// DeleteInput is delete_file's arguments.
type DeleteInput struct {
	Path string `json:"path" jsonschema:"relative to the repository"`
}

// DeleteOutput is delete_file's result.
type DeleteOutput struct {
	Path         string     `json:"path,omitempty"`
	Kind         string     `json:"kind,omitempty" jsonschema:"file, dir, link or other"`
	Bytes        int64      `json:"bytes,omitempty" jsonschema:"a file's size"`
	HostToolFile string     `json:"host_tool_file,omitempty"`
	Error        *ErrorInfo `json:"error,omitempty"`
}

func (h *handler) deleteFile(ctx context.Context, req *mcp.CallToolRequest, in DeleteInput) (*mcp.CallToolResult, DeleteOutput, error) {
	res, err := h.do(ctx, req, runner.Op{Command: parser.Command{Kind: parser.Delete, Arg: in.Path, Args: parser.Args{Path: in.Path}}})
	if err != nil {
		return nil, DeleteOutput{}, err
	}
	d := res.Delete
	what := map[string]string{"file": "file", "dir": "empty directory", "link": "symbolic link"}[d.Kind]
	if what == "" {
		what = "special file"
	}
	text := fmt.Sprintf("deleted %s %s", what, d.Path)
	if d.Kind == "file" {
		text += " (" + sandbox.FormatSize(d.Bytes) + ")"
	}
	return textResult(text + hostToolNote(d.HostTool)), DeleteOutput{Path: d.Path, Kind: d.Kind, Bytes: d.Bytes, HostToolFile: d.HostTool}, nil
}

// MoveInput is move_file's arguments.
type MoveInput struct {
	From      string `json:"from" jsonschema:"relative to the repository"`
	To        string `json:"to" jsonschema:"the new path, not a directory to move into"`
	Overwrite bool   `json:"overwrite,omitempty" jsonschema:"replace a file at to"`
}

// MoveOutput is move_file's result.
type MoveOutput struct {
	From         string     `json:"from,omitempty"`
	To           string     `json:"to,omitempty"`
	Kind         string     `json:"kind,omitempty"`
	Replaced     bool       `json:"replaced,omitempty"`
	Entries      int        `json:"entries,omitempty"`
	HostToolFile string     `json:"host_tool_file,omitempty"`
	Error        *ErrorInfo `json:"error,omitempty"`
}

func (h *handler) moveFile(ctx context.Context, req *mcp.CallToolRequest, in MoveInput) (*mcp.CallToolResult, MoveOutput, error) {
	m := parser.MoveArgs{From: in.From, To: in.To, Overwrite: in.Overwrite}
	res, err := h.do(ctx, req, runner.Op{Command: parser.Command{Kind: parser.Move, Arg: m.String(), Args: parser.Args{Move: m}}})
	if err != nil {
		return nil, MoveOutput{}, err
	}
	r := res.Move
	text := fmt.Sprintf("moved %s to %s", r.From, r.To)
	if r.Kind == "dir" {
		text += fmt.Sprintf(" (a directory, %s under it)", plural(r.Entries, "entry"))
	}
	if r.Replaced {
		text += "; the file that was there is replaced"
	}
	return textResult(text + hostToolNote(r.HostTool)), MoveOutput{From: r.From, To: r.To, Kind: r.Kind, Replaced: r.Replaced, Entries: r.Entries, HostToolFile: r.HostTool}, nil
}

// DiffInput is diff's arguments.
type DiffInput struct {
	Path       string `json:"path,omitempty" jsonschema:"only this path's changes (or a directory's)"`
	Checkpoint int    `json:"checkpoint,omitempty" jsonschema:"this checkpoint's changes instead of today's"`
}

// DiffOutput is diff's result.
type DiffOutput struct {
	Of    string     `json:"of,omitempty"`
	Paths int        `json:"paths,omitempty"`
	Diff  string     `json:"diff,omitempty"`
	Error *ErrorInfo `json:"error,omitempty"`
}

func (h *handler) diff(ctx context.Context, req *mcp.CallToolRequest, in DiffInput) (*mcp.CallToolResult, DiffOutput, error) {
	c := parser.Command{Kind: parser.Diff, Arg: in.Path, Args: parser.Args{Path: in.Path}}
	if in.Checkpoint > 0 {
		c.Arg, c.Args = strconv.Itoa(in.Checkpoint), parser.Args{Checkpoint: &in.Checkpoint}
	}
	res, err := h.do(ctx, req, runner.Op{Command: c})
	if err != nil {
		return nil, DiffOutput{}, err
	}
	d := res.Diff
	text, _, cut := h.fit(d.Text)
	head := fmt.Sprintf("%s: %s changed\n", d.Of, plural(d.Paths, "path"))
	if cut || d.Lines > output.MaxDiffLines {
		text += "[the diff is cut; diff with a path shows one file's]\n"
	}
	return textResult(head + text), DiffOutput{Of: d.Of, Paths: d.Paths, Diff: text}, nil
}

// UndoInput is undo's arguments.
type UndoInput struct {
	To int `json:"to,omitempty" jsonschema:"take back every checkpoint after this one"`
}

// UndoOutput is undo's result.
type UndoOutput struct {
	Of         string     `json:"of,omitempty"`
	Restored   []string   `json:"restored,omitempty"`
	Conflicts  []string   `json:"conflicts,omitempty"`
	Checkpoint int        `json:"checkpoint,omitempty"`
	Error      *ErrorInfo `json:"error,omitempty"`
}

func (h *handler) undo(ctx context.Context, req *mcp.CallToolRequest, in UndoInput) (*mcp.CallToolResult, UndoOutput, error) {
	c := parser.Command{Kind: parser.Undo}
	if in.To > 0 {
		c.Arg, c.Args = strconv.Itoa(in.To), parser.Args{Checkpoint: &in.To}
	}
	res, err := h.do(ctx, req, runner.Op{Command: c})
	if err != nil {
		return nil, UndoOutput{}, err
	}
	u := res.Undo
	text := fmt.Sprintf("undid %s: %s put back", u.Of, plural(len(u.Restored), "path"))
	if len(u.Restored) > 0 {
		text += " (" + strings.Join(u.Restored, ", ") + ")"
	}
	if len(u.Conflicts) > 0 {
		text += "; left as they are, changed since: " + strings.Join(u.Conflicts, "; ")
	}
	if u.Checkpoint > 0 {
		text += fmt.Sprintf("; this undo is checkpoint %d: undo again takes it back", u.Checkpoint)
	}
	return textResult(text), UndoOutput{Of: u.Of, Restored: u.Restored, Conflicts: u.Conflicts, Checkpoint: u.Checkpoint}, nil
}

// CheckpointInput is checkpoint's arguments.
type CheckpointInput struct {
	Name string `json:"name" jsonschema:"the checkpoint's name; empty ends the grouping"`
}

// CheckpointOutput is checkpoint's result.
type CheckpointOutput struct {
	Name string `json:"name,omitempty"`
}

func (h *handler) checkpoint(ctx context.Context, req *mcp.CallToolRequest, in CheckpointInput) (*mcp.CallToolResult, CheckpointOutput, error) {
	name := strings.TrimSpace(in.Name)
	if err := h.o.Runner.Group(name); err != nil {
		return nil, CheckpointOutput{}, err
	}
	if name == "" {
		return textResult("each call that changes something is a checkpoint of its own again"), CheckpointOutput{}, nil
	}
	return textResult(fmt.Sprintf("the calls that follow are one checkpoint, %q, until the next checkpoint call", name)), CheckpointOutput{Name: name}, nil
}

// Edit is one change of edit_file.
type Edit struct {
	OldText    string `json:"old_text" jsonschema:"whole lines of the file, as they are"`
	NewText    string `json:"new_text" jsonschema:"the lines to put instead (empty deletes them)"`
	ReplaceAll bool   `json:"replace_all,omitempty" jsonschema:"change every exact match"`
}

// EditInput is edit_file's arguments.
type EditInput struct {
	Path   string `json:"path" jsonschema:"relative to the repository"`
	Edits  []Edit `json:"edits" jsonschema:"applied in order, all or none"`
	DryRun bool   `json:"dry_run,omitempty" jsonschema:"show the diff, write nothing"`
}

// EditOutput is edit_file's result.
type EditOutput struct {
	Path    string `json:"path,omitempty"`
	Applied int    `json:"applied,omitempty" jsonschema:"edits applied: all of them"`
	Loose   []int  `json:"loose,omitempty" jsonschema:"the edits (from 1) that matched only ignoring leading and trailing white space"`
	// Replaced is, for each edit with replace_all, where it replaced.
	Replaced []edit.Replaced `json:"replaced,omitempty" jsonschema:"for each edit with replace_all: its number (from 1) and the first line of every place it replaced"`
	Diff     string          `json:"diff,omitempty" jsonschema:"a unified diff of the change"`
	DryRun   bool            `json:"dry_run,omitempty" jsonschema:"nothing was written"`
	// HostToolFile is as WriteOutput's.
	HostToolFile string     `json:"host_tool_file,omitempty" jsonschema:"set when tools on the host run or obey this file: the change is marked for the user's review"`
	Error        *ErrorInfo `json:"error,omitempty"`
}

func (h *handler) editFile(ctx context.Context, req *mcp.CallToolRequest, in EditInput) (*mcp.CallToolResult, EditOutput, error) {
	blocks := make([]edit.Block, 0, len(in.Edits))
	var size int64
	for _, e := range in.Edits {
		blocks = append(blocks, edit.Block{Search: textLines(e.OldText), Replace: textLines(e.NewText), All: e.ReplaceAll})
		size += int64(len(e.OldText) + len(e.NewText))
	}
	res, err := h.do(ctx, req, runner.Op{Command: parser.Command{Kind: parser.Edit, Arg: in.Path, Args: parser.Args{Path: in.Path}, BodySize: size}, Blocks: blocks, DryRun: in.DryRun})
	if err != nil {
		return nil, EditOutput{}, err
	}
	e := res.Edit
	diff, _, cut := h.fit(e.Diff)
	out := EditOutput{Path: e.Path, Applied: e.Applied, Loose: e.Loose, Replaced: e.Replaced, Diff: diff, DryRun: in.DryRun, HostToolFile: e.HostTool}
	verb := "edited"
	if in.DryRun {
		verb = "would edit (dry run, nothing written)"
	}
	text := fmt.Sprintf("%s %s: %s applied", verb, e.Path, plural(e.Applied, "edit"))
	if len(e.Loose) > 0 {
		text += fmt.Sprintf(" (edits %s matched only ignoring leading and trailing white space)", ints(e.Loose))
	}
	for _, r := range e.Replaced {
		text += "; edit" + strings.TrimPrefix(r.String(), "block")
	}
	text += hostToolNote(e.HostTool)
	text += "\n" + diff
	if cut || e.DiffTruncated {
		text += "[the diff is cut; read_file shows the file as it is now]\n"
	}
	return textResult(text), out, nil
}

// textLines splits a text into lines for an edit block: one final line
// terminator is not a line of its own, and an empty text is no lines.
func textLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// ListInput is list_directory's arguments.
type ListInput struct {
	Path    string `json:"path,omitempty" jsonschema:"relative to the repository (default the root)"`
	Pattern string `json:"pattern,omitempty" jsonschema:"a glob below the directory: *.go; **/*.go lists every level"`
}

// ListOutput is list_directory's result.
type ListOutput struct {
	Path      string          `json:"path,omitempty"`
	Entries   []sandbox.Entry `json:"entries"`
	Total     int             `json:"total,omitempty" jsonschema:"entries found, listed or not"`
	Excluded  int             `json:"excluded,omitempty" jsonschema:"entries left out by the excluded paths"`
	Ignored   int             `json:"ignored,omitempty" jsonschema:"entries left out by .gitignore"`
	Truncated string          `json:"truncated,omitempty" jsonschema:"why entries are missing, and what to do"`
	Error     *ErrorInfo      `json:"error,omitempty"`
}

func (h *handler) listDirectory(ctx context.Context, req *mcp.CallToolRequest, in ListInput) (*mcp.CallToolResult, ListOutput, error) {
	dir := strings.TrimSuffix(in.Path, "/")
	if dir == "" {
		dir = "."
	}
	arg := dir
	match, err := compilePattern(in.Pattern)
	if err != nil {
		return nil, ListOutput{}, err
	}
	recursive := strings.Contains(in.Pattern, "**")
	if recursive { // the argument as <list> would write it, for the audit log and the policies
		arg = strings.TrimSuffix(dir, "/") + "/**"
		if dir == "." {
			arg = "**"
		}
	}
	res, err := h.do(ctx, req, runner.Op{Command: parser.Command{Kind: parser.List, Arg: arg, Args: parser.Args{Path: dir, Recursive: recursive}}})
	if err != nil {
		return nil, ListOutput{}, err
	}
	l := res.List
	out := ListOutput{Path: l.Path, Entries: []sandbox.Entry{}, Total: l.Total, Excluded: l.Excluded, Ignored: l.Ignored}
	var b strings.Builder
	budget := h.budget()
	shown, matched := 0, 0
	for _, e := range l.Entries {
		rel := strings.TrimPrefix(e.Path, strings.TrimSuffix(l.Path, "/")+"/")
		if l.Path == "." || l.Path == "" {
			rel = e.Path
		}
		if match != nil && !match(rel) {
			continue
		}
		matched++
		line := entryLine(e)
		js, _ := json.Marshal(e)
		if cost := len(line) + len(js) + 1; cost > budget {
			budget = 0 // the rest are counted, not shown
			continue
		} else {
			budget -= cost
		}
		b.WriteString(line)
		out.Entries = append(out.Entries, e)
		shown++
	}
	if match != nil {
		out.Total = matched
	}
	switch {
	case shown < matched:
		out.Truncated = fmt.Sprintf("%d of %d entries shown: the rest are past the result's limit (mcp.max_result); list a subdirectory or use a narrower pattern", shown, matched)
	case l.Truncated() && match != nil:
		out.Truncated = fmt.Sprintf("the listing stopped at list.max_entries (%d of %d entries) before the pattern was applied: list a subdirectory", len(l.Entries), l.Total)
	case l.Truncated():
		out.Truncated = fmt.Sprintf("%d of %d entries shown (list.max_entries): list a subdirectory or use a pattern", len(l.Entries), l.Total)
	}
	if shown == 0 {
		b.WriteString("(no entries)\n")
	}
	fmt.Fprintf(&b, "[%s in %s", plural(out.Total, "entry"), l.Path)
	if l.Excluded > 0 || l.Ignored > 0 {
		fmt.Fprintf(&b, "; left out: %d excluded, %d .gitignored", l.Excluded, l.Ignored)
	}
	b.WriteString("]")
	if out.Truncated != "" {
		b.WriteString("\n[" + out.Truncated + "]")
	}
	return textResult(b.String()), out, nil
}

// compilePattern compiles list_directory's pattern, matched against the
// whole path below the directory; nil for no pattern.
func compilePattern(g string) (func(string) bool, error) {
	if g == "" {
		return nil, nil
	}
	return sandbox.GlobMatcher(g)
}

func entryLine(e sandbox.Entry) string {
	switch e.Kind {
	case "dir":
		return e.Path + "/\n"
	case "link":
		return e.Path + " -> " + e.Target + "\n"
	case "file":
		return fmt.Sprintf("%s  %s\n", e.Path, sandbox.FormatSize(e.Size))
	}
	return e.Path + "  (" + e.Kind + ")\n"
}

// SearchInput is search's arguments.
type SearchInput struct {
	Query      string `json:"query" jsonschema:"literal text; with regex, an RE2 regular expression"`
	Regex      bool   `json:"regex,omitempty"`
	PathGlob   string `json:"path_glob,omitempty" jsonschema:"only the files it matches: src/**/*.go, *_test.go, docs/"`
	MaxResults int    `json:"max_results,omitempty" jsonschema:"list at most this many"`
	Context    int    `json:"context,omitempty" jsonschema:"lines around each match, 1 to 20 (grep -C)"`
}

// Match is one matching line, and the lines around it that context asked
// for.
type Match struct {
	Path   string   `json:"path"`
	Line   int      `json:"line"`
	Text   string   `json:"text"`
	Before []string `json:"before,omitempty"`
	After  []string `json:"after,omitempty"`
}

// SearchOutput is search's result.
type SearchOutput struct {
	Matches   []Match    `json:"matches"`
	Total     int        `json:"total,omitempty" jsonschema:"every matching line, listed or not"`
	Files     int        `json:"files,omitempty" jsonschema:"files with a match"`
	Skipped   int        `json:"skipped,omitempty" jsonschema:"files not searched: too large, binary or .gitignored"`
	Truncated string     `json:"truncated,omitempty" jsonschema:"why matches are missing, and what to do"`
	Error     *ErrorInfo `json:"error,omitempty"`
}

func (h *handler) search(ctx context.Context, req *mcp.CallToolRequest, in SearchInput) (*mcp.CallToolResult, SearchOutput, error) {
	if in.Context < 0 || in.Context > sandbox.MaxContext {
		return nil, SearchOutput{}, sandbox.Errorf(CodeInvalidArguments, "context is %d: it must be from 1 to %d lines (0, or none given, for no context)", in.Context, sandbox.MaxContext)
	}
	q := parser.Query{Text: in.Query, Regex: in.Regex, Scope: in.PathGlob, Max: max(in.MaxResults, 0), Context: in.Context}
	res, err := h.do(ctx, req, runner.Op{Command: parser.Command{Kind: parser.Search, Arg: q.String(), Args: parser.Args{Query: q}}})
	if err != nil {
		return nil, SearchOutput{}, err
	}
	s := res.Search
	out := SearchOutput{Matches: []Match{}, Total: s.Total, Files: s.Files, Skipped: s.SkippedLarge + s.SkippedBinary + s.Ignored}
	// The matches listed are those whose lines, context included, and
	// JSON fit in the budget; the text shows them as grep -C does.
	budget := h.budget()
	for _, m := range s.Matches {
		match := Match{Path: m.Path, Line: m.Line, Text: m.Text, Before: m.Before, After: m.After}
		js, _ := json.Marshal(match)
		cost := len(js) + 1
		for _, l := range slices.Concat(m.Before, []string{m.Text}, m.After) {
			cost += len(m.Path) + len(l) + 16
		}
		if budget -= cost; budget < 0 {
			break
		}
		out.Matches = append(out.Matches, match)
	}
	shown := *s
	shown.Matches = s.Matches[:len(out.Matches)]
	var b strings.Builder
	for l := range shown.Lines() {
		if l.Break {
			b.WriteString("--\n")
		}
		sep := "-"
		if l.Match {
			sep = ":"
		}
		fmt.Fprintf(&b, "%s%s%d%s %s\n", l.Path, sep, l.Line, sep, l.Text)
	}
	switch {
	case len(out.Matches) < len(s.Matches):
		out.Truncated = fmt.Sprintf("%d of %d matching lines shown: the rest are past the result's limit (mcp.max_result); narrow the query or path_glob", len(out.Matches), s.Total)
	case s.Truncated():
		out.Truncated = fmt.Sprintf("%d of %d matching lines shown (max_results or search.max_results); narrow the query or path_glob", len(out.Matches), s.Total)
	}
	if s.Partial != "" {
		out.Truncated = strings.TrimPrefix(out.Truncated+"; ", "; ") + "the search " + s.Partial
	}
	if s.Total == 0 {
		b.WriteString("(no matches)\n")
	}
	fmt.Fprintf(&b, "[%s in %s", plural(s.Total, "matching line"), plural(s.Files, "file"))
	if out.Skipped > 0 {
		fmt.Fprintf(&b, "; not searched: %d too large, %d binary, %d .gitignored", s.SkippedLarge, s.SkippedBinary, s.Ignored)
	}
	b.WriteString("]")
	if out.Truncated != "" {
		b.WriteString("\n[" + out.Truncated + "]")
	}
	return textResult(b.String()), out, nil
}

// ExecInput is exec's arguments.
type ExecInput struct {
	Command  string `json:"command" jsonschema:"one command line"`
	TimeoutS int    `json:"timeout_s,omitempty" jsonschema:"seconds before it is killed, at most the timeout above"`
}

// ExecOutput is exec's result. A command that did not run (refused by
// the whitelist or a policy, timed out before it started, exec disabled)
// or did not come back has no exit code, duration or output: those fields
// are absent, never zero, so that a refusal cannot be read as a success.
type ExecOutput struct {
	ExitCode   *int             `json:"exit_code,omitempty"`
	Output     string           `json:"output,omitempty"`
	DurationMS *int64           `json:"duration_ms,omitempty"`
	Changes    []sandbox.Change `json:"changes,omitempty" jsonschema:"files the command changed, and what became of each"`
	Error      *ErrorInfo       `json:"error,omitempty"`
}

func (h *handler) exec(ctx context.Context, req *mcp.CallToolRequest, in ExecInput) (*mcp.CallToolResult, ExecOutput, error) {
	if tok := req.Params.GetProgressToken(); tok != nil {
		stop := h.progress(ctx, req, tok)
		defer stop()
	}
	res, err := h.do(ctx, req, runner.Op{Command: parser.Command{Kind: parser.Exec, Arg: in.Command}, Timeout: time.Duration(max(in.TimeoutS, 0)) * time.Second})
	if res == nil || res.Exec == nil { // refused before it ran, or not audited
		return nil, ExecOutput{}, err
	}
	x := res.Exec
	out := ExecOutput{Changes: x.Changes}
	var b strings.Builder
	if x.ExitCode < 0 {
		// The sandbox's mark of a command that did not come back: its
		// changes are known, its exit code and output are not.
		b.WriteString("[the command did not come back: no exit code or output]")
	} else {
		text, cut := cutMiddle(string(x.Output), h.payloadCap())
		for len(text)+jsonLen(text) > h.budget() { // escaping: cut more
			text, cut = cutMiddle(string(x.Output), len(text)/2)
		}
		code, ms := x.ExitCode, x.Duration.Milliseconds()
		out.ExitCode, out.Output, out.DurationMS = &code, text, &ms
		b.WriteString(text)
		if text != "" && !strings.HasSuffix(text, "\n") {
			b.WriteString("\n")
		}
		if cut > 0 {
			fmt.Fprintf(&b, "[%s of output cut from the middle (mcp.max_result); redirect the output to a file and read_file it for all of it]\n", sandbox.FormatSize(int64(cut)))
		}
		fmt.Fprintf(&b, "[exit code %d after %s]", x.ExitCode, x.Duration.Round(time.Millisecond))
	}
	if len(x.Changes) > 0 {
		b.WriteString("\nFiles changed:")
		for _, c := range x.Changes {
			fmt.Fprintf(&b, "\n  %s %s", c.Action, c.Path)
			if c.Reason != "" {
				b.WriteString(": " + c.Reason)
			}
		}
	}
	if res.Err != nil {
		out.Error = errorInfo(res.Err)
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: b.String() + "\n" + out.Error.text()}}}, out, nil
	}
	return textResult(b.String()), out, nil
}

// cutMiddle keeps the head and the tail of s within max bytes, and says
// how many bytes it cut: a command's last lines are often what matters.
func cutMiddle(s string, max int) (string, int) {
	if len(s) <= max {
		return s, 0
	}
	head, tail := max/2, max-max/2
	return s[:head] + "\n[...]\n" + s[len(s)-tail:], len(s) - max
}

// progress sends the client a progress notification every ProgressEvery
// while an exec runs, so that a request timeout that resets on progress
// does not give up on a long command.
func (h *handler) progress(ctx context.Context, req *mcp.CallToolRequest, tok any) (stop func()) {
	done := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTicker(h.o.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				el := time.Since(start)
				req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok,
					Progress: el.Seconds(), Message: fmt.Sprintf("running for %s", el.Round(time.Second))})
			}
		}
	}()
	return func() { close(done) }
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func ints(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
