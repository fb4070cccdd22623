package sandbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Search finds lines matching query in the workspace's text files. A query
// "re:PATTERN" is a regular expression (RE2 syntax, linear time); anything
// else is a literal, case-sensitive string. Excluded, .gitignored, binary,
// oversized and symlinked files are skipped, as are excluded and ignored
// directories. Files are visited in lexical order.
func (w *Workspace) Search(ctx context.Context, query string) (*SearchResult, error) {
	match, err := compileQuery(query)
	if err != nil {
		return nil, err
	}
	res := &SearchResult{Query: query}
	ign := newIgnorer(func(name string) []byte {
		b, err := w.root.ReadFile(name)
		if err != nil || len(b) > 1<<20 {
			return nil
		}
		return b
	})
	err = fs.WalkDir(w.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			return nil // unreadable entries are skipped, as grep -s would
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if p == "." {
			return nil
		}
		_, excluded := w.excl.match(p)
		if d.IsDir() {
			if excluded || ign.ignored(p, true) {
				return fs.SkipDir
			}
			return nil
		}
		if excluded || !d.Type().IsRegular() || ign.ignored(p, false) {
			return nil
		}
		w.searchFile(p, match, res)
		return nil
	})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, AsError(err)
		}
		return nil, osError(err, ".")
	}
	return res, nil
}

func compileQuery(q string) (func([]byte) bool, error) {
	if pat, ok := strings.CutPrefix(q, "re:"); ok {
		if pat == "" {
			return nil, Errorf(CodeInvalidQuery, "empty regular expression after re:")
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, Errorf(CodeInvalidQuery, "bad regular expression: %v", err)
		}
		return re.Match, nil
	}
	if q == "" {
		return nil, Errorf(CodeInvalidQuery, "empty search; write <search TEXT> or <search re:PATTERN>")
	}
	lit := []byte(q)
	return func(line []byte) bool { return bytes.Contains(line, lit) }, nil
}

func (w *Workspace) searchFile(p string, match func([]byte) bool, res *SearchResult) {
	f, err := w.root.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() > w.limits.MaxFileSize {
		return
	}
	data, err := io.ReadAll(io.LimitReader(f, w.limits.MaxFileSize+1))
	if err != nil || int64(len(data)) > w.limits.MaxFileSize || isBinary(data) {
		return
	}
	found := false
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if !match(line) {
			continue
		}
		found = true
		res.Total++
		if len(res.Matches) < w.limits.MaxSearchResults {
			res.Matches = append(res.Matches, Match{Path: p, Line: n, Text: cut(line, w.limits.MaxLineLength)})
		}
	}
	if found {
		res.Files++
	}
}

// cut shortens a line to at most n bytes, on a rune boundary, marking the cut.
func cut(line []byte, n int) string {
	if len(line) <= n {
		return string(line)
	}
	i := n
	for i > 0 && !utf8.RuneStart(line[i]) {
		i--
	}
	return string(line[:i]) + " [...]"
}
