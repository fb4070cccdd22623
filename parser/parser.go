// Package parser finds llm-runtime commands in a stream of model output.
//
// # The grammar
//
// Everything that is not a command is prose and is ignored. A command is one
// of
//
//	<open PATH>
//	<search QUERY>
//	<exec COMMAND>
//	<write PATH>BODY</write>
//	<write:LABEL PATH>BODY</write:LABEL>
//	<edit PATH>BODY</edit>
//	<edit:LABEL PATH>BODY</edit:LABEL>
//	<list PATH>
//	<list>
//	<delete PATH>
//	<move FROM TO>
//	<move FROM TO --overwrite>
//	<diff>, <diff PATH>, <diff N>
//	<undo>, <undo N>
//
// The tag name must be followed by at least one space or tab (but for <list>,
// which alone lists the root); the argument is
// everything from there up to the first '>', with ASCII white space trimmed
// from both ends, so paths with spaces work. Tag names match exactly and are
// case-sensitive: "<opened x>", "<Open x>" and "<open>" are prose.
//
// The argument must end on the line it starts on and is at most
// [Options.MaxArg] bytes. A newline, the end of input or an overlong argument
// before the closing '>' makes the command malformed: it is reported as a
// [Command] with Err set, so the model hears about it, and parsing resumes
// after it.
//
// A write body is every byte between the '>' of the opening tag and the
// closing tag, exactly, except that one line ending (LF or CRLF) right after
// the opening tag is dropped. Nothing inside a body is interpreted: commands
// in it are content, and no escape sequences exist. A body that must itself
// contain the text "</write>" uses a labelled write: "<write:EOF notes.md>"
// ends only at "</write:EOF>". A label is 1 to 32 ASCII letters, digits, '_'
// or '-'. A write whose closing tag never comes is malformed and nothing is
// written. An edit's body (its SEARCH/REPLACE blocks, which package edit
// reads) is delimited the same way, by </edit> or </edit:LABEL>.
//
// # Searches
//
// A search's argument has parts, which [ParseSearch] splits:
//
//	QUERY
//	QUERY in GLOB
//	QUERY -C N
//	QUERY in GLOB -C N
//
// QUERY is a literal string, or "re:PATTERN" for a regular expression.
// " in GLOB" at the end is a scope when GLOB is one word holding a "/",
// "*", "?" or "."; otherwise it is part of the query ("for k in keys"). A
// query in double quotes is taken as it is, between them: spaces at its
// ends, " in " and "-C" are then text ("  func ", "x in y.go", "-C 21").
//
// " -C N" at the very end asks for N lines of context around each match,
// N a whole number from 1 to [MaxContext]. What reads as an attempt at it
// is "-C" and a number as words of their own (the number may follow the
// -C without a space, as grep allows, and may have a sign or a decimal
// point): at the end of an unquoted or quoted query, before a final
// " in GLOB", or at the start of an unquoted query that goes on after it.
// Such a -C that is out of range, before the scope, at the start, or given
// twice is an error that says the rule and the command to write, never a
// query: "NoArgs in args.go -C 21", "NoArgs -C 1 in args.go" and
// "-C 3 NoArgs" are errors. Anything else that holds "-C" is the query:
// "make -C dir", "a -C b", "-C" alone, "-C 3" alone (no query before it),
// "x-C 3" (not a word of its own). So a query that must end in a -C and a
// number is quoted: <search "retries -C 3">. The rule errs towards errors:
// a model that meant context hears how to write it, and one that meant
// the text is told to quote it; a search that silently looks for
// "NoArgs in args.go -C 21" and finds nothing helps neither.
//
// Input is read as a stream. [Parser.Next] reads only as far as the end of the
// next command, so a caller can run each command and flush its result before
// any more input is read. Memory use is bounded by the read buffer, MaxArg and
// MaxBody, whatever the size of the input: prose is scanned and discarded, and
// the part of a write body past MaxBody is counted but not kept.
package parser

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Kind names a command.
type Kind string

// The commands of the language.
const (
	Open   Kind = "open"
	Write  Kind = "write"
	Exec   Kind = "exec"
	Search Kind = "search"
	Edit   Kind = "edit"
	List   Kind = "list"
	Delete Kind = "delete"
	Move   Kind = "move"
	Diff   Kind = "diff"
	Undo   Kind = "undo"
)

// ErrMalformed is the error of a command whose text is incomplete or invalid.
// Command.Err wraps it with the details.
var ErrMalformed = errors.New("parser: malformed command")

// Command is one command found in the input.
type Command struct {
	Kind Kind
	// Arg is the trimmed argument: a path for open, write, edit and
	// delete, two for move (ParseMove), a query for search, a command
	// line for exec. It never holds a newline.
	Arg string
	// Label is the label of a labelled write or edit ("EOF" in
	// <write:EOF x>).
	Label string
	// Body is the content of a write, or the blocks of an edit, at most
	// Options.MaxBody bytes of it.
	Body []byte
	// BodySize is the full size of the write body as the input gave it; when
	// it exceeds len(Body), the body was cut at Options.MaxBody.
	BodySize int64
	// Line is the 1-based line of the input on which the command starts.
	Line int
	// Written is set when the opening tag itself is malformed (no '>'
	// before the end of the line or input, an argument too long, a bad
	// label): the tag as the input wrote it, from its '<' to where the
	// parser stopped reading it ('>' included only when there was one),
	// without the white space at its end. A tag longer than its bytes
	// kept (MaxArg, and the kind and label) ends in "…". Tag shows it.
	Written string
	// Err is non-nil when the command is malformed; it wraps ErrMalformed and
	// says what is wrong. Such a command must not be run.
	Err error
	// Args is the argument in its parts (ParseArgs), for a well-formed
	// command; ArgErr, an *ArgError, when the argument does not read as
	// its kind's (a range, a search's -C, a move's paths): the command
	// must not be run, and the error is its kind's, not a malformed tag's.
	Args   Args
	ArgErr error
}

// Truncated reports whether the write body was longer than Options.MaxBody.
func (c Command) Truncated() bool { return c.BodySize > int64(len(c.Body)) }

// Tag is the opening tag in a canonical form, for display: "<open a.txt>",
// "<write:EOF notes.md>"; for a malformed tag, what was written of it
// (Written: "<open a.txt", with no '>' the input never had). Control
// characters and invalid UTF-8 are escaped, so the result is always one
// printable line.
func (c Command) Tag() string {
	if c.Written != "" {
		return Printable(c.Written)
	}
	name := string(c.Kind)
	if c.Label != "" {
		name += ":" + c.Label
	}
	if c.Arg == "" && bare(c.Kind) {
		return "<" + string(c.Kind) + ">"
	}
	return "<" + name + " " + Printable(c.Arg) + ">"
}

// Options bound the parser's memory. The zero value uses the defaults.
type Options struct {
	// MaxArg is the longest argument accepted, in bytes. Default 4096.
	MaxArg int
	// MaxBody is how much of a write body is kept, in bytes; the rest is
	// counted in BodySize and dropped. Default 100 KiB.
	MaxBody int64
	// BufferSize is the size of the read buffer. Default 64 KiB, minimum 64.
	BufferSize int
}

// Defaults of Options.
const (
	DefaultMaxArg     = 4096
	DefaultMaxBody    = 100 << 10
	DefaultBufferSize = 64 << 10
	maxLabel          = 32
)

// Parser reads commands from a stream. It is not safe for concurrent use.
type Parser struct {
	r    *bufio.Reader
	opts Options
	line int
	err  error // sticky read error
	// tag is the opening tag being read, from its '<', for Written: at
	// most tagMax bytes of it; cut says there were more.
	tag    []byte
	tagMax int
	cut    bool
	kept   bool // the last byte readByte read is in tag
}

// New returns a parser reading from r.
func New(r io.Reader, opts Options) *Parser {
	if opts.MaxArg <= 0 {
		opts.MaxArg = DefaultMaxArg
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	opts.BufferSize = max(opts.BufferSize, 64)
	return &Parser{r: bufio.NewReaderSize(r, opts.BufferSize), opts: opts, line: 1,
		tagMax: len("<search:") + maxLabel + 1 + opts.MaxArg}
}

// Next returns the next command. At the end of input it returns io.EOF; a
// read error of the underlying reader is returned as it is. A malformed
// command is returned with a nil error and Command.Err set.
func (p *Parser) Next() (Command, error) {
	if p.err != nil {
		return Command{}, p.err
	}
	for {
		chunk, err := p.r.ReadSlice('<')
		p.line += bytes.Count(chunk, newline)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			p.err = err
			return Command{}, err
		}
		if cmd, ok := p.command(); ok {
			if cmd.Err == nil {
				cmd.Args, cmd.ArgErr = ParseArgs(cmd.Kind, cmd.Arg)
			}
			return cmd, nil
		}
	}
}

var (
	newline = []byte{'\n'}
	lt      = []byte{'<'}
)

var kinds = []Kind{Open, Write, Exec, Search, Edit, List, Delete, Move, Diff, Undo}

// Kinds returns every kind of command, in the order of the documentation:
// what an operation can be, and so what the audit log records as its op.
func Kinds() []Kind { return []Kind{Open, Write, Edit, Delete, Move, List, Search, Exec, Diff, Undo} }

// bare says whether a command of kind k may be written without an
// argument: <list>, <diff>, <undo>.
func bare(k Kind) bool { return k == List || k == Diff || k == Undo }

// hasBody says whether commands of kind k have a body and a closing tag.
func hasBody(k Kind) bool { return k == Write || k == Edit }

// command is called just after a '<' was consumed. It reports false, having
// consumed nothing, when no command starts here.
func (p *Parser) command() (Command, bool) {
	head, _ := p.r.Peek(len("search") + 1)
	for _, k := range kinds {
		if len(head) <= len(k) || !bytes.HasPrefix(head, []byte(k)) {
			continue
		}
		p.tag, p.cut = append(append(p.tag[:0], '<'), head[:len(k)+1]...), false
		switch c := head[len(k)]; {
		case c == ' ' || c == '\t':
			p.discard(len(k) + 1)
			cmd := Command{Kind: k, Line: p.line}
			return p.finish(cmd), true
		case c == '>' && bare(k):
			p.discard(len(k) + 1) // <list> alone lists the root; <diff>, <undo>
			return Command{Kind: k, Line: p.line}, true
		case c == ':' && hasBody(k):
			p.discard(len(k) + 1)
			cmd := Command{Kind: k, Line: p.line}
			label, err := p.label(k)
			cmd.Label = label
			if err != nil {
				cmd.Err = err
				p.skipArg()
				cmd.Written = p.written()
				return cmd, true
			}
			return p.finish(cmd), true
		}
	}
	return Command{}, false
}

// finish reads the argument and, for a write, the body.
func (p *Parser) finish(cmd Command) Command {
	arg, err := p.arg()
	cmd.Arg = arg
	if err != nil {
		cmd.Err = err
		cmd.Written = p.written()
		return cmd
	}
	if hasBody(cmd.Kind) {
		cmd.Err = p.body(&cmd)
		if cmd.Err != nil {
			cmd.Body, cmd.BodySize = nil, 0
		}
	}
	return cmd
}

func (p *Parser) discard(n int) {
	b, _ := p.r.Peek(n)
	p.line += bytes.Count(b, newline)
	p.r.Discard(n)
}

// label reads the label of a write or an edit up to the space or tab
// after it.
func (p *Parser) label(k Kind) (string, error) {
	var b strings.Builder
	for {
		c, err := p.readByte()
		if err != nil {
			return b.String(), fmt.Errorf("%w: <%s:%s ends at the end of input", ErrMalformed, k, b.String())
		}
		switch {
		case c == ' ' || c == '\t':
			if b.Len() == 0 {
				return "", fmt.Errorf("%w: empty label in <%s:>; write <%s:LABEL PATH>", ErrMalformed, k, k)
			}
			return b.String(), nil
		case isLabelByte(c) && b.Len() < maxLabel:
			b.WriteByte(c)
		case isLabelByte(c):
			return "", fmt.Errorf("%w: %s label longer than %d characters", ErrMalformed, k, maxLabel)
		default:
			p.unreadByte()
			return "", fmt.Errorf("%w: %s label %q is followed by %q; a label is letters, digits, '_' or '-', then a space and the path", ErrMalformed, k, b.String(), Printable(string(c)))
		}
	}
}

func isLabelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// arg reads the argument up to and including '>'.
func (p *Parser) arg() (string, error) {
	var b []byte
	for {
		c, err := p.readByte()
		if err != nil {
			return trim(b), fmt.Errorf("%w: no '>' before the end of input", ErrMalformed)
		}
		switch c {
		case '>':
			return trim(b), nil
		case '\n':
			p.line++
			return trim(b), fmt.Errorf("%w: no '>' before the end of the line", ErrMalformed)
		}
		if len(b) >= p.opts.MaxArg {
			p.skipArg()
			return trim(b), fmt.Errorf("%w: argument longer than %d bytes", ErrMalformed, p.opts.MaxArg)
		}
		b = append(b, c)
	}
}

// readByte reads a byte of the opening tag, keeping it for Written.
func (p *Parser) readByte() (byte, error) {
	c, err := p.r.ReadByte()
	p.kept = false
	if err == nil && c != '\n' {
		if len(p.tag) < p.tagMax {
			p.tag, p.kept = append(p.tag, c), true
		} else {
			p.cut = true
		}
	}
	return c, err
}

// unreadByte unreads the byte readByte read last (label's, well within
// tagMax, so that cut need not be undone).
func (p *Parser) unreadByte() {
	p.r.UnreadByte()
	if p.kept {
		p.tag, p.kept = p.tag[:len(p.tag)-1], false
	}
}

// written is the opening tag as read so far, for Command.Written.
func (p *Parser) written() string {
	w := string(bytes.TrimRight(p.tag, " \t\r\v\f"))
	if p.cut {
		w += "…"
	}
	return w
}

// skipArg discards input up to and including the next '>' or newline.
func (p *Parser) skipArg() {
	for {
		c, err := p.readByte()
		if err != nil || c == '>' {
			return
		}
		if c == '\n' {
			p.line++
			return
		}
	}
}

func trim(b []byte) string { return string(bytes.Trim(b, " \t\r\n\v\f")) }

// body reads the body of a write or an edit, and its closing tag.
func (p *Parser) body(cmd *Command) error {
	// One line ending right after the opening tag is not content.
	if b, _ := p.r.Peek(2); len(b) > 0 && b[0] == '\n' {
		p.discard(1)
	} else if len(b) == 2 && b[0] == '\r' && b[1] == '\n' {
		p.discard(2)
	}
	closing := []byte("/" + string(cmd.Kind) + ">")
	if cmd.Label != "" {
		closing = []byte("/" + string(cmd.Kind) + ":" + cmd.Label + ">")
	}
	keep := func(b []byte) {
		cmd.BodySize += int64(len(b))
		if room := p.opts.MaxBody - int64(len(cmd.Body)); room > 0 {
			cmd.Body = append(cmd.Body, b[:min(int64(len(b)), room)]...)
		}
	}
	for {
		chunk, err := p.r.ReadSlice('<')
		p.line += bytes.Count(chunk, newline)
		if err == bufio.ErrBufferFull {
			keep(chunk)
			continue
		}
		if err != nil {
			keep(chunk)
			return fmt.Errorf("%w: no <%s before the end of input; nothing was %s", ErrMalformed, closing, map[Kind]string{Write: "written", Edit: "edited"}[cmd.Kind])
		}
		keep(chunk[:len(chunk)-1])
		if next, _ := p.r.Peek(len(closing)); bytes.Equal(next, closing) {
			p.r.Discard(len(closing))
			if cmd.Body == nil {
				cmd.Body = []byte{}
			}
			return nil
		}
		keep(lt) // chunk may have moved: Peek can refill the buffer
	}
}

// Printable returns s escaped Go-style (\t, \x00, \u0085, \u2028) so that
// it prints as one line that cannot forge output framing, drive a
// terminal or reorder how the rest of its line is displayed. It escapes
// control characters (C0, DEL, C1), invalid UTF-8, the line and paragraph
// separators U+2028 and U+2029, which some readers take for line breaks,
// and the bidirectional controls (U+061C, U+200E, U+200F, U+202A to
// U+202E, U+2066 to U+2069). Other characters, non-ASCII ones included,
// are kept as they are. The escape is for display: it is not reversible.
func Printable(s string) string {
	if printable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case !keep(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func printable(s string) bool {
	for _, r := range s {
		if !keep(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// keep reports whether Printable keeps the valid rune r as it is.
func keep(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0: // C0, DEL, C1
		return false
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return false
	case r == 0x061c || r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069: // Bidi_Control
		return false
	}
	return true
}
