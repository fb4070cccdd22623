package parser

import (
	"fmt"
	"unicode/utf8"
)

// PrintableJSON returns the JSON text b with every character that
// Printable escapes and encoding/json leaves as it is (DEL, the C1
// controls U+0080 to U+009F, the bidirectional controls) written as a
// \u escape, so that JSON output cannot drive a terminal or reorder a
// line either. Such a character can stand only inside a JSON string, and
// its escape decodes to it: the JSON decodes exactly as before. (U+2028,
// U+2029 and the C0 controls encoding/json escapes itself.) b is
// returned as it is when it holds none.
func PrintableJSON(b []byte) []byte {
	i := 0
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0x7f || size > 1 && !keep(r) {
			break
		}
		i += size
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0x7f || size > 1 && !keep(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}
