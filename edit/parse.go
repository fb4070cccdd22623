package edit

import (
	"fmt"
	"strings"
)

// The marker lines of a block.
const (
	searchMarker  = "<<<<<<< SEARCH"
	allMarker     = "<<<<<<< SEARCH ALL"
	dividerMarker = "======="
	replaceMarker = ">>>>>>> REPLACE"
)

// blockShape is appended to messages about text that is not a block, so the
// model sees the form it should have written.
const blockShape = "each change is written as a line <<<<<<< SEARCH, the lines to find, a line =======, " +
	"the lines to put instead, and a line >>>>>>> REPLACE"

// Where the parser is in the body.
const (
	outside = iota
	inSearch
	inReplace
)

// Parse reads the blocks of an edit body. Marker lines are exactly
// "<<<<<<< SEARCH" (or "<<<<<<< SEARCH ALL", which marks the block All),
// "=======" and ">>>>>>> REPLACE", with trailing spaces,
// tabs or a CR allowed. Blank lines between blocks are ignored; any other
// text outside a block, a block not closed, an empty SEARCH, or no block at
// all is a *SyntaxError. The first "=======" after a SEARCH marker ends the
// SEARCH, so a line "=======" cannot be searched for.
func Parse(body []byte) ([]Block, error) {
	var (
		blocks []Block
		cur    Block
		state  = outside
	)
	for i, line := range bodyLines(string(body)) {
		n := i + 1
		marker := strings.TrimRight(line, " \t\r")
		switch {
		case (marker == searchMarker || marker == allMarker) && state != outside:
			return nil, &SyntaxError{Line: n, Msg: fmt.Sprintf(
				"a new <<<<<<< SEARCH inside the block that starts at line %d: end that block with >>>>>>> REPLACE first", cur.Line)}
		case marker == searchMarker || marker == allMarker:
			cur, state = Block{Line: n, All: marker == allMarker}, inSearch
		case state == outside && marker == "":
			// A blank line between blocks.
		case state == outside:
			return nil, &SyntaxError{Line: n, Msg: fmt.Sprintf("text outside a block: %q; %s", line, blockShape)}
		case state == inSearch && marker == dividerMarker:
			if len(cur.Search) == 0 {
				return nil, &SyntaxError{Line: cur.Line, Msg: "the SEARCH part is empty: put in it the lines to change " +
					"(to add lines, the lines next to where they go, repeated in REPLACE with the new ones)"}
			}
			state = inReplace
		case state == inSearch && marker == replaceMarker:
			return nil, &SyntaxError{Line: n, Msg: ">>>>>>> REPLACE before any =======: separate the SEARCH lines from the REPLACE lines with a line ======="}
		case state == inSearch:
			cur.Search = append(cur.Search, line)
		case marker == replaceMarker:
			blocks, state = append(blocks, cur), outside
		default:
			cur.Replace = append(cur.Replace, line)
		}
	}
	switch {
	case state == inSearch:
		return nil, &SyntaxError{Line: cur.Line, Msg: "the block has no ======= line: after the SEARCH lines write =======, the new lines, and >>>>>>> REPLACE"}
	case state == inReplace:
		return nil, &SyntaxError{Line: cur.Line, Msg: "the block is not closed: end it with a line >>>>>>> REPLACE"}
	case len(blocks) == 0:
		return nil, &SyntaxError{Msg: "no block; " + blockShape}
	}
	return blocks, nil
}

// bodyLines splits a body into lines, dropping each LF or CRLF terminator. A
// final terminator does not start another line.
func bodyLines(body string) []string {
	lines := strings.Split(body, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}
