// Package output prints the results of commands: the text framing that
// system prompts for this kind of tool expect, or JSON Lines for programs.
//
// Every result is written and flushed before Result returns, so a reader
// sees each command's outcome as soon as it is known.
//
// # Content cannot forge the framing
//
// In the text format the tool's own lines about a command start with "=== "
// (framing lines), and no line that comes from content does: a reader that
// takes every line beginning with "=== " for the tool's is never fooled.
// Content is a file's content, an exec's output, and each search line
// ("path:N: text", the path included). One rule escapes it, at the start of
// every line of content:
//
//	A line that begins with zero or more '\' and then "=== " gets one
//	more '\' in front. Nothing else changes.
//
// So a line "=== END ===" prints as `\=== END ===` and a line `\=== x` as
// `\\=== x`; [Unescape] takes one '\' off every line that begins with one
// or more '\' and then "=== ". It is the ">From " quoting of mboxrd
// mailboxes, with '\' for '>'. Why this rule:
//
//   - Real content almost never has a line starting with "=== ", so a file
//     prints as it is, and a model reads it, and copies it into a <write>,
//     unchanged. Indenting or encoding all content would change every line,
//     and a model would copy the change into the files it writes.
//   - It matches "=== " with its space, the start of every framing line,
//     and not "===" alone: setext headings and RST titles underline with
//     "===" and "=====", and those stay as they are. A reader recognises
//     framing by "=== " at the start of a line and by nothing else.
//   - A line that begins with '\' but not with '\'s and "=== " (LaTeX, a
//     Windows path) is left alone, and the rule is still reversible.
//   - A line starts at the start of the content and after every line break:
//     LF, CR, VT, FF, FS, GS, RS (U+001C to U+001E), NEL (U+0085), LS
//     (U+2028) and PS (U+2029), the characters Python's str.splitlines
//     breaks on, which include Unicode's and JavaScript's. Readers split
//     lines differently (and a terminal goes back to the start of the line
//     on CR), and what follows a lone CR must not start a framing line for
//     any of them. Content hardly ever has "=== " right after one of these,
//     so this costs nothing. A CRLF line "=== END ===\r\n" is escaped like
//     any other line.
//   - NUL bytes, invalid UTF-8 and other control characters print as they
//     are: none of them can put "=== " at the start of a line, and escaping
//     them would change content that needs no change.
//
// With output.line_numbers (Options.LineNumbers), each line of a FILE
// block starts with its number and a tab (NumberLines), and the rule above
// applies to the numbered lines: a numbered line never begins with "=== ",
// and what follows a line break inside one is escaped as in any content.
// [DecodeBlock] then gives the numbered lines.
//
// A block of content (a FILE block, an exec's Output) ends with a newline
// and then its end line. Content that does not end with a newline gets one,
// and the end line says so: "=== END FILE (no newline at end) ===" instead
// of "=== END FILE ===", the same for END EXEC. So the content is
// recoverable byte for byte, and [DecodeBlock] recovers it. Empty content
// prints no line at all.
//
// Paths, queries, commands and error codes printed on framing lines, and
// the text of Message lines, go through [parser.Printable]: control
// characters, line and paragraph separators, bidirectional controls and
// invalid UTF-8 are escaped there, so each stays on its line and cannot
// reorder how the rest of the line is displayed. That escape is for display
// and is not reversible. The JSONL format gives every string exactly and
// needs no escape of its own: content is inside JSON strings, which hold
// no raw LF or CR, and a program parses each line as JSON.
package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llm-runtime/llm-runtime/edit"
	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Result is the outcome of one command. Exactly one of File, Write,
// Search, Exec and Err is set, except that a failed exec sets both Exec
// and Err.
type Result struct {
	Index    int // 1-based position among the commands of the input
	Command  parser.Command
	File     *sandbox.File
	Write    *sandbox.WriteResult
	Edit     *sandbox.EditResult
	Delete   *sandbox.DeleteResult
	Move     *sandbox.MoveResult
	Diff     *DiffResult
	Undo     *UndoResult
	List     *sandbox.ListResult
	Search   *sandbox.SearchResult
	Exec     *sandbox.ExecResult
	Err      *sandbox.Error
	Duration time.Duration
}

// DiffResult is the result of <diff>: what the journal of changes
// recorded, as a unified diff.
type DiffResult struct {
	// Of says what it is the diff of: "checkpoint 4", "today's work
	// (checkpoints 2-7)".
	Of   string
	Text string // the unified diff, cut at MaxDiffLines
	// Lines is the whole diff's line count, more than Text holds when it
	// was cut.
	Lines int
	Paths int // the paths it shows
}

// MaxDiffLines caps a <diff>'s text.
const MaxDiffLines = 1000

// UndoResult is the result of <undo>.
type UndoResult struct {
	Of         string   // "checkpoint 4", "checkpoints 5, 6"
	Restored   []string // the paths put back
	Conflicts  []string // "PATH: why", left as they are
	Checkpoint int      // the undo's own checkpoint, which <undo> takes back
}

// Summary closes the output.
type Summary struct {
	Commands int // commands run or refused
	Failed   int // of which failed
	Elapsed  time.Duration
	// Interrupted says that the run was stopped (SIGINT, SIGTERM, a
	// client that cancelled) before the end of its input.
	Interrupted bool
}

// Reporter prints results.
type Reporter interface {
	Start() error
	Result(*Result) error
	Finish(Summary) error
}

// New returns the reporter for format ("text" or "jsonl") writing to w.
func New(format string, w io.Writer) (Reporter, error) {
	return NewWith(format, w, Options{})
}

// Options change how the text format prints results.
type Options struct {
	// LineNumbers numbers the lines of a FILE block (output.line_numbers)
	// as NumberLines does, from the first line read: a range's lines from
	// where it starts. JSONL is unchanged: its content is the file's bytes,
	// and its lines give a range's first line.
	LineNumbers bool
}

// NewWith is New with options.
func NewWith(format string, w io.Writer, o Options) (Reporter, error) {
	switch format {
	case "text":
		return &Text{w: bufio.NewWriter(w), o: o}, nil
	case "jsonl":
		return &JSONL{w: bufio.NewWriter(w)}, nil
	}
	return nil, fmt.Errorf("output: unknown format %q", format)
}

// NumberLines returns content with each of its lines (ended by '\n'; the
// last one may not be) preceded by its number, first for the first,
// right-aligned in 6 columns and followed by a tab, as cat -n prints them:
// "    12\tfunc main() {". The lines are those of ranges (<open f:120-180>
// and read_file's offset count them the same way), and a reader takes the
// number off by cutting each line at its first tab. Empty content stays
// empty.
func NumberLines(content []byte, first int) []byte {
	if len(content) == 0 {
		return content
	}
	out := make([]byte, 0, len(content)+(bytes.Count(content, []byte{'\n'})+1)*8)
	for n := first; len(content) > 0; n++ {
		line := content
		if i := bytes.IndexByte(content, '\n'); i >= 0 {
			line = content[:i+1]
		}
		out = fmt.Appendf(out, "%6d\t", n)
		out = append(out, line...)
		content = content[len(line):]
	}
	return out
}

// Text prints the === framing:
//
//	=== LLM TOOL START ===
//	=== COMMAND: <open go.mod> ===
//	=== FILE: go.mod ===
//	...contents...
//	=== END FILE ===
//	=== END COMMAND ===
//	=== LLM TOOL COMPLETE ===
//	Commands executed: 1
//	Time elapsed: 0.04s
//	=== END ===
//
// A run stopped before the end of its input ends with "=== LLM TOOL
// INTERRUPTED ===" in place of "=== LLM TOOL COMPLETE ===", and a line
// that says what was not done; "=== END ===" is still the last line.
type Text struct {
	w *bufio.Writer
	o Options
}

// Start implements Reporter.
func (t *Text) Start() error {
	t.w.WriteString("=== LLM TOOL START ===\n")
	return t.w.Flush()
}

// Result implements Reporter.
func (t *Text) Result(r *Result) error {
	w := t.w
	fmt.Fprintf(w, "=== COMMAND: %s ===\n", r.Command.Tag())
	switch {
	case r.Err != nil:
		fmt.Fprintf(w, "=== ERROR: %s ===\n", parser.Printable(r.Err.Code))
		fmt.Fprintf(w, "Message: %s\n", parser.Printable(r.Err.Message))
		fmt.Fprintf(w, "Command: %s\n", r.Command.Tag())
		if d := r.Err.Detail; d != "" {
			w.WriteString("Detail:\n")
			block(w, []byte(d), "END DETAIL")
		}
		if e := r.Exec; e != nil {
			fmt.Fprintf(w, "Exit code: %d\n", e.ExitCode)
			fmt.Fprintf(w, "Duration: %.2fs\n", e.Duration.Seconds())
			changes(w, e)
			network(w, e)
			w.WriteString("Output:\n")
			block(w, e.Output, "END EXEC")
		}
	case r.File != nil:
		fmt.Fprintf(w, "=== FILE: %s%s ===\n", parser.Printable(r.File.Path), rangeOf(r.File))
		content := r.File.Content
		if t.o.LineNumbers {
			first := 1
			if r.File.Lines != nil {
				first = r.File.Lines.Start
			}
			// Numbered, then escaped: a numbered line cannot begin with
			// "=== ", but a line break inside one (a lone CR) still can
			// be followed by it, and is escaped as always.
			content = NumberLines(content, first)
		}
		block(w, content, "END FILE")
	case r.Write != nil:
		fmt.Fprintf(w, "=== WRITE SUCCESSFUL: %s ===\n", parser.Printable(r.Write.Path))
		fmt.Fprintf(w, "Action: %s\n", r.Write.Action())
		fmt.Fprintf(w, "Bytes written: %d\n", r.Write.Bytes)
		hostTool(w, r.Write.HostTool)
	case r.Edit != nil:
		e := r.Edit
		fmt.Fprintf(w, "=== EDIT SUCCESSFUL: %s ===\n", parser.Printable(e.Path))
		fmt.Fprintf(w, "Blocks applied: %d\n", e.Applied)
		for _, n := range e.Loose {
			fmt.Fprintf(w, "Block %d matched only with the white space at the ends of its lines ignored\n", n)
		}
		for _, r := range e.Replaced {
			s := r.String()
			fmt.Fprintf(w, "%s%s\n", strings.ToUpper(s[:1]), s[1:])
		}
		fmt.Fprintf(w, "Bytes: %d\n", e.Bytes)
		hostTool(w, e.HostTool)
		if e.DiffTruncated {
			fmt.Fprintf(w, "Diff: the first %d lines\n", sandbox.MaxDiffLines)
		} else {
			w.WriteString("Diff:\n")
		}
		block(w, []byte(e.Diff), "END DIFF")
	case r.Delete != nil:
		d := r.Delete
		fmt.Fprintf(w, "=== DELETE SUCCESSFUL: %s ===\n", parser.Printable(d.Path))
		fmt.Fprintf(w, "Deleted: %s\n", describeKind(d.Kind, d.Bytes, 0))
		hostTool(w, d.HostTool)
	case r.Move != nil:
		m := r.Move
		fmt.Fprintf(w, "=== MOVE SUCCESSFUL: %s ===\n", parser.Printable(m.From))
		fmt.Fprintf(w, "Moved to: %s\n", parser.Printable(m.To))
		fmt.Fprintf(w, "What: %s\n", describeKind(m.Kind, -1, m.Entries))
		if m.Replaced {
			fmt.Fprintf(w, "Replaced: the file that was at %s\n", parser.Printable(m.To))
		}
		hostTool(w, m.HostTool)
	case r.Diff != nil:
		d := r.Diff
		fmt.Fprintf(w, "=== DIFF: %s ===\n", parser.Printable(d.Of))
		if d.Paths == 0 {
			w.WriteString("No change.\n")
		} else {
			fmt.Fprintf(w, "Paths: %d\n", d.Paths)
			if d.Lines > MaxDiffLines {
				fmt.Fprintf(w, "Diff: the first %d of %d lines (<diff PATH> shows one file's)\n", MaxDiffLines, d.Lines)
			}
			block(w, []byte(d.Text), "END DIFF")
		}
	case r.Undo != nil:
		u := r.Undo
		fmt.Fprintf(w, "=== UNDO SUCCESSFUL: %s ===\n", parser.Printable(u.Of))
		fmt.Fprintf(w, "Put back: %d\n", len(u.Restored))
		for _, p := range u.Restored {
			fmt.Fprintf(w, "  %s\n", parser.Printable(p))
		}
		if len(u.Conflicts) > 0 {
			fmt.Fprintf(w, "Left as they are (changed since): %d\n", len(u.Conflicts))
			for _, p := range u.Conflicts {
				fmt.Fprintf(w, "  %s\n", parser.Printable(p))
			}
		}
		if u.Checkpoint > 0 {
			fmt.Fprintf(w, "This undo is checkpoint %d: <undo> takes it back\n", u.Checkpoint)
		}
	case r.List != nil:
		list(w, r.List)
	case r.Search != nil:
		s := r.Search
		fmt.Fprintf(w, "=== SEARCH: %s ===\n", parser.Printable(s.Query))
		var line []byte
		// With context (-C N), as grep prints it: "path-N- text" around
		// "path:N: text", each line once, "--" between groups apart.
		for l := range s.Lines() {
			if l.Break {
				w.WriteString("--\n")
			}
			sep := byte('-')
			if l.Match {
				sep = ':'
			}
			line = fmt.Appendf(line[:0], "%s%c%d%c %s", parser.Printable(l.Path), sep, l.Line, sep, l.Text)
			writeEscaped(w, line)
			w.WriteByte('\n')
		}
		fmt.Fprintf(w, "Matches: %d in %d %s", s.Total, s.Files, plural(s.Files, "file", "files"))
		if s.Truncated() {
			fmt.Fprintf(w, " (showing the first %d)", len(s.Matches))
		}
		if skipped := counts(count{s.SkippedLarge, "too large (over security.max_file_size; open them by ranges)"},
			count{s.SkippedBinary, "binary"}, count{s.Ignored, "ignored (.gitignore)"}); skipped != "" {
			fmt.Fprintf(w, "\nSkipped: %s", skipped)
		}
		if s.Partial != "" {
			fmt.Fprintf(w, "\nPartial: %s", parser.Printable(s.Partial))
		}
		w.WriteString("\n=== END SEARCH ===\n")
	case r.Exec != nil:
		e := r.Exec
		fmt.Fprintf(w, "=== EXEC SUCCESSFUL: %s ===\n", parser.Printable(r.Command.Arg))
		fmt.Fprintf(w, "Exit code: %d\n", e.ExitCode)
		fmt.Fprintf(w, "Duration: %.2fs\n", e.Duration.Seconds())
		changes(w, e)
		network(w, e)
		w.WriteString("Output:\n")
		block(w, e.Output, "END EXEC")
	}
	w.WriteString("=== END COMMAND ===\n")
	return w.Flush()
}

// maxChangeLines is how many of an exec's changed files the text format
// lists; JSONL lists them all.
const maxChangeLines = 50

// changes lists the files an exec changed and what became of each change:
//
//	Files changed: 3 (2 applied, 1 refused)
//	  created gen/a.go
//	  updated main.go
//	  refused .git: git's own files ... are never changed by exec ...
func changes(w *bufio.Writer, e *sandbox.ExecResult) {
	cs := e.Changes
	if len(cs) == 0 {
		return
	}
	by := map[string]int{}
	total := len(cs)
	for _, c := range cs {
		by[c.Action]++
	}
	for a, n := range e.Omitted {
		by[a] += n
		total += n
	}
	fmt.Fprintf(w, "Files changed: %d (%s)\n", total, counts(
		count{total - by[sandbox.ChangeRefused] - by[sandbox.ChangeDiscarded], "applied"},
		count{by[sandbox.ChangeRefused], "refused"},
		count{by[sandbox.ChangeDiscarded], "discarded: exec.writable is false"}))
	for i, c := range cs {
		if i == maxChangeLines {
			break
		}
		fmt.Fprintf(w, "  %s %s", c.Action, parser.Printable(c.Path))
		if c.HostTool != "" {
			fmt.Fprintf(w, " (host tool file: %s)", parser.Printable(c.HostTool))
		}
		if c.Reason != "" {
			fmt.Fprintf(w, ": %s", parser.Printable(c.Reason))
		}
		w.WriteByte('\n')
	}
	if more := total - min(len(cs), maxChangeLines); more > 0 {
		fmt.Fprintf(w, "  ... and %d more\n", more)
	}
}

// network sums up the connections an exec asked the egress proxy for:
//
//	Network: 3 connections to proxy.golang.org:443; 1 refused: other.example:443 (not in exec.network_allow)
func network(w *bufio.Writer, e *sandbox.ExecResult) {
	if len(e.Network) == 0 {
		return
	}
	var allowed, refused []string
	n, seen := 0, map[string]bool{}
	for _, c := range e.Network {
		hp := c.Destination()
		if c.Allowed {
			n++
			if !seen[hp] {
				seen[hp] = true
				allowed = append(allowed, hp)
			}
			continue
		}
		if !seen["refused "+hp] {
			seen["refused "+hp] = true
			refused = append(refused, hp+" ("+c.Reason+")")
		}
	}
	var parts []string
	if n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s to %s", n, plural(n, "connection", "connections"), strings.Join(allowed, ", ")))
	}
	if r := len(e.Network) - n; r > 0 {
		parts = append(parts, fmt.Sprintf("%d refused: %s", r, strings.Join(refused, ", ")))
	}
	fmt.Fprintf(w, "Network: %s\n", parser.Printable(strings.Join(parts, "; ")))
}

// list prints a listing: a line per entry, its path from the root (a
// directory's with a "/"), a file's size, a link's target; then the count.
//
//	=== LIST: src ===
//	src/cmd/
//	src/main.go  1.2 KiB
//	src/link -> ../lib
//	Entries: 3; left out: 1 excluded, 2 ignored (.gitignore)
//	=== END LIST ===
func list(w *bufio.Writer, l *sandbox.ListResult) {
	name := l.Path
	if l.Recursive {
		name = strings.TrimSuffix(name, "/") + "/**"
	}
	fmt.Fprintf(w, "=== LIST: %s ===\n", parser.Printable(name))
	var line []byte
	for _, e := range l.Entries {
		line = append(line[:0], parser.Printable(e.Path)...)
		switch e.Kind {
		case "dir":
			line = append(line, '/')
		case "file":
			line = append(line, "  "+sandbox.FormatSize(e.Size)...)
		case "link":
			line = append(line, " -> "+parser.Printable(e.Target)...)
		default:
			line = append(line, "  ("+e.Kind+")"...)
		}
		writeEscaped(w, line)
		w.WriteByte('\n')
	}
	fmt.Fprintf(w, "Entries: %d", l.Total)
	if l.Truncated() {
		fmt.Fprintf(w, " (showing the first %d: list.max_entries)", len(l.Entries))
	}
	if out := counts(count{l.Excluded, "excluded"}, count{l.Ignored, "ignored (.gitignore)"}); out != "" {
		fmt.Fprintf(w, "; left out: %s", out)
	}
	w.WriteString("\n=== END LIST ===\n")
}

// count is a number of things, for counts.
type count struct {
	n    int
	what string
}

// counts is "2 binary, 14 ignored (.gitignore)": the counts that are not
// zero, or "".
func counts(cs ...count) string {
	var parts []string
	for _, c := range cs {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return strings.Join(parts, ", ")
}

// rangeOf is the part of a FILE line that gives the range of lines read:
// " (lines 120-180 of 1210)", or "".
// hostTool says that a file written or edited is one tools on the host
// run or obey (security.host_tool_files): the change landed, for the
// user to review.
func hostTool(w *bufio.Writer, pattern string) {
	if pattern != "" {
		fmt.Fprintf(w, "Host tool file: tools on the host run or obey this file (security.host_tool_files: %s); the change is marked in the audit log for review\n", parser.Printable(pattern))
	}
}

func rangeOf(f *sandbox.File) string {
	l := f.Lines
	if l == nil {
		return ""
	}
	if l.Start == l.End {
		return fmt.Sprintf(" (line %d of %d)", l.Start, l.Total)
	}
	return fmt.Sprintf(" (lines %d-%d of %d)", l.Start, l.End, l.Total)
}

// noNewline marks an end line whose content did not end with a newline:
// the newline before the end line is the tool's.
const noNewline = " (no newline at end)"

// block writes escaped content and the line that ends it, "=== END FILE
// ===" for end "END FILE". Content that does not end with a newline gets
// one, and the end line says so.
func block(w *bufio.Writer, b []byte, end string) {
	writeEscaped(w, b)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		fmt.Fprintf(w, "\n=== %s%s ===\n", end, noNewline)
		return
	}
	fmt.Fprintf(w, "=== %s ===\n", end)
}

// writeEscaped writes content with one '\' added in front of every line
// that begins with zero or more '\' and then "=== " (see the package doc).
func writeEscaped(w *bufio.Writer, b []byte) {
	done := 0 // b[:done] is written
	for i := 0; i >= 0; i = nextLine(b, i) {
		if quoted(b[i:]) {
			w.Write(b[done:i])
			w.WriteByte('\\')
			done = i
		}
	}
	w.Write(b[done:])
}

// Unescape returns the content that escaped text stands for: one '\' is
// taken off every line that begins with one or more '\' and then "=== ",
// where lines start as the package doc says. It undoes the escape of a
// block's content and of a search line ("path:N: text"); for a whole block,
// use [DecodeBlock], which also knows whether the last newline is the
// tool's.
func Unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	done := 0 // b[:done] is copied to out, or dropped
	for i := 0; i >= 0; i = nextLine(b, i) {
		if i < len(b) && b[i] == '\\' && quoted(b[i:]) {
			out = append(out, b[done:i]...)
			done = i + 1
		}
	}
	return append(out, b[done:]...)
}

// DecodeBlock reads one block of content from text output: text starts
// just after the line that opens the block ("=== FILE: PATH ===", or
// "Output:" for an exec). It returns the content, byte for byte, and the
// rest of text after the block's end line ("=== END FILE ===" or "=== END
// FILE (no newline at end) ==="). The end line is the first line that
// begins with "=== ", since no line of content does.
func DecodeBlock(text []byte) (content, rest []byte, err error) {
	i := 0 // where the end line starts
	if !bytes.HasPrefix(text, framing) {
		j := bytes.Index(text, lfFraming)
		if j < 0 {
			return nil, nil, errNoEnd
		}
		i = j + 1
	}
	body, end := text[:i], text[i:]
	n := bytes.IndexByte(end, '\n')
	if n < 0 {
		return nil, nil, errNoEnd
	}
	end, rest = end[:n], end[n+1:]
	if bytes.HasSuffix(end, []byte(noNewline+" ===")) {
		if len(body) == 0 {
			return nil, nil, errors.New("output: an empty block cannot lack a newline")
		}
		body = body[:len(body)-1] // the newline the tool added
	}
	return Unescape(body), rest, nil
}

var (
	framing   = []byte("=== ")
	lfFraming = []byte("\n=== ")
	errNoEnd  = errors.New("output: no end line after the block")
)

// quoted reports whether b begins with zero or more '\' and then "=== ".
func quoted(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(b, `\`), framing)
}

// nextLine returns the index just after the first line break in b[i:], or
// -1 if there is none. The line breaks are LF, VT, FF, CR, FS, GS, RS, NEL,
// LS and PS, matched as bytes, so invalid UTF-8 around them changes
// nothing.
func nextLine(b []byte, i int) int {
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\n' || c == '\v' || c == '\f' || c == '\r' || c >= 0x1c && c <= 0x1e:
			return i + 1
		case c == 0xc2 && i+1 < len(b) && b[i+1] == 0x85: // NEL
			return i + 2
		case c == 0xe2 && i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xa8 || b[i+2] == 0xa9): // LS, PS
			return i + 3
		}
	}
	return -1
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Finish implements Reporter.
func (t *Text) Finish(s Summary) error {
	if s.Interrupted {
		fmt.Fprintf(t.w, "=== LLM TOOL INTERRUPTED ===\nCommands executed: %d\nThe run was interrupted: no command after these ran.\n", s.Commands)
	} else {
		fmt.Fprintf(t.w, "=== LLM TOOL COMPLETE ===\nCommands executed: %d\n", s.Commands)
	}
	fmt.Fprintf(t.w, "Time elapsed: %.2fs\n=== END ===\n", s.Elapsed.Seconds())
	return t.w.Flush()
}

// JSONL prints one JSON object per command, a Record, and nothing else,
// but that a run stopped before the end of its input ends with one
// Interrupted object: {"interrupted":true,"commands_executed":N}. A run
// that ends otherwise ends with its last command's line.
type JSONL struct {
	w *bufio.Writer
}

// Record is one line of JSONL output: one command. The fields before
// Path are always there; the others only for the commands (and outcomes)
// they are about, and only when they are not empty.
type Record struct {
	// Index is the command's 1-based position among the commands of the
	// input.
	Index int `json:"index"`
	// Line is the 1-based line of the input on which the command starts.
	Line int `json:"line"`
	// Command is its kind: open, write, edit, list, exec or search.
	Command string `json:"command"`
	// Argument is the command's argument as the model wrote it (trimmed):
	// a path for open, write, edit and list (with ":N-M" for a range), a
	// command line for exec, and for search the whole text, quotes,
	// " in GLOB" and " -C N" included (see Query, Scope and Context).
	Argument string `json:"argument"`
	// Tag is the opening tag, as the text format shows it: "<open
	// go.mod>", or as written when it is malformed ("<open go.mod").
	Tag string `json:"tag"`
	// OK is false when the command failed; Error says why.
	OK bool `json:"ok"`
	// DurationMS is how long the command took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// Path is the file or directory an open, write, edit, delete or list was
	// about, relative to the repository root.
	Path string `json:"path,omitempty"`
	// Content is the text of an opened file; a file that is not valid
	// UTF-8 comes as ContentBase64 instead, so no byte is lost.
	Content       *string `json:"content,omitempty"`
	ContentBase64 []byte  `json:"content_base64,omitempty"`
	// Lines, for <open PATH:N-M>: the lines read (start, end) and the
	// file's line count (total).
	Lines *sandbox.Lines `json:"lines,omitempty"`
	// A list's: its entries (path, kind: dir, file, link or other, size,
	// a link's target), how many were found, and how many were left out
	// as excluded or .gitignored (Ignored is also a search's count of
	// .gitignored files).
	Entries      []sandbox.Entry `json:"entries,omitzero"`
	TotalEntries *int            `json:"total_entries,omitempty"`
	Excluded     int             `json:"excluded,omitempty"`
	Ignored      int             `json:"ignored,omitempty"`
	// A write's: whether it made the file (CREATED) or replaced it
	// (UPDATED), and the bytes written.
	Action       string `json:"action,omitempty"`
	BytesWritten *int64 `json:"bytes_written,omitempty"`
	// A delete's or a move's: what it was (file, dir, link or other); a
	// move's destination, whether it replaced a file there, and the
	// entries under a directory moved. A deleted file's size is Bytes.
	// A diff's: what it is of, its text, its line count and paths. An
	// undo's: the paths put back, those left (conflicts) and its own
	// checkpoint; Of says what it took back.
	Of           string   `json:"of,omitempty"`
	DiffLines    int      `json:"diff_lines,omitempty"`
	Paths        int      `json:"paths,omitempty"`
	Restored     []string `json:"restored,omitempty"`
	Conflicts    []string `json:"conflicts,omitempty"`
	Checkpoint   int      `json:"checkpoint,omitempty"`
	Kind         string   `json:"kind,omitempty"`
	To           string   `json:"to,omitempty"`
	Replaced     bool     `json:"replaced,omitempty"`
	EntriesMoved int      `json:"entries_moved,omitempty"`
	// An edit's: the blocks applied, those matched only ignoring white
	// space at the ends of lines (1-based), the file's size after, and a
	// unified diff (the first sandbox.MaxDiffLines lines; diff_truncated).
	// A write's or an edit's: the pattern of security.host_tool_files
	// the file matches (a file tools on the host run or obey).
	HostToolFile  string `json:"host_tool_file,omitempty"`
	BlocksApplied *int   `json:"blocks_applied,omitempty"`
	LooseBlocks   []int  `json:"loose_blocks,omitempty"`
	// An edit's blocks opened with <<<<<<< SEARCH ALL: each block's
	// number and the first line of every place it replaced.
	ReplacedBlocks []edit.Replaced `json:"replaced_blocks,omitempty"`
	Bytes          *int64          `json:"bytes,omitempty"`
	Diff           *string         `json:"diff,omitempty"`
	DiffTruncated  bool            `json:"diff_truncated,omitempty"`
	// Query is what a search looked for, parsed from Argument: without
	// the quotes, " in GLOB" and " -C N" ("\"strconv.ParseUint(\" in
	// uint_slice*.go" looks for `strconv.ParseUint(`); "re:PATTERN" for a
	// regular expression.
	Query string `json:"query,omitempty"`
	// Scope is the glob of a search's " in GLOB", the files it was
	// restricted to.
	Scope string `json:"scope,omitempty"`
	// Context is N of a search's " -C N": the lines of context around
	// each match, in each match's before and after.
	Context int `json:"context,omitempty"`
	// Matches are a search's matching lines, at most search.max_results;
	// TotalMatches counts them all, in FilesMatched files, and Truncated
	// says that more matched than are listed (or, for a list, that more
	// entries were found than list.max_entries).
	Matches      []Match `json:"matches,omitzero"`
	TotalMatches *int    `json:"total_matches,omitempty"`
	FilesMatched *int    `json:"files_matched,omitempty"`
	Truncated    bool    `json:"truncated,omitempty"`
	// Partial says why a search stopped early (search.timeout).
	Partial string `json:"partial,omitempty"`
	// The files a search left out: over security.max_file_size, binary.
	SkippedLarge  int `json:"skipped_large,omitempty"`
	SkippedBinary int `json:"skipped_binary,omitempty"`
	// An exec's exit code and output (invalid UTF-8 replaced by U+FFFD),
	// also when it failed.
	ExitCode *int    `json:"exit_code,omitempty"`
	Output   *string `json:"output,omitempty"`
	// Changes are the files an exec changed and what became of each:
	// created, updated, deleted, refused (with the reason) or discarded.
	Changes []sandbox.Change `json:"changes,omitempty"`
	// ChangesOmitted counts, by action, the changes past the 1,000 listed.
	ChangesOmitted map[string]int `json:"changes_omitted,omitempty"`
	// Network is every connection an exec asked the egress proxy for
	// (exec.network: allowlist).
	Network []sandbox.NetConn `json:"network,omitempty"`
	// Error is why the command failed, when OK is false.
	Error *Error `json:"error,omitempty"`
}

// Match is one search match.
type Match struct {
	Path string `json:"path"`
	Line int    `json:"line"`
	Text string `json:"text"`
	// The lines before and after it, for a search with context (-C N).
	Before []string `json:"before,omitempty"`
	After  []string `json:"after,omitempty"`
}

// Error is a failed command.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Detail is more to read, in lines: the closest lines of a file to an
	// edit's SEARCH that matched nothing, each "NUMBER  TEXT".
	Detail string `json:"detail,omitempty"`
}

// describeKind says what was deleted or moved: "file (6 bytes)" (bytes
// < 0: not said), "directory (3 entries under it)", "link".
func describeKind(kind string, bytes int64, entries int) string {
	switch kind {
	case "file":
		if bytes < 0 {
			return "file"
		}
		return fmt.Sprintf("file (%s)", sandbox.FormatSize(bytes))
	case "dir":
		if entries > 0 {
			return fmt.Sprintf("directory (%d %s under it)", entries, map[bool]string{true: "entry", false: "entries"}[entries == 1])
		}
		return "empty directory"
	case "link":
		return "symbolic link (not what it points to)"
	}
	return "special file (" + kind + ")"
}

// Start implements Reporter.
func (j *JSONL) Start() error { return nil }

// Result implements Reporter.
func (j *JSONL) Result(r *Result) error {
	rec := Record{
		Index:      r.Index,
		Line:       r.Command.Line,
		Command:    string(r.Command.Kind),
		Argument:   r.Command.Arg,
		Tag:        r.Command.Tag(),
		OK:         r.Err == nil,
		DurationMS: float64(r.Duration.Microseconds()) / 1000,
	}
	if r.Err != nil {
		rec.Error = &Error{Code: r.Err.Code, Message: r.Err.Message, Detail: r.Err.Detail}
	}
	switch {
	case r.File != nil:
		rec.Path, rec.Lines = r.File.Path, r.File.Lines
		if utf8.Valid(r.File.Content) {
			s := string(r.File.Content)
			rec.Content = &s
		} else {
			rec.ContentBase64 = r.File.Content
		}
	case r.Write != nil:
		rec.Path, rec.Action, rec.BytesWritten, rec.HostToolFile = r.Write.Path, r.Write.Action(), &r.Write.Bytes, r.Write.HostTool
	case r.Delete != nil:
		d := r.Delete
		rec.Path, rec.Kind, rec.HostToolFile = d.Path, d.Kind, d.HostTool
		if d.Kind == "file" {
			rec.Bytes = &d.Bytes
		}
	case r.Diff != nil:
		d := r.Diff
		rec.Of, rec.Diff, rec.DiffLines, rec.Paths, rec.DiffTruncated = d.Of, &d.Text, d.Lines, d.Paths, d.Lines > MaxDiffLines
	case r.Undo != nil:
		u := r.Undo
		rec.Of, rec.Restored, rec.Conflicts, rec.Checkpoint = u.Of, u.Restored, u.Conflicts, u.Checkpoint
	case r.Move != nil:
		m := r.Move
		rec.Path, rec.To, rec.Kind, rec.Replaced, rec.EntriesMoved, rec.HostToolFile = m.From, m.To, m.Kind, m.Replaced, m.Entries, m.HostTool
	case r.List != nil:
		l := r.List
		rec.Path, rec.Entries, rec.TotalEntries, rec.Excluded, rec.Ignored, rec.Truncated = l.Path, l.Entries, &l.Total, l.Excluded, l.Ignored, l.Truncated()
		if rec.Entries == nil {
			rec.Entries = []sandbox.Entry{}
		}
	case r.Edit != nil:
		e := r.Edit
		rec.ReplacedBlocks = e.Replaced
		rec.Path, rec.BlocksApplied, rec.LooseBlocks, rec.Bytes, rec.Diff, rec.DiffTruncated = e.Path, &e.Applied, e.Loose, &e.Bytes, &e.Diff, e.DiffTruncated
		rec.HostToolFile = e.HostTool
	case r.Search != nil:
		s := r.Search
		rec.Query, rec.Scope, rec.Context = s.Text, s.Scope, s.Context
		rec.TotalMatches, rec.FilesMatched, rec.Truncated, rec.Partial = &s.Total, &s.Files, s.Truncated(), s.Partial
		rec.SkippedLarge, rec.SkippedBinary, rec.Ignored = s.SkippedLarge, s.SkippedBinary, s.Ignored
		rec.Matches = make([]Match, len(s.Matches))
		for i, m := range s.Matches {
			rec.Matches[i] = Match(m)
		}
	case r.Exec != nil:
		out := string(bytes.ToValidUTF8(r.Exec.Output, []byte("\uFFFD")))
		rec.ExitCode, rec.Output, rec.Changes, rec.ChangesOmitted, rec.Network = &r.Exec.ExitCode, &out, r.Exec.Changes, r.Exec.Omitted, r.Exec.Network
	}
	enc := json.NewEncoder(j.w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return err
	}
	return j.w.Flush()
}

// Interrupted is the last line of a JSONL run that was stopped before the
// end of its input; a Record has no field "interrupted".
type Interrupted struct {
	Interrupted bool `json:"interrupted"`       // true
	Commands    int  `json:"commands_executed"` // the commands run or refused before it
}

// Finish implements Reporter.
func (j *JSONL) Finish(s Summary) error {
	if s.Interrupted {
		if err := json.NewEncoder(j.w).Encode(Interrupted{true, s.Commands}); err != nil {
			return err
		}
	}
	return j.w.Flush()
}

// Plural is "1 use", "2 uses".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
