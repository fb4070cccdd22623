package parser

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cockroachdb/datadriven"
)

// parseAll returns every command of input, read through r.
func parseAll(t testing.TB, r io.Reader, opts Options) []Command {
	t.Helper()
	p := New(r, opts)
	var cmds []Command
	for {
		c, err := p.Next()
		if errors.Is(err, io.EOF) {
			return cmds
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		cmds = append(cmds, c)
	}
}

func describe(cmds []Command) string {
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "%d: %s", c.Line, c.Kind)
		if c.Label != "" {
			fmt.Fprintf(&b, " label=%s", c.Label)
		}
		fmt.Fprintf(&b, " arg=%q", c.Arg)
		if c.Err != nil {
			fmt.Fprintf(&b, " error=%q", strings.TrimPrefix(c.Err.Error(), ErrMalformed.Error()+": "))
			if c.Written != "" {
				fmt.Fprintf(&b, " written=%q", c.Written)
			}
		} else if c.Kind == Write || c.Kind == Edit {
			fmt.Fprintf(&b, " body=%q", c.Body)
			if c.Truncated() {
				fmt.Fprintf(&b, " size=%d", c.BodySize)
			}
		}
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "no commands\n"
	}
	return b.String()
}

// TestParserDataDriven runs the cases of testdata/*. Each case is
//
//	parse [escaped] [max-body=N] [max-arg=N]
//	INPUT
//	----
//	one line per command: LINE: KIND arg=... body=... or error=...
//
// With "escaped" the input is a Go string literal body (\n, \x00, \r...) so
// that NUL bytes, CRLF and invalid UTF-8 can be written down. Or it is
//
//	search
//	one search argument a line
//	----
//	for each: the argument, then text=... scope=... context=N [regex], or error=...
//
// or, for a move's argument (ParseMove),
//
//	move
//	one move argument a line
//	----
//	for each: the argument, then from=... to=... overwrite=BOOL, or error=...
//
// Regenerate the expectations with: go test ./parser -run DataDriven -rewrite
func TestParserDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd == "search" {
				return describeSearches(d.Input)
			}
			if d.Cmd == "move" {
				return describeMoves(d.Input)
			}
			if d.Cmd != "parse" {
				t.Fatalf("%s: unknown directive %q", d.Pos, d.Cmd)
			}
			input := d.Input
			var opts Options
			for _, a := range d.CmdArgs {
				switch a.Key {
				case "escaped":
					s, err := strconv.Unquote(`"` + input + `"`)
					if err != nil {
						t.Fatalf("%s: bad escaped input: %v", d.Pos, err)
					}
					input = s
				case "max-body":
					n, _ := strconv.Atoi(a.Vals[0])
					opts.MaxBody = int64(n)
				case "max-arg":
					n, _ := strconv.Atoi(a.Vals[0])
					opts.MaxArg = n
				default:
					t.Fatalf("%s: unknown argument %q", d.Pos, a.Key)
				}
			}
			whole := describe(parseAll(t, strings.NewReader(input), opts))
			// The same input one byte per read must parse the same way:
			// command boundaries never depend on how the stream is cut.
			opts.BufferSize = 64
			bytewise := describe(parseAll(t, iotest.OneByteReader(strings.NewReader(input)), opts))
			if whole != bytewise {
				t.Fatalf("%s: result depends on read boundaries:\nwhole:\n%s\nbyte by byte:\n%s", d.Pos, whole, bytewise)
			}
			return whole
		})
	})
}

// describeMoves parses each line of input as a move's argument.
func describeMoves(input string) string {
	var b strings.Builder
	for _, arg := range strings.Split(input, "\n") {
		m, err := ParseMove(arg)
		fmt.Fprintf(&b, "%q\n", arg)
		if err != nil {
			fmt.Fprintf(&b, "  error=%s\n", err)
			continue
		}
		fmt.Fprintf(&b, "  from=%q to=%q overwrite=%v\n", m.From, m.To, m.Overwrite)
	}
	return b.String()
}

// describeSearches parses each line of input as a search's argument.
func describeSearches(input string) string {
	var b strings.Builder
	for _, arg := range strings.Split(input, "\n") {
		q, err := ParseSearch(arg)
		fmt.Fprintf(&b, "%q\n", arg)
		if err != nil {
			fmt.Fprintf(&b, "  error=%s\n", err)
			continue
		}
		fmt.Fprintf(&b, "  text=%q scope=%q context=%d", q.Text, q.Scope, q.Context)
		if q.Regex {
			b.WriteString(" regex")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestParserReturnsReadErrors(t *testing.T) {
	boom := errors.New("boom")
	p := New(io.MultiReader(strings.NewReader("<open a> "), iotest.ErrReader(boom)), Options{})
	c, err := p.Next()
	if err != nil || c.Arg != "a" {
		t.Fatalf("first command: %+v, %v", c, err)
	}
	if _, err := p.Next(); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the reader's error", err)
	}
	if _, err := p.Next(); !errors.Is(err, boom) {
		t.Fatalf("error is not sticky: %v", err)
	}
}

// TestParserReadsNoFurtherThanTheCommand checks the streaming contract: once
// a command's text is complete, Next returns it without waiting for more.
func TestParserReadsNoFurtherThanTheCommand(t *testing.T) {
	pr, pw := io.Pipe()
	p := New(pr, Options{})
	got := make(chan Command)
	go func() {
		for {
			c, err := p.Next()
			if err != nil {
				close(got)
				return
			}
			got <- c
		}
	}()
	for _, chunk := range []string{"prose <open a.txt>", " more <write b.txt>\nhi\n</write>"} {
		if _, err := io.WriteString(pw, chunk); err != nil {
			t.Fatal(err)
		}
		c := <-got // blocks forever (test timeout) if Next waits for more input
		if c.Err != nil {
			t.Fatalf("unexpected error %v", c.Err)
		}
	}
	pw.Close()
	if _, ok := <-got; ok {
		t.Fatal("command after the end of input")
	}
}

func TestTagIsOnePrintableLine(t *testing.T) {
	c := Command{Kind: Open, Arg: "a\x00b\tc\xffd\u0085é"}
	if got, want := c.Tag(), `<open a\x00b\tc\xffd\u0085é>`; got != want {
		t.Fatalf("Tag() = %q, want %q", got, want)
	}
	c = Command{Kind: Write, Label: "EOF", Arg: "notes.md"}
	if got, want := c.Tag(), "<write:EOF notes.md>"; got != want {
		t.Fatalf("Tag() = %q, want %q", got, want)
	}
	c = Command{Kind: Open, Arg: "a\x00", Written: "<open a\x00", Err: ErrMalformed}
	if got, want := c.Tag(), `<open a\x00`; got != want {
		t.Fatalf("Tag() of a malformed tag = %q, want %q", got, want)
	}
}

func TestParserKeepsMemoryBoundedOnHugeBody(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 10<<20)
	in := io.MultiReader(strings.NewReader("<write big.txt>"), bytes.NewReader(body), strings.NewReader("</write>"))
	cmds := parseAll(t, in, Options{MaxBody: 1000})
	if len(cmds) != 1 || len(cmds[0].Body) != 1000 || cmds[0].BodySize != int64(len(body)) || !cmds[0].Truncated() {
		t.Fatalf("got %d commands, body %d bytes of %d", len(cmds), len(cmds[0].Body), cmds[0].BodySize)
	}
}

// FuzzParser checks that no input crashes the parser, that the result never
// depends on how the input is split into reads, and that every command
// keeps the documented invariants.
func FuzzParser(f *testing.F) {
	for _, s := range []string{
		"<open a.txt>", "<write a>\nx\n</write>", "<write:EOF a></write></write:EOF>",
		"<exec go test ./...>", "<search re:fo+>", "<open a\n", "<write a>unterminated",
		"<<open a>>", "<write:>", "<write:bad! a>x</write>", "\x00<open \xff>\r\n",
		"<edit a.go>\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n</edit>", "<edit:L a></edit></edit:L>", "<edit a>open",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{MaxBody: 64, MaxArg: 32, BufferSize: 4096}
		whole := parseAll(t, bytes.NewReader(data), opts)
		opts.BufferSize = 64
		split := parseAll(t, iotest.OneByteReader(bytes.NewReader(data)), opts)
		if a, b := describe(whole), describe(split); a != b {
			t.Fatalf("read boundaries change the result:\n%s\nvs\n%s", a, b)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, c := range whole {
			if c.Line < 1 || c.Line > lines {
				t.Fatalf("line %d outside 1..%d", c.Line, lines)
			}
			if c.Err != nil {
				if !errors.Is(c.Err, ErrMalformed) {
					t.Fatalf("error %v does not wrap ErrMalformed", c.Err)
				}
				if tag := c.Tag(); !strings.HasPrefix(tag, "<"+string(c.Kind)) || strings.ContainsAny(tag, "\n\r") {
					t.Fatalf("tag %q of a malformed command", tag)
				}
				if w := strings.TrimSuffix(c.Written, "…"); w != "" && !bytes.Contains(data, []byte(w)) {
					t.Fatalf("written %q is not in the input", c.Written)
				}
				continue
			}
			if strings.ContainsAny(c.Arg, "\n>") || len(c.Arg) > opts.MaxArg {
				t.Fatalf("bad argument %q", c.Arg)
			}
			if !bytes.Contains(data, []byte("<"+string(c.Kind))) {
				t.Fatalf("command %s not in the input", c.Kind)
			}
			body := c.Kind == Write || c.Kind == Edit
			if body && (int64(len(c.Body)) > opts.MaxBody || c.BodySize < int64(len(c.Body)) || c.Body == nil) {
				t.Fatalf("bad body: %d bytes kept of %d", len(c.Body), c.BodySize)
			}
			if body && !c.Truncated() && !bytes.Contains(data, c.Body) {
				t.Fatalf("body %q is not in the input", c.Body)
			}
			if !body && c.Body != nil {
				t.Fatalf("%s with a body", c.Kind)
			}
		}
	})
}
