package sandbox

import (
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// TestStopReaderMatchesAsBytesDo: regexp through stopReader (how a long
// line is matched) answers as regexp on the bytes does, anchors, word
// boundaries and invalid UTF-8 included; once the search stops, it ends
// the line and says so.
func TestStopReaderMatchesAsBytesDo(t *testing.T) {
	lines := []string{"", "x", "func main() {", "\xff\xfefunc\xff", "héllo wörld", "a\rb", strings.Repeat("ab", 500) + "x",
		"TODO: fix", "  TODO", "naïve café", "\x00\x01", "end"}
	pats := []string{`^func`, `\bTODO\b`, `^$`, `x$`, `^\s+TODO`, `é`, `(?i)CAFÉ`, `\xff`, `[^\x00-\x7f]`, `.`, `^.{3}$`,
		`(ab){100}x`, `\x00`, `d\z`, `(?m)^end$`, `\Bo`, `\p{L}+ \p{L}+`}
	for _, p := range pats {
		re := regexp.MustCompile(p)
		for _, l := range lines {
			var stop atomic.Int32
			r := stopReader{b: []byte(l), stop: &stop}
			if got, want := re.MatchReader(&r), re.Match([]byte(l)); got != want || r.cut {
				t.Errorf("%q on %q: %v through stopReader (cut %v), %v on the bytes", p, l, got, r.cut, want)
			}
		}
	}
	var stop atomic.Int32
	stop.Store(stopCanceled)
	r := stopReader{b: []byte("needle"), stop: &stop}
	if regexp.MustCompile(`needle`).MatchReader(&r) || !r.cut {
		t.Fatal("a stopped search went on matching")
	}
}
