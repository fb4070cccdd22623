package config

import "strings"

// nearest returns the candidate closest to word by edit distance, ignoring
// case, when it is close enough to be a typo of it (at most one edit in
// three characters of word, and at least one); "" when none is.
func nearest(word string, candidates []string) string {
	w := strings.ToLower(word)
	best, bestD := "", max(1, len([]rune(w))/3)+1
	for _, c := range candidates {
		if d := editDistance(w, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// didYouMean is "did you mean PREFIX+X? " for the candidate X nearest to
// word, or "" when none is near; the prefix the names share is not
// compared, so that it makes no two names look alike.
func didYouMean(prefix, word string, candidates []string) string {
	if n := nearest(word, candidates); n != "" && n != word {
		return "did you mean " + prefix + n + "? "
	}
	return ""
}

// editDistance is the number of edits that turn a into b, in runes: one
// for each rune inserted, deleted or replaced, and for two neighbours
// swapped (the optimal string alignment distance).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
