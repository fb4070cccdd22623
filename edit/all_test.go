package edit

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// blockAll is block, opened with <<<<<<< SEARCH ALL.
func blockAll(search, replace string) string {
	return strings.Replace(block(search, replace), "<<<<<<< SEARCH\n", "<<<<<<< SEARCH ALL\n", 1)
}

func TestParseReadsSearchAll(t *testing.T) {
	blocks, err := Parse([]byte(block("a", "b") + "<<<<<<< SEARCH ALL \r\nc\n=======\nd\n>>>>>>> REPLACE\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{
		{Search: []string{"a"}, Replace: []string{"b"}, Line: 1},
		{Search: []string{"c"}, Replace: []string{"d"}, Line: 6, All: true},
	}
	if !reflect.DeepEqual(blocks, want) {
		t.Errorf("got %+v, want %+v", blocks, want)
	}
	// Inside a block it is a new block not closed, as SEARCH is; any
	// other word after SEARCH is text, not a marker.
	for _, body := range []string{
		"<<<<<<< SEARCH\na\n<<<<<<< SEARCH ALL\n",
		"<<<<<<< SEARCH EVERY\na\n=======\n>>>>>>> REPLACE\n",
		" <<<<<<< SEARCH ALL\na\n=======\n>>>>>>> REPLACE\n",
	} {
		var se *SyntaxError
		if _, err := Parse([]byte(body)); !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a *SyntaxError", body, err)
		}
	}
}

func TestApplyReplacesEveryPlace(t *testing.T) {
	tests := []struct {
		name, content, body, want string
		replaced                  []Replaced
	}{
		{
			name:     "every exact match",
			content:  "x := old()\ny\nz := old()\nold()\n",
			body:     blockAll("old()", "new()"),
			want:     "x := old()\ny\nz := old()\nnew()\n",
			replaced: []Replaced{{Block: 1, Lines: []int{4}}},
		},
		{
			name:     "several lines, several places",
			content:  "a\nb\nc\na\nb\n",
			body:     blockAll("a\nb", "A"),
			want:     "A\nc\nA\n",
			replaced: []Replaced{{Block: 1, Lines: []int{1, 4}}},
		},
		{
			name:     "overlapping places: from the first on, as strings.ReplaceAll",
			content:  "a\na\na\n",
			body:     blockAll("a\na", "b"),
			want:     "b\na\n",
			replaced: []Replaced{{Block: 1, Lines: []int{1}}},
		},
		{
			name:     "loose matches are left alone beside exact ones",
			content:  "\tx\nx\n  x\nx\n",
			body:     blockAll("x", "y"),
			want:     "\tx\ny\n  x\ny\n",
			replaced: []Replaced{{Block: 1, Lines: []int{2, 4}}},
		},
		{
			name:     "each place keeps its terminator; the last line its lack of one",
			content:  "x\r\nx\nx",
			body:     blockAll("x", "y\nz"),
			want:     "y\r\nz\r\ny\nz\ny\nz",
			replaced: []Replaced{{Block: 1, Lines: []int{1, 2, 3}}},
		},
		{
			name:     "an empty REPLACE deletes every place",
			content:  "keep\ndebug()\nkeep\ndebug()\n",
			body:     blockAll("debug()", ""),
			want:     "keep\nkeep\n",
			replaced: []Replaced{{Block: 1, Lines: []int{2, 4}}},
		},
		{
			name:     "one place is fine",
			content:  "a\nb\n",
			body:     blockAll("b", "c"),
			want:     "a\nc\n",
			replaced: []Replaced{{Block: 1, Lines: []int{2}}},
		},
		{
			name:     "numbered as the blocks before left the file; a plain block beside",
			content:  "h\nv\nv\n",
			body:     block("h", "h\nh2") + blockAll("v", "w") + block("h2", "h3"),
			want:     "h\nh3\nw\nw\n",
			replaced: []Replaced{{Block: 2, Lines: []int{3, 4}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Apply("f", []byte(tt.content), blocks)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Content) != tt.want {
				t.Errorf("content %q, want %q", res.Content, tt.want)
			}
			if !reflect.DeepEqual(res.Replaced, tt.replaced) {
				t.Errorf("replaced %+v, want %+v", res.Replaced, tt.replaced)
			}
			if res.Applied != len(blocks) || len(res.Loose) != 0 {
				t.Errorf("applied %d, loose %v", res.Applied, res.Loose)
			}
			checkDiff(t, tt.content, string(res.Content), res.Diff)
		})
	}
}

func TestSearchAllMatchesExactlyOrNotAtAll(t *testing.T) {
	content := []byte("if x {\n\tf()\n}\n  f()\n")
	_, err := Apply("f", content, []Block{{Search: []string{"f() "}, Replace: []string{"g()"}, All: true}})
	var ne *NoMatchError
	if !errors.As(err, &ne) || !ne.All || ne.Loose != 2 || len(ne.Closest) == 0 {
		t.Fatalf("err = %#v, want a *NoMatchError with All and 2 loose places", err)
	}
	for _, want := range []string{"not in the file exactly", "2 places match them with the white space", "SEARCH ALL replaces exact matches only", "Copy the SEARCH lines exactly"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	// No match at all reads as for a plain block.
	_, err = Apply("f", content, []Block{{Search: []string{"nowhere"}, All: true}})
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), "not even ignoring white space") {
		t.Errorf("err = %v", err)
	}
	// All or none still: a failing block after an ALL one changes nothing.
	res, err := Apply("f", content, []Block{{Search: []string{"}"}, Replace: []string{"end"}, All: true}, {Search: []string{"nowhere"}}})
	if res != nil || !errors.As(err, &ne) || ne.Block != 2 {
		t.Errorf("Apply = %v, %v", res, err)
	}
}

func TestAmbiguousErrorNamesSearchAll(t *testing.T) {
	_, err := Apply("f", []byte("x\nx\n"), []Block{{Search: []string{"x"}}})
	if err == nil || !strings.Contains(err.Error(), "<<<<<<< SEARCH ALL") {
		t.Errorf("err = %v, want it to name <<<<<<< SEARCH ALL", err)
	}
}

func TestReplacedSaysWhere(t *testing.T) {
	for r, want := range map[*Replaced]string{
		{Block: 2, Lines: []int{4}}:                                     "block 2 replaced 1 place (line 4)",
		{Block: 1, Lines: []int{1, 5, 9}}:                               "block 1 replaced 3 places (lines 1, 5, 9)",
		{Block: 1, Lines: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}: "block 1 replaced 12 places (lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, …)",
	} {
		if got := r.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
