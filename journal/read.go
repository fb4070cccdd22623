package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
)

// CheckpointInfo sums up a checkpoint.
type CheckpointInfo struct {
	Number  int
	Meta    Meta
	PID     int  // the process that began it
	Ended   bool // End was called; false for one still open or whose process died
	Changes int  // the changes done (aborted ones and intents with no outcome are not)
	Pending int  // intents with no outcome yet
	Paths   []string
}

// scan reads the whole log, without the lock, and calls fn with each
// record: a reader sees the records whole up to some moment, and every
// one this process left for its tail.
func (j *Journal) scan(fn func(r *record)) error {
	j.tail.wait()
	b, err := os.ReadFile(j.logPath())
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	_, err = records(b, 0, func(r *record, _ int64, _ []byte) error {
		fn(r)
		return nil
	})
	return err
}

// Checkpoints lists the repository's checkpoints, newest first. It reads
// the whole log.
func (j *Journal) Checkpoints() ([]CheckpointInfo, error) {
	byNum := map[int]*CheckpointInfo{}
	var order []*CheckpointInfo
	type intent struct {
		cp      int
		changes []Change
		done    bool
	}
	intents := map[uint64]*intent{}
	var ids []uint64
	err := j.scan(func(r *record) {
		switch r.Type {
		case recBegin:
			ci := &CheckpointInfo{Number: r.Checkpoint, PID: r.PID,
				Meta: Meta{Session: r.Session, FrontEnd: r.FrontEnd, Name: r.Name, Time: r.Time}}
			byNum[r.Checkpoint] = ci
			order = append(order, ci)
		case recIntent:
			if ci := byNum[r.Checkpoint]; ci != nil {
				intents[r.Intent] = &intent{cp: r.Checkpoint, changes: r.Changes}
				ids = append(ids, r.Intent)
				ci.Pending++
			}
		case recDone, recAbort:
			if in, ok := intents[r.Intent]; ok && byNum[in.cp].Pending > 0 {
				byNum[in.cp].Pending--
				in.done = r.Type == recDone
			}
		case recEnd:
			if ci := byNum[r.Checkpoint]; ci != nil {
				ci.Ended = true
			}
		}
	})
	if err != nil {
		return nil, err
	}
	// Paths in the order of the intents, as Changes has them.
	seen := map[int]map[string]bool{}
	for _, id := range ids {
		in := intents[id]
		if !in.done {
			continue
		}
		ci := byNum[in.cp]
		ci.Changes += len(in.changes)
		if seen[in.cp] == nil {
			seen[in.cp] = map[string]bool{}
		}
		for _, c := range in.changes {
			if !seen[in.cp][c.Path] {
				seen[in.cp][c.Path] = true
				ci.Paths = append(ci.Paths, c.Path)
			}
		}
	}
	list := make([]CheckpointInfo, len(order))
	for i, ci := range order {
		list[i] = *ci
	}
	slices.SortStableFunc(list, func(a, b CheckpointInfo) int { return b.Number - a.Number })
	return list, nil
}

// ErrNoCheckpoint is wrapped by Changes when the log has no such
// checkpoint (it was never made, or was pruned).
var ErrNoCheckpoint = errors.New("journal: no such checkpoint")

// ModeOf is the Mode of a State for fi: its permission bits, with setuid,
// setgid and sticky.
func ModeOf(fi fs.FileInfo) uint32 {
	m := uint32(fi.Mode().Perm())
	if fi.Mode()&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// Matches says whether a path holds state: fi is its Lstat (nil when it
// does not exist), and content returns its content (for a file) or its
// target (for a symbolic link), called only when the rest matches. A
// directory matches by kind and mode alone.
func Matches(state State, fi fs.FileInfo, content func() ([]byte, error)) bool {
	if fi == nil {
		return state.Kind == None
	}
	switch state.Kind {
	case Dir:
		return fi.IsDir() && ModeOf(fi) == state.Mode
	case Symlink:
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false
		}
		b, err := content()
		return err == nil && bytes.Equal(b, []byte(state.Target))
	case File:
		if !fi.Mode().IsRegular() || ModeOf(fi) != state.Mode || fi.Size() != state.Size {
			return false
		}
		b, err := content()
		return err == nil && Sum(b) == state.Sum
	}
	return false
}

// Net is what changes did to each path, in the order of their first
// change: the state before the first, the state after the last. A path
// left as it was (a file written and then deleted) is left out.
func Net(changes []Change) []Change {
	at := map[string]int{}
	var out []Change
	for _, c := range changes {
		if i, ok := at[c.Path]; ok {
			out[i].After = c.After
			continue
		}
		at[c.Path] = len(out)
		out = append(out, c)
	}
	kept := out[:0]
	for _, c := range out {
		if !same(c.Before, c.After) {
			kept = append(kept, c)
		}
	}
	return kept
}

// same says whether two states are the same object, for Net.
func same(a, b State) bool {
	return a.Kind == b.Kind && a.Mode == b.Mode && a.Sum == b.Sum && a.Target == b.Target
}
