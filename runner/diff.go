package runner

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/llm-runtime/llm-runtime/edit"
	"github.com/llm-runtime/llm-runtime/journal"
)

// WriteDiff writes changes (one a path, as journal.Net makes them) as a unified
// diff: files' content (created
// from /dev/null, deleted to it), a binary file named as git names one.
// What a unified diff cannot say (a directory made or removed, a link, a
// mode) is said first, in lines that begin with "# ", which patch and git
// apply skip as they skip any text before a diff.
func WriteDiff(w io.Writer, j *journal.Journal, cs []journal.Change) error {
	var notes, diffs strings.Builder
	for _, c := range cs {
		b, a := c.Before, c.After
		if b.Kind != journal.File && b.Kind != journal.None || a.Kind != journal.File && a.Kind != journal.None {
			fmt.Fprintf(&notes, "# %s: %s -> %s\n", c.Path, describeState(b), describeState(a))
			if b.Kind != journal.File && a.Kind != journal.File {
				continue
			}
		}
		if b.Kind == journal.File && a.Kind == journal.File && b.Mode != a.Mode {
			fmt.Fprintf(&notes, "# %s: mode %o -> %o\n", c.Path, b.Mode, a.Mode)
		}
		var old, new []byte
		var err error
		if b.Kind == journal.File {
			if old, err = j.Content(b); err != nil {
				return fmt.Errorf("%s before: %w", c.Path, err)
			}
		}
		if a.Kind == journal.File {
			if new, err = j.Content(a); err != nil {
				return fmt.Errorf("%s after: %w", c.Path, err)
			}
		}
		from, to := "a/"+c.Path, "b/"+c.Path
		if b.Kind != journal.File {
			from = "/dev/null"
		}
		if a.Kind != journal.File {
			to = "/dev/null"
		}
		if isBinary(old) || isBinary(new) {
			fmt.Fprintf(&diffs, "Binary files %s and %s differ\n", from, to)
			continue
		}
		d, _ := edit.Diff(c.Path, old, new, 0)
		if d == "" {
			if b.Kind != a.Kind { // an empty file made or removed: no line to show
				fmt.Fprintf(&notes, "# %s: %s -> %s\n", c.Path, describeState(b), describeState(a))
			}
			continue
		}
		d = strings.Replace(d, "--- a/"+c.Path+"\n", "--- "+from+"\n", 1)
		d = strings.Replace(d, "+++ b/"+c.Path+"\n", "+++ "+to+"\n", 1)
		diffs.WriteString(d)
	}
	_, err := io.WriteString(w, notes.String()+diffs.String())
	return err
}

func describeState(s journal.State) string {
	switch s.Kind {
	case journal.None:
		return "nothing"
	case journal.Dir:
		return fmt.Sprintf("directory (mode %o)", s.Mode)
	case journal.Symlink:
		return "link to " + s.Target
	}
	return fmt.Sprintf("file (mode %o, %d bytes)", s.Mode, s.Size)
}

// binary is the sandbox's rule: a NUL in the first 8000 bytes.
func isBinary(b []byte) bool { return bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 }
