package container

import (
	"fmt"
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

// command is a parsed command line: its simple commands, in order.
type command [][]string

// operators the tokenizer recognises, longest first.
var operators = []string{"&&", "||", ">>", "2>", "|", ";", "&", ">", "<", "(", ")"}

// chaining operators allowed with a shell.
var chaining = map[string]bool{"&&": true, "||": true, "|": true, ";": true}

// parseCommand splits line into simple commands.
func parseCommand(line string, shell bool) (command, error) {
	if !utf8.ValidString(line) {
		return nil, sandbox.Errorf(sandbox.CodeExecValidation, "the command is not valid UTF-8")
	}
	if strings.ContainsAny(line, "\x00\n\r") {
		return nil, sandbox.Errorf(sandbox.CodeExecValidation, "the command holds a NUL byte or a line break")
	}
	var cmds command
	var cur []string
	var word strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			cur = append(cur, word.String())
			word.Reset()
			inWord = false
		}
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
			if len(cur) == 0 {
				return nil, sandbox.Errorf(sandbox.CodeExecValidation, "%q with no command before it", op)
			}
			cmds = append(cmds, cur)
			cur = nil
			i += len(op)
		}
	}
	flush()
	if len(cur) == 0 {
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

// whitelist is a list of argument-vector prefixes; "*" allows anything.
type whitelist [][]string

func newWhitelist(entries []string) whitelist {
	var w whitelist
	for _, e := range entries {
		if f := strings.Fields(e); len(f) > 0 {
			w = append(w, f)
		}
	}
	return w
}

// check returns nil if every simple command of c starts with an entry.
func (w whitelist) check(c command) error {
	for _, argv := range c {
		if !w.allows(argv) {
			return sandbox.Errorf(sandbox.CodeExecValidation, "%q is not on the whitelist (exec.whitelist: %s)", strings.Join(argv, " "), w)
		}
	}
	return nil
}

func (w whitelist) allows(argv []string) bool {
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

func (w whitelist) String() string {
	if len(w) == 0 {
		return "empty"
	}
	var s []string
	for _, e := range w {
		s = append(s, strings.Join(e, " "))
	}
	return fmt.Sprintf("%q", s)
}
