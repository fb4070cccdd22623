// Package output prints the results of commands: the text framing that
// system prompts for this kind of tool expect, or JSON Lines for programs.
//
// Every result is written and flushed before Result returns, so a reader
// sees each command's outcome as soon as it is known.
package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

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
	Search   *sandbox.SearchResult
	Exec     *sandbox.ExecResult
	Err      *sandbox.Error
	Duration time.Duration
}

// Summary closes the output.
type Summary struct {
	Commands int // commands run or refused
	Failed   int // of which failed
	Elapsed  time.Duration
}

// Reporter prints results.
type Reporter interface {
	Start() error
	Result(*Result) error
	Finish(Summary) error
}

// New returns the reporter for format ("text" or "jsonl") writing to w.
func New(format string, w io.Writer) (Reporter, error) {
	switch format {
	case "text":
		return &Text{w: bufio.NewWriter(w)}, nil
	case "jsonl":
		return &JSONL{w: bufio.NewWriter(w)}, nil
	}
	return nil, fmt.Errorf("output: unknown format %q", format)
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
type Text struct {
	w *bufio.Writer
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
		fmt.Fprintf(w, "=== ERROR: %s ===\n", r.Err.Code)
		fmt.Fprintf(w, "Message: %s\n", parser.Printable(r.Err.Message))
		fmt.Fprintf(w, "Command: %s\n", r.Command.Tag())
		if e := r.Exec; e != nil {
			fmt.Fprintf(w, "Exit code: %d\n", e.ExitCode)
			fmt.Fprintf(w, "Duration: %.2fs\n", e.Duration.Seconds())
			w.WriteString("Output:\n")
			block(w, e.Output)
			w.WriteString("=== END EXEC ===\n")
		}
	case r.File != nil:
		fmt.Fprintf(w, "=== FILE: %s ===\n", parser.Printable(r.File.Path))
		block(w, r.File.Content)
		w.WriteString("=== END FILE ===\n")
	case r.Write != nil:
		fmt.Fprintf(w, "=== WRITE SUCCESSFUL: %s ===\n", parser.Printable(r.Write.Path))
		fmt.Fprintf(w, "Action: %s\n", r.Write.Action())
		fmt.Fprintf(w, "Bytes written: %d\n", r.Write.Bytes)
	case r.Search != nil:
		s := r.Search
		fmt.Fprintf(w, "=== SEARCH: %s ===\n", parser.Printable(s.Query))
		for _, m := range s.Matches {
			fmt.Fprintf(w, "%s:%d: %s\n", parser.Printable(m.Path), m.Line, m.Text)
		}
		fmt.Fprintf(w, "Matches: %d in %d %s", s.Total, s.Files, plural(s.Files, "file", "files"))
		if s.Truncated() {
			fmt.Fprintf(w, " (showing the first %d)", len(s.Matches))
		}
		w.WriteString("\n=== END SEARCH ===\n")
	case r.Exec != nil:
		e := r.Exec
		fmt.Fprintf(w, "=== EXEC SUCCESSFUL: %s ===\n", parser.Printable(r.Command.Arg))
		fmt.Fprintf(w, "Exit code: %d\n", e.ExitCode)
		fmt.Fprintf(w, "Duration: %.2fs\n", e.Duration.Seconds())
		w.WriteString("Output:\n")
		block(w, e.Output)
		w.WriteString("=== END EXEC ===\n")
	}
	w.WriteString("=== END COMMAND ===\n")
	return w.Flush()
}

// block writes content so that the line after it starts on a line of its own.
func block(w *bufio.Writer, b []byte) {
	w.Write(b)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		w.WriteByte('\n')
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Finish implements Reporter.
func (t *Text) Finish(s Summary) error {
	fmt.Fprintf(t.w, "=== LLM TOOL COMPLETE ===\nCommands executed: %d\nTime elapsed: %.2fs\n=== END ===\n", s.Commands, s.Elapsed.Seconds())
	return t.w.Flush()
}

// JSONL prints one JSON object per command and nothing else. See Record
// for the fields.
type JSONL struct {
	w *bufio.Writer
}

// Record is one line of JSONL output.
type Record struct {
	Index      int     `json:"index"`
	Line       int     `json:"line"`
	Command    string  `json:"command"` // open, write, exec or search
	Argument   string  `json:"argument"`
	Tag        string  `json:"tag"` // the opening tag, as the text format shows it
	OK         bool    `json:"ok"`
	DurationMS float64 `json:"duration_ms"`
	Path       string  `json:"path,omitempty"`
	// Content is the text of an opened file; a file that is not valid
	// UTF-8 comes as ContentBase64 instead, so no byte is lost.
	Content       *string `json:"content,omitempty"`
	ContentBase64 []byte  `json:"content_base64,omitempty"`
	Action        string  `json:"action,omitempty"` // CREATED or UPDATED
	BytesWritten  *int64  `json:"bytes_written,omitempty"`
	Query         string  `json:"query,omitempty"`
	Matches       []Match `json:"matches,omitzero"`
	TotalMatches  *int    `json:"total_matches,omitempty"`
	FilesMatched  *int    `json:"files_matched,omitempty"`
	Truncated     bool    `json:"truncated,omitempty"`
	ExitCode      *int    `json:"exit_code,omitempty"`
	Output        *string `json:"output,omitempty"`
	Error         *Error  `json:"error,omitempty"`
}

// Match is one search match.
type Match struct {
	Path string `json:"path"`
	Line int    `json:"line"`
	Text string `json:"text"`
}

// Error is a failed command.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
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
		rec.Error = &Error{Code: r.Err.Code, Message: r.Err.Message}
	}
	switch {
	case r.File != nil:
		rec.Path = r.File.Path
		if utf8.Valid(r.File.Content) {
			s := string(r.File.Content)
			rec.Content = &s
		} else {
			rec.ContentBase64 = r.File.Content
		}
	case r.Write != nil:
		rec.Path, rec.Action, rec.BytesWritten = r.Write.Path, r.Write.Action(), &r.Write.Bytes
	case r.Search != nil:
		s := r.Search
		rec.Query, rec.TotalMatches, rec.FilesMatched, rec.Truncated = s.Query, &s.Total, &s.Files, s.Truncated()
		rec.Matches = make([]Match, len(s.Matches))
		for i, m := range s.Matches {
			rec.Matches[i] = Match(m)
		}
	case r.Exec != nil:
		out := string(bytes.ToValidUTF8(r.Exec.Output, []byte("\uFFFD")))
		rec.ExitCode, rec.Output = &r.Exec.ExitCode, &out
	}
	enc := json.NewEncoder(j.w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return err
	}
	return j.w.Flush()
}

// Finish implements Reporter.
func (j *JSONL) Finish(Summary) error { return j.w.Flush() }
