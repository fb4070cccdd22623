package sandbox

import (
	"bufio"
	"bytes"
	"io"
	"os"

	"github.com/llm-runtime/llm-runtime/parser"
)

// String is "120-180", "120-" or "120".
func (l Lines) String() string { return parser.Range{Start: l.Start, End: l.End}.String() }

// readLines reads the lines r names of the file t opened, and counts the
// file's lines: a file of any size, the limit on what is returned.
func (w *Workspace) readLines(t *target, r Lines) (*File, error) {
	f := os.NewFile(uintptr(t.fd), t.rel)
	t.fd = -1 // f owns it now
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	if head, _ := br.Peek(binarySniff); isBinary(head) {
		return nil, Errorf(CodeBinaryFile, "%s is a binary file", t.rel)
	}
	var out bytes.Buffer
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			n++
			if n >= r.Start && (r.End == 0 || n <= r.End) {
				if int64(out.Len()+len(line)) > w.limits.MaxFileSize {
					return nil, Errorf(CodeResourceLimit, "lines %s of %s are more than %s (security.max_file_size); ask for fewer", r, t.rel, FormatSize(w.limits.MaxFileSize))
				}
				out.Write(line)
			}
		}
		if err == bufio.ErrBufferFull {
			n-- // the rest of a long line follows
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, osError(err, t.rel)
		}
	}
	if r.Start > n && (r.Start > 1 || n > 0) { // an empty file read from line 1 is empty
		return nil, Errorf(CodeInvalidRange, "%s has %d lines; line %d is past its end", t.rel, n, r.Start)
	}
	got := Lines{Start: r.Start, End: r.End, Total: n}
	if got.End == 0 || got.End > n {
		got.End = n
	}
	return &File{Path: t.rel, Content: out.Bytes(), Lines: &got}, nil
}
