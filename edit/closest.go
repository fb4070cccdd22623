package edit

import "math/bits"

// How many lines a NoMatchError or an IndentError shows: the window most
// like the SEARCH, or the lines it matched, with closestContext lines either
// side, at most maxClosest lines in all.
const (
	closestContext = 1
	maxClosest     = 10
)

// closest returns the lines of the file most like search, for a model to
// copy from: the best window with a line of context, cut to maxClosest lines
// around the window's first line that differs from search.
func closest(lines, search []string) []Line {
	if len(lines) == 0 {
		return nil
	}
	want := make([]string, len(search))
	for i, s := range search {
		want[i] = trimSpace(s)
	}
	start := bestWindow(lines, want)
	end := min(len(lines), start+len(want))
	return around(lines, start, end, start+firstDifference(lines[start:end], want))
}

// around returns lines[from:to] with closestContext lines either side, at
// most maxClosest lines, cut around the line focus.
func around(lines []string, from, to, focus int) []Line {
	from, to = max(0, from-closestContext), min(len(lines), to+closestContext)
	if to-from > maxClosest {
		from = max(from, focus-maxClosest/2)
		to = min(to, from+maxClosest)
	}
	out := make([]Line, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, Line{N: i + 1, Text: text(lines[i])})
	}
	return out
}

// bestWindow returns the start of the run of len(want) lines with the most
// lines equal to want once trimmed, ties going to the run whose characters
// are most alike. It makes len(lines)*len(want) cheap comparisons, linear in
// the file; the likeness is worked out only for the tied runs.
func bestWindow(lines, want []string) int {
	var tied []int
	best := -1
	for s := 0; s == 0 || s+len(want) <= len(lines); s++ {
		equal := 0
		for j := 0; j < len(want) && s+j < len(lines); j++ {
			if trimSpace(lines[s+j]) == want[j] {
				equal++
			}
		}
		switch {
		case equal > best:
			best, tied = equal, append(tied[:0], s)
		case equal == best:
			tied = append(tied, s)
		}
	}
	if len(tied) == 1 {
		return tied[0]
	}
	wantPrints := make([]fingerprint, len(want))
	for j, w := range want {
		wantPrints[j] = fingerprintOf(w)
	}
	prints := make([]fingerprint, len(lines)) // filled in as needed
	done := make([]bool, len(lines))
	start, bestSim := tied[0], -1
	for _, s := range tied {
		sim := 0
		for j := 0; j < len(want) && s+j < len(lines); j++ {
			if !done[s+j] {
				prints[s+j], done[s+j] = fingerprintOf(trimSpace(lines[s+j])), true
			}
			sim += prints[s+j].similarity(wantPrints[j])
		}
		if sim > bestSim {
			start, bestSim = s, sim
		}
	}
	return start
}

// firstDifference is the index of the first of lines unlike want, or 0.
func firstDifference(lines, want []string) int {
	for j, l := range lines {
		if trimSpace(l) != want[j] {
			return j
		}
	}
	return 0
}

// fingerprint is the set of a line's character pairs, hashed into 128 bits:
// a cheap measure of likeness between lines.
type fingerprint [2]uint64

func fingerprintOf(s string) fingerprint {
	var f fingerprint
	add := func(x, y byte) {
		h := (uint32(x)<<8 | uint32(y)) * 0x9e3779b1 >> 25 // 0 to 127
		f[h>>6] |= 1 << (h & 63)
	}
	if len(s) == 1 {
		add(s[0], s[0])
	}
	for i := 0; i+1 < len(s); i++ {
		add(s[i], s[i+1])
	}
	return f
}

// simScale is the similarity of two lines with the same character pairs.
const simScale = 1 << 10

// similarity is the Jaccard index of the two sets of character pairs, scaled
// to simScale.
func (f fingerprint) similarity(g fingerprint) int {
	union := bits.OnesCount64(f[0]|g[0]) + bits.OnesCount64(f[1]|g[1])
	if union == 0 {
		return simScale
	}
	common := bits.OnesCount64(f[0]&g[0]) + bits.OnesCount64(f[1]&g[1])
	return common * simScale / union
}
