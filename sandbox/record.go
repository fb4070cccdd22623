package sandbox

// Recording a change in the same act as the change: a Workspace given a
// Recorder (Options.Recorder) reads what each path it is about to change
// holds, on the descriptors it is about to change it through, has the
// Recorder journal the states before and after, makes the change only
// once the Recorder said the record is durable, and then says how it
// went. A change whose record fails is not made. Package journal's
// Checkpoint is the Recorder the runner gives (through an adapter: this
// package does not import journal, which the agent's binary does not
// need).

import "golang.org/x/sys/unix"

// The kinds of a PathState.
const (
	StateNone    = "none"
	StateFile    = "file"
	StateDir     = "dir"
	StateSymlink = "symlink"
)

// PathState is what a path holds, for the record of a change: nothing, a
// file (its mode, size and content), a directory (its mode) or a
// symbolic link (its target).
type PathState struct {
	Kind   string
	Mode   uint32 // permission bits, with setuid, setgid and sticky (07777)
	Size   int64
	Data   []byte // a file's content
	Target string // a link's target
}

// PathChange is one path's change, relative to the repository.
type PathChange struct {
	Path          string
	Before, After PathState
}

// Recorder journals changes before they are made (see package journal's
// protocol): Intend returns once the record is durable, or fails, and the
// change is then not made; Done or Abort says how it went.
type Recorder interface {
	Intend(changes []PathChange) (id uint64, err error)
	Done(id uint64) error
	Abort(id uint64, reason string) error
}

// MaxRecorded is the largest file a change recorded can replace, delete
// or move: its content must be kept to be taken back.
const MaxRecorded = 256 << 20

// record makes a change (do) under o.Recorder: the changes journaled
// first, the outcome after. Without a Recorder it only makes the change.
func record(o Options, changes func() ([]PathChange, error), do func() error) error {
	if o.Recorder == nil {
		return do()
	}
	cs, err := changes()
	if err != nil {
		return err
	}
	id, err := o.Recorder.Intend(cs)
	if err != nil {
		return notJournaled(err)
	}
	return outcome(o.Recorder, id, do())
}

// notJournaled is the error of a change whose record failed.
func notJournaled(err error) error {
	return &Error{Code: CodeIO, Message: "the change could not be journaled, so it was not made: " + err.Error(), Err: err}
}

// outcome tells rec how the change of intent id went (err, which it
// returns): aborted, or done. A Done that fails leaves the intent without
// an outcome: whoever opens the journal next finds the change made by
// comparing the disk.
func outcome(rec Recorder, id uint64, err error) error {
	if err != nil {
		rec.Abort(id, AsError(err).Message)
		return err
	}
	rec.Done(id)
	return nil
}

// recordStaged is record for a file's new content, whose writing (stage:
// a temporary file, written and synced) runs while the Recorder makes its
// record durable, since neither needs the other: the change itself is
// the rename (commit), made only once both are done. An intent that fails
// discards what was staged; a stage that fails aborts the intent.
func recordStaged(o Options, changes func() ([]PathChange, error), stage func() (*staged, error)) error {
	if o.Recorder == nil {
		s, err := stage()
		if err != nil {
			return err
		}
		return s.commit()
	}
	cs, err := changes()
	if err != nil {
		return err
	}
	type result struct {
		s   *staged
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := stage()
		ch <- result{s, err}
	}()
	id, err := o.Recorder.Intend(cs)
	st := <-ch
	if err != nil {
		if st.s != nil {
			st.s.discard()
		}
		return notJournaled(err)
	}
	if st.err == nil {
		st.err = st.s.commit()
	}
	return outcome(o.Recorder, id, st.err)
}

// stateAt reads what name in dirfd holds, which st describes (as the walk
// found it): the content of a file, read through a descriptor of that
// very file (another one swapped in meanwhile is refused), a link's
// target, a directory's mode. A special file cannot be recorded.
func stateAt(dirfd int, name, rel string, st *unix.Stat_t) (PathState, error) {
	s := PathState{Mode: st.Mode & 0o7777}
	switch kind(st.Mode) {
	case unix.S_IFREG:
		if st.Size > MaxRecorded {
			return s, Errorf(CodeResourceLimit, "%s is %s: changes are journaled to be taken back, and a file over %s cannot be; nothing was done", rel, FormatSize(st.Size), FormatSize(MaxRecorded))
		}
		fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
		if err != nil {
			return s, osError(err, rel)
		}
		defer unix.Close(fd)
		var now unix.Stat_t
		if err := unix.Fstat(fd, &now); err != nil {
			return s, osError(err, rel)
		}
		if idOf(&now) != idOf(st) {
			return s, changedMeanwhile(rel)
		}
		data, err := readAll(fd, MaxRecorded+1, now.Size)
		if err != nil {
			return s, osError(err, rel)
		}
		s.Kind, s.Size, s.Data, s.Mode = StateFile, int64(len(data)), data, now.Mode&0o7777
	case unix.S_IFLNK:
		target, err := readlinkAt(dirfd, name)
		if err != nil {
			return s, osError(err, rel)
		}
		s.Kind, s.Target = StateSymlink, target
	case unix.S_IFDIR:
		s.Kind = StateDir
	default:
		return s, Errorf(CodeNotRegularFile, "%s is %s, which a journal cannot keep to take back; nothing was done", rel, fileType(st.Mode))
	}
	return s, nil
}

// stateOf is stateAt for a target of a walk: none when nothing is there.
func stateOf(t *target) (PathState, error) {
	if !t.found {
		return PathState{Kind: StateNone}, nil
	}
	return stateAt(t.top(), t.name, t.rel, &t.st)
}

// madeDirs are the records of the directories a walk made on its way:
// made before the change's record (a crash between leaves an empty
// directory the journal does not name), and recorded with it, so that an
// undo removes them.
func madeDirs(t *target) []PathChange {
	var cs []PathChange
	for _, rel := range t.made {
		cs = append(cs, PathChange{Path: rel, Before: PathState{Kind: StateNone}, After: PathState{Kind: StateDir, Mode: 0o755}})
	}
	return cs
}
