// Package edit applies the body of an <edit PATH> command: Aider-style
// SEARCH/REPLACE blocks, each naming lines of a file and the lines to put in
// their place.
//
// A body is one or more blocks:
//
//	<<<<<<< SEARCH
//		return nil
//	=======
//		return err
//	>>>>>>> REPLACE
//
// The caller reads the file, calls [Parse] and [Apply], writes
// [Result.Content] and shows the model [Result.Diff]. Apply changes nothing
// on disk and never half-applies: either every block applies or an error says
// which block failed and why, in words a model can act on.
//
// # Parsing
//
// Marker lines are exactly "<<<<<<< SEARCH", "=======" and ">>>>>>> REPLACE";
// trailing spaces, tabs and a CR are allowed, leading ones are not, so an
// indented marker is text. Body lines may end in LF or CRLF; the CR of a
// CRLF is not part of the line. Blank lines (empty or only spaces and tabs)
// between blocks are ignored; any other text between blocks is a
// [*SyntaxError], because it usually means a block lost a marker and
// guessing would edit the wrong lines.
//
// The first "=======" after a SEARCH marker ends the SEARCH, so a line that
// is exactly "=======" cannot be searched for; in REPLACE it is an ordinary
// line. A "<<<<<<< SEARCH" inside a block is an error (the block was not
// closed), and so is a block whose SEARCH has no lines: there is nothing to
// anchor it. A SEARCH of blank lines only is allowed but will rarely match
// just one place.
//
// # Matching
//
// Matching is on whole lines. A SEARCH must match exactly one run of
// consecutive lines of the content as the earlier blocks left it, compared
// without their line terminators. When no run matches exactly, each line is
// compared again with spaces, tabs and CRs trimmed from both ends (a "loose"
// match): models often get indentation or trailing white space wrong. One
// loose match is accepted (unless its indentation cannot be carried over,
// see Replacing) and reported in [Result.Loose]; none is a
// [*NoMatchError] carrying the lines of the file most like the SEARCH; more
// than one match (exact, or loose when there is no exact one) is an
// [*AmbiguousError]. Overlapping matches count separately. Line numbers in
// errors are those of the content the failing block was applied to, which
// differ from the file's only where an earlier block changed the line count
// above them.
//
// # Replacing every place
//
// A block opened with "<<<<<<< SEARCH ALL" instead of "<<<<<<< SEARCH" is
// marked All (a model asks for it; it is never a default): every place its
// SEARCH matches exactly is replaced, from the first on, a place that
// overlaps the one replaced before it excepted, and [Result.Replaced] says
// where. It matches exactly or not at all: a loose match, which may differ
// from the SEARCH in white space only where two places differ, is never
// replaced by a block written for all of them, and finding only such
// matches is a [*NoMatchError] that says how many there are. A plain
// block that matches several places is an [*AmbiguousError] whose message
// names SEARCH ALL.
//
// # Replacing
//
// The matched lines are replaced by the REPLACE lines, each ending with the
// line terminator of the first matched line (CRLF files stay CRLF). When the
// matched lines end the content without a terminator, the last REPLACE line
// gets none either. When that line is the only matched one and has no
// terminator to copy, the line before it lends its terminator, or "\n". An
// empty REPLACE deletes the matched lines; deleting the last line of a file
// that had no final newline leaves the line before it with its newline.
//
// After a loose match the REPLACE lines take the file's indentation, not
// the SEARCH's: a model that writes four spaces for a tab, two spaces for
// four, or drops the indentation the lines have, does the same in both
// halves. Tabs stay tabs, and levels nested deeper in REPLACE are written
// in the file's unit. Each SEARCH line's indentation stands for that of the
// file's line it matched; a REPLACE line indented as some SEARCH line gets
// that file line's indentation, and one indented otherwise gets the level
// it has relative to the SEARCH's, in the file's unit (a tab, or the file's
// most common step in spaces), and its alignment spaces. When the SEARCH's
// indentation does not correspond to the file's level for level (two SEARCH
// lines indented alike stand for different indentations, the levels do
// not shift alike, the file indents as many lines with tabs as with
// spaces), or a REPLACE line's cannot be written in the file's unit, the
// block is refused with an [*IndentError] that shows the matched lines and
// says why, and nothing is guessed. When only white space at the ends of
// lines differed, the REPLACE lines go in as written, as after an exact
// match. Blank REPLACE lines always go in as written.
//
// # Diff
//
// [Diff] writes a unified diff that "patch -p1" applies. It aligns lines with
// Myers' algorithm after trimming the common head and tail. When that takes
// more than 100 edits it splits at lines that occur once in each version
// (patience diff) and starts again on the pieces; a piece that still needs
// more than 256 edits is shown as wholly replaced. Big rewrites of big files
// stay fast, at the cost of a diff that may be longer than the shortest.
// A diff cut at its line limit is its first lines, so its last hunk may be
// incomplete. [Result.Diff] is cut at 200 lines.
//
// Binary content and size limits are the caller's business.
package edit

import (
	"fmt"
	"strconv"
	"strings"
)

// Block is one SEARCH/REPLACE pair: its lines, without line terminators.
type Block struct {
	Search, Replace []string
	Line            int // 1-based line of the body where its <<<<<<< SEARCH marker is
	// All replaces every place the SEARCH matches exactly, not one only:
	// the block was opened with "<<<<<<< SEARCH ALL".
	All bool `json:",omitempty"`
}

// Replaced is what a block marked All replaced: the 1-based first line of
// each place, numbered as the content the block was applied to.
type Replaced struct {
	Block int   `json:"block"`
	Lines []int `json:"lines"`
}

// Result of Apply.
type Result struct {
	Content       []byte     // the file after every block
	Applied       int        // blocks applied: all of them
	Loose         []int      // 1-based numbers of the blocks that matched only when leading and trailing white space on each line was ignored
	Replaced      []Replaced // for each block marked All, the places it replaced
	Diff          string     // unified diff of the change, at most 200 lines, see Diff
	DiffTruncated bool       // Diff was cut at 200 lines
}

// Line is a line of the file, for showing the model where to look.
type Line struct {
	N    int    // 1-based line number
	Text string // without its line terminator
}

// SyntaxError says that an edit body is not a list of SEARCH/REPLACE blocks.
type SyntaxError struct {
	Line int // 1-based line of the body; 0 when the fault is the body as a whole
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return "edit body: " + e.Msg
	}
	return "edit body line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// NoMatchError says that a block's SEARCH matches no lines, not even loosely.
type NoMatchError struct {
	Block   int    // 1-based
	Closest []Line // the lines most like the SEARCH, with a line of context; empty for an empty file
	// All says the block was marked All, which matches exactly or not at
	// all; Loose is then how many places it matches with the white space
	// at the ends of lines ignored.
	All   bool
	Loose int
}

func (e *NoMatchError) Error() string {
	if len(e.Closest) == 0 {
		return e.Summary() + "; the file is empty"
	}
	return withLines(e.Summary()+". The most similar lines", e.Block, e.Closest)
}

// withLines is an error message: summary, the lines, and what to do.
func withLines(summary string, block int, lines []Line) string {
	var b strings.Builder
	b.WriteString(summary)
	if block > 1 {
		fmt.Fprintf(&b, " (numbered as blocks 1 to %d left the file)", block-1)
	}
	b.WriteString(" are:\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "%6d | %s\n", l.N, l.Text)
	}
	b.WriteString("Copy the SEARCH lines exactly from the file as it is now (open it again if unsure) and retry the whole edit; no block was applied.")
	return b.String()
}

// Summary is the error's first sentence, without the closest lines: for a
// caller that shows them apart.
func (e *NoMatchError) Summary() string {
	if e.All && e.Loose > 0 {
		return fmt.Sprintf("edit block %d: its SEARCH lines are not in the file exactly; %d %s match them with the white space at the ends of lines ignored, "+
			"but a SEARCH ALL replaces exact matches only", e.Block, e.Loose, plural(e.Loose, "place", "places"))
	}
	return fmt.Sprintf("edit block %d: its SEARCH lines are not in the file, not even ignoring white space at the ends of lines", e.Block)
}

// IndentError says that a block's SEARCH matched only with the white space
// at the ends of lines ignored, and that the indentation of the lines it
// matched cannot be carried over to its REPLACE lines: the SEARCH is
// indented otherwise than the file in a way that does not say how the
// file would indent the REPLACE (see reindent). Nothing is guessed: the
// model is shown the lines to copy, with their indentation.
type IndentError struct {
	Block       int    // 1-based
	First, Last int    // the 1-based lines the SEARCH matched
	Reason      string // why, naming the lines
	Closest     []Line // the matched lines, with a line of context, at most 10 lines
}

func (e *IndentError) Error() string {
	return withLines(e.Summary()+". The lines", e.Block, e.Closest)
}

// Summary is the error's first sentence, without the lines: for a caller
// that shows them apart.
func (e *IndentError) Summary() string {
	lines := fmt.Sprintf("line %d", e.First)
	if e.Last > e.First {
		lines = fmt.Sprintf("lines %d-%d", e.First, e.Last)
	}
	return fmt.Sprintf("edit block %d: its SEARCH matches %s only with the white space at the ends of lines ignored, "+
		"and the file's indentation cannot be carried over to its REPLACE lines: %s", e.Block, lines, e.Reason)
}

// AmbiguousError says that a block's SEARCH matches more than one place.
type AmbiguousError struct {
	Block int   // 1-based
	Count int   // number of matches
	Lines []int // the 1-based first line of every match
}

// maxListedLines caps the line numbers an AmbiguousError message lists.
const maxListedLines = 10

// listLines writes line numbers for a message, at most maxListedLines of
// them: "1, 2, 3" or "1, 2, …, 10, …".
func listLines(lines []int) string {
	shown := lines[:min(len(lines), maxListedLines)]
	nums := make([]string, len(shown))
	for i, n := range shown {
		nums[i] = strconv.Itoa(n)
	}
	list := strings.Join(nums, ", ")
	if len(lines) > len(shown) {
		list += ", …"
	}
	return list
}

// String says what the block replaced, for a model to read: "block 2
// replaced 3 places (lines 4, 9, 17)", at most ten lines listed.
func (r Replaced) String() string {
	n := len(r.Lines)
	return fmt.Sprintf("block %d replaced %d %s (%s %s)", r.Block, n, plural(n, "place", "places"), plural(n, "line", "lines"), listLines(r.Lines))
}

func (e *AmbiguousError) Error() string {
	list := listLines(e.Lines)
	return fmt.Sprintf("edit block %d: its SEARCH matches %d places, starting at lines %s; "+
		"add neighbouring lines to SEARCH (and the same lines to REPLACE) until it matches one place only, "+
		"or, to change every place, open the block with <<<<<<< SEARCH ALL; "+
		"then retry the whole edit; no block was applied", e.Block, e.Count, list)
}
