package parser

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// BenchmarkParseProse measures how fast prose without commands streams past.
func BenchmarkParseProse(b *testing.B) {
	data := bytes.Repeat([]byte(strings.Repeat("The model thinks aloud, a < b and c > d, <b>bold</b> ", 19)+"\n"), 1<<12)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		p := New(bytes.NewReader(data), Options{})
		if _, err := p.Next(); !errors.Is(err, io.EOF) {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseCommands measures a reply dense with commands.
func BenchmarkParseCommands(b *testing.B) {
	reply := "Let me look: <open go.mod> <open README.md>\n<write notes.txt>\nline one\nline two\n</write>\n<search TODO>\n"
	data := []byte(strings.Repeat(reply, 1000))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		p := New(bytes.NewReader(data), Options{})
		n := 0
		for {
			if _, err := p.Next(); err != nil {
				break
			}
			n++
		}
		if n != 4000 {
			b.Fatalf("%d commands", n)
		}
	}
}
