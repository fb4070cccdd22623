package parser

import (
	"fmt"
	"strings"
)

// MoveArgs is a move's argument in its parts.
type MoveArgs struct {
	From, To string
	// Overwrite: " --overwrite" was written last, to replace a file at To.
	Overwrite bool
}

// OverwriteFlag, written last in a move, lets it replace a file.
const OverwriteFlag = "--overwrite"

// moveShape ends the messages about a move's argument.
const moveShape = `write <move FROM TO>, or <move FROM TO --overwrite> to replace a file at TO; quote a path that holds a space: <move "my notes.txt" notes.txt>`

// ParseMove splits a move's argument into its two paths and its flag: two
// words, each a path, or a path in double quotes taken as it is between
// them (spaces included; a quoted path cannot hold a double quote), and
// then " --overwrite" if the model asks to replace what is at the
// destination. Its errors are messages for the model.
func ParseMove(arg string) (MoveArgs, error) {
	var m MoveArgs
	var words []string
	rest := strings.TrimSpace(arg)
	for rest != "" {
		var w string
		if rest[0] == '"' {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return m, fmt.Errorf("a path opened with a double quote is not closed; %s", moveShape)
			}
			w, rest = rest[1:end+1], rest[end+2:]
			if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
				return m, fmt.Errorf("a quoted path must be followed by a space; %s", moveShape)
			}
			if w == "" {
				return m, fmt.Errorf("an empty path; %s", moveShape)
			}
			words = append(words, w)
		} else {
			i := strings.IndexAny(rest, " \t")
			if i < 0 {
				i = len(rest)
			}
			w, rest = rest[:i], rest[i:]
			if w == OverwriteFlag && strings.TrimSpace(rest) == "" && len(words) == 2 {
				m.Overwrite = true
			} else {
				words = append(words, w)
			}
		}
		rest = strings.TrimLeft(rest, " \t")
	}
	if len(words) != 2 {
		return m, fmt.Errorf("a move takes two paths, the file and where it goes, and got %d; %s", len(words), moveShape)
	}
	m.From, m.To = words[0], words[1]
	return m, nil
}

// String writes the move's argument as ParseMove reads it: a path that
// holds a space or a tab, or starts with "--", is quoted. (A path that
// starts with a double quote and holds a space cannot be written.)
func (m MoveArgs) String() string {
	q := func(p string) string {
		if p == "" || strings.ContainsAny(p, " \t") || strings.HasPrefix(p, "--") {
			return `"` + p + `"`
		}
		return p
	}
	s := q(m.From) + " " + q(m.To)
	if m.Overwrite {
		s += " " + OverwriteFlag
	}
	return s
}
