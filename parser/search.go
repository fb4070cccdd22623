package parser

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Query is a search's argument in its parts.
type Query struct {
	// Text is what is searched for: a literal string, or with Regex a
	// regular expression (RE2), written "re:PATTERN" in the command
	// language. It may be empty (<search "">): the search says so.
	Text  string `json:"text,omitempty"`
	Regex bool   `json:"regex,omitempty"`
	// Scope is the glob of " in GLOB", or "" for every file.
	Scope string `json:"scope,omitempty"`
	// Context is N of " -C N", the lines shown around each match, from 1
	// to MaxContext; 0 without -C.
	Context int `json:"context,omitempty"`
	// Max lists at most this many matches (a front end's; the command
	// language has none), 0 for the sandbox's limit.
	Max int `json:"max,omitempty"`
}

// String is the query as the command language writes it: "re:" before a
// regular expression.
func (q Query) String() string {
	if q.Regex {
		return "re:" + q.Text
	}
	return q.Text
}

// MaxContext is the largest N of " -C N".
const MaxContext = 20

// The forms of a -C: "-C" and a number, as words of their own (the
// number may follow the -C without a space). A number is digits, with a
// sign or a decimal point if the model wrote them, so that "-C -1" and
// "-C 2.5" are refused rather than searched for.
var (
	finalContext   = regexp.MustCompile(`^(.*\S)[ \t]+-C[ \t]*([+-]?[0-9][0-9.]*)$`)
	leadingContext = regexp.MustCompile(`^-C[ \t]*([+-]?[0-9][0-9.]*)[ \t]+(\S.*)$`)
)

// ParseSearch splits a search's argument into its parts, by the grammar
// in the package doc. Its errors are messages for the model: what is
// wrong, and the command to write instead.
func ParseSearch(arg string) (Query, error) {
	var q Query
	rest := arg
	if m := finalContext.FindStringSubmatch(arg); m != nil {
		n, err := strconv.Atoi(m[2])
		if err != nil || n < 1 || n > MaxContext {
			return q, fmt.Errorf("-C %s: the lines of context are a whole number from 1 to %d, written last, after the scope if there is one "+
				"(<search QUERY -C N>, <search QUERY in GLOB -C N>)%s", m[2], MaxContext, quoteHint(arg))
		}
		rest, q.Context = m[1], n
	}
	body, scope := rest, ""
	if i := strings.LastIndex(rest, " in "); i > 0 && isScope(rest[i+len(" in "):]) {
		body, scope = rest[:i], rest[i+len(" in "):]
	}
	if m := finalContext.FindStringSubmatch(body); m != nil {
		if scope == "" {
			return q, fmt.Errorf("-C %s and -C %d: one -C N, written last: <search %s -C %d>%s", m[2], q.Context, m[1], q.Context, quoteHint(body))
		}
		return q, fmt.Errorf("-C %s comes before the scope: -C N is written last, after it: <search %s in %s -C %s>%s",
			m[2], m[1], scope, m[2], quoteHint(rest))
	}
	if m := leadingContext.FindStringSubmatch(rest); m != nil {
		return q, fmt.Errorf("-C %s comes before the query: -C N is written last: <search %s -C %s>%s", m[1], m[2], m[1], quoteHint(rest))
	}
	var err error
	q.Text, q.Scope, err = splitScope(rest)
	if text, ok := strings.CutPrefix(q.Text, "re:"); ok {
		q.Text, q.Regex = text, true
	}
	return q, err
}

// quoteHint tells how to search for a text that reads as a -C: in quotes,
// for a query that is not already quoted.
func quoteHint(arg string) string {
	if strings.HasPrefix(arg, `"`) {
		return ""
	}
	text, scope, _ := splitScope(arg)
	if scope != "" {
		scope = " in " + scope
	}
	return fmt.Sprintf(`; to search for the text itself, put it in quotes: <search "%s"%s>`, text, scope)
}

// splitScope splits a search's argument, its -C taken off, into the query
// and the scope.
func splitScope(arg string) (query, scope string, err error) {
	if strings.HasPrefix(arg, `"`) {
		end := strings.LastIndex(arg, `"`)
		if i := strings.LastIndex(arg, `" in `); i > 0 && isScope(arg[i+len(`" in `):]) {
			end = i
		}
		if end <= 0 {
			return "", "", fmt.Errorf(`the quoted query has no closing quote; write <search "TEXT"> or <search "TEXT" in GLOB>`)
		}
		query, rest := arg[1:end], arg[end+1:]
		if rest == "" {
			return query, "", nil
		}
		s, ok := strings.CutPrefix(rest, " in ")
		if !ok || !isScope(s) {
			return "", "", fmt.Errorf(`after the quoted query comes nothing, " in GLOB", or " -C N"; not %q`, rest)
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
