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
	patterns []string // lower case, without leading or trailing slashes
	original []string
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
		e.patterns = append(e.patterns, strings.ToLower(strings.Trim(p, "/")))
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
	for i, p := range e.patterns {
		n := strings.Count(p, "/") + 1
		for start := 0; start+n <= len(comps); start++ {
			if ok, _ := path.Match(p, strings.Join(comps[start:start+n], "/")); ok {
				return e.original[i], true
			}
		}
	}
	return "", false
}
