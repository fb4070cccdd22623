package edit

import (
	"sort"
	"strconv"
	"strings"
)

// context is the number of unchanged lines a hunk shows around a change.
const context = 3

const noNewline = `\ No newline at end of file`

// Diff returns a unified diff (--- a/PATH, +++ b/PATH, @@ -a,b +c,d @@
// hunks, 3 lines of context) of old to new, at most maxLines lines of it;
// truncated says that lines were left out (the caller prints how many).
// maxLines < 1 means no limit. Lines differing only in their terminators
// differ. Equal contents give "".
func Diff(path string, old, new []byte, maxLines int) (diff string, truncated bool) {
	return unifiedDiff(path, splitLines(string(old)), splitLines(string(new)), maxLines)
}

// unifiedDiff is Diff of contents split into lines with their terminators.
func unifiedDiff(path string, a, b []string, maxLines int) (string, bool) {
	deleted, inserted := make([]bool, len(a)), make([]bool, len(b))
	diffLines(a, b, deleted, inserted, 0)
	changes := changesOf(deleted, inserted)
	if len(changes) == 0 {
		return "", false
	}
	w := &lineWriter{max: maxLines}
	w.line("--- a/", path)
	w.line("+++ b/", path)
	writeHunks(w, a, b, changes)
	return w.b.String(), w.truncated
}

// change says that a[a0:a1] became b[b0:b1].
type change struct{ a0, a1, b0, b1 int }

// changesOf reads the changes off the marks of diffLines: unmarked lines of
// a and b pair up in order, and each maximal run of marked lines is a change.
func changesOf(deleted, inserted []bool) []change {
	var out []change
	i, j := 0, 0
	for i < len(deleted) || j < len(inserted) {
		if i < len(deleted) && j < len(inserted) && !deleted[i] && !inserted[j] {
			i, j = i+1, j+1
			continue
		}
		c := change{a0: i, b0: j}
		for i < len(deleted) && deleted[i] {
			i++
		}
		for j < len(inserted) && inserted[j] {
			j++
		}
		c.a1, c.b1 = i, j
		if c.a0 == c.a1 && c.b0 == c.b1 {
			panic("edit: diff marks do not pair up") // a bug in diffLines
		}
		out = append(out, c)
	}
	return out
}

// writeHunks writes the changes as hunks, merging changes whose context
// would overlap or touch.
func writeHunks(w *lineWriter, a, b []string, changes []change) {
	for len(changes) > 0 && !w.truncated {
		n := 1
		for n < len(changes) && changes[n].a0-changes[n-1].a1 <= 2*context {
			n++
		}
		hunk := changes[:n]
		changes = changes[n:]
		first, last := hunk[0], hunk[n-1]
		a0, a1 := max(0, first.a0-context), min(len(a), last.a1+context)
		b0, b1 := first.b0-(first.a0-a0), last.b1+(a1-last.a1)
		w.line("@@ -"+hunkRange(a0, a1-a0)+" +"+hunkRange(b0, b1-b0), " @@")
		i := a0
		for _, c := range hunk {
			w.lines(" ", a[i:c.a0])
			w.lines("-", a[c.a0:c.a1])
			w.lines("+", b[c.b0:c.b1])
			i = c.a1
		}
		w.lines(" ", a[i:a1])
	}
}

// hunkRange writes a hunk's range as diff -u does: the 1-based first line
// and the count, the count left out when it is 1, and the line before the
// range for an empty one.
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return strconv.Itoa(start) + ",0"
	case 1:
		return strconv.Itoa(start + 1)
	}
	return strconv.Itoa(start+1) + "," + strconv.Itoa(count)
}

// lineWriter builds a diff of at most max lines (no limit when max < 1).
type lineWriter struct {
	b         strings.Builder
	max, n    int
	truncated bool
}

// line writes prefix+text as a line, adding a newline if text has none.
func (w *lineWriter) line(prefix, text string) {
	if w.max > 0 && w.n >= w.max {
		w.truncated = true
		return
	}
	w.n++
	w.b.WriteString(prefix)
	w.b.WriteString(text)
	if !strings.HasSuffix(text, "\n") {
		w.b.WriteByte('\n')
	}
}

// lines writes file lines with prefix, marking a last line without a
// newline as patch expects.
func (w *lineWriter) lines(prefix string, lines []string) {
	for _, l := range lines {
		if w.truncated {
			return
		}
		w.line(prefix, l)
		if !strings.HasSuffix(l, "\n") {
			w.line("", noNewline)
		}
	}
}

// Limits of the line alignment. Myers' search takes time that grows with
// the lines times the edits, and memory with the square of the edits.
const (
	// quickEdits bounds the first, cheap Myers search of a range: enough for
	// an edit's few changes however long the file.
	quickEdits = 100
	// maxEdits bounds the last one, on a range without lines to split at.
	maxEdits = 256
	// maxSplits bounds how deep patience splitting recurses.
	maxSplits = 8
)

// diffLines marks the lines of a to delete and of b to insert so that the
// unmarked lines of both are equal and in the same order. After trimming the
// common head and tail it tries Myers' shortest edit script with up to
// quickEdits edits; failing that it splits at lines that occur once on
// either side and starts again on the pieces; failing that it tries Myers
// with up to maxEdits edits; failing that it replaces the whole range.
func diffLines(a, b []string, deleted, inserted []bool, depth int) {
	for len(a) > 0 && len(b) > 0 && a[0] == b[0] {
		a, b, deleted, inserted = a[1:], b[1:], deleted[1:], inserted[1:]
	}
	for len(a) > 0 && len(b) > 0 && a[len(a)-1] == b[len(b)-1] {
		a, b = a[:len(a)-1], b[:len(b)-1]
		deleted, inserted = deleted[:len(a)], inserted[:len(b)]
	}
	if len(a) > 0 && len(b) > 0 && (myers(a, b, deleted, inserted, quickEdits) ||
		split(a, b, deleted, inserted, depth) ||
		len(a)+len(b) > quickEdits && myers(a, b, deleted, inserted, maxEdits)) {
		return
	}
	fill(deleted)
	fill(inserted)
}

// split diffs the pieces of a and b between their unique common lines,
// unless there are none or the splitting has gone deep enough.
func split(a, b []string, deleted, inserted []bool, depth int) bool {
	if depth >= maxSplits {
		return false
	}
	anchors := uniqueAnchors(a, b)
	if len(anchors) == 0 {
		return false
	}
	i, j := 0, 0
	for _, p := range anchors {
		diffLines(a[i:p.a], b[j:p.b], deleted[i:p.a], inserted[j:p.b], depth+1)
		i, j = p.a+1, p.b+1
	}
	diffLines(a[i:], b[j:], deleted[i:], inserted[j:], depth+1)
	return true
}

func fill(marks []bool) {
	for i := range marks {
		marks[i] = true
	}
}

// myers marks a shortest edit script from a to b (Myers 1986, "An O(ND)
// difference algorithm"), or returns false, marking nothing, when it has more
// than most edits.
func myers(a, b []string, deleted, inserted []bool, most int) bool {
	n, m := len(a), len(b)
	if max(n-m, m-n) > most {
		return false // every script has at least that many
	}
	limit := min(most, n+m)
	// v[off+k] is the furthest x reached on diagonal k = x-y, or -1.
	off := limit + 1
	v := make([]int, 2*limit+3)
	for i := range v {
		v[i] = -1
	}
	v[off+1] = 0 // so that the first step lands on (0, 0)
	var trace [][]int
	for d := 0; d <= limit; d++ {
		for k := -d; k <= d; k += 2 {
			x, _ := myersStep(v[off+k+1], v[off+k-1], k, n, m)
			if x >= 0 {
				for x < n && x-k < m && a[x] == b[x-k] {
					x++
				}
			}
			v[off+k] = x
			if x == n && x-k == m {
				myersMark(trace, n, m, deleted, inserted)
				return true
			}
		}
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
	}
	return false
}

// myersStep returns the furthest x that one edit reaches on diagonal k, from
// down (the x of diagonal k+1, an insertion away) or right (the x of
// diagonal k-1, a deletion away), and whether it was the insertion. Moves
// that leave the n by m grid do not count; x is -1 when none is left.
func myersStep(down, right, k, n, m int) (x int, insert bool) {
	x = -1
	if down >= 0 && down-k <= m {
		x, insert = down, true
	}
	if right >= 0 && right+1 <= n && right+1 > x {
		x, insert = right+1, false
	}
	return x, insert
}

// myersMark walks the trace of myers back from (n, m), marking the edit of
// each step.
func myersMark(trace [][]int, n, m int, deleted, inserted []bool) {
	x, y := n, m
	for d := len(trace); d > 0; d-- {
		prev := trace[d-1] // v after d-1 edits, for diagonals -(d-1) to d-1
		at := func(k int) int {
			if k < -(d-1) || k > d-1 {
				return -1
			}
			return prev[k+d-1]
		}
		k := x - y
		px, insert := myersStep(at(k+1), at(k-1), k, n, m)
		if insert {
			inserted[px-k-1] = true
			x, y = px, px-k-1
		} else {
			deleted[px-1] = true
			x, y = px-1, px-k
		}
	}
}

// anchor pairs a line of a with the equal line of b.
type anchor struct{ a, b int }

// uniqueAnchors returns the longest chain, increasing in both a and b, of
// lines that occur exactly once in a and once in b (patience diff).
func uniqueAnchors(a, b []string) []anchor {
	inA := make(map[string]int, len(a)) // index, or -1 when repeated
	for i, s := range a {
		note(inA, s, i)
	}
	inB := make(map[string]int, len(b))
	for j, s := range b {
		if i, ok := inA[s]; ok && i >= 0 {
			note(inB, s, j)
		}
	}
	var pairs []anchor
	for j, s := range b {
		if at, ok := inB[s]; ok && at == j {
			pairs = append(pairs, anchor{a: inA[s], b: j})
		}
	}
	return longestIncreasing(pairs)
}

// note records in at that line s is at index i, or -1 once it is seen again.
func note(at map[string]int, s string, i int) {
	if _, seen := at[s]; seen {
		at[s] = -1
	} else {
		at[s] = i
	}
}

// longestIncreasing returns the longest subsequence of pairs (ordered by b)
// whose a increases too, by patience sorting.
func longestIncreasing(pairs []anchor) []anchor {
	var tops []int                  // tops[l]: index in pairs of the smallest a ending a chain of length l+1
	prev := make([]int, len(pairs)) // the index before each pair in its chain
	for i, p := range pairs {
		lo := sort.Search(len(tops), func(l int) bool { return pairs[tops[l]].a >= p.a })
		prev[i] = -1
		if lo > 0 {
			prev[i] = tops[lo-1]
		}
		if lo == len(tops) {
			tops = append(tops, i)
		} else {
			tops[lo] = i
		}
	}
	if len(tops) == 0 {
		return nil
	}
	chain := make([]anchor, len(tops))
	for i, l := tops[len(tops)-1], len(tops)-1; l >= 0; i, l = prev[i], l-1 {
		chain[l] = pairs[i]
	}
	return chain
}
