package parser

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// Every character Printable escapes is escaped in JSON too, every other is
// left as encoding/json wrote it, and the JSON still decodes to exactly
// the string: for every character there is, a few thousand at a time.
func TestPrintableJSONEscapesWhatPrintableDoesAndDecodesExactly(t *testing.T) {
	var kept, escaped []rune
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		if Printable(string(r)) == string(r) {
			kept = append(kept, r)
		} else {
			escaped = append(escaped, r)
		}
	}
	check := func(runes []rune, same bool) {
		t.Helper()
		for len(runes) > 0 {
			n := min(len(runes), 4096)
			s := string(runes[:n])
			runes = runes[n:]
			enc, err := json.Marshal(map[string]string{"k": s})
			if err != nil {
				t.Fatal(err)
			}
			out := PrintableJSON(enc)
			if i := strings.IndexFunc(string(out), func(c rune) bool { return Printable(string(c)) != string(c) }); i >= 0 {
				t.Fatalf("%U is left in the JSON", []rune(string(out[i:]))[0])
			}
			var back map[string]string
			if err := json.Unmarshal(out, &back); err != nil || back["k"] != s {
				t.Fatalf("the JSON of %+q decodes to %+q (%v)", s, back["k"], err)
			}
			if same && string(out) != string(enc) {
				t.Fatalf("characters Printable keeps were changed:\n%s\n%s", enc, out)
			}
		}
	}
	check(kept, true)
	check(escaped, false)
	if got := PrintableJSON([]byte(`{"t":"a` + "\u202e\u009b\x7f" + `é"}`)); string(got) != `{"t":"a\u202e\u009b\u007fé"}` {
		t.Errorf("%s", got)
	}
}
