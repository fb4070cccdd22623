package runner

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Restorer makes a path hold a state if it holds another (a
// sandbox.Workspace).
type Restorer interface {
	Restore(rel string, expect, want sandbox.PathState, o sandbox.Options) error
}

// UndoResult is what an undo did.
type UndoResult struct {
	Of         string   // what it took back: "checkpoint 4", "checkpoints 5, 6"
	Checkpoint int      // the undo's own checkpoint (0 when nothing changed)
	Restored   []string // the paths put back
	Conflicts  []string // "PATH: why", left as they are
}

// Undo takes back the changes of the checkpoints numbers (in any order):
// each path they changed is put back as it was before the first of them
// changed it, if it still holds what the last of them left; a path
// changed since by anyone else is left as it is and listed as a conflict
// (with force, it is put back all the same). The undo is a checkpoint of
// its own, begun with meta (named "undo of N" when meta has no name), so
// an undo can be undone (a redo). Directories are removed deepest first,
// and made shallowest first.
func Undo(j *journal.Journal, ws Restorer, numbers []int, meta journal.Meta, force bool) (*UndoResult, error) {
	slices.Sort(numbers)
	list := make([]string, len(numbers))
	for i, n := range numbers {
		list[i] = strconv.Itoa(n)
	}
	res := &UndoResult{Of: "checkpoint " + strings.Join(list, ", ")}
	if len(numbers) > 1 {
		res.Of = "checkpoints " + strings.Join(list, ", ")
	}
	meta.Name = cmp.Or(meta.Name, "undo of "+strings.Join(list, ", "))
	all, err := j.Changes(numbers...)
	if err != nil {
		return nil, err
	}
	net := journal.Net(all) // per path, before the first change and after the last
	depth := func(p string) int { return strings.Count(p, "/") }
	var removals, makes []journal.Change
	for _, c := range net {
		if c.Before.Kind == journal.None {
			removals = append(removals, c)
		} else {
			makes = append(makes, c)
		}
	}
	slices.SortStableFunc(removals, func(a, b journal.Change) int { return depth(b.Path) - depth(a.Path) })
	slices.SortStableFunc(makes, func(a, b journal.Change) int { return depth(a.Path) - depth(b.Path) })
	rec := &lazyRecorder{begin: func() (*journal.Checkpoint, error) { return j.Begin(meta) }}
	defer func() {
		if rec.cp != nil {
			rec.cp.End()
		}
	}()
	for _, c := range append(removals, makes...) {
		expect, err := pathState(j, c.After)
		if err != nil {
			return res, err
		}
		want, err := pathState(j, c.Before)
		if err != nil {
			return res, err
		}
		err = ws.Restore(c.Path, expect, want, sandbox.Options{Recorder: rec, Force: force})
		switch {
		case err == nil:
			res.Restored = append(res.Restored, c.Path)
		case errors.Is(err, sandbox.ErrConflict) || sandbox.AsError(err).Code != sandbox.CodeIO:
			res.Conflicts = append(res.Conflicts, c.Path+": "+sandbox.AsError(err).Message)
		default:
			return res, err
		}
	}
	if rec.cp != nil {
		res.Checkpoint = rec.cp.Number()
	}
	return res, nil
}

// CheckpointsAfter are the numbers of the journal's checkpoints after
// n, oldest first: what an undo back to n takes back.
func CheckpointsAfter(j *journal.Journal, n int) ([]int, error) {
	list, err := j.Index()
	var out []int
	for _, cp := range list {
		if cp.Number > n {
			out = append(out, cp.Number)
		}
	}
	return out, err
}

// pathState is a journal state as a sandbox one, its content read.
func pathState(j *journal.Journal, s journal.State) (sandbox.PathState, error) {
	p := sandbox.PathState{Kind: s.Kind, Mode: s.Mode, Size: s.Size, Target: s.Target}
	if s.Kind == journal.File {
		data, err := j.Content(s)
		if err != nil {
			return p, fmt.Errorf("the content of a file the journal recorded is lost: %w", err)
		}
		p.Data = data
	}
	return p, nil
}
