package edit

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// applyOne applies one block of search and replace lines (joined by "\n")
// to content.
func applyOne(t *testing.T, content, search, replace string) (*Result, error) {
	t.Helper()
	blocks, err := Parse([]byte(block(search, replace)))
	if err != nil {
		t.Fatal(err)
	}
	return Apply("f", []byte(content), blocks)
}

func TestLooseMatchGivesReplaceTheFilesIndentation(t *testing.T) {
	tests := []struct {
		name, content, search, replace, want string
	}{
		{
			name:    "four spaces for a tab, a level deeper in REPLACE",
			content: "def f(x):\n\tif x:\n\t\treturn 1\n\treturn 0\n",
			search:  "    if x:\n        return 1",
			replace: "    if x:\n        if x > 1:\n            return 2\n        return 1",
			want:    "def f(x):\n\tif x:\n\t\tif x > 1:\n\t\t\treturn 2\n\t\treturn 1\n\treturn 0\n",
		},
		{
			name:    "indentation dropped from SEARCH, REPLACE nested with spaces",
			content: "func f() {\n\tfor {\n\t\tg()\n\t}\n}\n",
			search:  "g()",
			replace: "if ok {\n    g()\n}",
			want:    "func f() {\n\tfor {\n\t\tif ok {\n\t\t\tg()\n\t\t}\n\t}\n}\n",
		},
		{
			name:    "two spaces a level for four",
			content: "class A:\n    def f(self):\n        return 1\n",
			search:  "  def f(self):\n    return 1",
			replace: "  def f(self):\n    if self:\n      return 2\n    return 1",
			want:    "class A:\n    def f(self):\n        if self:\n            return 2\n        return 1\n",
		},
		{
			name:    "tabs for spaces",
			content: "class A:\n    def f(self):\n        return 1\n",
			search:  "\tdef f(self):\n\t\treturn 1",
			replace: "\tdef f(self):\n\t\twhile True:\n\t\t\treturn 1",
			want:    "class A:\n    def f(self):\n        while True:\n            return 1\n",
		},
		{
			name:    "the file's step is its most common one",
			content: "a:\n  b:\n    c\n  d:\n    e\n",
			search:  "d:\n\te",
			replace: "d:\n\tf:\n\t\te",
			want:    "a:\n  b:\n    c\n  d:\n    f:\n      e\n",
		},
		{
			name:    "alignment after the tabs is kept where the file aligns so",
			content: "func f() {\n\t/*\n\t * one\n\t */\n}\n",
			search:  "    /*\n     * one\n     */",
			replace: "    /*\n     * one\n     * two\n     */\n    if ok {\n        g()\n    }",
			want:    "func f() {\n\t/*\n\t * one\n\t * two\n\t */\n\tif ok {\n\t\tg()\n\t}\n}\n",
		},
		{
			name:    "REPLACE indented as SEARCH lines only, in a file indented irregularly",
			content: "x\n \t a\n",
			search:  "a",
			replace: "b\nc",
			want:    "x\n \t b\n \t c\n",
		},
		{
			name:    "only trailing white space differs: REPLACE as written",
			content: "\tif x {  \n\t\ty()\n\t}\n",
			search:  "\tif x {\n\t\ty()",
			replace: "\tif x {\n    z()",
			want:    "\tif x {\n    z()\n\t}\n",
		},
		{
			name:    "blank REPLACE lines as written",
			content: "\ta\n",
			search:  "a",
			replace: "a\n  \nb",
			want:    "\ta\n  \n\tb\n",
		},
		{
			name:    "CRLF lines keep their terminators",
			content: "if x:\r\n\ty()\r\n",
			search:  "if x:\r\n    y()",
			replace: "if x:\r\n    if z:\r\n        y()",
			want:    "if x:\r\n\tif z:\r\n\t\ty()\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := applyOne(t, tt.content, tt.search, tt.replace)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Content) != tt.want {
				t.Errorf("content\n%q\nwant\n%q", res.Content, tt.want)
			}
			if !reflect.DeepEqual(res.Loose, []int{1}) {
				t.Errorf("Loose = %v, want [1]", res.Loose)
			}
			checkDiff(t, tt.content, string(res.Content), res.Diff)
		})
	}
}

func TestLooseMatchIsRefusedWhenItsIndentationCannotBeCarriedOver(t *testing.T) {
	tests := []struct {
		name, content, search, replace string
		first, last                    int
		reason                         string
	}{
		{
			name:    "SEARCH lines indented alike stand for different indentations",
			content: "\ta\n  b\n",
			search:  "a\nb",
			replace: "c\nd",
			first:   1, last: 2,
			reason: "SEARCH lines 1 and 2 are indented alike (no indentation), but the file's lines 1 and 2 are not (1 tab, and 2 spaces)",
		},
		{
			name:    "the SEARCH's levels do not shift alike",
			content: "x\n\ta\n\t\tb\n\t\t\tc\n",
			search:  "    a\n        b\n          c",
			replace: "    a\n        b\n            c",
			first:   2, last: 4,
			reason: "SEARCH line 3 is indented 10 spaces where the file's line 4 is 3 tabs",
		},
		{
			name:    "the SEARCH's levels run against the file's",
			content: "\ta\n\t\tb\n",
			search:  "        a\n    b",
			replace: "x\n  y",
			first:   1, last: 2,
			reason: "the SEARCH's levels do not follow the file's",
		},
		{
			name:    "the file indents with tabs and spaces alike",
			content: "\ta\n    b\n",
			search:  "  a\n  b",
			replace: "  a\n    c",
			first:   1, last: 2,
			reason: "SEARCH lines 1 and 2 are indented alike",
		},
		{
			name:    "no step of the SEARCH tells tabs from spaces in a file that has both",
			content: "\ta\n    b\nc\n",
			search:  "  c",
			replace: "  c\n    e",
			first:   3, last: 3,
			reason: "the file indents as many lines with tabs as with spaces (1)",
		},
		{
			name:    "a REPLACE line indented less than the file allows",
			content: "x\n",
			search:  "        x",
			replace: "y",
			first:   1, last: 1,
			reason: "REPLACE line 1 is indented no indentation, less than the file's lines allow",
		},
		{
			name:    "spaces that are not whole levels in a file indented with tabs",
			content: "if x:\n\ty()\n",
			search:  "if x:\n    y()",
			replace: "if x:\n    y(1,\n      2)",
			first:   1, last: 2,
			reason: "REPLACE line 3 is indented 6 spaces, which is not whole levels of the SEARCH's 4 spaces a level, and the file indents with tabs",
		},
		{
			name:    "a tab after a space in REPLACE",
			content: "if x:\n\ty()\n",
			search:  "if x:\n    y()",
			replace: "if x:\n  \tz()",
			first:   1, last: 2,
			reason: "REPLACE line 2 is indented with 2 spaces, then 1 tab",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := applyOne(t, tt.content, tt.search, tt.replace)
			var ie *IndentError
			if res != nil || !errors.As(err, &ie) {
				t.Fatalf("Apply = %v, %v; want an *IndentError", res, err)
			}
			if ie.Block != 1 || ie.First != tt.first || ie.Last != tt.last || !strings.Contains(ie.Reason, tt.reason) {
				t.Errorf("got block %d, lines %d-%d, reason %q; want lines %d-%d and %q", ie.Block, ie.First, ie.Last, ie.Reason, tt.first, tt.last, tt.reason)
			}
			lines := splitLines(tt.content)
			if len(ie.Closest) == 0 || ie.Closest[0].N > tt.first || ie.Closest[len(ie.Closest)-1].N < min(tt.last, len(lines)) {
				t.Errorf("Closest = %v does not show lines %d-%d", ie.Closest, tt.first, tt.last)
			}
			for _, l := range ie.Closest {
				if l.Text != text(lines[l.N-1]) {
					t.Errorf("Closest line %d is %q, the file's is %q", l.N, l.Text, lines[l.N-1])
				}
			}
		})
	}
}

func TestIndentErrorSaysWhyAndShowsTheLinesToCopy(t *testing.T) {
	content := "a\nb\n\tc\n  d\ne\n"
	_, err := Apply("f", []byte(content), []Block{{Search: []string{"a"}, Replace: []string{"A"}}, {Search: []string{"c", "d"}, Replace: []string{"x"}}})
	var ie *IndentError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v", err)
	}
	want := "edit block 2: its SEARCH matches lines 3-4 only with the white space at the ends of lines ignored, " +
		"and the file's indentation cannot be carried over to its REPLACE lines: SEARCH lines 1 and 2 are indented alike (no indentation), " +
		"but the file's lines 3 and 4 are not (1 tab, and 2 spaces). The lines (numbered as blocks 1 to 1 left the file) are:\n" +
		"     2 | b\n     3 | \tc\n     4 |   d\n     5 | e\n" +
		"Copy the SEARCH lines exactly from the file as it is now (open it again if unsure) and retry the whole edit; no block was applied."
	if err.Error() != want {
		t.Errorf("message\n%s\nwant\n%s", err, want)
	}
}

func TestStepIsTheMostCommonChangeOfIndentation(t *testing.T) {
	for _, c := range []struct {
		lines string
		want  int
	}{
		{"a\n    b\n        c\n    d\n", 4},
		{"a\n  b\n    c\n      d\n         (e,\n      f\n", 2},
		{"/*\n * a\n */\nf {\n    g\n}\n", 4},
		{"a\n b\n", 1},
		{"a\n\tb\n", 0},
		{"    a\n    b\n", 4},
		{"a\n\n  \nb\n", 0},
		{"a\n" + strings.Repeat(" ", 40) + "b\n" + strings.Repeat(" ", 42) + "c\n", 2},
		{strings.Repeat(" ", 1000) + "a\n", maxStep},
	} {
		if got := step(splitLines(c.lines)); got != c.want {
			t.Errorf("step(%q) = %d, want %d", c.lines, got, c.want)
		}
	}
}
