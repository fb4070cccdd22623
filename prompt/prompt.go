// Package prompt writes the system prompt that teaches a model the command
// language as a run is configured: the commands it may use (exec only when
// it is on, with its whitelist), the limits, how results are framed, the
// error codes, and examples. The examples are data (Examples, on the
// repository ExampleRepo), and the tests run every one of them through the
// parser and a sandbox and check that the output shows what the prompt
// says it shows, so the prompt cannot drift from the tool.
package prompt

import (
	"fmt"
	"strings"
	"time"
)

// Settings are what the prompt says of a run's configuration.
type Settings struct {
	MaxFileSize      int64
	MaxWriteSize     int64
	MaxSearchResults int
	MaxListEntries   int
	Excluded         []string
	Exec             *Exec // nil: exec is off, and the prompt does not mention it
	// LineNumbers: a file's lines are shown numbered (output.line_numbers),
	// and the prompt says so, and shows them so.
	LineNumbers bool
	// Journal: changes are journaled (journal.enabled), so <diff> and
	// <undo> work, and the prompt teaches them.
	Journal bool
}

// Exec is the configuration of <exec>.
type Exec struct {
	// Whitelist holds the entries of exec.whitelist that the exec image
	// can run (its program is on the image's PATH): the prompt lists these
	// and no others.
	Whitelist []string
	Shell     bool
	Writable  bool
	Timeout   time.Duration
	// Toolchains are the versions of the toolchains the image offers
	// ("go1.26.8"), when it says.
	Toolchains []string
	// Network holds the destinations of exec.network allowlist
	// (exec.network_allow, as written), nil for no network at all.
	Network []string
	// Allows reports whether a command line passes the configuration (the
	// whitelist, as the sandbox checks it, and the image has its
	// program): the exec example is the first of ExecExamples it allows,
	// and there is none if it allows none, or is nil.
	Allows func(line string) bool
}

// Example returns the exec example for x: the first of ExecExamples that
// x allows, or nil.
func (x *Exec) Example() *Example {
	if x == nil || x.Allows == nil {
		return nil
	}
	for i := range ExecExamples {
		if e := &ExecExamples[i]; x.Allows(e.Line()) {
			return e
		}
	}
	return nil
}

// Example is one example of the prompt: what the model writes and what the
// tool's answer shows.
type Example struct {
	Title string
	Input string   // the model's text, one command or a few
	Shows []string // lines of the answer, in order, that the example relies on
	Exec  bool     // an <exec>: one of ExecExamples
	// Before is what an earlier reply did, run first (not shown): the
	// journal's examples take back or show it.
	Before string
	// Numbered is Shows as the answer shows them with output.line_numbers
	// on; nil when they are the same.
	Numbered []string
}

// WithLineNumbers is the example as it shows with output.line_numbers on.
func (e Example) WithLineNumbers() Example {
	if e.Numbered != nil {
		e.Shows = e.Numbered
	}
	return e
}

// Line is the command line of an exec example: what its <exec> holds.
func (e Example) Line() string {
	return strings.TrimSuffix(strings.TrimPrefix(e.Input, "<exec "), ">")
}

// Check returns an error unless the tool's answer out shows the lines of
// e.Shows, each a whole line, in order.
func (e Example) Check(out string) error {
	rest := out
	for _, want := range e.Shows {
		i := strings.Index(rest, want+"\n")
		if i < 0 {
			return fmt.Errorf("%s: the answer lacks %q (after the lines before it):\n%s", e.Title, want, out)
		}
		rest = rest[i+len(want):]
	}
	return nil
}

// ExampleRepo is the repository the examples are about (the tests run them
// on it).
var ExampleRepo = map[string]string{
	"go.mod":                  "module example.com/app\n\ngo 1.26\n",
	"main.go":                 "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(greeting())\n}\n\nfunc greeting() string {\n\treturn \"hello\"\n}\n",
	"README.md":               "# app\n\nSays hello.\n",
	"internal/names/names.go": "package names\n\n// TODO: more names\nvar Names = []string{\"world\"}\n",
	"CHANGELOG.md":            "# Changelog\n\n## 0.2\n- Says hello to more names.\n- Needs Go 1.25.\n\n## 0.1\n- Says hello.\n- Needs Go 1.25.\n",
}

// Examples are the prompt's examples, in the order it shows them.
var Examples = []Example{
	{Title: "Read a file", Input: "<open go.mod>", Shows: []string{"=== FILE: go.mod ===", "module example.com/app", "=== END FILE ==="},
		Numbered: []string{"=== FILE: go.mod ===", "     1\tmodule example.com/app", "=== END FILE ==="}},
	{Title: "Read lines 9 to 11 of a file", Input: "<open main.go:9-11>", Shows: []string{"=== FILE: main.go (lines 9-11 of 11) ===", "func greeting() string {", "=== END FILE ==="},
		Numbered: []string{"=== FILE: main.go (lines 9-11 of 11) ===", "     9\tfunc greeting() string {", "=== END FILE ==="}},
	{Title: "List a directory (<list> alone lists the root; PATH/** lists everything under it)", Input: "<list internal/**>", Shows: []string{"=== LIST: internal/** ===", "internal/names/", "internal/names/names.go  65 bytes", "Entries: 2", "=== END LIST ==="}},
	{Title: "Search the repository (a literal string; re:PATTERN for a regular expression)", Input: "<search TODO>", Shows: []string{"=== SEARCH: TODO ===", "internal/names/names.go:3: // TODO: more names", "Matches: 1 in 1 file", "=== END SEARCH ==="}},
	{Title: "Search some files only", Input: "<search func in *.go>", Shows: []string{"=== SEARCH: func in *.go ===", "main.go:5: func main() {", "main.go:9: func greeting() string {", "Matches: 2 in 1 file", "=== END SEARCH ==="}},
	{Title: "Search with lines of context around each match (-C N, written last)", Input: "<search greeting in *.go -C 1>",
		Shows: []string{"=== SEARCH: greeting in *.go -C 1 ===", "main.go-5- func main() {", "main.go:6: \tfmt.Println(greeting())", "main.go-7- }", "main.go:9: func greeting() string {", "Matches: 2 in 1 file", "=== END SEARCH ==="}},
	{Title: "Change part of a file: each SEARCH must match exactly once; all blocks apply or none", Input: "<edit main.go>\n<<<<<<< SEARCH\n\treturn \"hello\"\n=======\n\treturn \"hello, world\"\n>>>>>>> REPLACE\n</edit>",
		Shows: []string{"=== EDIT SUCCESSFUL: main.go ===", "Blocks applied: 1", "-\treturn \"hello\"", "+\treturn \"hello, world\"", "=== END DIFF ==="}},
	{Title: "Change every place a SEARCH matches exactly: open the block with SEARCH ALL", Input: "<edit CHANGELOG.md>\n<<<<<<< SEARCH ALL\n- Needs Go 1.25.\n=======\n- Needs Go 1.26.\n>>>>>>> REPLACE\n</edit>",
		Shows: []string{"=== EDIT SUCCESSFUL: CHANGELOG.md ===", "Blocks applied: 1", "Block 1 replaced 2 places (lines 5, 9)", "-- Needs Go 1.25.", "+- Needs Go 1.26.", "=== END DIFF ==="}},
	{Title: "Write a whole file (created, or replaced)", Input: "<write docs/usage.md>\nRun `go run .`.\n</write>", Shows: []string{"=== WRITE SUCCESSFUL: docs/usage.md ===", "Action: CREATED"}},
	{Title: "Move or rename a file or directory", Input: "<move internal/names internal/greet/names>",
		Shows: []string{"=== MOVE SUCCESSFUL: internal/names ===", "Moved to: internal/greet/names", "What: directory (1 entry under it)"}},
	{Title: "Delete a file (or an empty directory)", Input: "<delete README.md>", Shows: []string{"=== DELETE SUCCESSFUL: README.md ===", "Deleted: file (19 bytes)"}},
	{Title: "A failed command says why, with a code", Input: "<open missing.go>", Shows: []string{"=== ERROR: FILE_NOT_FOUND ===", "Message: no such file: missing.go"}},
}

// JournalExamples are the examples of <diff> and <undo>, shown when
// changes are journaled (Settings.Journal); each runs after its Before,
// an earlier reply, in the same repository and journal.
var JournalExamples = []Example{
	{Title: "See what you changed today (<diff> for every file, <diff N> for checkpoint N)", Before: "<write docs/usage.md>\nRun `go run .`.\n</write>",
		Input: "<diff docs/usage.md>", Shows: []string{"=== DIFF: docs/usage.md in today's work (checkpoints 1 to 1) ===", "--- /dev/null", "+++ b/docs/usage.md", "+Run `go run .`.", "=== END DIFF ==="}},
	{Title: "Take back your previous reply's changes (<undo> again takes the undo back)", Before: "<write docs/usage.md>\nRun `go run .`.\n</write>",
		Input: "<undo>", Shows: []string{"=== UNDO SUCCESSFUL: checkpoint 1 ===", "Put back: 2", "  docs/usage.md", "  docs", "This undo is checkpoint 2: <undo> takes it back"}},
}

// ExecExamples are the candidates for the prompt's exec example, in order
// of preference: the prompt shows the first that its configuration allows
// (Exec.Example), so that the example always passes the whitelist it is
// printed for. Their answers are those of busybox's and GNU's tools
// alike, and of the go command of the Go exec image; the end-to-end tests
// run them.
var ExecExamples = []Example{
	execExample("ls internal/names", "names.go"),
	execExample("cat go.mod", "module example.com/app"),
	execExample("grep -n TODO internal/names/names.go", "3:// TODO: more names"),
	execExample("head -n 1 go.mod", "module example.com/app"),
	execExample("find internal -name '*.go'", "internal/names/names.go"),
	execExample("wc -l main.go", "11 main.go"),
	execExample("go vet ./..."),
	execExample("go build ./..."),
	execExample("go test ./...", "?   \texample.com/app\t[no test files]"),
	execExample("echo hello", "hello"),
	execExample("pwd", "/workspace"),
	execExample("true"),
}

// execExample is the example of running line, whose output holds the
// lines out.
func execExample(line string, out ...string) Example {
	shows := append([]string{"=== EXEC SUCCESSFUL: " + line + " ===", "Exit code: 0", "Output:"}, out...)
	return Example{Title: "Run a command", Input: "<exec " + line + ">", Shows: append(shows, "=== END EXEC ==="), Exec: true}
}

// errorCodes are the codes a model meets, with what to do about each.
var errorCodes = [][2]string{
	{"PATH_SECURITY", "the path leaves the repository, is excluded, or is the tool's own: do not retry it"},
	{"FILE_NOT_FOUND", "nothing there: <list> the directory, or <search> for the name"},
	{"IS_DIRECTORY / NOT_DIRECTORY", "use <list> for a directory, <open> for a file; a directory is deleted once it is empty"},
	{"FILE_EXISTS", "a <move> would replace a file: pick another path, or add --overwrite if replacing it is what you mean"},
	{"BINARY_FILE", "the file is not text"},
	{"RESOURCE_LIMIT", "over a size limit: read a file by ranges (PATH:N-M), change it with <edit>"},
	{"INVALID_RANGE", "the range is past the end of the file: the message gives its line count"},
	{"EDIT_NO_MATCH", "a SEARCH matched nothing, or matched only with an indentation that does not say how to indent the REPLACE: the Detail block shows the closest lines, with their numbers; copy them exactly, indentation included"},
	{"EDIT_AMBIGUOUS", "a SEARCH matched more than once: add lines around it until it is unique, or open the block with <<<<<<< SEARCH ALL to change every place"},
	{"EDIT_SYNTAX", "the blocks are malformed: markers on lines of their own, exactly as shown"},
	{"INVALID_QUERY", "the search is malformed (an empty query, a bad regular expression, a -C not from 1 to 20 or not last): the message says how to write it"},
	{"PARSE_ERROR", "the command's text is malformed (a missing >, or a body never closed)"},
	{"POLICY_DENIED", "a policy of the operator refused it: do not retry it"},
}

var execCodes = [][2]string{
	{"EXEC_VALIDATION", "the command is not allowed: use a listed command, without shell syntax"},
	{"EXEC_FAILED", "the command ran and failed: its output follows"},
	{"EXEC_TIMEOUT", "the command was killed at the time limit: its output so far follows, and the message says whether a retry can help"},
}

// Render returns the prompt for s, as "markdown" or "text".
func Render(s Settings, format string) (string, error) {
	var md bool
	switch format {
	case "markdown":
		md = true
	case "text":
	default:
		return "", fmt.Errorf("prompt: unknown format %q (markdown or text)", format)
	}
	var b strings.Builder
	heading := func(h string) {
		if md {
			fmt.Fprintf(&b, "\n## %s\n\n", h)
		} else {
			fmt.Fprintf(&b, "\n%s\n%s\n\n", strings.ToUpper(h), strings.Repeat("=", len(h)))
		}
	}
	code := func(text string) {
		if md {
			fmt.Fprintf(&b, "```\n%s\n```\n", text)
		} else {
			for _, l := range strings.Split(text, "\n") {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
	}
	item := func(format string, args ...any) { fmt.Fprintf(&b, "- "+format+"\n", args...) }

	if md {
		b.WriteString("# Working on the repository\n\n")
	}
	b.WriteString("You work on a code repository through commands written in your reply. " +
		"Everything that is not a command is ignored. Each command runs in a sandbox that can reach only the repository, " +
		"in the order written, and you get every result, framed as shown below, in the next message.\n")

	heading("Commands")
	item("`<open PATH>`: print a file. `<open PATH:N-M>` prints lines N to M (`PATH:N-` to the end, `PATH:N` one line) and the file's line count; use ranges for long files.")
	item("`<list PATH>`: one level of a directory, directories first; `<list>` alone lists the root; `<list PATH/**>` everything under it (at most %d entries, the total always given).", s.MaxListEntries)
	item("`<search TEXT>`: the lines of the repository's text files that hold TEXT; `<search re:PATTERN>` with a regular expression (RE2); `<search TEXT in GLOB>` only in the files GLOB names (`src/`, `src/**/*.go`, `*_test.go`); `<search \"TEXT\">` keeps TEXT exactly, spaces included; ` -C N` written last, after the scope if there is one (`<search TEXT in GLOB -C 3>`), adds N lines of context around each match, N from 1 to 20. At most %d lines are listed; the total is given.", s.MaxSearchResults)
	item("`<edit PATH>` SEARCH/REPLACE blocks `</edit>`: change part of a file. Each SEARCH is whole lines of the file, found exactly once (a block opened with `<<<<<<< SEARCH ALL` changes every place its lines are found exactly); all blocks apply or none. Prefer it to rewriting a file.")
	item("`<write PATH>`CONTENT`</write>`: create or replace a whole file. One newline right after the opening tag is dropped; the rest is written exactly.")
	item("`<delete PATH>`: delete a file, a symbolic link (not what it points to) or an empty directory.")
	item("`<move FROM TO>`: move or rename a file, link or directory; directories before TO are made. TO is the new path, not a directory to move into. A file at TO is replaced only with `<move FROM TO --overwrite>`. Quote a path with a space: `<move \"my notes.md\" notes.md>`.")
	if s.Journal {
		item("`<diff>`: a unified diff of today's changes to the repository, yours and exec's, against what was there before; `<diff PATH>` one file's; `<diff N>` checkpoint N's (each reply of yours is a checkpoint, numbered).")
		item("`<undo>`: take back your previous reply's changes (exec's included), each file only if nothing changed it since (listed otherwise); an undo is itself a checkpoint, so `<undo>` again takes it back; `<undo N>` takes back every checkpoint after N.")
	}
	item("A body that must hold `</write>` or `</edit>` uses a label: `<write:EOF PATH>`...`</write:EOF>`, `<edit:EOF PATH>`...`</edit:EOF>`.")
	if x := s.Exec; x != nil {
		item("`<exec COMMAND>`: run a command in the repository, in a fresh container %s, killed after %s.%s", Network(x.Network), x.Timeout, Toolchains(x.Toolchains))
		for _, r := range ExecRules(*x, FilterTerms) {
			item("%s", r)
		}
	}
	item("Paths are relative to the repository root. Never reachable: %s, and anything outside the repository.", quoteAll(s.Excluded))

	heading("Limits")
	item("A file is read whole up to %s; larger ones by ranges.", size(s.MaxFileSize))
	item("A write's content, and an edit's blocks, up to %s; an edited file up to %s.", size(s.MaxWriteSize), size(s.MaxFileSize))

	heading("Results")
	b.WriteString("Each command's result is framed by lines that begin with `=== `; no line of a file's content or a command's output begins so (such a line is shown with a `\\` in front). " +
		"A file ends at `=== END FILE ===`; one without a final newline ends at `=== END FILE (no newline at end) ===`. A failed command shows `=== ERROR: CODE ===` and a `Message:` line.\n")
	if s.LineNumbers {
		b.WriteString("\n" + LineNumbersRule + "\n")
	}

	heading("Error codes")
	codes := errorCodes
	if s.Exec != nil {
		codes = append(append([][2]string(nil), codes...), execCodes...)
	}
	for _, c := range codes {
		item("`%s`: %s.", c[0], c[1])
	}

	heading("Examples")
	examples := Examples
	if s.Journal {
		examples = append(append([]Example(nil), examples...), JournalExamples...)
	}
	if e := s.Exec.Example(); e != nil {
		examples = append(append([]Example(nil), examples...), *e)
	}
	for _, e := range examples {
		if s.LineNumbers {
			e = e.WithLineNumbers()
		}
		fmt.Fprintf(&b, "%s:\n\n", e.Title)
		code(e.Input)
		b.WriteString("\nThe answer shows:\n\n")
		code(strings.Join(e.Shows, "\n...\n"))
		b.WriteString("\n")
	}
	return strings.TrimLeft(b.String(), "\n"), nil
}

// LineNumbersRule says how a numbered file reads, in the prompt of a run
// with output.line_numbers on.
const LineNumbersRule = "Each line of a file is shown after its number in the file and a tab, as `cat -n` prints it (`    12\t` and then the line); a range's lines are numbered from its first. " +
	"The number and the tab are not part of the file: leave them out of SEARCH blocks and of what you write."

// Network says what a command can reach, after "in a fresh container":
// "with no network", or the hosts of exec.network allowlist, through the
// proxy its environment names, as the filter's prompt and the MCP exec
// tool say it.
func Network(allow []string) string {
	if len(allow) == 0 {
		return "with no network"
	}
	return "whose only network is HTTP and HTTPS to " + strings.Join(allow, ", ") + " (through the proxy HTTPS_PROXY and HTTP_PROXY name, which refuses every other host)"
}

// Toolchains is the sentence that names the image's toolchains, with a
// space before it, as the filter's prompt and the MCP exec tool say it;
// "" for none.
func Toolchains(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return " It has " + strings.Join(list, ", ") + "."
}

// ExecTerms are a front end's words for ExecRules: the command or tool
// that runs a command line, and the ways its model changes files.
type ExecTerms struct {
	Run    string // "`<exec>`"
	Change string // "`<edit>` or `<write>`"
}

// FilterTerms are the command language's words.
var FilterTerms = ExecTerms{Run: "`<exec>`", Change: "`<edit>` or `<write>`"}

// ExecRules are the rules of exec as sentences, one each: which commands
// may run (Allowed), whether a shell runs them, and what becomes of what a
// command changes in the repository. The filter's prompt and the MCP exec
// tool's description both say them, in their own terms t, so that a model
// learns them before its first command rather than by failing.
func ExecRules(x Exec, t ExecTerms) []string {
	shell := "No shell: no pipes, `&&`, `;` or redirections; one command per " + t.Run + "."
	if x.Shell {
		shell = "Commands may be chained with `|`, `&&`, `||` and `;`; each must be allowed. No redirections (`>`)."
	}
	changes := "A command may write, but its changes are discarded: change files with " + t.Change + "."
	if x.Writable {
		changes = "What a command changes in the repository is kept, but for what a write could not make (links, special files, excluded paths, .git); the result lists every changed file."
	}
	return []string{Allowed(x), shell, changes}
}

// Allowed is the sentence that says which commands exec may run: the
// entries of the whitelist that the image can run (Exec.Whitelist). Every front end says it through this
// function and no other, so that what a model is told it may run can be
// narrowed in one place.
func Allowed(x Exec) string {
	if len(x.Whitelist) == 1 && x.Whitelist[0] == "*" {
		return "Any command may run."
	}
	return fmt.Sprintf("Allowed commands (a command must start with one of these): %s.", quoteAll(x.Whitelist))
}

func quoteAll(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = "`" + s + "`"
	}
	return strings.Join(q, ", ")
}

// size prints a byte count as the configuration writes it.
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
