// Package sandbox defines what every llm-runtime sandbox does and the rules
// it keeps, and implements those rules once, on file descriptors.
//
// A [Sandbox] runs the file operations of the command language (open, write,
// search, exec) against one repository. [Workspace] is the shared
// implementation of the file rules; [Local] runs it on the host, and the
// container agent runs the very same code inside a container, so every
// sandbox gives the same answers and the same error codes:
//
//   - every path is relative to the repository root and is resolved component
//     by component on descriptors (walk.go); no path, symlink or ".." reaches
//     outside the repository (PATH_SECURITY);
//   - excluded paths (security.excluded_paths) are refused for open and write,
//     matched case-insensitively against every component at any depth;
//   - reads refuse directories (IS_DIRECTORY), binary files (BINARY_FILE: a
//     NUL byte in the first 8000 bytes, as git decides) and files over the
//     size limit (RESOURCE_LIMIT);
//   - writes are atomic (temporary file in the same directory, fsync, rename,
//     fsync of the directory), keep an existing file's mode, create missing
//     parent directories, and refuse content over the size limit, leaving the
//     old file untouched.
//
// Failures are [*Error] values carrying an UPPER_SNAKE code.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llm-runtime/llm-runtime/edit"
	"github.com/llm-runtime/llm-runtime/parser"
)

// Error codes. Every failure a sandbox reports carries one of these.
const (
	CodePathSecurity   = "PATH_SECURITY"    // the path leaves the repository or is excluded
	CodeInvalidPath    = "INVALID_PATH"     // empty, too long, or otherwise not a usable path
	CodeFileNotFound   = "FILE_NOT_FOUND"   // nothing at that path
	CodeIsDirectory    = "IS_DIRECTORY"     // a directory where a file was expected
	CodeNotDirectory   = "NOT_DIRECTORY"    // a file where a directory was expected (a list)
	CodeNotRegularFile = "NOT_REGULAR_FILE" // a device, socket or FIFO
	CodeBinaryFile     = "BINARY_FILE"      // the file holds a NUL byte
	CodeResourceLimit  = "RESOURCE_LIMIT"   // over a size limit
	CodePermission     = "PERMISSION_DENIED"
	CodeInvalidQuery   = "INVALID_QUERY"  // an empty search, a bad regular expression, a -C out of range or out of place
	CodeInvalidRange   = "INVALID_RANGE"  // a line range past the end of the file
	CodeEditSyntax     = "EDIT_SYNTAX"    // an edit body that is not SEARCH/REPLACE blocks
	CodeEditNoMatch    = "EDIT_NO_MATCH"  // a SEARCH found nowhere, even ignoring white space at the ends of lines, or found so and indented otherwise than the file in a way that does not say how to indent the REPLACE
	CodeEditAmbiguous  = "EDIT_AMBIGUOUS" // a SEARCH found more than once
	CodeFileExists     = "FILE_EXISTS"    // a move's destination exists, and it was not asked to overwrite it
	CodeExecDisabled   = "EXEC_DISABLED"
	CodeExecValidation = "EXEC_VALIDATION" // not on the whitelist, or shell syntax without a shell
	CodeExecTimeout    = "EXEC_TIMEOUT"    // killed at exec.timeout; exit code 124
	CodeExecFailed     = "EXEC_FAILED"     // non-zero exit, or it could not start
	CodeIO             = "IO_ERROR"        // the operating system failed the operation
	CodeCanceled       = "CANCELED"
	CodeSandboxError   = "SANDBOX_ERROR" // the sandbox itself failed (a container died mid-operation)
	CodeInternal       = "INTERNAL_ERROR"
)

// Error is a failed operation: a code for programs and a message for people
// (and models) to read.
type Error struct {
	Code    string
	Message string
	// Detail, if set, is more for the model to read, in lines (the lines of
	// a file closest to an edit's SEARCH): printed as a block, not escaped
	// onto the message's line.
	Detail string
	Err    error // the underlying error, if any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error; an error of another type becomes
// INTERNAL_ERROR (or CANCELED for a cancelled context).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeCanceled, Message: err.Error(), Err: err}
	}
	return &Error{Code: CodeInternal, Message: err.Error(), Err: err}
}

// Sandbox runs file operations against one repository. Implementations must
// be safe for concurrent use. Paths are relative to the repository root, as
// the model wrote them; results name them relative to the root, cleaned.
type Sandbox interface {
	// Open reads a text file.
	Open(ctx context.Context, path string) (*File, error)
	// Write creates or replaces a file atomically.
	Write(ctx context.Context, path string, content []byte) (*WriteResult, error)
	// Search looks for a literal string, or a regular expression, in the
	// repository's text files (see Workspace.Search).
	Search(ctx context.Context, q parser.Query) (*SearchResult, error)
	// Edit applies an edit's SEARCH/REPLACE blocks (package edit) to a
	// file, all or none, atomically.
	Edit(ctx context.Context, path string, body []byte) (*EditResult, error)
	// List lists a directory ("" or "." the root): one level of it, or
	// with recursive everything under it.
	List(ctx context.Context, path string, recursive bool) (*ListResult, error)
	// Delete removes a file, a symbolic link (not what it points to) or an
	// empty directory, under the rules of a write.
	Delete(ctx context.Context, path string) (*DeleteResult, error)
	// Move renames src to dst, under the rules of a write for both, making
	// missing directories before dst; an existing dst is replaced only
	// with Options.Overwrite (and never a directory).
	Move(ctx context.Context, src, dst string) (*MoveResult, error)
	// Exec runs a command line; sandboxes that cannot answer EXEC_DISABLED.
	Exec(ctx context.Context, command string) (*ExecResult, error)
	// Resolve returns the repository-relative path that path names once
	// links, ".", ".." and "//" are resolved, with the rules of open and
	// write (an excluded or escaping path is an error). The last component
	// and missing directories before it may not exist yet.
	Resolve(ctx context.Context, path string) (string, error)
	// Close releases the sandbox's resources.
	Close() error
}

// File is the result of Open.
type File struct {
	Path    string // cleaned, relative to the repository root
	Content []byte
	// Lines, when Options.Lines asked for a range, is the range read and
	// the file's line count.
	Lines *Lines `json:",omitempty"`
}

// Lines is a range of lines of a file, 1-based and inclusive; End 0 means
// the last line. Total, in a result, is how many lines the file has.
type Lines struct {
	Start int `json:"start"`
	End   int `json:"end,omitempty"`
	Total int `json:"total,omitempty"`
}

// WriteResult is the result of Write.
type WriteResult struct {
	Path    string // cleaned, relative to the repository root
	Created bool   // false: an existing file was replaced
	Bytes   int64
	// HostTool is the pattern of Limits.HostToolFiles the file matches:
	// a file tools on the host run or obey, for the user to review.
	HostTool string `json:",omitempty"`
}

// EditResult is the result of Edit.
type EditResult struct {
	Path    string // cleaned, relative to the repository root
	Applied int    // blocks applied: all of them
	Loose   []int  `json:",omitempty"` // the blocks (1-based) that matched only ignoring white space at the ends of lines
	// Replaced is, for each block opened with <<<<<<< SEARCH ALL, the
	// places it replaced.
	Replaced []edit.Replaced `json:",omitempty"`
	Bytes    int64           // the file's size after the edit
	Diff     string          // a unified diff of the change, capped at MaxDiffLines
	// DiffTruncated says that the diff was cut at MaxDiffLines.
	DiffTruncated bool `json:",omitempty"`
	// Content is the file after the edit, and Base the SHA-256 (hex) of
	// the file it was made from: set only when Options.DryRun asked not to
	// write (a policy decides on the content first).
	Content []byte `json:",omitempty"`
	Base    string `json:",omitempty"`
	// HostTool is as WriteResult's.
	HostTool string `json:",omitempty"`
}

// DeleteResult is the result of Delete.
type DeleteResult struct {
	Path string // cleaned, relative to the repository root
	Kind string // file, link, dir or other (a FIFO, a socket)
	// Bytes is a file's size.
	Bytes int64 `json:",omitempty"`
	// HostTool is as WriteResult's.
	HostTool string `json:",omitempty"`
}

// MoveResult is the result of Move.
type MoveResult struct {
	From, To string // cleaned, relative to the repository root
	Kind     string // file, link, dir or other
	// Replaced says that an existing file at To was replaced
	// (Options.Overwrite).
	Replaced bool `json:",omitempty"`
	// Entries is how many entries a directory held, at every level
	// (each checked as if written where it lands).
	Entries int `json:",omitempty"`
	// HostTool is the pattern of Limits.HostToolFiles that From or To
	// (or an entry under a directory moved) matches.
	HostTool string `json:",omitempty"`
}

// MaxDiffLines caps the diff of an EditResult (package edit's cap).
const MaxDiffLines = 200

// Action is "CREATED" or "UPDATED".
func (w *WriteResult) Action() string {
	if w.Created {
		return "CREATED"
	}
	return "UPDATED"
}

// SearchResult is the result of Search.
type SearchResult struct {
	Query string // the argument, as written (for display)
	// Text is what was searched for: the query without its quotes, scope
	// and -C; "re:PATTERN" for a regular expression.
	Text string `json:",omitempty"`
	// Context is the lines of context asked for around each match (-C N).
	Context int `json:",omitempty"`

	Matches []Match // at most Limits.MaxSearchResults, in path then line order
	Total   int     // every matching line, including those not listed
	Files   int     // files with at least one match
	// Scope is the glob the search was restricted to ("" for all).
	Scope string `json:",omitempty"`
	// Files left out, counted: over security.max_file_size, binary, and
	// .gitignored (an ignored directory counts once).
	SkippedLarge  int `json:",omitempty"`
	SkippedBinary int `json:",omitempty"`
	Ignored       int `json:",omitempty"`
	// Partial, if set, says why the search stopped before it had looked
	// at every file (search.timeout); the counts cover what it looked at.
	Partial string `json:",omitempty"`
	// MatchedFiles lists every file with a match (at most MaxMatchedFiles),
	// when Options.ListFiles asked for it.
	MatchedFiles []string `json:",omitempty"`
}

// MaxMatchedFiles bounds SearchResult.MatchedFiles.
const MaxMatchedFiles = 100000

// Options are what a caller may ask of one operation beyond its argument.
// They travel in the context (WithOptions), so that every sandbox passes
// them on to where the operation runs.
type Options struct {
	// Expect, for open and write: the repository-relative path, as Resolve
	// gave it, that the operation must touch. If the path resolves
	// elsewhere when the operation runs (the tree changed since it was
	// resolved and decided on), it is refused with PATH_SECURITY and
	// nothing is read or written.
	Expect string `json:"expect,omitempty"`
	// Skip, for search: repository-relative files left out, their lines
	// neither listed nor counted.
	Skip []string `json:"skip,omitempty"`
	// Only, for search, if not empty: the repository-relative files
	// searched; every other is left out, neither listed nor counted.
	Only []string `json:"only,omitempty"`
	// ListFiles, for search: fill SearchResult.MatchedFiles.
	ListFiles bool `json:"list_files,omitempty"`
	// Lines, for open: read only this range of lines; the size limit is
	// then on what is returned, not on the file.
	Lines *Lines `json:"lines,omitempty"`
	// DryRun, for edit: compute the result, with its Content and Base,
	// and write nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Base, for edit: the SHA-256 (hex) the file must have, the one a dry
	// run was made from; otherwise it changed since it was decided on, and
	// the edit is refused with PATH_SECURITY.
	Base string `json:"base,omitempty"`
	// Blocks, for edit: the SEARCH/REPLACE blocks, given as such by a front
	// end that does not speak the command language; the body is then
	// unused. A block must search for at least one line.
	Blocks []edit.Block `json:"blocks,omitempty"`
	// Timeout, for exec: a limit shorter than exec.timeout; a longer one
	// is exec.timeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Overwrite, for move: replace what is at the destination (a file or
	// a link; never a directory).
	Overwrite bool `json:"overwrite,omitempty"`
	// ExpectTo, for move: the destination as Resolve gave it, which the
	// move must land on (as Expect is for the source).
	ExpectTo string `json:"expect_to,omitempty"`
	// Entry, for Resolve: do not follow a link in the last component (a
	// delete or a move touches the link itself).
	Entry bool `json:"entry,omitempty"`
	// Recorder, for write, edit, delete and move in a Workspace of this
	// process: journal each change before making it (record.go). It does
	// not travel to an agent.
	Recorder Recorder `json:"-"`
	// Force, for Restore: put the path back whatever it holds now (the
	// user's undo --force; never a model's). It does not travel to an
	// agent.
	Force bool `json:"-"`
}

// IsZero reports whether o asks for nothing.
func (o Options) IsZero() bool {
	return o.Expect == "" && len(o.Skip) == 0 && len(o.Only) == 0 && !o.ListFiles && !o.DryRun && o.Base == "" && o.Lines == nil &&
		o.Blocks == nil && o.Timeout == 0 && !o.Overwrite && o.ExpectTo == "" && !o.Entry && o.Recorder == nil && !o.Force
}

type optionsKey struct{}

// WithOptions returns a context carrying o.
func WithOptions(ctx context.Context, o Options) context.Context {
	return context.WithValue(ctx, optionsKey{}, o)
}

// OptionsFrom returns the context's Options, or none.
func OptionsFrom(ctx context.Context) Options {
	o, _ := ctx.Value(optionsKey{}).(Options)
	return o
}

// Truncated reports whether more lines matched than are listed.
func (s *SearchResult) Truncated() bool { return s.Total > len(s.Matches) }

// SearchLine is one line of a search's result as grep prints it with
// context: a matching line, or a line of context around one.
type SearchLine struct {
	Path  string
	Line  int
	Text  string
	Match bool // a matching line; else a line of context
	// Break is set on the first line of a group of lines that does not
	// follow on from the line before (grep's "--"), when the search has
	// context.
	Break bool
}

// Lines returns the lines of the result in order, as grep -C prints them:
// each line once (the context of matches close together merges), and a
// listed match always as a match, even where it is another's context too.
func (s *SearchResult) Lines() iter.Seq[SearchLine] {
	return func(yield func(SearchLine) bool) {
		grouped := false
		for _, m := range s.Matches {
			grouped = grouped || len(m.Before) > 0 || len(m.After) > 0
		}
		lastPath, lastLine := "", 0
		put := func(path string, n int, text string, match bool) bool {
			if path == lastPath && n <= lastLine {
				return true // shown already
			}
			brk := grouped && lastPath != "" && (path != lastPath || n > lastLine+1)
			lastPath, lastLine = path, n
			return yield(SearchLine{Path: path, Line: n, Text: text, Match: match, Break: brk})
		}
		for i, m := range s.Matches {
			for j, b := range m.Before {
				if !put(m.Path, m.Line-len(m.Before)+j, b, false) {
					return
				}
			}
			if !put(m.Path, m.Line, m.Text, true) {
				return
			}
			// The context stops where the next match of the file is: that
			// line is shown as a match, with its own context after it.
			next := 0
			if i+1 < len(s.Matches) && s.Matches[i+1].Path == m.Path {
				next = s.Matches[i+1].Line
			}
			for j, a := range m.After {
				n := m.Line + 1 + j
				if next > 0 && n >= next {
					break
				}
				if !put(m.Path, n, a, false) {
					return
				}
			}
		}
	}
}

// Match is one matching line.
type Match struct {
	Path string
	Line int
	Text string // the line, without its line ending, cut to Limits.MaxLineLength
	// Before and After are the lines around it that a search with context
	// (" -C N") asked for, cut the same way.
	Before []string `json:",omitempty"`
	After  []string `json:",omitempty"`
}

// Info describes a path, as Stat returns it.
type Info struct {
	Path  string      `json:"path"` // cleaned, relative to the repository root
	IsDir bool        `json:"is_dir,omitempty"`
	Size  int64       `json:"size"`
	Mode  fs.FileMode `json:"mode"`
}

// ExecResult is the result of Exec.
type ExecResult struct {
	ExitCode int
	Duration time.Duration
	Output   []byte
	Changes  []Change // what the command changed in its copy of the repository, and what became of it
	// Omitted counts, by action, the changes left out of Changes, which
	// lists at most MaxListedChanges (refusals first).
	Omitted map[string]int
	// Network is every connection the command asked the egress proxy for
	// (exec.network: allowlist), in the order they ended.
	Network []NetConn
}

// NetConn is one connection a command asked the egress proxy for.
type NetConn struct {
	Host    string `json:"host"` // as the command named it
	Port    int    `json:"port"`
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"` // why it was refused, or failed once allowed
	Addr    string `json:"addr,omitempty"`   // the address connected to, when allowed
	// Sent and Received count the bytes to the destination and from it.
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
}

// Destination is HOST:PORT as the command named it.
func (c NetConn) Destination() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// String is the connection as the audit log's Network has it, a line:
// "allowed HOST:PORT (ADDR) sent N received M" or "refused HOST:PORT:
// REASON".
func (c NetConn) String() string {
	hp := c.Destination()
	if !c.Allowed {
		return "refused " + hp + ": " + c.Reason
	}
	s := fmt.Sprintf("allowed %s (%s) sent %d received %d", hp, c.Addr, c.Sent, c.Received)
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	return s
}

// MaxListedChanges is how many changes an ExecResult lists.
const MaxListedChanges = 1000

// ListChanges returns the changes an ExecResult lists, and the count by
// action of those left out: all of them up to MaxListedChanges; past that,
// the refusals first, then the rest, in path order.
func ListChanges(cs []Change) ([]Change, map[string]int) {
	if len(cs) <= MaxListedChanges {
		return cs, nil
	}
	keep := make([]Change, 0, MaxListedChanges)
	for pass := range 2 {
		for _, c := range cs {
			if (c.Action == ChangeRefused) == (pass == 0) && len(keep) < MaxListedChanges {
				keep = append(keep, c)
			}
		}
	}
	listed := map[Change]bool{}
	for _, c := range keep {
		listed[c] = true
	}
	omitted := map[string]int{}
	for _, c := range cs {
		if !listed[c] {
			omitted[c.Action]++
		}
	}
	slices.SortStableFunc(keep, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return keep, omitted
}

// Limits are the rules a Workspace enforces. The zero value of a field
// means its default.
type Limits struct {
	MaxFileSize      int64    // largest file Open reads or Search scans; default 1 MiB
	MaxWriteSize     int64    // largest content Write accepts; default 100 KiB
	Excluded         []string // glob patterns; default DefaultExcluded
	WriteProtected   []string // repository-relative paths (links resolved) Write refuses, and everything under them
	Protected        []FileID // files and directories Write refuses by identity, whatever their name: the object, and for a directory everything in it
	MaxSearchResults int      // matching lines listed; default 100
	MaxLineLength    int      // longest line listed by Search, in bytes; default 200
	MaxListEntries   int      // entries a List lists; default 1000
	// SearchTimeout is how long a search may run before it stops and
	// reports a partial result; 0 means no limit.
	SearchTimeout time.Duration
	// HostToolFiles are glob patterns (Excluded's language) of the files
	// tools on the host run or obey without being asked to run the
	// repository's code: a write or an exec change to one is marked with
	// the pattern (WriteResult.HostTool), or refused with
	// HostToolFilesDeny. nil means DefaultHostToolFiles; empty, none.
	HostToolFiles     []string
	HostToolFilesDeny bool
}

// Defaults of Limits.
const (
	DefaultMaxFileSize      = 1 << 20
	DefaultMaxWriteSize     = 100 << 10
	DefaultMaxSearchResults = 100
	DefaultMaxLineLength    = 200
)

// DefaultExcluded is the default of Limits.Excluded: the repository's git
// directory and the usual credential files (the list of the protect-secrets
// guest) and directories.
var DefaultExcluded = []string{
	".git",
	".env", ".env.*", "*.env", // dotenv files, .env.local, prod.env
	"*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", // keys and key stores
	"id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", // SSH keys
	".ssh", ".aws", ".gnupg", // credential directories, for a root that is a home directory
	".netrc", ".npmrc", ".pypirc", ".htpasswd", // tokens and passwords of tools
	"credentials", "credentials.json", "*.tfstate", "secrets.yaml", "secrets.yml",
}

// DefaultHostToolFiles is the default of Limits.HostToolFiles: files that
// a tool on the host runs, or obeys to run something, when the user does
// something routine (opens the folder in an editor, enters the directory,
// commits, runs git, pushes), not when they choose to run the repository's
// code. A Makefile, a package.json's scripts or a test are code the user
// runs knowingly, as they run a <write>n source file, and are not listed.
var DefaultHostToolFiles = []string{
	".vscode/tasks.json", ".vscode/settings.json", ".vscode/launch.json", // VS Code: tasks that run on folder open, settings naming interpreters and shells
	".devcontainer", ".devcontainer.json", // dev containers: postCreateCommand and friends
	".github/workflows", ".github/actions", ".gitlab-ci.yml", // CI, with the repository's secrets
	".envrc",                            // direnv: run on entering the directory (once allowed)
	".husky", ".pre-commit-config.yaml", // hooks installed by tools, run on commit
	".gitmodules", ".gitattributes", ".lfsconfig", // git: submodule URLs, filter and diff drivers, LFS endpoints
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxWriteSize <= 0 {
		l.MaxWriteSize = DefaultMaxWriteSize
	}
	if l.Excluded == nil {
		l.Excluded = DefaultExcluded
	}
	if l.HostToolFiles == nil {
		l.HostToolFiles = DefaultHostToolFiles
	}
	if l.MaxSearchResults <= 0 {
		l.MaxSearchResults = DefaultMaxSearchResults
	}
	if l.MaxLineLength <= 0 {
		l.MaxLineLength = DefaultMaxLineLength
	}
	if l.MaxListEntries <= 0 {
		l.MaxListEntries = DefaultMaxListEntries
	}
	return l
}

// Timing is what a sandbox reports about how it ran an operation, for the
// audit log. A caller that wants it puts one in the context with
// WithTiming; sandboxes fill what they know.
type Timing struct {
	Wait      time.Duration // waiting for a container
	Container string        // the container that ran the operation
	Pooled    bool
}

type timingKey struct{}

// WithTiming returns a context carrying a new Timing, and the Timing.
func WithTiming(ctx context.Context) (context.Context, *Timing) {
	t := &Timing{}
	return context.WithValue(ctx, timingKey{}, t), t
}

// TimingFrom returns the context's Timing, or a throwaway one.
func TimingFrom(ctx context.Context) *Timing {
	if t, ok := ctx.Value(timingKey{}).(*Timing); ok {
		return t
	}
	return &Timing{}
}
