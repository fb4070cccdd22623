package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/internal/proc"
)

// Retention says what Prune keeps.
type Retention struct {
	// MaxAge: checkpoints begun longer ago go (0: no limit by age).
	MaxAge time.Duration
	// MaxBytes: the oldest checkpoints go until the journal (its log and
	// the objects its records name) is at most this large (0: no limit by
	// size).
	MaxBytes int64
	// Keep is how many of the newest checkpoints always stay, whatever
	// their age or size. A checkpoint with an intent that has no outcome
	// yet (a change in progress, or one a crash left to resolve), or not
	// ended by a process still running, stays too, and every checkpoint
	// after it.
	Keep int
	// Spare: an object or a temporary file changed less than this long
	// ago (by the clock, not Now) is never removed, named or not, since an
	// intent about to be written may name it (Put touches what it finds
	// already stored). Default one hour.
	Spare time.Duration
	// Now is the time checkpoints' ages are measured from (default
	// time.Now()).
	Now time.Time
}

// Default retention of the journal's users: 30 days or 1 GiB, never the
// last 20 checkpoints.
const (
	DefaultMaxAge   = 30 * 24 * time.Hour
	DefaultMaxBytes = 1 << 30
	DefaultKeep     = 20
)

// Pruned is what a Prune removed.
type Pruned struct {
	Checkpoints int   // checkpoints dropped, the oldest
	Through     int   // the number of the last one dropped (0: none)
	Objects     int   // objects removed, named by no record left
	Temporary   int   // temporary files a crash left, removed
	Bytes       int64 // of the log and the objects
	Left        int64 // the size of the log and of the objects its records name, after
}

// Prune drops the oldest checkpoints that r lets go, by writing the log
// anew without their records and renaming it into place, under the lock
// (numbering goes on: the new log's first record carries the last
// checkpoint and intent numbers); then it removes the objects no record
// left names, and the temporary files a crash left, sparing recent ones.
// A process killed in a Prune leaves the old log or the new one, whole,
// and perhaps a temporary log or objects not yet removed, which the next
// Prune removes.
func (j *Journal) Prune(r Retention) (Pruned, error) {
	if r.Now.IsZero() {
		r.Now = time.Now()
	}
	if r.Spare <= 0 {
		r.Spare = time.Hour
	}
	var res Pruned
	err := j.locked(func() error {
		b, err := os.ReadFile(j.logPath())
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		// The checkpoints in order, the bytes of their records, the objects
		// they name, and whether they must stay.
		type cpInfo struct {
			n     int
			time  time.Time
			bytes int64
			sums  map[string]bool
			data  map[string][]byte // contents its records hold inline
			open  int               // intents with no outcome
			pid   int
			start uint64
			ended bool
		}
		var order []*cpInfo
		byNum := map[int]*cpInfo{}
		intentCp := map[uint64]*cpInfo{}
		var lastCp int
		var lastIntent uint64
		end, err := records(b, 0, func(rec *record, _ int64, payload []byte) error {
			lastCp, lastIntent = max(lastCp, rec.Checkpoint), max(lastIntent, rec.Intent)
			ci := byNum[rec.Checkpoint]
			if rec.Type == recBegin && ci == nil {
				ci = &cpInfo{n: rec.Checkpoint, time: rec.Time, sums: map[string]bool{}, data: map[string][]byte{}, pid: rec.PID, start: rec.Start}
				byNum[rec.Checkpoint] = ci
				order = append(order, ci)
			}
			if ci == nil {
				return nil
			}
			ci.bytes += int64(frameHeader + len(payload))
			switch rec.Type {
			case recIntent:
				ci.open++
				intentCp[rec.Intent] = ci
			case recDone, recAbort:
				if in := intentCp[rec.Intent]; in != nil && in.open > 0 {
					in.open--
				}
			case recEnd:
				ci.ended = true
			}
			// The contents an intent or its done record holds, or names.
			for _, c := range rec.Changes {
				for _, st := range []State{c.Before, c.After} {
					if st.Kind == File && st.Sum != emptySum {
						ci.sums[st.Sum] = true
						if st.Data != nil {
							ci.data[st.Sum] = st.Data
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		b = b[:end]
		// References, and the size of each object named.
		refs := map[string]int{}
		for _, ci := range order {
			for s := range ci.sums {
				refs[s]++
			}
		}
		objSize := map[string]int64{}
		total := int64(len(b))
		for s := range refs {
			if fi, err := os.Stat(j.objectPath(s)); err == nil {
				objSize[s] = fi.Size()
				total += fi.Size()
			}
		}
		// The oldest first, while r lets them go.
		drop := 0
		for drop < len(order) && len(order)-drop > r.Keep {
			ci := order[drop]
			if ci.open > 0 || !ci.ended && proc.Same(ci.pid, ci.start) {
				break // a change in progress or to resolve, or a session still running
			}
			old := r.MaxAge > 0 && r.Now.Sub(ci.time) > r.MaxAge
			big := r.MaxBytes > 0 && total > r.MaxBytes
			if !old && !big {
				break
			}
			total -= ci.bytes
			for s := range ci.sums {
				if refs[s]--; refs[s] == 0 {
					total -= objSize[s]
				}
			}
			res.Checkpoints++
			res.Through = ci.n
			drop++
		}
		if drop > 0 {
			// A content a kept record names may be held durably only
			// inline in a dropped one (its object was written lazily, or
			// a crash left it empty): write its object durably first.
			inline := map[string]bool{}
			for _, ci := range order[drop:] {
				for s := range ci.data {
					inline[s] = true
				}
			}
			for _, ci := range order[:drop] {
				for s, data := range ci.data {
					if refs[s] > 0 && !inline[s] {
						if err := writeObject(j.objectPath(s), encodeObject(data), true); err != nil {
							return fmt.Errorf("journal: storing %s before pruning the record that holds it: %w", s, err)
						}
						inline[s] = true
					}
				}
			}
			first := lastCp + 1 // every checkpoint dropped
			if drop < len(order) {
				first = order[drop].n
			}
			if err := j.rewrite(b, first, lastCp, lastIntent); err != nil {
				return err
			}
		}
		// Objects no record left names, and temporary files, when not recent.
		removed, tmps, freed, err := j.sweep(refs, time.Now().Add(-r.Spare))
		res.Objects, res.Temporary = removed, tmps
		res.Bytes = freed + int64(len(b)) - j.off
		res.Left = total
		return err
	})
	return res, err
}

// rewrite writes the log anew with the records of the checkpoints from
// first on, after a first record carrying lastCp and lastIntent, and
// renames it into place. It runs under the lock; b is the log read whole.
func (j *Journal) rewrite(b []byte, first, lastCp int, lastIntent uint64) error {
	head, err := json.Marshal(record{Type: recLog, Version: Version, Checkpoint: lastCp, Intent: lastIntent})
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	out := frame(nil, head)
	_, err = records(b, 0, func(rec *record, _ int64, payload []byte) error {
		if rec.Type != recLog && rec.Checkpoint >= first {
			out = frame(out, payload)
		}
		return nil
	})
	if err != nil {
		return err
	}
	tmp := j.logPath() + ".prune"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	_, err = f.Write(out)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, j.logPath())
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("journal: writing the pruned log: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		return err
	}
	// Read the new log, as another process would.
	return j.catchUp()
}

// sweep removes the objects refs does not name and the temporary files
// (of Put, and a Prune's log) last changed before spare.
func (j *Journal) sweep(refs map[string]int, spare time.Time) (objects, tmps int, freed int64, err error) {
	old := func(fi fs.FileInfo) bool { return fi.ModTime().Before(spare) }
	if fi, err := os.Lstat(j.logPath() + ".prune"); err == nil && old(fi) {
		os.Remove(j.logPath() + ".prune")
	}
	root := filepath.Join(j.dir, "objects")
	subs, err := os.ReadDir(root)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("journal: %w", err)
	}
	for _, sub := range subs {
		if strings.HasPrefix(sub.Name(), ".tmp-") {
			if fi, err := sub.Info(); err == nil && old(fi) && os.Remove(filepath.Join(root, sub.Name())) == nil {
				tmps++
			}
			continue
		}
		if !sub.IsDir() || len(sub.Name()) != 2 {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(root, sub.Name()))
		if err != nil {
			return objects, tmps, freed, fmt.Errorf("journal: %w", err)
		}
		left := len(ents)
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil || !old(fi) {
				continue
			}
			p := filepath.Join(root, sub.Name(), e.Name())
			switch {
			case strings.HasPrefix(e.Name(), ".tmp-"):
				if os.Remove(p) == nil {
					tmps++
					left--
				}
			case refs[sub.Name()+e.Name()] == 0:
				if os.Remove(p) == nil {
					objects++
					freed += fi.Size()
					left--
				}
			}
		}
		if left == 0 {
			os.Remove(filepath.Join(root, sub.Name())) // fails if an object arrived meanwhile
		}
	}
	if err := syncDir(root); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return objects, tmps, freed, err
	}
	return objects, tmps, freed, nil
}

// PruneEvery is how often PruneIfDue prunes a journal.
const PruneEvery = 24 * time.Hour

// PruneIfDue prunes by r when no Prune through it ran in the last
// PruneEvery: the file pruned in the journal's directory says when the
// last one began (it is touched first, so that processes ending together
// do not all prune). due says whether it pruned.
func (j *Journal) PruneIfDue(r Retention) (res Pruned, due bool, err error) {
	stamp := filepath.Join(j.dir, "pruned")
	if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < PruneEvery && fi.ModTime().Before(time.Now().Add(time.Minute)) {
		return res, false, nil
	}
	f, err := os.OpenFile(stamp, os.O_WRONLY|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return res, false, fmt.Errorf("journal: %w", err)
	}
	f.Close()
	now := time.Now()
	if err := os.Chtimes(stamp, now, now); err != nil {
		return res, false, fmt.Errorf("journal: %w", err)
	}
	res, err = j.Prune(r)
	return res, true, err
}
