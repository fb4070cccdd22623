package sandbox

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
)

// ignoreRule is one line of a .gitignore file.
type ignoreRule struct {
	re      *regexp.Regexp // matched against the path relative to the file's directory
	negate  bool
	dirOnly bool
}

// parseGitignore compiles the rules of a .gitignore file, following
// gitignore(5): blank lines and '#' comments are skipped, '!' negates, a
// trailing '/' matches only directories, a pattern with a slash at the
// start or in the middle is anchored to the file's directory, and '*', '?',
// '[...]' and '**' glob. Lines that do not compile are skipped, as git does.
func parseGitignore(data []byte) []ignoreRule {
	var rules []ignoreRule
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = trimUnescapedSpace(line)
		var r ignoreRule
		if strings.HasPrefix(line, "!") {
			r.negate, line = true, line[1:]
		} else if strings.HasPrefix(line, `\!`) || strings.HasPrefix(line, `\#`) {
			line = line[1:]
		}
		if strings.HasSuffix(line, "/") {
			r.dirOnly, line = true, strings.TrimRight(line, "/")
		}
		if line == "" {
			continue
		}
		anchored := strings.Contains(line, "/")
		line = strings.TrimPrefix(line, "/")
		re, err := regexp.Compile(globRegexp(line, anchored))
		if err != nil {
			continue
		}
		r.re = re
		rules = append(rules, r)
	}
	return rules
}

func trimUnescapedSpace(s string) string {
	for strings.HasSuffix(s, " ") && !strings.HasSuffix(s, `\ `) {
		s = s[:len(s)-1]
	}
	return s
}

// GlobMatcher compiles a glob of slash-separated paths, with the syntax of
// .gitignore: "**" any depth, "*" and "?" within a name, [...] a class;
// it matches whole paths ("*.go" a name at the top, "**/*.go" at any depth).
func GlobMatcher(g string) (func(string) bool, error) {
	re, err := regexp.Compile(globRegexp(g, true))
	if err != nil {
		return nil, Errorf(CodeInvalidQuery, "bad pattern %q: %v", g, err)
	}
	return re.MatchString, nil
}

// globRegexp translates a gitignore glob into an anchored regular expression.
func globRegexp(g string, anchored bool) string {
	var b strings.Builder
	b.WriteString("^")
	if !anchored {
		b.WriteString("(?:.*/)?")
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		switch {
		case strings.HasPrefix(g[i:], "**/") && (i == 0 || g[i-1] == '/'):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(g[i:], "/**") && i+3 == len(g):
			b.WriteString("/.*")
			i += 2
		case strings.HasPrefix(g[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			end := strings.IndexByte(g[i+1:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := g[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += end + 1
		case c == '\\' && i+1 < len(g):
			i++
			b.WriteString(regexp.QuoteMeta(string(g[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return b.String()
}

// ignorer answers whether a path is ignored by the .gitignore files of its
// ancestors (and .git/info/exclude). The search enters each directory
// before it asks about anything in it, and hands over the directory's
// files then (enter), read on the descriptor it walks.
type ignorer struct {
	rules map[string][]ignoreRule // by directory ("." for the root)
	n     int                     // directories with rules
}

func newIgnorer() *ignorer { return &ignorer{rules: map[string][]ignoreRule{}} }

// enter sets the rules of dir from the contents of its ignore files, in
// order (for the root: .git/info/exclude, then .gitignore); nil means none.
func (g *ignorer) enter(dir string, files ...[]byte) {
	var r []ignoreRule
	for _, f := range files {
		r = append(r, parseGitignore(f)...)
	}
	if len(g.rules[dir]) > 0 {
		g.n--
	}
	if len(r) > 0 {
		g.n++
	}
	g.rules[dir] = r
}

// ignored reports whether rel is ignored. The caller walks top-down and does
// not descend into ignored directories, so only rel itself is checked; the
// last matching rule, from the deepest .gitignore, decides.
func (g *ignorer) ignored(rel string, isDir bool) bool {
	if g.n == 0 {
		return false // no rules anywhere: the common case, without a cost
	}
	ignored := false
	check := func(dir, sub string) {
		for _, r := range g.rules[dir] {
			if r.dirOnly && !isDir {
				continue
			}
			if r.re.MatchString(sub) {
				ignored = !r.negate
			}
		}
	}
	check(".", rel)
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' {
			check(rel[:i], rel[i+1:])
		}
	}
	return ignored
}
