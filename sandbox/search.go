package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Search finds lines matching query in the workspace's text files. A query
// "re:PATTERN" is a regular expression (RE2 syntax, linear time); anything
// else is a literal, case-sensitive string. Excluded, .gitignored, binary,
// oversized and symlinked files are skipped, as are excluded and ignored
// directories. Files are visited in lexical order.
//
// The walk is on descriptors, like every other access: each directory is
// opened relative to its parent with O_NOFOLLOW, each file relative to its
// directory with O_NOFOLLOW, and the rules are decided on the names
// traversed, so a file swapped for a link to an excluded one while the
// search runs is skipped, never read.
func (w *Workspace) Search(ctx context.Context, query string) (*SearchResult, error) {
	return w.SearchWith(ctx, query, Options{})
}

// SearchWith is Search with the options o: files of o.Skip are left out,
// and o.ListFiles lists every file with a match.
func (w *Workspace) SearchWith(ctx context.Context, arg string, o Options) (*SearchResult, error) {
	query, scope, err := ParseSearch(arg)
	if err != nil {
		return nil, err
	}
	match, err := compileQuery(query)
	if err != nil {
		return nil, err
	}
	res := &SearchResult{Query: arg, Scope: scope}
	fd, err := openat(w.rootFD, ".", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, osError(err, ".")
	}
	ign := newIgnorer()
	ign.enter(".", w.readInternal(".git", "info", "exclude"), readIgnoreFile(fd, ".gitignore"))
	sc := &searcher{ign: ign, match: match, res: res, list: o.ListFiles}
	if scope != "" {
		if sc.scope, sc.scopeDir, err = compileScope(scope); err != nil {
			return nil, err
		}
	}
	if d := w.limits.SearchTimeout; d > 0 {
		sc.deadline = time.Now().Add(d)
	}
	if len(o.Skip) > 0 {
		sc.skip = map[string]bool{}
		for _, p := range o.Skip {
			sc.skip[p] = true
		}
	}
	if err := w.searchDir(ctx, fd, ".", sc); errors.Is(err, errSearchTimeout) {
		res.Partial = fmt.Sprintf("stopped at search.timeout (%s) after %d files; a narrower query, or a larger search.timeout, searches the rest", w.limits.SearchTimeout, sc.files)
	} else if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, AsError(err)
		}
		return nil, osError(err, ".")
	}
	return res, nil
}

// searcher is the state of one search.
type searcher struct {
	ign      *ignorer
	match    func([]byte) bool
	res      *SearchResult
	skip     map[string]bool // files left out
	list     bool            // fill res.MatchedFiles
	deadline time.Time       // Limits.SearchTimeout from the start; zero: none
	files    int             // files searched
	dir      []string        // the components of the directory being searched
	scope    *regexp.Regexp  // the files searched, when restricted
	scopeDir string          // the directory the scope's matches are all under ("" anywhere)
}

// errSearchTimeout stops a search at Limits.SearchTimeout.
var errSearchTimeout = errors.New("search timeout")

// searchDir searches the directory dirfd, rel in the repository, and
// closes dirfd.
func (w *Workspace) searchDir(ctx context.Context, dirfd int, rel string, sc *searcher) error {
	ign := sc.ign
	dir := os.NewFile(uintptr(dirfd), rel)
	defer dir.Close()
	entries, err := dir.ReadDir(-1)
	if err != nil && rel == "." {
		return err
	} // elsewhere, an unreadable directory is skipped, as grep -s would
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !sc.deadline.IsZero() && time.Now().After(sc.deadline) {
			return errSearchTimeout
		}
		name := e.Name()
		child := name
		if rel != "." {
			child = rel + "/" + name
		}
		// The directories above were checked on the way down.
		if _, excluded := w.excl.matchLast(sc.dir, name); excluded {
			continue
		}
		switch {
		case e.IsDir():
			if sc.scopeDir != "" && !strings.HasPrefix(sc.scopeDir+"/", child+"/") && !strings.HasPrefix(child+"/", sc.scopeDir+"/") {
				continue // nothing under it is in scope
			}
			if ign.ignored(child, true) {
				sc.res.Ignored++
				continue
			}
			cfd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				continue // swapped for a link, gone, or unreadable
			}
			ign.enter(child, readIgnoreFile(cfd, ".gitignore"))
			sc.dir = append(sc.dir, name)
			err = w.searchDir(ctx, cfd, child, sc)
			sc.dir = sc.dir[:len(sc.dir)-1]
			if err != nil {
				return err
			}
		case e.Type().IsRegular():
			if sc.scope != nil && !sc.scope.MatchString(child) || sc.skip[child] {
				continue
			}
			if ign.ignored(child, false) {
				sc.res.Ignored++
				continue
			}
			w.searchFile(dirfd, name, child, sc)
		}
	}
	return nil
}

// maxIgnoreFile bounds a .gitignore or .git/info/exclude that is read.
const maxIgnoreFile = 1 << 20

// readRegular reads the regular file name in dirfd, without following a
// link, if it holds at most max bytes; otherwise, or if it cannot be read,
// it returns false.
func readRegular(dirfd int, name string, max int64) ([]byte, bool) {
	b, err := readRegularErr(dirfd, name, max)
	return b, err == nil
}

// errTooLarge is readRegularErr's error for a file over its limit.
var errTooLarge = errors.New("too large")

// readRegularErr is readRegular that says why it read nothing: errTooLarge,
// or another error (not a regular file, gone, unreadable).
func readRegularErr(dirfd int, name string, max int64) ([]byte, error) {
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, err // swapped for a link, gone, or unreadable
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errSkip
	}
	if st.Size > max {
		return nil, errTooLarge
	}
	b, err := readAll(fd, max+1, st.Size)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max { // it grew while we read
		return nil, errTooLarge
	}
	return b, nil
}

// ParseSearch splits a search's argument into the query and the scope:
//
//	TODO                  TODO, everywhere
//	TODO in src/          TODO, in files under src
//	TODO in src/**/*.go   TODO, in the .go files under src
//	TODO in *_test.go     TODO, in files of that name at any depth
//	"  func "             "  func " exactly, spaces kept
//	"x in y" in *.md      "x in y", in .md files
//
// " in GLOB" at the end is a scope when GLOB is one word holding a "/",
// "*", "?" or "."; otherwise it is part of the query ("for k in keys").
// A query in double quotes is taken as it is, between them.
func ParseSearch(arg string) (query, scope string, err error) {
	rest := arg
	if strings.HasPrefix(arg, `"`) {
		end := strings.LastIndex(arg, `"`)
		if i := strings.LastIndex(arg, `" in `); i > 0 && isScope(arg[i+len(`" in `):]) {
			end = i
		}
		if end <= 0 {
			return "", "", Errorf(CodeInvalidQuery, "the quoted query has no closing quote; write <search \"TEXT\"> or <search \"TEXT\" in GLOB>")
		}
		query, rest = arg[1:end], arg[end+1:]
		if rest == "" {
			return query, "", nil
		}
		s, ok := strings.CutPrefix(rest, " in ")
		if !ok || !isScope(s) {
			return "", "", Errorf(CodeInvalidQuery, "after the quoted query comes nothing, or \" in GLOB\"; not %q", rest)
		}
		return query, s, nil
	}
	if i := strings.LastIndex(arg, " in "); i > 0 && isScope(arg[i+len(" in "):]) {
		return arg[:i], arg[i+len(" in "):], nil
	}
	return arg, "", nil
}

// isScope says whether s reads as a path or a glob: one word with a "/",
// "*", "?" or ".".
func isScope(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t") && strings.ContainsAny(s, "/*?.")
}

// compileScope compiles a search's scope: a glob of repository-relative
// paths ("**" any depth, "*" and "?" within a name), anchored at the root
// when it holds a "/", and matching a file's name at any depth otherwise;
// "DIR/" is everything under DIR. It also returns the directory that holds
// every match, so the search goes nowhere else.
func compileScope(g string) (*regexp.Regexp, string, error) {
	g = strings.TrimPrefix(g, "./")
	if strings.HasSuffix(g, "/") {
		g += "**"
	}
	anchored := strings.Contains(g, "/")
	re, err := regexp.Compile(globRegexp(g, anchored))
	if err != nil {
		return nil, "", Errorf(CodeInvalidQuery, "bad scope %q: %v", g, err)
	}
	dir := ""
	if anchored {
		var lit []string
		for _, c := range strings.Split(g, "/") {
			if strings.ContainsAny(c, "*?[\\") {
				break
			}
			lit = append(lit, c)
		}
		if len(lit) == len(strings.Split(g, "/")) {
			lit = lit[:len(lit)-1] // a file's path: its directory
		}
		dir = strings.Join(lit, "/")
	}
	return re, dir, nil
}

// readIgnoreFile reads the .gitignore-style file name in dirfd, or nil.
func readIgnoreFile(dirfd int, name string) []byte {
	b, _ := readRegular(dirfd, name, maxIgnoreFile)
	return b
}

// readInternal reads a small file of llm-runtime's own under the root
// (such as .git/info/exclude, which the model cannot open), following no
// link on the way.
func (w *Workspace) readInternal(comps ...string) []byte {
	dirfd := w.rootFD
	for _, c := range comps[:len(comps)-1] {
		fd, err := openat(dirfd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if dirfd != w.rootFD {
			unix.Close(dirfd)
		}
		if err != nil {
			return nil
		}
		dirfd = fd
	}
	if dirfd != w.rootFD {
		defer unix.Close(dirfd)
	}
	return readIgnoreFile(dirfd, comps[len(comps)-1])
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

func (w *Workspace) searchFile(dirfd int, name, rel string, sc *searcher) {
	match, res := sc.match, sc.res
	sc.files++
	data, err := readRegularErr(dirfd, name, w.limits.MaxFileSize)
	switch {
	case errors.Is(err, errTooLarge):
		res.SkippedLarge++
		return
	case err != nil:
		return
	case isBinary(data):
		res.SkippedBinary++
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
			res.Matches = append(res.Matches, Match{Path: rel, Line: n, Text: cut(line, w.limits.MaxLineLength)})
		}
	}
	if found {
		res.Files++
		if sc.list && len(res.MatchedFiles) < MaxMatchedFiles {
			res.MatchedFiles = append(res.MatchedFiles, rel)
		}
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
