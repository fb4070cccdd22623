package runner

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/output"
	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// noJournal is the error of <diff> and <undo> without a journal.
func noJournal() error {
	return sandbox.Errorf(CodeJournalDisabled, "changes are not journaled here (journal.enabled is false): there is nothing to diff or undo")
}

// diff is <diff>: today's work (the checkpoints begun since midnight,
// local time), <diff N> checkpoint N, <diff PATH> today's changes to
// PATH.
func (r *Runner) diff(a parser.Args) (*output.DiffResult, error) {
	if r.Journal == nil {
		return nil, noJournal()
	}
	var numbers []int
	of := ""
	filter := ""
	if a.Checkpoint != nil {
		n := *a.Checkpoint
		numbers, of = []int{n}, fmt.Sprintf("checkpoint %d", n)
	} else {
		list, err := r.Journal.Index()
		if err != nil {
			return nil, err
		}
		y, m, d := time.Now().Date()
		midnight := time.Date(y, m, d, 0, 0, 0, 0, time.Local)
		for _, cp := range list { // oldest first
			if !cp.Time.Before(midnight) {
				numbers = append(numbers, cp.Number)
			}
		}
		of = "today's work"
		if len(numbers) > 0 {
			of += fmt.Sprintf(" (checkpoints %d to %d)", numbers[0], numbers[len(numbers)-1])
		}
		if a.Path != "" {
			filter = path.Clean(strings.TrimLeft(r.inRoot(a.Path), "/"))
			of = filter + " in " + of
		}
	}
	all, err := r.Journal.Changes(numbers...)
	if err != nil {
		return nil, sandbox.Errorf(sandbox.CodeFileNotFound, "%v", err)
	}
	net := journal.Net(all)
	if filter != "" {
		kept := net[:0]
		for _, c := range net {
			if c.Path == filter || strings.HasPrefix(c.Path, filter+"/") {
				kept = append(kept, c)
			}
		}
		net = kept
	}
	var b strings.Builder
	if err := WriteDiff(&b, r.Journal, net); err != nil {
		return nil, err
	}
	text := b.String()
	res := &output.DiffResult{Of: of, Paths: len(net), Lines: strings.Count(text, "\n")}
	if res.Lines > output.MaxDiffLines {
		cut := 0
		for range output.MaxDiffLines {
			cut += strings.IndexByte(text[cut:], '\n') + 1
		}
		text = text[:cut]
	}
	res.Text = text
	return res, nil
}

// undo is <undo>: takes back the checkpoint before the one this run is
// filling (the model's previous reply, or MCP call); <undo N> (to) every
// checkpoint after N, this run's too.
func (r *Runner) undo(to *int) (*output.UndoResult, error) {
	if r.Journal == nil || r.Restorer == nil {
		return nil, noJournal()
	}
	list, err := r.Journal.Index()
	if err != nil {
		return nil, err
	}
	current := r.Checkpoint()
	var numbers []int
	if to == nil {
		for _, cp := range slices.Backward(list) {
			if cp.Number != current {
				numbers = []int{cp.Number}
				break
			}
		}
		if numbers == nil {
			return nil, sandbox.Errorf(sandbox.CodeFileNotFound, "nothing to undo: no checkpoint before this one")
		}
	} else {
		if numbers, err = CheckpointsAfter(r.Journal, *to); err != nil {
			return nil, err
		}
		if numbers == nil {
			return nil, sandbox.Errorf(sandbox.CodeFileNotFound, "nothing after checkpoint %d to undo", *to)
		}
	}
	u, err := Undo(r.Journal, r.Restorer, numbers, r.meta(""), false)
	if err != nil {
		return nil, err
	}
	return &output.UndoResult{Of: u.Of, Restored: u.Restored, Conflicts: u.Conflicts, Checkpoint: u.Checkpoint}, nil
}
