package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"regexp/syntax"
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

// Search finds lines matching q in the workspace's text files: a literal,
// case-sensitive string, or with q.Regex a regular expression (RE2
// syntax, linear time), in the files q.Scope names (all when empty), with
// q.Context lines around each match. Excluded, .gitignored, binary,
// oversized and symlinked files are skipped, as are excluded and ignored
// directories. Files are visited in lexical order.
//
// The walk is on descriptors, like every other access: each directory is
// opened relative to its parent with O_NOFOLLOW, each file relative to its
// directory with O_NOFOLLOW, and the rules are decided on the names
// traversed, so a file swapped for a link to an excluded one while the
// search runs is skipped, never read.
func (w *Workspace) Search(ctx context.Context, q parser.Query) (*SearchResult, error) {
	return w.SearchWith(ctx, q, Options{})
}

// MaxContext is the most lines of context a search shows on each side of
// a match: the command language's limit.
const MaxContext = parser.MaxContext

// SearchWith is Search with the options o: files of o.Skip are left out,
// if o.Only names files only they are searched, and o.ListFiles lists
// every file with a match.
//
// A search keeps its time limit (Limits.SearchTimeout) and gives way to
// ctx however costly its query: the walk, each worker between lines, and
// a regular expression inside a long line all look at one flag that the
// timer and ctx set, and files queued but not searched yet are dropped.
// It then returns what it found so far, its Partial saying why it
// stopped. A ctx already done when it is called is CANCELED: nothing was
// searched.
func (w *Workspace) SearchWith(ctx context.Context, q parser.Query, o Options) (*SearchResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, AsError(err)
	}
	if q.Context < 0 || q.Context > MaxContext {
		return nil, Errorf(CodeInvalidQuery, "context is %d lines: it must be from 1 to %d (0 for none)", q.Context, MaxContext)
	}
	max := w.limits.MaxSearchResults
	if q.Max > 0 && (max <= 0 || q.Max < max) {
		max = q.Max
	}
	m, err := compileQuery(q)
	if err != nil {
		return nil, err
	}
	scope, ctxLines := q.Scope, q.Context
	res := &SearchResult{Query: q.String(), Text: q.String(), Scope: scope, Context: ctxLines}
	sc := &searcher{matcher: m, res: res, list: o.ListFiles, max: max, maxLine: w.limits.MaxLineLength, maxSize: w.limits.MaxFileSize, context: ctxLines}
	if scope != "" {
		if sc.scope, sc.scopeDir, err = compileScope(scope); err != nil {
			return nil, err
		}
	}
	if len(o.Skip) > 0 {
		sc.skip = map[string]bool{}
		for _, p := range o.Skip {
			sc.skip[p] = true
		}
	}
	if len(o.Only) > 0 {
		sc.only = map[string]bool{}
		for _, p := range o.Only {
			sc.only[p] = true
		}
	}
	fd, err := openat(w.rootFD, ".", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, osError(err, ".")
	}
	sc.ign = newIgnorer()
	sc.ign.enter(".", w.readInternal(".git", "info", "exclude"), readIgnoreFile(fd, ".gitignore"))
	// The walk looks at the clock itself (so that a limit already passed
	// queues nothing); the workers, and a match in a long line, look only
	// at the flag, which the timer and ctx set.
	if d := w.limits.SearchTimeout; d > 0 {
		sc.deadline = time.Now().Add(d)
		t := time.AfterFunc(d, func() { sc.halt(stopTimeout) })
		defer t.Stop()
	}
	defer context.AfterFunc(ctx, func() { sc.halt(stopCanceled) })()
	sc.start()
	err = w.searchDir(fd, ".", sc)
	sc.finish()
	if err != nil && !errors.Is(err, errSearchStopped) {
		return nil, osError(err, ".")
	}
	if !errors.Is(err, errSearchStopped) && sc.searched == len(sc.done) {
		return res, nil // every file searched, whenever the timer or ctx fired
	}
	files := fmt.Sprintf("%d files", sc.searched)
	if sc.searched == 1 {
		files = "1 file"
	}
	switch sc.stop.Load() {
	case stopTimeout:
		res.Partial = fmt.Sprintf("stopped at search.timeout (%s) after %s; a narrower query, or a larger search.timeout, searches the rest", w.limits.SearchTimeout, files)
	case stopCanceled:
		res.Partial = fmt.Sprintf("interrupted after %s (the run was stopped); the matches above are those found until then", files)
	}
	return res, nil
}

// Why a search stopped before its end (searcher.stop).
const (
	stopTimeout  = 1 + iota // Limits.SearchTimeout passed
	stopCanceled            // its context was cancelled
)

// searcher is the state of one search.
type searcher struct {
	matcher
	ign      *ignorer
	res      *SearchResult
	skip     map[string]bool // files left out
	only     map[string]bool // if not nil, the only files searched
	list     bool            // fill res.MatchedFiles
	deadline time.Time       // Limits.SearchTimeout from the start; zero: none
	dir      []string        // the components of the directory being searched
	scope    *regexp.Regexp  // the files searched, when restricted
	scopeDir string          // the directory the scope's matches are all under ("" anywhere)
	max      int             // Limits.MaxSearchResults
	maxLine  int             // Limits.MaxLineLength
	maxSize  int64           // Limits.MaxFileSize
	context  int             // lines of context around each match

	// stop is why the search stopped (stopTimeout, stopCanceled), or 0
	// while it runs; the first reason set stays.
	stop atomic.Int32
	// searched counts the files searched to their end (finish).
	searched int

	// Files are opened by the walk, in order, and read and matched by as
	// many workers as the runtime has processors; their results are put
	// together in the walk's order at the end.
	jobs    chan *fileJob
	done    []*fileJob
	workers sync.WaitGroup
}

// halt stops the search, for the reason why unless it stopped already.
func (sc *searcher) halt(why int32) { sc.stop.CompareAndSwap(0, why) }

// stopped says whether the search must stop.
func (sc *searcher) stopped() bool { return sc.stop.Load() != 0 }

// fileJob is one file of a search: opened by the walk, searched by a worker.
type fileJob struct {
	rel     string
	dir     *dirRef
	name    string
	matches []Match // at most the search's max
	total   int
	large   bool
	binary  bool
	// complete says that the file was searched to its end; a file cut
	// short when the search stopped keeps the matches found before.
	complete bool
}

func (sc *searcher) start() {
	sc.jobs = make(chan *fileJob, 64)
	for range runtime.GOMAXPROCS(0) {
		sc.workers.Add(1)
		go func() {
			defer sc.workers.Done()
			buf := make([]byte, 0, 64<<10)
			for j := range sc.jobs {
				if sc.stopped() { // the queue is dropped, unread
					j.dir.release()
					continue
				}
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
		if j.complete {
			sc.searched++
		}
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

// errSearchStopped ends the walk of a search that stopped (searcher.stop).
var errSearchStopped = errors.New("search stopped")

// searchDir searches the directory dirfd, rel in the repository, and
// closes dirfd.
func (w *Workspace) searchDir(dirfd int, rel string, sc *searcher) error {
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
		if !sc.deadline.IsZero() && !time.Now().Before(sc.deadline) {
			sc.halt(stopTimeout)
		}
		if sc.stopped() {
			return errSearchStopped
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
			err = w.searchDir(cfd, child, sc)
			sc.dir = sc.dir[:len(sc.dir)-1]
			if err != nil {
				return err
			}
		case e.Type().IsRegular():
			if sc.scope != nil && !sc.scope.MatchString(child) || sc.skip[child] || sc.only != nil && !sc.only[child] {
				continue
			}
			if ign.ignored(child, false) {
				sc.res.Ignored++
				continue
			}
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

// MaxRegexpSize is the most instructions a search's regular expression
// may compile to. Matching costs up to the length of the text times this
// size (and a machine per worker holds as much state), so it bounds what
// one line can cost and how soon a stopped search gives way. Everyday
// patterns compile to 5 to 60 instructions, an alternation of 400 names
// (4 KB, the longest argument) to about 3,700, and a pattern without a
// count such as {1000} to at most one and a half per byte of it;
// (.*.*...){1000}x compiles to 9,003.
const MaxRegexpSize = 5000

// directMatchCost is the largest cost (a line's length times the
// program's size) matched by regexp's own fast paths in one call, which
// nothing can stop: at worst a few hundred milliseconds. A costlier line
// is matched rune by rune through stopReader, which ends it when the
// search stops.
const directMatchCost = 1 << 20

// matcher is a compiled query: a literal's bytes, or a regular
// expression and the size of its program.
type matcher struct {
	lit   []byte
	re    *regexp.Regexp
	insts int
}

// compileQuery compiles a query: a regular expression of at most
// MaxRegexpSize instructions, or a literal.
func compileQuery(q parser.Query) (matcher, error) {
	pat := q.Text
	if !q.Regex {
		if pat == "" {
			return matcher{}, Errorf(CodeInvalidQuery, "empty search; write <search TEXT> or <search re:PATTERN>")
		}
		return matcher{lit: []byte(pat)}, nil
	}
	if pat == "" {
		return matcher{}, Errorf(CodeInvalidQuery, "empty regular expression after re:")
	}
	// The program is sized as regexp.Compile builds it (Perl syntax,
	// simplified), before regexp builds anything more from it.
	tree, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return matcher{}, Errorf(CodeInvalidQuery, "bad regular expression: %v", err)
	}
	prog, err := syntax.Compile(tree.Simplify())
	if err != nil {
		return matcher{}, Errorf(CodeInvalidQuery, "bad regular expression: %v", err)
	}
	if n := len(prog.Inst); n > MaxRegexpSize {
		return matcher{}, Errorf(CodeInvalidQuery, "regular expression too large: it compiles to %d instructions, and the limit is %d "+
			"(a count such as {1000} repeats what it counts that many times); search for a smaller pattern, or a literal part of it", n, MaxRegexpSize)
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return matcher{}, Errorf(CodeInvalidQuery, "bad regular expression: %v", err)
	}
	return matcher{re: re, insts: len(prog.Inst)}, nil
}

// matchLine says whether the regular expression matches line, and false
// with cut set when the search stopped before it could tell.
func (sc *searcher) matchLine(line []byte) (match, halted bool) {
	if len(line)*sc.insts <= directMatchCost {
		return sc.re.Match(line), false
	}
	r := stopReader{b: line, stop: &sc.stop}
	match = sc.re.MatchReader(&r)
	return match && !r.cut, r.cut
}

// stopReader gives regexp a line rune by rune, as it decodes []byte
// (an invalid byte is utf8.RuneError of width 1), and ends it as soon as
// the search stops: regexp reads one rune per step, so a costly match
// gives way within a step.
type stopReader struct {
	b    []byte
	stop *atomic.Int32
	cut  bool // the line was ended early
}

func (r *stopReader) ReadRune() (rune, int, error) {
	if len(r.b) == 0 {
		return 0, 0, io.EOF
	}
	if r.stop.Load() != 0 {
		r.cut = true
		return 0, 0, io.EOF
	}
	if c := r.b[0]; c < utf8.RuneSelf {
		r.b = r.b[1:]
		return rune(c), 1, nil
	}
	c, n := utf8.DecodeRune(r.b)
	r.b = r.b[n:]
	return c, n, nil
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
		j.large, j.complete = true, true
		return buf
	case err != nil:
		j.complete = true // gone, swapped for a link, unreadable: skipped
		return buf
	}
	if isBinary(data) {
		j.binary, j.complete = true, true
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
		j.complete = searchLiteral(data, sc.lit, emit, &sc.stop)
		return buf
	}
	for n := 1; len(data) > 0; n++ {
		if sc.stopped() {
			return buf
		}
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		match, halted := sc.matchLine(line)
		if halted {
			return buf
		}
		if match {
			emit(n, line)
		}
	}
	j.complete = true
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
// breaks), not line by line: most files hold no match. It says whether
// it got to the end of data: it gives up between hits once stop is set.
func searchLiteral(data, lit []byte, emit func(n int, line []byte), stop *atomic.Int32) bool {
	n, start := 1, 0 // the line number of data[start:], a line's start
	for start < len(data) {
		if stop.Load() != 0 {
			return false
		}
		i := bytes.Index(data[start:], lit)
		if i < 0 {
			return true
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
	return true
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
