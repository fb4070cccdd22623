package edit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// block writes one SEARCH/REPLACE block of a body; search and replace are
// lines joined by "\n", and an empty replace has no lines.
func block(search, replace string) string {
	s := "<<<<<<< SEARCH\n" + search + "\n=======\n"
	if replace != "" {
		s += replace + "\n"
	}
	return s + ">>>>>>> REPLACE\n"
}

func TestParseReadsBlocks(t *testing.T) {
	tests := []struct {
		name, body string
		want       []Block
	}{
		{
			name: "one block",
			body: block("a\nb", "c"),
			want: []Block{{Search: []string{"a", "b"}, Replace: []string{"c"}, Line: 1}},
		},
		{
			name: "markers with CR and trailing blanks",
			body: "<<<<<<< SEARCH \t\r\nx\r\n=======\r\ny\r\n>>>>>>> REPLACE  \r\n",
			want: []Block{{Search: []string{"x"}, Replace: []string{"y"}, Line: 1}},
		},
		{
			name: "several blocks with blank lines between",
			body: "\n" + block("a", "b") + "\n  \n" + block("c", "d"),
			want: []Block{
				{Search: []string{"a"}, Replace: []string{"b"}, Line: 2},
				{Search: []string{"c"}, Replace: []string{"d"}, Line: 9},
			},
		},
		{
			name: "empty REPLACE",
			body: block("a", ""),
			want: []Block{{Search: []string{"a"}, Line: 1}},
		},
		{
			name: "blank and indented lines inside a block are kept",
			body: block("\tif x {\n\n   ", "  ======="),
			want: []Block{{Search: []string{"\tif x {", "", "   "}, Replace: []string{"  ======="}, Line: 1}},
		},
		{
			name: "a divider in REPLACE is text",
			body: block("a", "=======\nb"),
			want: []Block{{Search: []string{"a"}, Replace: []string{"=======", "b"}, Line: 1}},
		},
		{
			name: "no final newline",
			body: strings.TrimSuffix(block("a", "b"), "\n"),
			want: []Block{{Search: []string{"a"}, Replace: []string{"b"}, Line: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseRejectsMalformedBodies(t *testing.T) {
	tests := []struct {
		name, body string
		line       int
		msg        string // a part of the message
	}{
		{"text before a block", "Here is the edit:\n" + block("a", "b"), 1, "text outside a block"},
		{"text after a block", block("a", "b") + "done\n", 6, `"done"`},
		{"code fence", "```go\n" + block("a", "b") + "```\n", 1, "text outside a block"},
		{"indented marker", "  <<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n", 1, "text outside a block"},
		{"SEARCH not closed", "<<<<<<< SEARCH\na\n", 1, "no ======= line"},
		{"REPLACE not closed", "\n<<<<<<< SEARCH\na\n=======\nb\n", 2, "not closed"},
		{"new block inside a block", "<<<<<<< SEARCH\na\n=======\n<<<<<<< SEARCH\n", 4, "starts at line 1"},
		{"REPLACE marker before divider", "<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n", 3, "before any ======="},
		{"empty SEARCH", "<<<<<<< SEARCH\n=======\nb\n>>>>>>> REPLACE\n", 1, "SEARCH part is empty"},
		{"stray divider", "=======\n", 1, "text outside a block"},
		{"empty body", "", 0, "no block"},
		{"blank body", "\n \n", 0, "no block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := Parse([]byte(tt.body))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse = %v, %v; want a *SyntaxError", blocks, err)
			}
			if se.Line != tt.line || !strings.Contains(se.Error(), tt.msg) {
				t.Errorf("error at line %d: %q; want line %d and %q", se.Line, se.Error(), tt.line, tt.msg)
			}
		})
	}
}

func TestApplyChangesTheContent(t *testing.T) {
	tests := []struct {
		name, content, body, want string
		loose                     []int
	}{
		{
			name:    "exact match",
			content: "package p\n\nfunc f() error {\n\treturn nil\n}\n",
			body:    block("\treturn nil", "\treturn err"),
			want:    "package p\n\nfunc f() error {\n\treturn err\n}\n",
		},
		{
			name:    "exact match preferred over loose ones",
			content: "  x\nx\n",
			body:    block("x", "y"),
			want:    "  x\ny\n",
		},
		{
			name:    "later block matches what an earlier one wrote",
			content: "a\nb\n",
			body:    block("a", "first") + block("first\nb", "second"),
			want:    "second\n",
		},
		{
			name:    "CRLF file stays CRLF",
			content: "one\r\ntwo\r\nthree\r\n",
			body:    block("two", "2\n2.5"),
			want:    "one\r\n2\r\n2.5\r\nthree\r\n",
		},
		{
			name:    "CRLF body on an LF file",
			content: "one\ntwo\n",
			body:    "<<<<<<< SEARCH\r\ntwo\r\n=======\r\n2\r\n>>>>>>> REPLACE\r\n",
			want:    "one\n2\n",
		},
		{
			name:    "last line without newline stays without",
			content: "a\nb",
			body:    block("b", "b\nc"),
			want:    "a\nb\nc",
		},
		{
			name:    "only line without newline",
			content: "a",
			body:    block("a", "x\ny"),
			want:    "x\ny",
		},
		{
			name:    "deletion",
			content: "a\nb\nc\n",
			body:    block("b", ""),
			want:    "a\nc\n",
		},
		{
			name:    "deleting the last line without newline",
			content: "a\nb",
			body:    block("b", ""),
			want:    "a\n",
		},
		{
			name:    "deleting everything",
			content: "a\n",
			body:    block("a", ""),
			want:    "",
		},
		{
			name:    "loose match ignores trailing white space",
			content: "x := 1  \ny := 2\n",
			body:    block("x := 1", "x := 3"),
			want:    "x := 3\ny := 2\n",
			loose:   []int{1},
		},
		{
			name:    "loose match adds the missing indentation",
			content: "func f() {\n\tif ok {\n\t\treturn\n\t}\n}\n",
			body:    block("if ok {\n\treturn\n}", "if ok {\n\n\treturn nil\n}"),
			want:    "func f() {\n\tif ok {\n\n\t\treturn nil\n\t}\n}\n",
			loose:   []int{1},
		},
		{
			name:    "second block loose",
			content: "a\n\tb\n",
			body:    block("a", "A") + block("b", "B"),
			want:    "A\n\tB\n",
			loose:   []int{2},
		},
		{
			name:    "no change",
			content: "a\n",
			body:    block("a", "a"),
			want:    "a\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Apply("f.go", []byte(tt.content), blocks)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Content) != tt.want {
				t.Errorf("content %q, want %q", res.Content, tt.want)
			}
			if res.Applied != len(blocks) || !reflect.DeepEqual(res.Loose, tt.loose) {
				t.Errorf("Applied %d, Loose %v; want %d, %v", res.Applied, res.Loose, len(blocks), tt.loose)
			}
			checkDiff(t, tt.content, string(res.Content), res.Diff)
		})
	}
}

func TestApplyRefusesAmbiguousSearches(t *testing.T) {
	tests := []struct {
		name, content, search string
		lines                 []int
	}{
		{"two exact matches", "x\ny\nx\n", "x", []int{1, 3}},
		{"overlapping matches", "a\na\na\n", "a\na", []int{1, 2}},
		{"two loose matches", "\tx\n  x\n", "x", []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply("f", []byte(tt.content), []Block{{Search: strings.Split(tt.search, "\n")}})
			var ae *AmbiguousError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *AmbiguousError", err)
			}
			if ae.Block != 1 || ae.Count != len(tt.lines) || !reflect.DeepEqual(ae.Lines, tt.lines) {
				t.Errorf("got %+v, want lines %v", ae, tt.lines)
			}
		})
	}
}

func TestAmbiguousErrorListsAtMostTenLines(t *testing.T) {
	_, err := Apply("f", bytes.Repeat([]byte("x\n"), 30), []Block{{Search: []string{"x"}}})
	msg := err.Error()
	if !strings.Contains(msg, "30 places") || !strings.Contains(msg, "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, …;") {
		t.Errorf("message %q", msg)
	}
}

func TestApplyIsAllOrNone(t *testing.T) {
	content := []byte("a\nb\n")
	blocks := []Block{{Search: []string{"a"}, Replace: []string{"A"}}, {Search: []string{"zzz"}}}
	res, err := Apply("f", content, blocks)
	var ne *NoMatchError
	if res != nil || !errors.As(err, &ne) || ne.Block != 2 {
		t.Fatalf("Apply = %v, %v; want nil and a *NoMatchError for block 2", res, err)
	}
	if string(content) != "a\nb\n" {
		t.Errorf("content changed to %q", content)
	}
}

func TestApplySplitsReplaceLinesHoldingNewlines(t *testing.T) {
	res, err := Apply("f", []byte("a\r\nb\r\n"), []Block{{Search: []string{"a"}, Replace: []string{"x\ny"}}})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Content) != "x\r\ny\r\nb\r\n" {
		t.Errorf("content %q", res.Content)
	}
	checkDiff(t, "a\r\nb\r\n", string(res.Content), res.Diff)
}

func TestApplyRejectsAnEmptySearch(t *testing.T) {
	_, err := Apply("f", []byte("a\n"), []Block{{Line: 7, Replace: []string{"b"}}})
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 7 {
		t.Errorf("err = %v, want a *SyntaxError at line 7", err)
	}
}

func TestNoMatchErrorShowsTheClosestLines(t *testing.T) {
	var file strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&file, "func f%d(x int) int {\n\treturn x + %d\n}\n\n", i, i)
	}
	// Lines 401 to 403 are f101; the model remembers its body wrongly.
	search := []string{"func f101(x int) int {", "\treturn x - 101", "}"}
	_, err := Apply("f.go", []byte(file.String()), []Block{{Search: search}})
	var ne *NoMatchError
	if !errors.As(err, &ne) {
		t.Fatalf("err = %v, want *NoMatchError", err)
	}
	want := []Line{{400, ""}, {401, "func f101(x int) int {"}, {402, "\treturn x + 101"}, {403, "}"}, {404, ""}}
	if !reflect.DeepEqual(ne.Closest, want) {
		t.Errorf("Closest = %v, want %v", ne.Closest, want)
	}
	if msg := err.Error(); !strings.Contains(msg, "   402 | \treturn x + 101\n") || !strings.Contains(msg, "no block was applied") {
		t.Errorf("message %q", msg)
	}
}

func TestNoMatchErrorBreaksTiesByCharacters(t *testing.T) {
	content := "alpha := 1\nbeta := 2\ngamma := 3\n"
	_, err := Apply("f", []byte(content), []Block{{Search: []string{"betta := 2"}}})
	var ne *NoMatchError
	if !errors.As(err, &ne) || ne.Closest[1] != (Line{2, "beta := 2"}) {
		t.Errorf("err = %#v, want the closest line to be 2", err)
	}
}

func TestNoMatchErrorCentresALongSearchOnItsFirstDifference(t *testing.T) {
	var lines []string
	for i := 1; i <= 100; i++ {
		lines = append(lines, "line "+strconv.Itoa(i))
	}
	search := append([]string(nil), lines[29:59]...) // lines 30 to 59
	search[20] = "line fifty"                        // line 50
	_, err := Apply("f", []byte(strings.Join(lines, "\n")), []Block{{Search: search}})
	var ne *NoMatchError
	if !errors.As(err, &ne) {
		t.Fatalf("err = %v", err)
	}
	if len(ne.Closest) != maxClosest || ne.Closest[0].N != 45 || ne.Closest[5] != (Line{50, "line 50"}) {
		t.Errorf("Closest = %v", ne.Closest)
	}
}

func TestNoMatchErrorOnAnEmptyFile(t *testing.T) {
	_, err := Apply("f", nil, []Block{{Search: []string{"x"}}})
	var ne *NoMatchError
	if !errors.As(err, &ne) || len(ne.Closest) != 0 || !strings.Contains(err.Error(), "empty") {
		t.Errorf("err = %v", err)
	}
}

func TestNoMatchErrorOnASearchLongerThanTheFile(t *testing.T) {
	_, err := Apply("f", []byte("a\nb\n"), []Block{{Search: []string{"a", "b", "c"}}})
	var ne *NoMatchError
	if !errors.As(err, &ne) || !reflect.DeepEqual(ne.Closest, []Line{{1, "a"}, {2, "b"}}) {
		t.Errorf("err = %#v", err)
	}
}

func TestDiffIsUnified(t *testing.T) {
	old := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\no\np"
	new := "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\no\nP\nq\n"
	got, truncated := Diff("x/y.txt", []byte(old), []byte(new), 0)
	want := `--- a/x/y.txt
+++ b/x/y.txt
@@ -1,5 +1,5 @@
 a
-b
+B
 c
 d
 e
@@ -13,4 +13,5 @@
 m
 n
 o
-p
\ No newline at end of file
+P
+q
`
	if got != want || truncated {
		t.Errorf("Diff =\n%s\nwant\n%s", got, want)
	}
}

func TestDiffMergesHunksWhoseContextTouches(t *testing.T) {
	old := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
	new := "1\nX\n3\n4\n5\n6\n7\n8\nY\n10\n"
	got, _ := Diff("f", []byte(old), []byte(new), 0)
	if n := strings.Count(got, "@@ -"); n != 1 || !strings.Contains(got, "@@ -1,10 +1,10 @@\n") {
		t.Errorf("want one hunk, got\n%s", got)
	}
}

func TestDiffOfEqualContentIsEmpty(t *testing.T) {
	if d, tr := Diff("f", []byte("a\n"), []byte("a\n"), 10); d != "" || tr {
		t.Errorf("Diff = %q, %v", d, tr)
	}
}

func TestDiffTruncates(t *testing.T) {
	old := strings.Repeat("x\n", 100)
	new := strings.Repeat("y\n", 100)
	full, truncated := Diff("f", []byte(old), []byte(new), 0)
	if truncated || strings.Count(full, "\n") != 203 {
		t.Fatalf("full diff has %d lines, truncated %v", strings.Count(full, "\n"), truncated)
	}
	got, truncated := Diff("f", []byte(old), []byte(new), 10)
	if !truncated || got != strings.Join(strings.SplitAfter(full, "\n")[:10], "") {
		t.Errorf("truncated %v, diff\n%s", truncated, got)
	}
	if got, truncated := Diff("f", []byte(old), []byte(new), 203); got != full || truncated {
		t.Errorf("a cap of exactly the diff's length truncated it")
	}
}

func TestApplyTruncatesItsDiff(t *testing.T) {
	res, err := Apply("f", []byte("a\n"), []Block{{Search: []string{"a"}, Replace: strings.Split(strings.Repeat("b\n", 300), "\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DiffTruncated || strings.Count(res.Diff, "\n") != maxDiffLines {
		t.Errorf("DiffTruncated %v with %d lines", res.DiffTruncated, strings.Count(res.Diff, "\n"))
	}
}

// diffCases are pairs of contents whose diffs must apply back.
var diffCases = []struct{ name, old, new string }{
	{"empty to text", "", "a\nb\n"},
	{"text to empty", "a\nb\n", ""},
	{"add final newline", "a\nb", "a\nb\n"},
	{"remove final newline", "a\nb\n", "a\nb"},
	{"no final newline on either", "a\nb", "a\nc"},
	{"CRLF to LF on one line", "a\r\nb\r\nc\r\n", "a\r\nb\nc\r\n"},
	{"CRLF lines changed", "a\r\nb\r\nc\r\nd\r\n", "a\r\nB\r\nc\r\nD\r\n"},
	{"insert at top", "b\nc\n", "a\nb\nc\n"},
	{"repeated lines", "}\n}\n}\nx\n}\n}\n", "}\nx\n}\n}\ny\n}\n"},
	{"far apart changes", strings.Repeat("same\n", 50) + "x\n" + strings.Repeat("same\n", 50), "y\n" + strings.Repeat("same\n", 100) + "z\n"},
	{"big rewrite falls back to patience", numbered("old", 600, 1), numbered("new", 600, 7)},
	{"rewrite without common lines", numbered("a", 400, 1), numbered("b", 400, 1)},
}

// numbered is n lines "prefix i", with every step-th line "shared i" instead,
// the same in any two calls.
func numbered(prefix string, n, step int) string {
	var b strings.Builder
	for i := range n {
		if step > 1 && i%step == 0 {
			fmt.Fprintf(&b, "shared %d\n", i)
		} else {
			fmt.Fprintf(&b, "%s %d\n", prefix, i)
		}
	}
	return b.String()
}

func TestDiffAppliesBack(t *testing.T) {
	for _, tt := range diffCases {
		t.Run(tt.name, func(t *testing.T) {
			d, truncated := Diff("dir/f.txt", []byte(tt.old), []byte(tt.new), 0)
			if truncated {
				t.Fatal("truncated without a limit")
			}
			checkDiff(t, tt.old, tt.new, d)
		})
	}
}

func TestDiffAppliesWithPatch(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("no patch program")
	}
	for _, tt := range diffCases {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "dir", "f.txt")
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(tt.old), 0o644); err != nil {
				t.Fatal(err)
			}
			d, _ := Diff("dir/f.txt", []byte(tt.old), []byte(tt.new), 0)
			cmd := exec.Command("patch", "-p1", "--force", "--silent")
			cmd.Dir, cmd.Stdin = dir, strings.NewReader(d)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("patch: %v\n%s\ndiff:\n%s", err, out, d)
			}
			got, err := os.ReadFile(file)
			if err != nil && !(tt.new == "" && os.IsNotExist(err)) { // patch may remove a file it empties
				t.Fatal(err)
			}
			if string(got) != tt.new {
				t.Errorf("patched file %q, want %q", got, tt.new)
			}
		})
	}
}

func TestDiffIsShortForAFewChanges(t *testing.T) {
	old := numbered("line", 1000, 1)
	new := strings.Replace(strings.Replace(old, "line 10\n", "ten\n", 1), "line 900\n", "", 1)
	d, _ := Diff("f", []byte(old), []byte(new), 0)
	changed := 0
	for _, l := range strings.Split(d, "\n")[2:] {
		if strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+") {
			changed++
		}
	}
	if changed != 3 {
		t.Errorf("diff has %d changed lines:\n%s", changed, d)
	}
}

// checkDiff fails t unless diff turns old into new.
func checkDiff(t *testing.T, old, new, diff string) {
	t.Helper()
	got, err := applyDiff(old, diff)
	if err != nil {
		t.Fatalf("diff does not apply: %v\n%s", err, clip(diff))
	}
	if got != new {
		t.Fatalf("diff gives %q, want %q\n%s", clip(got), clip(new), clip(diff))
	}
}

// clip shortens s for a failure message.
func clip(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

// applyDiff applies a unified diff of one file to old, strictly: the header
// counts, context and deleted lines must all be right.
func applyDiff(old, diff string) (string, error) {
	if diff == "" {
		return old, nil
	}
	src := splitLines(old)
	lines := splitLines(diff)
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "--- a/") || !strings.HasPrefix(lines[1], "+++ b/") {
		return "", errors.New("no --- a/ and +++ b/ header")
	}
	lines = lines[2:]
	var out []string
	next := 0 // next line of src to copy
	for len(lines) > 0 {
		var a0, an, b0, bn int
		if err := parseHunkHeader(lines[0], &a0, &an, &b0, &bn); err != nil {
			return "", err
		}
		lines = lines[1:]
		start := a0 - 1
		if an == 0 {
			start = a0
		}
		if start < next || start > len(src) {
			return "", fmt.Errorf("hunk at %d out of order", a0)
		}
		out = append(out, src[next:start]...)
		if len(out)+1 != b0 && !(bn == 0 && len(out) == b0) {
			return "", fmt.Errorf("hunk +%d but %d lines before it", b0, len(out))
		}
		var oldSide, newSide []string
		for len(lines) > 0 && !strings.HasPrefix(lines[0], "@@ ") {
			l := lines[0]
			lines = lines[1:]
			text := l[1:]
			if len(lines) > 0 && strings.HasPrefix(lines[0], `\ `) {
				text = strings.TrimSuffix(text, "\n")
				lines = lines[1:]
			}
			switch l[0] {
			case ' ':
				oldSide, newSide = append(oldSide, text), append(newSide, text)
			case '-':
				oldSide = append(oldSide, text)
			case '+':
				newSide = append(newSide, text)
			default:
				return "", fmt.Errorf("bad hunk line %q", l)
			}
		}
		if len(oldSide) != an || len(newSide) != bn {
			return "", fmt.Errorf("hunk -%d,%d +%d,%d has %d and %d lines", a0, an, b0, bn, len(oldSide), len(newSide))
		}
		if start+an > len(src) || !reflect.DeepEqual(src[start:start+an], oldSide) && an > 0 {
			return "", fmt.Errorf("hunk at %d does not match the old content", a0)
		}
		out = append(out, newSide...)
		next = start + an
	}
	return strings.Join(append(out, src[next:]...), ""), nil
}

func parseHunkHeader(h string, a0, an, b0, bn *int) error {
	f := strings.Fields(h)
	if len(f) != 4 || f[3] != "@@" || f[1][0] != '-' || f[2][0] != '+' {
		return fmt.Errorf("bad hunk header %q", h)
	}
	if err := parseRange(f[1][1:], a0, an); err != nil {
		return err
	}
	return parseRange(f[2][1:], b0, bn)
}

func parseRange(r string, start, count *int) error {
	s, c, found := strings.Cut(r, ",")
	var err error
	if *start, err = strconv.Atoi(s); err != nil {
		return err
	}
	*count = 1
	if found {
		*count, err = strconv.Atoi(c)
	}
	return err
}

func TestApplyDiffHelperRejectsWrongDiffs(t *testing.T) {
	good, _ := Diff("f", []byte("a\nb\nc\n"), []byte("a\nB\nc\n"), 0)
	for _, bad := range []string{
		strings.Replace(good, "-b", "-x", 1),
		strings.Replace(good, "@@ -1,3", "@@ -1,4", 1),
		strings.Replace(good, " c\n", "", 1),
		strings.Replace(good, "--- a/f\n", "", 1),
	} {
		if _, err := applyDiff("a\nb\nc\n", bad); err == nil {
			t.Errorf("applyDiff accepted\n%s", bad)
		}
	}
}

// FuzzApply checks that Apply never panics, returns only its own errors, and
// that when it succeeds its diff turns the old content into the new.
func FuzzApply(f *testing.F) {
	f.Add([]byte("package p\n\nfunc f() {\n\treturn\n}\n"), uint8(3), uint8(1), "\treturn nil", false, uint8(0), uint8(1), "package q", true)
	f.Add([]byte("a\r\nb\r\nc"), uint8(2), uint8(1), "x\ny", true, uint8(0), uint8(2), "", false)
	f.Add([]byte("x\nx\n\n  x"), uint8(0), uint8(1), "", false, uint8(9), uint8(0), "z", true)
	f.Add([]byte(""), uint8(0), uint8(1), "a", false, uint8(0), uint8(1), "b", false)
	f.Fuzz(func(t *testing.T, content []byte, at1, n1 uint8, rep1 string, trim1 bool, at2, n2 uint8, rep2 string, trim2 bool) {
		lines := splitLines(string(content))
		blocks := []Block{
			fuzzBlock(lines, at1, n1, rep1, trim1),
			fuzzBlock(lines, at2, n2, rep2, trim2),
		}
		orig := string(content)
		res, err := Apply("f", content, blocks)
		if string(content) != orig {
			t.Fatal("Apply changed its input")
		}
		if err != nil {
			var (
				ne *NoMatchError
				ae *AmbiguousError
				ie *IndentError
				se *SyntaxError
			)
			if res != nil || !errors.As(err, &ne) && !errors.As(err, &ae) && !errors.As(err, &ie) && !errors.As(err, &se) {
				t.Fatalf("Apply = %v, %v", res, err)
			}
			_ = err.Error()
			return
		}
		if res.Applied != 2 {
			t.Fatalf("Applied = %d", res.Applied)
		}
		diff := res.Diff
		if res.DiffTruncated {
			diff, _ = Diff("f", content, res.Content, 0)
		}
		checkDiff(t, orig, string(res.Content), diff)
	})
}

// fuzzBlock makes a block that searches n lines of the content from line
// at, or for the lines of rep when the content has none, and puts the lines
// of rep instead. With trim set, the SEARCH lines are trimmed, so that they
// match loosely, and rep is one REPLACE line even if it holds newlines.
func fuzzBlock(lines []string, at, n uint8, rep string, trim bool) Block {
	var search []string
	if len(lines) > 0 {
		start := int(at) % len(lines)
		for _, l := range lines[start:min(len(lines), start+int(n%4))] {
			search = append(search, text(l))
		}
	} else {
		search = strings.Split(rep, "\n")
	}
	if trim {
		for i, s := range search {
			search[i] = strings.TrimSpace(s)
		}
	}
	var replace []string
	switch {
	case trim:
		replace = []string{rep}
	case rep != "":
		replace = strings.Split(rep, "\n")
	}
	return Block{Search: search, Replace: replace, Line: 1}
}

// FuzzDiff checks that Diff of any two contents applies back.
func FuzzDiff(f *testing.F) {
	for _, c := range diffCases {
		f.Add([]byte(c.old), []byte(c.new))
	}
	f.Fuzz(func(t *testing.T, old, new []byte) {
		d, _ := Diff("f", old, new, 0)
		checkDiff(t, string(old), string(new), d)
	})
}
