package parser

import (
	"strings"
	"testing"
)

func TestParseMove(t *testing.T) {
	for arg, want := range map[string]MoveArgs{
		"a.go b.go":                     {From: "a.go", To: "b.go"},
		"  a.go \t b/c.go  ":            {From: "a.go", To: "b/c.go"},
		"a.go b.go --overwrite":         {From: "a.go", To: "b.go", Overwrite: true},
		`"my notes.txt" notes.txt`:      {From: "my notes.txt", To: "notes.txt"},
		`a "to do/list.md" --overwrite`: {From: "a", To: "to do/list.md", Overwrite: true},
		`"--overwrite" b`:               {From: "--overwrite", To: "b"}, // quoted: a path
		`a "--overwrite"`:               {From: "a", To: "--overwrite"},
		`x"y z"w q`:                     {From: `x"y`, To: `z"w`}, // wrong: three words, below
	} {
		got, err := ParseMove(arg)
		if arg == `x"y z"w q` {
			if err == nil {
				t.Errorf("ParseMove(%q) = %+v, want an error", arg, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseMove(%q) = %+v, %v; want %+v", arg, got, err, want)
		}
	}
	for _, arg := range []string{"", "a.go", "a b c", "--overwrite a b", "a --overwrite b", `"a b`, `"a"b c`, `"" b`, "a b --overwrite --overwrite"} {
		if got, err := ParseMove(arg); err == nil || !strings.Contains(err.Error(), "<move FROM TO>") {
			t.Errorf("ParseMove(%q) = %+v, %v; want an error that shows the form", arg, got, err)
		}
	}
}
