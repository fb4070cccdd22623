package parser

import (
	"fmt"
	"strconv"
	"strings"
)

// Args is a command's argument in its parts: what the runner, the
// sandboxes and the policies take as it is. The parser makes it once for
// each well-formed command (Command.Args), and a front end that does not
// write the command language (an MCP tool) makes it from its own input.
// Only the fields of the command's kind are set.
type Args struct {
	// Path, for open, write, edit, delete and list: the path, without
	// an open's range or a list's "/**" ("." for <list> alone).
	Path string
	// Lines, for open: the range of PATH:N-M, or nil for the whole file.
	Lines *Range
	// Recursive, for list: PATH/** lists everything under PATH.
	Recursive bool
	// Query, for search.
	Query Query
	// Move, for move.
	Move MoveArgs
	// Checkpoint, for diff and undo: N of <diff N> and <undo N>, or nil
	// when none is given (<diff PATH> gives Path).
	Checkpoint *int
}

// ArgError is the error of an argument that does not read as its kind's:
// a range, a search's -C, a move's paths, a checkpoint's number. Its
// message is for the model: what is wrong, and what to write.
type ArgError struct {
	Kind Kind
	Msg  string
}

func (e *ArgError) Error() string { return e.Msg }

// CommandOf is the command of kind kind with the argument arg, in its
// parts as the parser would read them: a command a front end makes from
// the command language's text.
func CommandOf(kind Kind, arg string) Command {
	c := Command{Kind: kind, Arg: arg}
	c.Args, c.ArgErr = ParseArgs(kind, arg)
	return c
}

// ParseArgs reads arg as the argument of a command of kind kind. A kind
// whose argument has no parts (write, edit, delete: a path; exec: a
// command line) gives it as it is.
func ParseArgs(kind Kind, arg string) (Args, error) {
	var a Args
	var err error
	switch kind {
	case Open:
		a.Path, a.Lines, err = ParseRange(arg)
	case Write, Edit, Delete:
		a.Path = arg
	case List:
		a.Path, a.Recursive = ParseList(arg)
	case Search:
		a.Query, err = ParseSearch(arg)
	case Move:
		a.Move, err = ParseMove(arg)
	case Diff:
		if n, cerr := strconv.Atoi(arg); cerr == nil && n > 0 {
			a.Checkpoint = &n
		} else {
			a.Path = arg
		}
	case Undo:
		if arg != "" {
			n, cerr := strconv.Atoi(arg)
			if cerr != nil || n < 0 {
				err = fmt.Errorf("<undo N> takes a checkpoint's number, not %q; <undo> alone takes back the previous one", arg)
			}
			a.Checkpoint = &n
		}
	}
	if err != nil {
		return Args{}, &ArgError{Kind: kind, Msg: err.Error()}
	}
	return a, nil
}

// Range is a range of lines, numbered from 1: Start to End, End 0 for
// the rest of the file.
type Range struct{ Start, End int }

// String is "120-180", "120-" or "120".
func (r Range) String() string {
	switch {
	case r.End == r.Start:
		return strconv.Itoa(r.Start)
	case r.End == 0:
		return strconv.Itoa(r.Start) + "-"
	}
	return fmt.Sprintf("%d-%d", r.Start, r.End)
}

// ParseRange splits "flag.go:120-180" into the path and the range of lines
// its suffix names: ":N-M" (lines N to M), ":N-" (N to the end) or ":N"
// (line N alone), N and M from 1. A path without such a suffix comes back
// whole, with a nil range. The suffix is always a range: a file whose name
// itself ends so is opened with a range after its name
// ("notes:1-2:1-" is all of the file "notes:1-2").
func ParseRange(arg string) (string, *Range, error) {
	i := strings.LastIndexByte(arg, ':')
	if i <= 0 {
		return arg, nil, nil
	}
	spec := arg[i+1:]
	if spec == "" || strings.Trim(spec, "0123456789-") != "" || !strings.ContainsAny(spec[:1], "0123456789") {
		return arg, nil, nil
	}
	a, b, dash := strings.Cut(spec, "-")
	start, err := strconv.Atoi(a)
	if err != nil || start < 1 {
		return arg, nil, fmt.Errorf("%q: lines are numbered from 1 (write PATH:N-M, PATH:N- or PATH:N)", spec)
	}
	r := &Range{Start: start, End: start}
	if dash {
		r.End = 0
		if b != "" {
			end, err := strconv.Atoi(b)
			if err != nil || end < start {
				return arg, nil, fmt.Errorf("%q: the range must be N-M with M at least N (or N- for the rest of the file)", spec)
			}
			r.End = end
		}
	}
	return arg[:i], r, nil
}

// ParseList splits a list's argument into the directory and whether the
// listing is recursive: "src/**" (or "**") lists everything under src,
// "src" one level of it, "" the root.
func ParseList(arg string) (string, bool) {
	switch {
	case arg == "**":
		return ".", true
	case strings.HasSuffix(arg, "/**"):
		return strings.TrimSuffix(arg, "/**"), true
	case arg == "":
		return ".", false
	}
	return arg, false
}
