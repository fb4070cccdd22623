package sandbox

import (
	"fmt"
	"path"
	"strings"
)

// excluder matches repository-relative paths against exclusion patterns.
//
// A pattern without a slash ("*.pem", ".git") is matched against every
// component of the path, so it excludes that name at any depth and
// everything below it. A pattern with a slash ("config/secrets") is matched
// against every run of consecutive components, so "config/secrets" excludes
// "config/secrets/x" and "app/config/secrets". Matching ignores case, so a
// case-insensitive file system cannot be used to slip past a pattern.
type excluder struct {
	patterns []glob // lower case, without leading or trailing slashes
	original []string
}

// glob is a compiled pattern. The common shapes of one component (exact,
// a*, *b) are matched without path.Match: every component of every path is
// put to every pattern, on the path of every operation.
type glob struct {
	pat      string // lower case
	n        int    // components
	kind     int    // globExact, globPrefix, globSuffix or globGeneral
	pre, suf string
}

const (
	globGeneral = iota
	globExact
	globPrefix // pre*
	globSuffix // *suf
)

func compileGlob(p string) glob {
	g := glob{pat: p, n: strings.Count(p, "/") + 1}
	switch {
	case g.n > 1 || strings.ContainsAny(p, "?[\\"):
	case !strings.Contains(p, "*"):
		g.kind = globExact
	case strings.Count(p, "*") == 1 && strings.HasSuffix(p, "*"):
		g.kind, g.pre = globPrefix, strings.TrimSuffix(p, "*")
	case strings.Count(p, "*") == 1 && strings.HasPrefix(p, "*"):
		g.kind, g.suf = globSuffix, strings.TrimPrefix(p, "*")
	}
	return g
}

// matches reports whether s (lower case; g.n components) matches.
func (g *glob) matches(s string) bool {
	switch g.kind {
	case globExact:
		return s == g.pat
	case globPrefix:
		return strings.HasPrefix(s, g.pre)
	case globSuffix:
		return strings.HasSuffix(s, g.suf)
	}
	ok, _ := path.Match(g.pat, s)
	return ok
}

// ValidatePattern reports whether p is a usable exclusion pattern.
func ValidatePattern(p string) error {
	q := strings.Trim(p, "/")
	if q == "" {
		return fmt.Errorf("empty pattern %q", p)
	}
	if _, err := path.Match(strings.ToLower(q), ""); err != nil {
		return fmt.Errorf("bad pattern %q: %v", p, err)
	}
	return nil
}

func newExcluder(patterns []string) (*excluder, error) {
	e := &excluder{}
	for _, p := range patterns {
		if err := ValidatePattern(p); err != nil {
			return nil, err
		}
		e.patterns = append(e.patterns, compileGlob(strings.ToLower(strings.Trim(p, "/"))))
		e.original = append(e.original, p)
	}
	return e, nil
}

// match returns the pattern that excludes rel, a cleaned relative path.
func (e *excluder) match(rel string) (string, bool) {
	if rel == "." || rel == "" {
		return "", false
	}
	comps := strings.Split(strings.ToLower(rel), "/")
	for i := range e.patterns {
		p := &e.patterns[i]
		for start := 0; start+p.n <= len(comps); start++ {
			s := comps[start]
			if p.n > 1 {
				s = strings.Join(comps[start:start+p.n], "/")
			}
			if p.matches(s) {
				return e.original[i], true
			}
		}
	}
	return "", false
}

// matchLast returns the pattern that excludes the path dir/name by a run
// of components ending at name: the walk checks each component as it
// steps into it, so the runs ending earlier were checked at earlier steps.
func (e *excluder) matchLast(dir []string, name string) (string, bool) {
	lower := strings.ToLower(name)
	for i := range e.patterns {
		p := &e.patterns[i]
		switch {
		case p.n == 1:
			if p.matches(lower) {
				return e.original[i], true
			}
		case p.n <= len(dir)+1:
			if p.matches(strings.ToLower(strings.Join(dir[len(dir)-(p.n-1):], "/")) + "/" + lower) {
				return e.original[i], true
			}
		}
	}
	return "", false
}
