package edit

import (
	"fmt"
	"strings"
)

// A loose match compares lines without their leading white space, so the
// SEARCH's indentation may differ from the file's: models write four
// spaces for a tab, two for four, or drop the indentation the lines have
// in the file. The REPLACE lines are written in the model's indentation
// too, and must be given the file's before they go in: a Python file
// indented with tabs that gets lines indented with spaces no longer runs.
// reindent does that, in three steps, and refuses when it cannot say how.
//
//  1. When every non-blank SEARCH line is indented as the file's line it
//     matched (only white space at the ends of lines differed), REPLACE
//     goes in as written, as after an exact match.
//  2. Otherwise each SEARCH indentation stands for the file's indentation
//     of the line it matched; two SEARCH lines indented alike must stand
//     for the same. When every REPLACE line is indented as some SEARCH
//     line, it gets that line's file indentation.
//  3. Otherwise indentation is counted in levels: whole units (a tab, or
//     the number of spaces a level takes), then alignment spaces. The
//     file's unit comes from the matched lines (and the rest of the file
//     when they do not tell): tabs if they indent with tabs, else spaces,
//     as many as the file's most common step in. The model's unit comes
//     from the SEARCH lines against the file's (a tab, or the spaces a
//     SEARCH level takes where the file's level changes), else from the
//     model's own most common step. Every SEARCH line must then be its
//     file line's level less one shift, with the same alignment; each
//     REPLACE line is given its level plus that shift, written in the
//     file's unit, and its alignment. A REPLACE line whose spaces are not
//     whole levels goes in only where the matched lines align so too,
//     since in a file indented with tabs they would mix.
//
// A refusal is an *IndentError naming the lines and saying why.

// reindent returns the REPLACE lines of block n indented as the file
// indents the lines lines[start:start+len(search)] that its SEARCH matched
// loosely, or an *IndentError.
func reindent(lines []string, start int, search, replace []string, n int) ([]string, error) {
	matched := lines[start : start+len(search)]
	var pairs []indentPair
	same := true
	for i, s := range search {
		if trimSpace(s) == "" {
			continue
		}
		p := indentPair{search: i, model: indentation(s), file: indentation(matched[i])}
		pairs = append(pairs, p)
		same = same && p.model == p.file
	}
	if same || len(pairs) == 0 {
		return replace, nil
	}
	fail := func(focus int, format string, args ...any) error {
		return &IndentError{Block: n, First: start + 1, Last: start + len(search), Reason: fmt.Sprintf(format, args...),
			Closest: around(lines, start, start+len(search), start+focus)}
	}

	// 2: the SEARCH's indentations, each for the file's.
	table := map[string]indentPair{}
	for _, p := range pairs {
		if q, ok := table[p.model]; ok && q.file != p.file {
			return nil, fail(p.search, "SEARCH lines %d and %d are indented alike (%s), but the file's lines %d and %d are not (%s, and %s)",
				q.search+1, p.search+1, describe(p.model), start+q.search+1, start+p.search+1, describe(q.file), describe(p.file))
		}
		table[p.model] = p
	}
	out, known := make([]string, len(replace)), true
	for i, r := range replace {
		p, ok := table[indentation(r)]
		switch {
		case trimSpace(r) == "":
			out[i] = r
		case ok:
			out[i] = p.file + r[len(p.model):]
		default:
			known = false
		}
	}
	if known {
		return out, nil
	}

	// 3: levels.
	model := modelStyle(search, replace)
	file, indents, why := fileStyle(lines, matched)
	if why != "" {
		return nil, fail(0, "%s", why)
	}
	if !indents { // nothing says to use another unit than the model's
		file = model
	}
	fileIn := make([]indent, len(pairs))
	for i, p := range pairs {
		in, ok := file.parse(p.file)
		if !ok {
			return nil, fail(p.search, "the file's line %d is indented with %s, which is not how the file indents (%s)",
				start+p.search+1, describe(p.file), file)
		}
		fileIn[i] = in
	}
	if !model.tabs {
		// The spaces of a SEARCH level, where the file's level changes.
		for i := 1; i < len(pairs); i++ {
			a, b := pairs[0], pairs[i]
			dl := fileIn[i].level - fileIn[0].level
			if dl == 0 {
				continue
			}
			dw := (len(b.model) - fileIn[i].align) - (len(a.model) - fileIn[0].align)
			if dw%dl != 0 || dw/dl <= 0 {
				return nil, fail(b.search, "SEARCH lines %d and %d are indented %s and %s, where the file's lines %d and %d are %s and %s: the SEARCH's levels do not follow the file's",
					a.search+1, b.search+1, describe(a.model), describe(b.model), start+a.search+1, start+b.search+1, describe(a.file), describe(b.file))
			}
			model.unit = dw / dl
			break
		}
	}
	shift, aligns := 0, map[int]bool{}
	for i, p := range pairs {
		in, ok := model.parse(p.model)
		if ok {
			ok = in.align == fileIn[i].align
		}
		d := fileIn[i].level - in.level
		if ok && i > 0 && d != shift {
			ok = false
		}
		if !ok {
			return nil, fail(p.search, "SEARCH line %d is indented %s where the file's line %d is %s, which is not the same number of levels shifted as the lines before it (the SEARCH's indentation reads as %s)",
				p.search+1, describe(p.model), start+p.search+1, describe(p.file), model)
		}
		shift, aligns[in.align] = d, true
	}
	for i, r := range replace {
		if trimSpace(r) == "" || out[i] != "" { // blank, or indented as a SEARCH line: done above
			continue
		}
		ind := indentation(r)
		in, ok := model.parse(ind)
		switch {
		case !ok:
			return nil, fail(0, "REPLACE line %d is indented with %s, which is not how the SEARCH indents (%s)", i+1, describe(ind), model)
		case in.level+shift < 0:
			return nil, fail(0, "REPLACE line %d is indented %s, less than the file's lines allow", i+1, describe(ind))
		case file.tabs && !model.tabs && in.align > 0 && !aligns[in.align]:
			return nil, fail(0, "REPLACE line %d is indented %s, which is not whole levels of the SEARCH's %s, and the file indents with tabs", i+1, describe(ind), model)
		}
		out[i] = file.format(indent{in.level + shift, in.align}) + r[len(ind):]
	}
	return out, nil
}

// indentPair is a non-blank SEARCH line's indentation and that of the
// file's line it matched.
type indentPair struct {
	search      int // 0-based line of the SEARCH
	model, file string
}

// indent is an indentation counted in a style: whole levels, then spaces
// of alignment.
type indent struct{ level, align int }

// indentStyle is how a text indents: a tab a level, or unit spaces.
type indentStyle struct {
	tabs bool
	unit int // spaces a level, when not tabs; 0: not known (nothing is indented)
}

func (st indentStyle) String() string {
	switch {
	case st.tabs:
		return "a tab a level"
	case st.unit == 1:
		return "1 space a level"
	}
	return fmt.Sprintf("%d spaces a level", st.unit)
}

// parse counts s, a line's leading spaces and tabs, in st. It fails on a
// tab after a space, and on a tab where st indents with spaces.
func (st indentStyle) parse(s string) (indent, bool) {
	tabs := len(s) - len(strings.TrimLeft(s, "\t"))
	spaces := len(s) - tabs
	if strings.IndexByte(s[tabs:], '\t') >= 0 {
		return indent{}, false
	}
	if st.tabs {
		return indent{tabs, spaces}, true
	}
	if tabs > 0 {
		return indent{}, false
	}
	if st.unit == 0 {
		return indent{0, spaces}, true
	}
	return indent{spaces / st.unit, spaces % st.unit}, true
}

// format writes in in st.
func (st indentStyle) format(in indent) string {
	if st.tabs {
		return strings.Repeat("\t", in.level) + strings.Repeat(" ", in.align)
	}
	return strings.Repeat(" ", in.level*st.unit+in.align)
}

// fileStyle is how the file indents, as the matched lines show it, or the
// whole file where they do not (they indent with both, or not at all).
// indents is false when no line of the file is indented; why is set when
// the style cannot be told.
func fileStyle(lines, matched []string) (st indentStyle, indents bool, why string) {
	tabs, spaces := leading(matched)
	if tabs > 0 && spaces > 0 || tabs+spaces == 0 {
		tabs, spaces = leading(lines)
	}
	switch {
	case tabs > spaces:
		return indentStyle{tabs: true}, true, ""
	case spaces > tabs:
		return indentStyle{unit: step(lines)}, true, ""
	case tabs > 0:
		return st, true, fmt.Sprintf("the file indents as many lines with tabs as with spaces (%d), so it cannot be told which the new indentation should use", tabs)
	}
	return st, false, ""
}

// leading counts the non-blank lines that begin with a tab, and with a
// space.
func leading(lines []string) (tabs, spaces int) {
	for _, l := range lines {
		switch {
		case trimSpace(l) == "":
		case l[0] == '\t':
			tabs++
		case l[0] == ' ':
			spaces++
		}
	}
	return tabs, spaces
}

// modelStyle is how the SEARCH and REPLACE lines indent: with tabs if one
// begins with a tab, else with spaces, as many a level as the most common
// step between them.
func modelStyle(search, replace []string) indentStyle {
	if tabs, _ := leading(search); tabs > 0 {
		return indentStyle{tabs: true}
	}
	if tabs, _ := leading(replace); tabs > 0 {
		return indentStyle{tabs: true}
	}
	return indentStyle{unit: step(append(append([]string(nil), search...), replace...))}
}

// maxStep is the largest step in that step counts: a larger one is
// alignment, or a block that starts elsewhere.
const maxStep = 16

// step is the most common difference, in spaces, between the indentation
// of a non-blank line and the next one when they differ (the smaller on a
// tie), counting only lines indented with spaces alone; without one, the
// smallest indentation, at most maxStep; 0 when no line is indented. So a
// level is at most maxStep spaces, and indentation written again in
// another unit grows at most maxStep times over. A difference of one
// space counts only when there is no other: it is most often alignment,
// as in the " * " lines of a block comment.
func step(lines []string) int {
	var count [maxStep + 1]int
	prev, smallest := -1, 0
	for _, l := range lines {
		if trimSpace(l) == "" {
			continue
		}
		ind := indentation(l)
		if strings.IndexByte(ind, '\t') >= 0 {
			prev = -1
			continue
		}
		w := len(ind)
		if w > 0 && (smallest == 0 || w < smallest) {
			smallest = w
		}
		if d := max(w-prev, prev-w); prev >= 0 && d > 0 && d <= maxStep {
			count[d]++
		}
		prev = w
	}
	best := 0
	for d := 2; d <= maxStep; d++ {
		if count[d] > count[best] {
			best = d
		}
	}
	if best == 0 && count[1] > 0 {
		best = 1
	}
	if best == 0 {
		return min(smallest, maxStep)
	}
	return best
}

// describe says what an indentation is made of: "4 spaces", "2 tabs",
// "1 tab, then 2 spaces", "no indentation".
func describe(s string) string {
	if s == "" {
		return "no indentation"
	}
	var parts []string
	for len(s) > 0 {
		c := s[0]
		n := len(s) - len(strings.TrimLeft(s, string(c)))
		name := map[byte][2]string{' ': {"space", "spaces"}, '\t': {"tab", "tabs"}}[c]
		parts = append(parts, fmt.Sprintf("%d %s", n, plural(n, name[0], name[1])))
		s = s[n:]
	}
	return strings.Join(parts, ", then ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
