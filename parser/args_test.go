package parser

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRangeSplitsTheSuffixOffThePath(t *testing.T) {
	for _, c := range []struct {
		arg, path string
		lines     *Range
		bad       bool
	}{
		{"flag.go", "flag.go", nil, false},
		{"flag.go:120-180", "flag.go", &Range{Start: 120, End: 180}, false},
		{"flag.go:120-", "flag.go", &Range{Start: 120}, false},
		{"flag.go:7", "flag.go", &Range{Start: 7, End: 7}, false},
		{"notes:1-2:1-", "notes:1-2", &Range{Start: 1}, false},
		{"a:b", "a:b", nil, false},
		{"c:/x", "c:/x", nil, false},
		{"weird:", "weird:", nil, false},
		{"x:-5", "x:-5", nil, false},
		{":3", ":3", nil, false},
		{"f.go:0-3", "", nil, true},
		{"f.go:9-3", "", nil, true},
		{"f.go:1-2-3", "", nil, true},
	} {
		path, lines, err := ParseRange(c.arg)
		if c.bad {
			if err == nil {
				t.Errorf("%q: no error", c.arg)
			}
			continue
		}
		if err != nil || path != c.path || (lines == nil) != (c.lines == nil) || lines != nil && *lines != *c.lines {
			t.Errorf("%q: %q %+v %v, want %q %+v", c.arg, path, lines, err, c.path, c.lines)
		}
	}
}

// TestArgsAreReadOnceInTheirParts: each kind's argument in its parts, as
// the parser gives them with the command; an argument that does not read
// as its kind's is an ArgError that names the kind, and the command is
// still well-formed (its error is the kind's: a range, a query...).
func TestArgsAreReadOnceInTheirParts(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Args
		bad  bool
	}{
		{"<open a.go>", Args{Path: "a.go"}, false},
		{"<open a.go:3-9>", Args{Path: "a.go", Lines: &Range{Start: 3, End: 9}}, false},
		{"<open a.go:9-3>", Args{}, true},
		{"<list>", Args{Path: "."}, false},
		{"<list src>", Args{Path: "src"}, false},
		{"<list src/**>", Args{Path: "src", Recursive: true}, false},
		{"<list **>", Args{Path: ".", Recursive: true}, false},
		{"<search TODO in *.go -C 2>", Args{Query: Query{Text: "TODO", Scope: "*.go", Context: 2}}, false},
		{"<search re:^func in a.go>", Args{Query: Query{Text: "^func", Regex: true, Scope: "a.go"}}, false},
		{"<search TODO -C 21>", Args{}, true},
		{"<delete tmp.txt>", Args{Path: "tmp.txt"}, false},
		{"<move a.go b.go --overwrite>", Args{Move: MoveArgs{From: "a.go", To: "b.go", Overwrite: true}}, false},
		{"<move a.go>", Args{}, true},
		{"<diff>", Args{}, false},
		{"<diff 7>", Args{Checkpoint: ptr(7)}, false},
		{"<diff src/a.go>", Args{Path: "src/a.go"}, false},
		{"<undo>", Args{}, false},
		{"<undo 0>", Args{Checkpoint: ptr(0)}, false},
		{"<undo 3>", Args{Checkpoint: ptr(3)}, false},
		{"<undo last>", Args{}, true},
		{"<write a.go>x</write>", Args{Path: "a.go"}, false},
		{"<exec go test ./...>", Args{}, false},
	} {
		cmds := parseAll(t, strings.NewReader(c.in), Options{})
		if len(cmds) != 1 || cmds[0].Err != nil {
			t.Fatalf("%s: %+v", c.in, cmds)
		}
		cmd := cmds[0]
		var ae *ArgError
		if c.bad != (cmd.ArgErr != nil) || c.bad && (!errors.As(cmd.ArgErr, &ae) || ae.Kind != cmd.Kind) {
			t.Errorf("%s: ArgErr %v", c.in, cmd.ArgErr)
			continue
		}
		if !reflect.DeepEqual(cmd.Args, c.want) {
			t.Errorf("%s: %+v, want %+v", c.in, cmd.Args, c.want)
		}
	}
}

func ptr(n int) *int { return &n }
