package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/parser"
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

// MaxContext is the most lines of context a search shows on each side of
// a match: the command language's limit.
const MaxContext = parser.MaxContext

// SearchWith is Search with the options o: files of o.Skip are left out,
// and o.ListFiles lists every file with a match.
func (w *Workspace) SearchWith(ctx context.Context, arg string, o Options) (*SearchResult, error) {
	var (
		query, scope string
		ctxLines     int
		match        func([]byte) bool
		lit          []byte
		err          error
		max          = w.limits.MaxSearchResults
	)
	if s := o.Search; s != nil {
		query, scope, ctxLines = arg, s.Scope, s.Context
		if ctxLines < 0 || ctxLines > MaxContext {
			return nil, Errorf(CodeInvalidQuery, "context is %d lines: it must be from 1 to %d (0 for none)", ctxLines, MaxContext)
		}
		if s.Max > 0 && (max <= 0 || s.Max < max) {
			max = s.Max
		}
		if s.Regex {
			match, err = compileMatcher("re:" + query)
		} else if query == "" {
			err = Errorf(CodeInvalidQuery, "empty search")
		} else {
			lit = []byte(query)
			match = func(line []byte) bool { return bytes.Contains(line, lit) }
		}
	} else {
		q, perr := parser.ParseSearch(arg)
		if perr != nil {
			return nil, Errorf(CodeInvalidQuery, "%s", perr)
		}
		query, scope, ctxLines = q.Text, q.Scope, q.Context
		match, lit, err = compileQuery(query)
	}
	if err != nil {
		return nil, err
	}
	text := query
	if s := o.Search; s != nil && s.Regex {
		text = "re:" + query
	}
	res := &SearchResult{Query: arg, Text: text, Scope: scope, Context: ctxLines}
	fd, err := openat(w.rootFD, ".", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, osError(err, ".")
	}
	ign := newIgnorer()
	ign.enter(".", w.readInternal(".git", "info", "exclude"), readIgnoreFile(fd, ".gitignore"))
	sc := &searcher{ign: ign, match: match, lit: lit, res: res, list: o.ListFiles, max: max, maxLine: w.limits.MaxLineLength, maxSize: w.limits.MaxFileSize, context: ctxLines}
	sc.start()
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
	err = w.searchDir(ctx, fd, ".", sc)
	sc.finish()
	if errors.Is(err, errSearchTimeout) {
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
	lit      []byte          // a literal query's bytes; nil for a regular expression
	max      int             // Limits.MaxSearchResults
	maxLine  int             // Limits.MaxLineLength
	maxSize  int64           // Limits.MaxFileSize
	context  int             // lines of context around each match

	// Files are opened by the walk, in order, and read and matched by as
	// many workers as the runtime has processors; their results are put
	// together in the walk's order at the end.
	jobs    chan *fileJob
	done    []*fileJob
	workers sync.WaitGroup
}

// fileJob is one file of a search: opened by the walk, searched by a worker.
type fileJob struct {
	rel     string
	dir     *dirRef
	name    string
	matches []Match // at most the search's max
	total   int
	large   bool
	binary  bool
}

func (sc *searcher) start() {
	sc.jobs = make(chan *fileJob, 64)
	for range runtime.GOMAXPROCS(0) {
		sc.workers.Add(1)
		go func() {
			defer sc.workers.Done()
			buf := make([]byte, 0, 64<<10)
			for j := range sc.jobs {
				buf = sc.search(j, buf)
			}
		}()
	}
}

// finish waits for the workers and puts their results together.
func (sc *searcher) finish() {
	close(sc.jobs)
	sc.workers.Wait()
	res := sc.res
	for _, j := range sc.done {
		switch {
		case j.large:
			res.SkippedLarge++
		case j.binary:
			res.SkippedBinary++
		case j.total > 0:
			res.Total += j.total
			res.Files++
			for _, m := range j.matches {
				if len(res.Matches) < sc.max {
					res.Matches = append(res.Matches, m)
				}
			}
			if sc.list && len(res.MatchedFiles) < MaxMatchedFiles {
				res.MatchedFiles = append(res.MatchedFiles, j.rel)
			}
		}
	}
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
	if rel != "." { // the root's rules were read first
		for _, e := range entries {
			if e.Name() == ".gitignore" {
				ign.enter(rel, readIgnoreFile(dirfd, ".gitignore"))
				break
			}
		}
	}
	// The files are opened by the workers, relative to a descriptor of
	// this directory that lives as long as any of them needs it.
	dfd, err := dupFD(dirfd)
	if err != nil {
		return osError(err, rel)
	}
	ref := &dirRef{fd: dfd}
	ref.refs.Store(1)
	defer ref.release()
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
			sc.files++
			ref.refs.Add(1)
			j := &fileJob{rel: child, dir: ref, name: name}
			sc.done = append(sc.done, j)
			sc.jobs <- j
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
	b, err := readRegularInto(dirfd, name, nil, max)
	return b, err == nil
}

// errTooLarge is readRegularInto's error for a file over its limit.
var errTooLarge = errors.New("too large")

// readRegularInto is readRegular that reads into buf (grown if it is too
// small for the file) and says why it read nothing: errTooLarge, or
// another error (not a regular file, gone, unreadable).
func readRegularInto(dirfd int, name string, buf []byte, max int64) ([]byte, error) {
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
	if int64(cap(buf)) < min(max, st.Size+1) {
		buf = make([]byte, 0, min(max, st.Size+1))
	}
	b, err := readInto(fd, buf[:0], max+1)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max { // it grew while we read
		return b, errTooLarge
	}
	return b, nil
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

// compileQuery returns the line matcher of a query, and for a literal its
// bytes (a whole file is scanned for them at once).
func compileQuery(q string) (func([]byte) bool, []byte, error) {
	match, err := compileMatcher(q)
	if err != nil || strings.HasPrefix(q, "re:") {
		return match, nil, err
	}
	return match, []byte(q), nil
}

func compileMatcher(q string) (func([]byte) bool, error) {
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

// dirRef is a directory descriptor shared by the jobs of its files.
type dirRef struct {
	fd   int
	refs atomic.Int32
}

func (d *dirRef) release() {
	if d.refs.Add(-1) == 0 {
		unix.Close(d.fd)
	}
}

// search reads and searches the file of j, and closes it; buf is the
// worker's buffer, returned for the next file.
func (sc *searcher) search(j *fileJob, buf []byte) []byte {
	data, err := readRegularInto(j.dir.fd, j.name, buf, sc.maxSize)
	j.dir.release()
	if cap(data) > cap(buf) {
		buf = data[:0] // a larger buffer, for the next files
	}
	switch {
	case errors.Is(err, errTooLarge):
		j.large = true
		return buf
	case err != nil:
		return buf
	}
	if isBinary(data) {
		j.binary = true
		return buf
	}
	all := data
	emit := func(n int, line []byte) {
		j.total++
		if len(j.matches) < sc.max {
			m := Match{Path: j.rel, Line: n, Text: cut(line, sc.maxLine)}
			if sc.context > 0 {
				m.Before, m.After = around(all, line, sc.context, sc.maxLine)
			}
			j.matches = append(j.matches, m)
		}
	}
	if sc.lit != nil {
		searchLiteral(data, sc.lit, emit)
		return buf
	}
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if sc.match(line) {
			emit(n, line)
		}
	}
	return buf
}

// around returns the n lines before and after line, cut to max bytes
// each; line is a slice of data, which starts where its array does, so its
// offset is the difference of their capacities.
func around(data, line []byte, n, max int) (before, after []string) {
	start := cap(data) - cap(line) // line's offset in data
	end := start + len(line)
	for i, k := start, 0; k < n && i > 0; k++ {
		j := bytes.LastIndexByte(data[:i-1], '\n') + 1
		before = append([]string{cut(bytes.TrimSuffix(data[j:i-1], []byte{'\r'}), max)}, before...)
		i = j
	}
	i := end
	if i < len(data) && data[i] == '\r' {
		i++
	}
	for k := 0; k < n && i < len(data); k++ {
		i++ // the newline
		if i >= len(data) {
			break
		}
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			j = len(data) - i
		}
		after = append(after, cut(bytes.TrimSuffix(data[i:i+j], []byte{'\r'}), max))
		i += j
	}
	return before, after
}

// searchLiteral finds the lines of data that hold lit, from one scan of
// the whole of it for lit (and of the stretches between hits for line
// breaks), not line by line: most files hold no match.
func searchLiteral(data, lit []byte, emit func(n int, line []byte)) {
	n, start := 1, 0 // the line number of data[start:], a line's start
	for start < len(data) {
		i := bytes.Index(data[start:], lit)
		if i < 0 {
			return
		}
		at := start + i
		ls := start
		if k := bytes.LastIndexByte(data[start:at], '\n'); k >= 0 {
			n += bytes.Count(data[start:start+k+1], []byte{'\n'})
			ls = start + k + 1
		}
		le := len(data)
		if k := bytes.IndexByte(data[at:], '\n'); k >= 0 {
			le = at + k
		}
		line := bytes.TrimSuffix(data[ls:le], []byte{'\r'})
		if bytes.Contains(line, lit) { // not only across the CR
			emit(n, line)
		}
		start, n = le+1, n+1
	}
}

// readInto reads fd to its end, or to max bytes, into buf.
func readInto(fd int, buf []byte, max int64) ([]byte, error) {
	for int64(len(buf)) < max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):min(int64(cap(buf)), max)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	return buf, nil
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
