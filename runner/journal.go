package runner

import (
	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// JournalRecorder is a journal checkpoint as a sandbox.Recorder: each
// change a Workspace makes with it in its options is journaled in the
// checkpoint before it is made (package journal's protocol), the contents
// inline in the intent when they are small.
type JournalRecorder struct{ Checkpoint *journal.Checkpoint }

// Intend implements sandbox.Recorder.
func (r JournalRecorder) Intend(changes []sandbox.PathChange) (uint64, error) {
	cs := make([]journal.Change, len(changes))
	for i, c := range changes {
		cs[i] = journal.Change{Path: c.Path, Before: journalState(c.Before), After: journalState(c.After)}
	}
	return r.Checkpoint.Intend(cs)
}

// Done implements sandbox.Recorder.
func (r JournalRecorder) Done(id uint64) error { return r.Checkpoint.Done(id) }

// Abort implements sandbox.Recorder.
func (r JournalRecorder) Abort(id uint64, reason string) error { return r.Checkpoint.Abort(id, reason) }

func journalState(s sandbox.PathState) journal.State {
	st := journal.State{Kind: s.Kind, Mode: s.Mode, Size: s.Size, Target: s.Target, Data: s.Data}
	if s.Kind == sandbox.StateFile && st.Data == nil {
		st.Data = []byte{} // an empty file: its content is known
	}
	return st
}

// lazyRecorder is a Recorder whose checkpoint begins (begin) with its
// first change, so that what changes nothing makes no checkpoint: an
// operation's (the runner's checkpoint, begun if none is being filled) or
// an undo's (its own).
type lazyRecorder struct {
	begin func() (*journal.Checkpoint, error)
	cp    *journal.Checkpoint
}

func (l *lazyRecorder) Intend(changes []sandbox.PathChange) (uint64, error) {
	if l.cp == nil {
		cp, err := l.begin()
		if err != nil {
			return 0, err
		}
		l.cp = cp
	}
	return JournalRecorder{Checkpoint: l.cp}.Intend(changes)
}

func (l *lazyRecorder) Done(id uint64) error { return JournalRecorder{Checkpoint: l.cp}.Done(id) }

func (l *lazyRecorder) Abort(id uint64, reason string) error {
	return JournalRecorder{Checkpoint: l.cp}.Abort(id, reason)
}
