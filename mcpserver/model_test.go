package mcpserver_test

import (
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/mcpserver"
)

// TestSearchShowsContextLinesAsTheFilterDoes: context N shows N lines
// around each match, as grep -C prints them (path-N- around path:N:, "--"
// between groups apart), and gives them as before and after in the
// structured content; 0 or none is no context, and anything outside 0 to
// 20 is refused with INVALID_ARGUMENTS saying the rule.
func TestSearchShowsContextLinesAsTheFilterDoes(t *testing.T) {
	f := start(t, map[string]string{"a.txt": "one\ntwo\nhit three\nfour\nfive\nsix\nhit seven\n"}, mcpserver.Options{})
	res, text, out := f.call(t, "search", map[string]any{"query": "hit", "context": 1})
	want := "a.txt-2- two\na.txt:3: hit three\na.txt-4- four\n--\na.txt-6- six\na.txt:7: hit seven\n[2 matching lines in 1 file]"
	if res.IsError || text != want {
		t.Fatalf("got\n%s\nwant\n%s", text, want)
	}
	m := out["matches"].([]any)[0].(map[string]any)
	if m["before"].([]any)[0] != "two" || m["after"].([]any)[0] != "four" {
		t.Fatalf("structured: %v", m)
	}
	for _, c := range []any{0, nil} {
		args := map[string]any{"query": "hit"}
		if c != nil {
			args["context"] = c
		}
		_, text, out := f.call(t, "search", args)
		if text != "a.txt:3: hit three\na.txt:7: hit seven\n[2 matching lines in 1 file]" || strings.Contains(text, "--") {
			t.Fatalf("context %v: %s %v", c, text, out)
		}
	}
	for _, c := range []int{-1, 21, 1000} {
		res, text, out := f.call(t, "search", map[string]any{"query": "hit", "context": c})
		if !res.IsError || codeOf(out) != mcpserver.CodeInvalidArguments || !strings.Contains(text, "from 1 to 20") {
			t.Errorf("context %d: %v %s", c, res.IsError, text)
		}
	}
}

// TestReadFileNumbersLinesWhenAsked: line_numbers puts each line's number
// in the file, from the offset, and a tab before it, as the filter's
// output.line_numbers does; the paging is the same as without.
func TestReadFileNumbersLinesWhenAsked(t *testing.T) {
	f := start(t, map[string]string{"f.txt": "one\ntwo\nthree\nfour"}, mcpserver.Options{})
	_, text, _ := f.call(t, "read_file", map[string]any{"path": "f.txt", "line_numbers": true})
	if text != "     1\tone\n     2\ttwo\n     3\tthree\n     4\tfour" {
		t.Fatalf("%q", text)
	}
	res, text, out := f.call(t, "read_file", map[string]any{"path": "f.txt", "offset": 2, "limit": 2, "line_numbers": true})
	if res.IsError || text != "     2\ttwo\n     3\tthree\n[lines 2-3 of 4; read_file with offset 4 for the rest]" || out["next_offset"] != 4.0 {
		t.Fatalf("%q %v", text, out)
	}
	if _, text, _ := f.call(t, "read_file", map[string]any{"path": "f.txt", "offset": 4}); text != "four" {
		t.Fatalf("not asked: %q", text)
	}
}
