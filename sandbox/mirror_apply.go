package sandbox

// Applying a changeset: a command's changes land whole, or not at all when
// the call is cancelled. Everything a change makes is made first under a
// temporary name beside where it goes (a new directory with all it holds,
// a file's new content), while the cancel, and the deadline, are heeded
// between any two changes; then, past the last look at them, the
// removals and the renames that put each change in place run, which take
// a system call or two per change, in milliseconds for the most a
// changeset may hold (Bounds). A cancel before that point leaves the
// repository as it was: what was made is removed, and every change is
// discarded. One after it finds the call done.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Finish finds what the command changed in the copy and, when apply is
// set, applies each change to the repository under the rules of <write>;
// a change that breaks a rule is refused, with the reason. What is not
// applied (refused, or every change when apply is not set) is taken out
// of the copy, so that the next Sync puts the repository's version back.
// The changes come sorted by path.
//
// A changeset past the mirror's Bounds is applied as none: every change is
// refused (discarded, without apply), with an error of code
// RESOURCE_LIMIT. When ctx ends before the changes are put in place,
// none is: they are discarded, and the error is ctx's.
func (x *Mirror) Finish(ctx context.Context, apply bool) ([]Change, error) {
	items, err := x.diff(apply)
	var over *overError
	if errors.As(err, &over) {
		return x.refuseAll(apply, over)
	}
	if err != nil {
		x.reset() // what the command left there is not known: none of it stays
		return nil, err
	}
	if !apply {
		return x.discard(items, ""), nil
	}
	a := &applier{x: x, ws: x.ws, ctx: ctx, staged: map[string]string{}, rec: OptionsFrom(ctx).Recorder}
	a.repo = newCursor(x.ws.rootFD, x.ws.rootID, x.ws.enterRepo(a.staged))
	a.cp = newCursor(x.tree, FileID{}, enterCopy)
	changes, err := a.run(items)
	x.markHostTools(changes)
	return changes, err
}

// markHostTools marks the applied changes to files of
// Limits.HostToolFiles (those the rules let land: in deny mode they are
// refused).
func (x *Mirror) markHostTools(changes []Change) {
	for i := range changes {
		switch changes[i].Action {
		case ChangeCreated, ChangeUpdated, ChangeDeleted:
			changes[i].HostTool = x.ws.HostTool(strings.TrimSuffix(changes[i].Path, "/"))
		}
	}
}

// discard takes every item out of the copy, and lists it as discarded.
func (x *Mirror) discard(items []item, why string) []Change {
	changes := make([]Change, len(items))
	paths := make([]string, len(items))
	for i, it := range items {
		changes[i] = Change{Path: it.rel, Action: ChangeDiscarded, Reason: why}
		paths[i] = it.rel
	}
	x.undo(paths)
	return changes
}

// refuseAll takes a changeset past its bounds out of the copy: each
// change (those not in what the command made: that goes with its
// directory) is refused, or discarded, with the reason; when even those
// are past the bounds, the copy is made again from the repository.
func (x *Mirror) refuseAll(apply bool, over *overError) ([]Change, error) {
	action := ChangeDiscarded
	var err error
	if apply {
		action = ChangeRefused
		err = Errorf(CodeResourceLimit, "%s: none of its changes were applied", over.msg)
	}
	items, derr := x.diff(false)
	if derr != nil {
		x.reset()
		return []Change{{Path: ".", Action: action, Reason: over.msg + "; the copy is made again from the repository"}}, err
	}
	changes := x.discard(items, over.msg)
	for i := range changes {
		changes[i].Action = action
	}
	return changes, err
}

// applier applies a changeset.
type applier struct {
	x        *Mirror
	ws       *Workspace
	ctx      context.Context
	repo, cp *cursor
	// staged maps each directory made under a temporary name, in a
	// directory of the repository, to that name.
	staged map[string]string
	// syncEach: each file is synced as it is made; else the file system
	// is, once, before anything is put in place.
	syncEach bool
	ops      []op
	changes  []Change
	undo     []string
	// rec, if set, journals the changes before they land (record.go).
	rec Recorder
}

type opKind int

const (
	opRemove opKind = iota // remove the recorded object (at the commit, deepest first)
	opPlace                // rename tmp to the item's path (at the commit, after the removals)
	opInside               // made inside a directory of opPlace: lands with it
	opRecord               // the repository has it already: the record alone changes
)

// op is what an item does at the commit.
type op struct {
	kind     opKind
	it       *item
	tmp      string      // opPlace: the temporary name in the directory of it.rel
	want     *stamp      // opPlace: what it.rel must be at the commit (nil: nothing)
	top      int         // opInside: the opPlace of the directory it is in
	replaced bool        // opRemove: of an object the next op replaces
	src, dst unix.Stat_t // the repository's object made (opPlace: stat again once placed), the copy's
	action   string      // created or updated; "": nothing to say
	failed   string      // why it did not land
	recorded int         // 1 + its change's index in the changeset's record; 0: none
}

// syncEachMax is the most files a changeset syncs one by one.
const syncEachMax = 32

// tempName is a name for what is made before it is put in place.
func tempName() string {
	var b [8]byte
	rand.Read(b[:])
	return ".llm-runtime-" + hex.EncodeToString(b[:]) + ".tmp"
}

// isUnder says whether rel is top or under it.
func isUnder(rel, top string) bool {
	return rel == top || strings.HasPrefix(rel, top+"/")
}

func (a *applier) run(items []item) ([]Change, error) {
	defer a.cp.close()
	defer a.repo.close()
	// Make what the changes make, under temporary names.
	var failTop, failWhy string // a directory not made: what it holds is not either
	top := -1                   // the opPlace of the directory being filled
	// A few files are synced each (as a write is); more, the file system
	// once: a sync of each costs a journal commit.
	files := 0
	for i := range items {
		if !items[i].gone && items[i].why == "" && kind(items[i].st.Mode) == unix.S_IFREG {
			files++
		}
	}
	a.syncEach = files <= syncEachMax
	for i := range items {
		it := &items[i]
		if err := a.ctx.Err(); err != nil {
			return a.cancel(items, err)
		}
		if it.gone {
			if inGit(it.rel) {
				a.refuse(it.rel, gitRefusal)
			} else {
				a.ops = append(a.ops, op{kind: opRemove, it: it})
			}
			continue
		}
		if failTop != "" && isUnder(it.rel, failTop) {
			a.refuse(it.rel, failWhy)
			continue
		}
		if it.why != "" {
			a.refuse(it.rel, it.why)
			continue
		}
		if top >= 0 && !isUnder(it.rel, a.ops[top].it.rel) {
			top = -1
		}
		replacing := it.e != nil && kind(it.e.Src.Mode) != kind(it.st.Mode)
		if replacing {
			a.ops = append(a.ops, op{kind: opRemove, it: it, replaced: true})
		}
		var o op
		var err error
		if kind(it.st.Mode) == unix.S_IFDIR {
			o, err = a.stageDir(it, replacing, top)
		} else {
			o, err = a.stageFile(it, replacing, top)
		}
		if err != nil {
			if replacing {
				a.ops = a.ops[:len(a.ops)-1] // the old object stays
			}
			a.refuse(it.rel, reason(err))
			if kind(it.st.Mode) == unix.S_IFDIR {
				failTop, failWhy = it.rel, reason(err)
			}
			continue
		}
		a.ops = append(a.ops, o)
		if o.kind == opPlace && kind(it.st.Mode) == unix.S_IFDIR {
			top = len(a.ops) - 1
		}
	}
	// What was written is on disk before any of it is put in place.
	if !a.syncEach {
		if d, err := openat(a.ws.rootFD, ".", unix.O_RDONLY|unix.O_DIRECTORY); err == nil {
			unix.Syncfs(d)
			unix.Close(d)
		}
	}
	// The last look: past it, the changes land.
	if err := a.ctx.Err(); err != nil {
		return a.cancel(items, err)
	}
	// Journaled before they land: what each path holds, and what was
	// made for it.
	var intent uint64
	var recorded []PathChange
	if a.rec != nil {
		var err error
		recorded, err = a.record()
		if err == nil && len(recorded) > 0 {
			if intent, err = a.rec.Intend(recorded); err != nil {
				err = &Error{Code: CodeIO, Message: "the changes could not be journaled, so none was applied: " + err.Error(), Err: err}
			}
		}
		if err != nil {
			return a.discardAll(items, err)
		}
	}
	a.repo.close()
	a.commit()
	if intent != 0 {
		a.settle(intent, recorded)
	}
	a.x.undo(a.undo)
	sort.SliceStable(a.changes, func(i, j int) bool { return a.changes[i].Path < a.changes[j].Path })
	return a.changes, nil
}

// maxRecordedChangeset bounds what a changeset's record holds in memory:
// the content of every file it removes, replaces or makes.
const maxRecordedChangeset = 512 << 20

// record reads, for the journal, what each change's path holds in the
// repository and what was made for it, on the cursor's descriptors.
func (a *applier) record() ([]PathChange, error) {
	var cs []PathChange
	var total int64
	none := PathState{Kind: StateNone}
	for i := range a.ops {
		o := &a.ops[i]
		if o.kind == opRecord {
			continue
		}
		parent, name := splitRel(o.it.rel)
		d, err := a.repo.at(parent)
		if err != nil {
			return nil, err
		}
		var st unix.Stat_t
		switch o.kind {
		case opRemove:
			if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
				continue
			} else if err != nil {
				return nil, osError(err, o.it.rel)
			}
			before, err := stateAt(d.fd, name, o.it.rel, &st)
			if err != nil {
				return nil, err
			}
			total += before.Size
			cs = append(cs, PathChange{Path: o.it.rel, Before: before, After: none})
			o.recorded = len(cs)
		case opPlace, opInside:
			made := o.tmp
			if o.kind == opInside {
				made = name
			}
			after, err := stateAt(d.fd, made, o.it.rel, &o.src)
			if err != nil {
				return nil, err
			}
			before := none
			if o.want != nil {
				if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return nil, osError(err, o.it.rel)
				}
				if before, err = stateAt(d.fd, name, o.it.rel, &st); err != nil {
					return nil, err
				}
			}
			total += before.Size + after.Size
			cs = append(cs, PathChange{Path: o.it.rel, Before: before, After: after})
			o.recorded = len(cs)
		}
		if total > maxRecordedChangeset {
			return nil, Errorf(CodeResourceLimit, "the changeset holds more than %s of content, more than the journal of changes records at once (journal.enabled); none was applied", FormatSize(maxRecordedChangeset))
		}
	}
	return cs, nil
}

// settle says how the journaled changes went: done when every one
// landed; else the intent is aborted and the changes that did land are
// journaled as done (after the fact: a crash between the two leaves the
// first intent settled by what the disk holds, a mix, for the user).
func (a *applier) settle(intent uint64, recorded []PathChange) {
	failed := false
	for i := range a.ops {
		failed = failed || a.ops[i].failed != "" && a.ops[i].kind != opRecord
	}
	if !failed {
		a.rec.Done(intent)
		return
	}
	a.rec.Abort(intent, "some changes could not land")
	// What landed: the ops that did not fail, as the record had them.
	var landed []PathChange
	for i := range a.ops {
		o := &a.ops[i]
		if o.failed == "" && o.recorded > 0 {
			landed = append(landed, recorded[o.recorded-1])
		}
	}
	if len(landed) > 0 {
		if id, err := a.rec.Intend(landed); err == nil {
			a.rec.Done(id)
		}
	}
}

// discardAll discards every change, none applied, for err.
func (a *applier) discardAll(items []item, err error) ([]Change, error) {
	a.removeStaged()
	return a.x.discard(items, AsError(err).Message), err
}

// refuse lists rel as refused, and takes it out of the copy.
func (a *applier) refuse(rel, why string) {
	a.changes = append(a.changes, Change{Path: rel, Action: ChangeRefused, Reason: why})
	a.undo = append(a.undo, rel)
}

// cancel removes what was made, and discards every change.
func (a *applier) cancel(items []item, err error) ([]Change, error) {
	a.removeStaged()
	return a.x.discard(items, "the call was cancelled before its changes were applied"), err
}

// removeStaged removes what was made under temporary names and not put in
// place.
func (a *applier) removeStaged() {
	for i := len(a.ops) - 1; i >= 0; i-- {
		o := &a.ops[i]
		if o.kind != opPlace || o.tmp == "" {
			continue
		}
		if d, err := a.repo.at(parentOf(o.it.rel)); err == nil {
			removeAllAt(d.fd, o.tmp)
		}
		o.tmp = ""
	}
}

// stageDir makes the directory it.rel: inside a directory being made, as
// it is; elsewhere under a temporary name.
func (a *applier) stageDir(it *item, replacing bool, top int) (op, error) {
	parent, name := splitRel(it.rel)
	d, err := a.repo.at(parent)
	if err != nil {
		return op{}, err
	}
	if err := a.ws.writable(it.rel, name, false, nil); err != nil {
		return op{}, err
	}
	o := op{it: it, action: ChangeCreated, dst: it.st}
	if d.staged {
		if err := unix.Mkdirat(d.fd, name, 0o755); err != nil {
			return op{}, osError(err, it.rel)
		}
		if err := unix.Fstatat(d.fd, name, &o.src, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return op{}, osError(err, it.rel)
		}
		o.kind, o.top = opInside, top
		return o, nil
	}
	st, found, err := a.ws.writableIn(d, name, it.rel)
	if err != nil {
		return op{}, err
	}
	if found && !replacing {
		if kind(st.Mode) != unix.S_IFDIR {
			return op{}, errConflict(it.rel)
		}
		o.kind, o.src = opRecord, st // made meanwhile: there it is
		return o, nil
	}
	tmp := tempName()
	if err := unix.Mkdirat(d.fd, tmp, 0o755); err != nil {
		return op{}, osError(err, it.rel)
	}
	if err := unix.Fstatat(d.fd, tmp, &o.src, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		unix.Unlinkat(d.fd, tmp, unix.AT_REMOVEDIR)
		return op{}, osError(err, it.rel)
	}
	a.staged[it.rel] = tmp
	o.kind, o.tmp = opPlace, tmp
	return o, nil
}

// stageFile writes the copy's file it.rel to the repository: inside a
// directory being made, as it is; elsewhere under a temporary name. A file
// whose content and mode are already those is left as it is.
func (a *applier) stageFile(it *item, replacing bool, top int) (op, error) {
	parent, name := splitRel(it.rel)
	cd, err := a.cp.at(parent)
	if err != nil {
		return op{}, err
	}
	in, err := openat(cd.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return op{}, osError(err, it.rel)
	}
	defer unix.Close(in)
	o := op{it: it, action: ChangeCreated}
	if err := unix.Fstat(in, &o.dst); err != nil || o.dst.Ino != it.st.Ino || kind(o.dst.Mode) != unix.S_IFREG {
		return op{}, errors.New("it changed while its change was applied")
	}
	// Permissions as git keeps them: executable or not. A mode the command
	// did not change stays the repository's.
	perm := uint32(0o644)
	if o.dst.Mode&0o111 != 0 {
		perm = 0o755
	}
	keep := it.e != nil && !replacing && o.dst.Mode&0o7777 == it.e.Dst.Mode&0o7777
	d, err := a.repo.at(parent)
	if err != nil {
		return op{}, err
	}
	if d.staged {
		if err := a.ws.writable(it.rel, name, false, nil); err != nil {
			return op{}, err
		}
		if o.src, err = makeFile(d, name, it.rel, in, o.dst.Size, perm, a.syncEach); err != nil {
			return op{}, err
		}
		o.kind, o.top = opInside, top
		return o, nil
	}
	st, found, err := a.ws.writableIn(d, name, it.rel)
	if err != nil {
		return op{}, err
	}
	if !replacing {
		if found && kind(st.Mode) == unix.S_IFDIR {
			return op{}, Errorf(CodeIsDirectory, "%s is a directory in the repository", it.rel)
		}
		if found && kind(st.Mode) != unix.S_IFREG {
			return op{}, Errorf(CodeNotRegularFile, "%s is not a regular file in the repository (%s)", it.rel, fileType(st.Mode))
		}
		if it.e != nil {
			o.want, o.action = &it.e.Src, ChangeUpdated
		}
		if !matches(found, &st, o.want) {
			return op{}, errConflict(it.rel)
		}
		if keep && found {
			perm = st.Mode & 0o777
		}
		if found && st.Size == o.dst.Size && st.Mode&0o7777 == perm && sameFile(d, name, in, o.dst.Size) {
			o.kind, o.src, o.action = opRecord, st, "" // already so: nothing to write
			return o, nil
		}
	}
	tmp := tempName()
	if o.src, err = makeFile(d, tmp, it.rel, in, o.dst.Size, perm, a.syncEach); err != nil {
		return op{}, err
	}
	o.kind, o.tmp = opPlace, tmp
	return o, nil
}

// commit removes what the changes remove, deepest first, then puts what
// they make in place, each where the cursor holds its directory. A change
// that cannot land is refused, with the reason, and what was made for it
// removed.
func (a *applier) commit() {
	for i := len(a.ops) - 1; i >= 0; i-- {
		o := &a.ops[i]
		if o.kind != opRemove {
			continue
		}
		parent, name := splitRel(o.it.rel)
		d, err := a.repo.at(parent)
		if err == nil {
			err = a.ws.removeIn(d, name, o.it.rel, o.it.e.Src)
		} else if errors.Is(err, unix.ENOENT) {
			err = nil // gone with its directory
		}
		if err != nil {
			o.failed = reason(err)
			if o.replaced {
				a.ops[i+1].failed = o.failed // what replaces it cannot land
			} else {
				a.refuse(o.it.rel, o.failed)
			}
			continue
		}
		a.x.changes.Add(1)
		delete(a.x.m.Entries, o.it.rel)
		p := o.it.rel
		if kind(o.it.e.Src.Mode) == unix.S_IFDIR {
			p += "/"
		}
		a.changes = append(a.changes, Change{Path: p, Action: ChangeDeleted})
	}
	for i := range a.ops {
		o := &a.ops[i]
		switch o.kind {
		case opRemove:
			continue
		case opPlace:
			if o.failed == "" {
				if err := a.place(o); err != nil {
					o.failed = reason(err)
				}
			}
			if o.failed != "" {
				if d, err := a.repo.at(parentOf(o.it.rel)); err == nil {
					removeAllAt(d.fd, o.tmp)
				}
				delete(a.staged, o.it.rel)
			}
		case opInside:
			o.failed = a.ops[o.top].failed
		}
		if o.failed != "" {
			a.refuse(o.it.rel, o.failed)
			continue
		}
		e := &entry{Src: stampOf(&o.src), Dst: stampOf(&o.dst)}
		if kind(o.dst.Mode) == unix.S_IFREG {
			e.Disk = diskOf(&o.dst)
		}
		a.x.setEntry(o.it.rel, e)
		if o.action != "" {
			p := o.it.rel
			if kind(o.dst.Mode) == unix.S_IFDIR {
				p += "/"
			}
			a.changes = append(a.changes, Change{Path: p, Action: o.action})
		}
	}
}

// place renames what was made for o to its path: where nothing is, or
// over the file the change expects to find.
func (a *applier) place(o *op) error {
	parent, name := splitRel(o.it.rel)
	d, err := a.repo.at(parent)
	if err != nil {
		return err
	}
	if o.want == nil {
		err = unix.Renameat2(d.fd, o.tmp, d.fd, name, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// A file system without RENAME_NOREPLACE.
			var st unix.Stat_t
			if unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				return errConflict(o.it.rel)
			}
			err = unix.Renameat(d.fd, o.tmp, d.fd, name)
		}
		if errors.Is(err, unix.EEXIST) {
			return errConflict(o.it.rel)
		}
	} else {
		var st unix.Stat_t
		serr := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if !matches(serr == nil, &st, o.want) {
			return errConflict(o.it.rel)
		}
		err = unix.Renameat(d.fd, o.tmp, d.fd, name)
	}
	if err != nil {
		return osError(err, o.it.rel)
	}
	d.dirty = true
	delete(a.staged, o.it.rel)
	if kind(o.src.Mode) == unix.S_IFREG {
		unix.Fstatat(d.fd, name, &o.src, unix.AT_SYMLINK_NOFOLLOW) // a rename changes its change time
	}
	return nil
}
