package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ParseRange splits "flag.go:120-180" into the path and the range of lines
// its suffix names: ":N-M" (lines N to M), ":N-" (N to the end) or ":N"
// (line N alone), N and M from 1. A path without such a suffix comes back
// whole, with a nil range. The suffix is always a range: a file whose name
// itself ends so is opened with a range after its name
// ("notes:1-2:1-" is all of the file "notes:1-2").
func ParseRange(arg string) (string, *Lines, error) {
	i := strings.LastIndexByte(arg, ':')
	if i <= 0 {
		return arg, nil, nil
	}
	spec := arg[i+1:]
	if spec == "" || strings.Trim(spec, "0123456789-") != "" || !strings.ContainsAny(spec[:1], "0123456789") {
		return arg, nil, nil
	}
	a, b, dash := strings.Cut(spec, "-")
	start, err := strconv.Atoi(a)
	if err != nil || start < 1 {
		return arg, nil, Errorf(CodeInvalidRange, "%q: lines are numbered from 1 (write PATH:N-M, PATH:N- or PATH:N)", spec)
	}
	r := &Lines{Start: start, End: start}
	if dash {
		r.End = 0
		if b != "" {
			end, err := strconv.Atoi(b)
			if err != nil || end < start {
				return arg, nil, Errorf(CodeInvalidRange, "%q: the range must be N-M with M at least N (or N- for the rest of the file)", spec)
			}
			r.End = end
		}
	}
	return arg[:i], r, nil
}

// String is "120-180", "120-" or "120".
func (l Lines) String() string {
	switch {
	case l.End == l.Start:
		return strconv.Itoa(l.Start)
	case l.End == 0:
		return strconv.Itoa(l.Start) + "-"
	}
	return fmt.Sprintf("%d-%d", l.Start, l.End)
}

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
