package parser

import "testing"

func TestMoveArgsStringParsesBack(t *testing.T) {
	for _, m := range []MoveArgs{
		{From: "a.go", To: "b.go"},
		{From: "my notes.txt", To: "notes/to\tdo.txt", Overwrite: true},
		{From: "--overwrite", To: "x"},
	} {
		got, err := ParseMove(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMove(%q) = %+v, %v; want %+v", m.String(), got, err, m)
		}
	}
}
