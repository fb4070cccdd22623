// Package whitelist decides what an <exec> may start, whatever runs it
// (a Docker container today; any backend that runs a command line): the
// line is parsed as argument vectors, never as a string prefix (Parse),
// each must begin with an entry of exec.whitelist, and a program whose
// arguments start another (find -exec, xargs, env, make, go, git...) or
// write files has that checked in turn (programs.go). CheckCommand is all
// of it at once.
package whitelist

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// A command line is checked as argument vectors, never as a string prefix,
// so that "ls && rm -rf x" cannot pass as a whitelisted "ls".
//
// Without a shell (the default) a command is one argument vector: words
// separated by blanks, with '...' and "..." quoting and backslash escapes,
// and no expansion of any kind; shell operators are refused, since there is
// no shell to give them meaning. With exec.shell, the command may chain
// simple commands with |, &&, || and ;, each of which must pass the
// whitelist, and it runs under /bin/sh -c. Redirections, background jobs,
// subshells and command substitution are refused in both modes.
//
// With a shell, a word the shell expands after the check ($VAR, an unquoted
// *, ?, [, ~ or {a,b}) is marked open: its value is not known when the
// command is checked. An open word matches no whitelist word, and a program
// whose arguments decide what it starts (see rules) refuses one.

// command is a parsed command line: its simple commands, in order.
type Command []Simple

// simple is one simple command: its argument vector and, for each word
// whose value is not known when the command is checked, why (open[i] is
// empty for a known word). more, when set, says why words that are not
// known may follow the last one (xargs appends its input).
type Simple struct {
	Argv []string
	open []string
	more string
}

func (s Simple) openAt(i int) string {
	if i < len(s.open) {
		return s.open[i]
	}
	return ""
}

// known returns the words before the first open one.
func (s Simple) known() []string {
	for i := range s.Argv {
		if s.openAt(i) != "" {
			return s.Argv[:i]
		}
	}
	return s.Argv
}

// operators the tokenizer recognises, longest first.
var operators = []string{"&&", "||", ">>", "2>", "|", ";", "&", ">", "<", "(", ")"}

// chaining operators allowed with a shell.
var chaining = map[string]bool{"&&": true, "||": true, "|": true, ";": true}

const expandedByTheShell = "the shell expands it after the check: quote it, '...'"

// parseCommand splits line into simple commands.
func Parse(line string, shell bool) (Command, error) {
	if !utf8.ValidString(line) {
		return nil, sandbox.Errorf(sandbox.CodeExecValidation, "the command is not valid UTF-8")
	}
	if strings.ContainsAny(line, "\x00\n\r") {
		return nil, sandbox.Errorf(sandbox.CodeExecValidation, "the command holds a NUL byte or a line break")
	}
	var cmds Command
	var cur Simple
	var word strings.Builder
	inWord := false
	// What the shell would expand in the current word (exec.shell only):
	// expands is set by $ and unquoted glob characters and ~; braces and
	// separators by unquoted {, } and , or .. (bash's brace expansion).
	expands, braceOpen, braceSep, braceClose := false, false, false, false
	flush := func() {
		if inWord {
			open := ""
			if shell && (expands || braceOpen && braceSep && braceClose) {
				open = expandedByTheShell
			}
			cur.Argv = append(cur.Argv, word.String())
			cur.open = append(cur.open, open)
			word.Reset()
			inWord = false
		}
		expands, braceOpen, braceSep, braceClose = false, false, false, false
	}
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
			i++
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, sandbox.Errorf(sandbox.CodeExecValidation, "unterminated ' quote")
			}
			word.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			i++
			inWord = true
			for {
				if i >= len(line) {
					return nil, sandbox.Errorf(sandbox.CodeExecValidation, "unterminated \" quote")
				}
				d := line[i]
				if d == '"' {
					i++
					break
				}
				if d == '`' || (d == '$' && i+1 < len(line) && line[i+1] == '(') {
					return nil, substitution()
				}
				if d == '$' {
					expands = true
				}
				if d == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
					d = line[i]
				}
				word.WriteByte(d)
				i++
			}
		case c == '\\':
			if i+1 < len(line) {
				word.WriteByte(line[i+1])
				inWord = true
			}
			i += 2
		case c == '`' || (c == '$' && i+1 < len(line) && (line[i+1] == '(' || line[i+1] == '\'')):
			return nil, substitution()
		default:
			op := ""
			for _, o := range operators {
				if strings.HasPrefix(line[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				switch c {
				case '$', '*', '?', '[', '~':
					expands = true
				case '{':
					braceOpen = true
				case '}':
					braceClose = true
				case ',':
					braceSep = true
				case '.':
					braceSep = braceSep || strings.HasPrefix(line[i:], "..")
				}
				word.WriteByte(c)
				inWord = true
				i++
				continue
			}
			flush()
			if !chaining[op] {
				return nil, sandbox.Errorf(sandbox.CodeExecValidation, "%q is not allowed: no redirections, background jobs or subshells; commands run in the repository and print to the output", op)
			}
			if !shell {
				return nil, sandbox.Errorf(sandbox.CodeExecValidation, "%q needs a shell, and commands run without one (exec.shell: false); run one command at a time", op)
			}
			if len(cur.Argv) == 0 {
				return nil, sandbox.Errorf(sandbox.CodeExecValidation, "%q with no command before it", op)
			}
			cmds = append(cmds, cur)
			cur = Simple{}
			i += len(op)
		}
	}
	flush()
	if len(cur.Argv) == 0 {
		if len(cmds) == 0 {
			return nil, sandbox.Errorf(sandbox.CodeExecValidation, "empty command")
		}
		return nil, sandbox.Errorf(sandbox.CodeExecValidation, "the command ends with an operator")
	}
	return append(cmds, cur), nil
}

func substitution() error {
	return sandbox.Errorf(sandbox.CodeExecValidation, "command substitution ($(...), `...`) is not allowed")
}

// CheckCommand checks a command line as <exec> does before anything runs:
// it is parsed (with shell, as a chain of commands), and each command, and
// what its arguments make it start, must pass the whitelist (writable is
// exec.writable). It returns the program each command of the line names,
// in order, for a caller that asks whether the image has them.
func CheckCommand(line string, whitelist []string, shell, writable bool) ([]string, error) {
	cmd, err := Parse(line, shell)
	if err != nil {
		return nil, err
	}
	if err := New(whitelist).Check(cmd, writable); err != nil {
		return nil, err
	}
	programs := make([]string, len(cmd))
	for i, s := range cmd {
		programs[i] = s.Argv[0]
	}
	return programs, nil
}

// List is a whitelist: argument-vector prefixes; "*" allows anything.
type List [][]string

// New is the whitelist of entries (exec.whitelist): each an argument
// vector's first words, separated by blanks, or "*".
func New(entries []string) List {
	var w List
	for _, e := range entries {
		if f := strings.Fields(e); len(f) > 0 {
			w = append(w, f)
		}
	}
	return w
}

// Programs are the programs w's entries start, each once, in order: an
// entry's first word ("go" of "go test"), "*" left out.
func (w List) Programs() []string {
	var out []string
	for _, e := range w {
		if e[0] != "*" && !slices.Contains(out, e[0]) {
			out = append(out, e[0])
		}
	}
	return out
}

// anything reports whether w holds "*", which allows any command and turns
// every check of the arguments off.
func (w List) anything() bool {
	for _, e := range w {
		if len(e) == 1 && e[0] == "*" {
			return true
		}
	}
	return false
}

// Check returns nil if every simple command of c passes: it starts with an
// entry of the whitelist, and the programs its arguments make it start pass
// in turn (rules); writable is exec.writable, without which the arguments
// that make a program write files are refused too.
func (w List) Check(c Command, writable bool) error {
	if w.anything() {
		return nil
	}
	for _, s := range c {
		if err := w.checkSimple(s, "", writable); err != nil {
			return sandbox.Errorf(sandbox.CodeExecValidation, "%s", err)
		}
	}
	return nil
}

// checkSimple checks one simple command; by names what starts it ("find
// -exec"), empty for a command of the line itself.
func (w List) checkSimple(s Simple, by string, writable bool) error {
	line := strings.Join(s.Argv, " ")
	known := s.known()
	if !w.allows(known) {
		msg := fmt.Sprintf("%q is not on the whitelist (exec.whitelist: %s)", line, w)
		if by != "" {
			msg = fmt.Sprintf("%s starts %q, which is not on the whitelist (exec.whitelist: %s)", by, line, w)
		}
		if len(known) < len(s.Argv) {
			msg += fmt.Sprintf(": %q is not known when the command is checked (%s)", s.Argv[len(known)], s.openAt(len(known)))
		}
		return errors.New(msg)
	}
	fail := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		if by != "" {
			msg = fmt.Sprintf("%s starts %q: %s", by, line, msg)
		}
		return errors.New(msg)
	}
	name, shown := ProgramName(s.Argv[0]), path.Base(s.Argv[0])
	if why, ok := refused[name]; ok {
		return fail("%s %s; it is refused even when listed", shown, why)
	}
	r, ok := rules[name]
	if !ok {
		return nil
	}
	for i := range s.Argv {
		if why := s.openAt(i); why != "" {
			return fail("%s's arguments decide what it starts or writes, and %q is not known when the command is checked (%s)", shown, s.Argv[i], why)
		}
	}
	if s.more != "" {
		return fail("%s's arguments decide what it starts or writes, and %s", shown, s.more)
	}
	starts, err := r(s.Argv, writable)
	if err != nil {
		return fail("%v", err)
	}
	for _, n := range starts {
		if err := w.checkSimple(n.Simple, n.by, writable); err != nil {
			return err
		}
	}
	return nil
}

func (w List) allows(argv []string) bool {
	for _, entry := range w {
		if len(entry) == 1 && entry[0] == "*" {
			return true
		}
		if len(argv) < len(entry) {
			continue
		}
		ok := true
		for i, word := range entry {
			if argv[i] != word {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (w List) String() string {
	if len(w) == 0 {
		return "empty"
	}
	var s []string
	for _, e := range w {
		s = append(s, strings.Join(e, " "))
	}
	return fmt.Sprintf("%q", s)
}
