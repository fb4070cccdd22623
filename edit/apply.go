package edit

import (
	"slices"
	"strings"
)

// maxDiffLines caps Result.Diff: the model already knows what it meant to
// change, and a long diff would crowd out the rest of its context. Call Diff
// for another cap.
const maxDiffLines = 200

// Apply applies the blocks in order, each to the result of the previous
// ones; all apply or none (on error the content is untouched and Result is
// nil). The errors are *NoMatchError, *AmbiguousError, *IndentError, and
// *SyntaxError for a block with no SEARCH lines (which Parse never returns).
// path only names the file in the diff.
//
// Lines are kept with their terminators throughout, as substrings of one copy
// of content, so that the diff can reuse them and nothing is copied per line.
func Apply(path string, content []byte, blocks []Block) (*Result, error) {
	old := splitLines(string(content)) // a copy: the caller may reuse content
	cur, owned := old, false
	var (
		loose    []int
		replaced []Replaced
	)
	for i, b := range blocks {
		splices, wasLoose, err := applyBlock(cur, b, i+1)
		if err != nil {
			return nil, err
		}
		if !owned { // the first change copies, leaving old for the diff
			cur, owned = slices.Clone(cur), true
		}
		for _, s := range slices.Backward(splices) { // the last first: earlier indexes hold
			cur = slices.Replace(cur, s.start, s.start+s.count, s.with...)
		}
		if wasLoose {
			loose = append(loose, i+1)
		}
		if b.All {
			r := Replaced{Block: i + 1, Lines: make([]int, len(splices))}
			for k, s := range splices {
				r.Lines[k] = s.start + 1
			}
			replaced = append(replaced, r)
		}
	}
	diff, truncated := unifiedDiff(path, old, cur, maxDiffLines)
	return &Result{
		Content:       []byte(strings.Join(cur, "")),
		Applied:       len(blocks),
		Loose:         loose,
		Replaced:      replaced,
		Diff:          diff,
		DiffTruncated: truncated,
	}, nil
}

// A splice is a change to the lines: the count lines from start are to be
// replaced by with.
type splice struct {
	start, count int
	with         []string
}

// applyBlock finds block number n in lines and says what to put where: one
// splice, or for a block marked All one per place it matches, in order and
// not overlapping. loose says the match was loose.
func applyBlock(lines []string, b Block, n int) (splices []splice, loose bool, err error) {
	if len(b.Search) == 0 {
		return nil, false, &SyntaxError{Line: b.Line, Msg: "the SEARCH part is empty: put in it the lines to change"}
	}
	at := matches(lines, b.Search, text)
	if b.All {
		return replaceAll(lines, b, n, at)
	}
	if len(at) == 0 {
		at, loose = matches(lines, b.Search, trimSpace), true
	}
	switch len(at) {
	case 0:
		return nil, false, &NoMatchError{Block: n, Closest: closest(lines, b.Search)}
	case 1:
	default:
		for i := range at {
			at[i]++
		}
		return nil, false, &AmbiguousError{Block: n, Count: len(at), Lines: at}
	}
	start, count := at[0], len(b.Search)
	replace := b.Replace
	if loose {
		if replace, err = reindent(lines, start, b.Search, replace, n); err != nil {
			return nil, false, err
		}
	}
	return []splice{{start, count, terminate(replace, lines, start, count)}}, loose, nil
}

// replaceAll is applyBlock for a block marked All, given the places its
// SEARCH matches exactly (at): each is replaced, from the first on, except
// one that overlaps the place replaced before it (as strings.ReplaceAll
// does). A loose match never counts: what is replaced everywhere must be
// what the model saw, and white space may be all that tells two places
// apart.
func replaceAll(lines []string, b Block, n int, at []int) ([]splice, bool, error) {
	if len(at) == 0 {
		return nil, false, &NoMatchError{Block: n, All: true, Loose: len(matches(lines, b.Search, trimSpace)), Closest: closest(lines, b.Search)}
	}
	count := len(b.Search)
	splices := make([]splice, 0, len(at))
	next := 0
	for _, start := range at {
		if start < next {
			continue
		}
		splices = append(splices, splice{start, count, terminate(b.Replace, lines, start, count)})
		next = start + count
	}
	return splices, false, nil
}

// text is a line without its terminator, "\n" or "\r\n"; it is the key of
// exact matching. A CR is part of the terminator only right before the LF.
func text(line string) string {
	if t, ok := strings.CutSuffix(line, "\n"); ok {
		return strings.TrimSuffix(t, "\r")
	}
	return line
}

// trimSpace is the key of loose matching: the line without spaces, tabs, CRs
// and LFs at its ends, so it also drops the terminator.
func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && blank[s[i]] {
		i++
	}
	for j > i && blank[s[j-1]] {
		j--
	}
	return s[i:j]
}

// blank holds the bytes trimSpace trims; a table is faster than comparisons
// in the hot loops of loose matching.
var blank = [256]bool{' ': true, '\t': true, '\r': true, '\n': true}

// matches returns the 0-based index of the first line of every run of lines
// whose keys equal the keys of search.
func matches(lines, search []string, key func(string) string) []int {
	want := make([]string, len(search))
	for i, s := range search {
		want[i] = key(s)
	}
	var at []int
	for i := 0; i+len(want) <= len(lines); i++ {
		if runEquals(lines[i:i+len(want)], want, key) {
			at = append(at, i)
		}
	}
	return at
}

func runEquals(lines, want []string, key func(string) string) bool {
	for j, w := range want {
		if key(lines[j]) != w {
			return false
		}
	}
	return true
}

// indentation is the leading spaces and tabs of s.
func indentation(s string) string {
	return s[:len(s)-len(strings.TrimLeft(s, " \t"))]
}

// terminate gives the replacement lines for lines[start:start+n] their
// terminators: that of the first replaced line, and none on the last one
// when the last replaced line had none. A replacement line holding "\n",
// against the contract of Block, becomes several lines, so that every line
// of the result is one line.
func terminate(replace, lines []string, start, n int) []string {
	eol := terminator(lines[start])
	if eol == "" && start > 0 {
		eol = terminator(lines[start-1])
	}
	if eol == "" {
		eol = "\n"
	}
	out := make([]string, 0, len(replace))
	for _, r := range replace {
		for {
			part, rest, found := strings.Cut(r, "\n")
			out = append(out, part+eol)
			if !found {
				break
			}
			r = rest
		}
	}
	if len(out) > 0 && terminator(lines[start+n-1]) == "" {
		out[len(out)-1] = strings.TrimSuffix(out[len(out)-1], eol)
	}
	return out
}

// terminator is the "\n", "\r\n" or "" that ends line.
func terminator(line string) string { return line[len(text(line)):] }

// splitLines splits s into lines that keep their terminators; a final line
// without one is a line too, and an empty s has no lines.
func splitLines(s string) []string {
	lines := make([]string, 0, strings.Count(s, "\n")+1)
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n') + 1
		if i == 0 {
			i = len(s)
		}
		lines, s = append(lines, s[:i]), s[i:]
	}
	return lines
}
