package journal

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// index says where each checkpoint begins in the log, so that reading the
// recent ones (an undo, a diff) need not read the log from its start.
type index struct {
	first   int     // the number of offs[0]
	offs    []int64 // the offset of each checkpoint's begin record; -1: none
	times   []int64 // its time, in Unix nanoseconds
	last    int64   // the offset of the log's last whole frame
	lastCRC uint32  // its payload's CRC-32C
	saved   int64   // the log's length when the head was last saved or loaded
}

// add notes checkpoint n's begin record, at off.
func (x *index) add(n int, off int64, t time.Time) {
	if len(x.offs) == 0 {
		x.first = n
	}
	if n < x.first {
		return // not in order: the log was not written by Begin
	}
	for x.first+len(x.offs) < n {
		x.offs, x.times = append(x.offs, -1), append(x.times, 0)
	}
	if i := n - x.first; i < len(x.offs) {
		x.offs[i], x.times[i] = off, t.UnixNano()
		return
	}
	x.offs, x.times = append(x.offs, off), append(x.times, t.UnixNano())
}

// at is where checkpoint n begins, or -1.
func (x *index) at(n int) int64 {
	if i := n - x.first; i >= 0 && i < len(x.offs) {
		return x.offs[i]
	}
	return -1
}

// headEvery is how much log a process that keeps the journal open (a
// daemon) appends or reads before it saves the head again.
const headEvery = 1 << 20

// head is the state of the journal read from the log up to Off: what Open
// starts from, so that it reads only the records after it. It is a cache,
// written without fsync and used only when the log still holds, at Last,
// the frame it names (the same file, by device and inode, and the same
// record, by length and CRC); otherwise, the log is read from its start.
type head struct {
	Version int          `json:"version"`
	Dev     uint64       `json:"dev"`
	Ino     uint64       `json:"ino"`
	Off     int64        `json:"off"`
	Last    int64        `json:"last"`
	LastCRC uint32       `json:"last_crc"`
	Cp      int          `json:"checkpoint"`
	Intent  uint64       `json:"intent"`
	Open    []headIntent `json:"open,omitempty"`
	First   int          `json:"first,omitempty"`
	Offs    []byte       `json:"offs,omitempty"`  // varint deltas
	Times   []byte       `json:"times,omitempty"` // varint deltas
}

type headIntent struct {
	Intent
	Start uint64
}

const headVersion = 1

func (j *Journal) headPath() string { return filepath.Join(j.dir, "head") }

// saveHead writes the head, to a temporary file renamed over the last
// one; it runs under j.mu. A failure costs the next Open a longer read,
// nothing else.
func (j *Journal) saveHead() {
	if j.log == nil || j.off == 0 || j.idx.saved == j.off {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(int(j.log.Fd()), &st) != nil {
		return
	}
	h := head{Version: headVersion, Dev: uint64(st.Dev), Ino: st.Ino, Off: j.off, Last: j.idx.last, LastCRC: j.idx.lastCRC,
		Cp: j.cp, Intent: j.intent, First: j.idx.first, Offs: deltas(j.idx.offs), Times: deltas(j.idx.times)}
	for _, in := range j.open {
		h.Open = append(h.Open, headIntent{in.Intent, in.start})
	}
	b, err := json.Marshal(&h)
	if err != nil {
		return
	}
	tmp := j.headPath() + ".tmp-" + strconv.Itoa(os.Getpid())
	if os.WriteFile(tmp, b, 0o600) != nil || os.Rename(tmp, j.headPath()) != nil {
		os.Remove(tmp)
		return
	}
	j.idx.saved = j.off
}

// loadHead starts the state from the head when it names the log as it is;
// catchUp then reads only what follows. It runs before the journal is
// shared.
func (j *Journal) loadHead() {
	b, err := os.ReadFile(j.headPath())
	if err != nil {
		return
	}
	var h head
	if json.Unmarshal(b, &h) != nil || h.Version != headVersion || h.Off <= 0 || h.Last < 0 || h.Last >= h.Off {
		return
	}
	offs, ok1 := undeltas(h.Offs)
	times, ok2 := undeltas(h.Times)
	if !ok1 || !ok2 || len(offs) != len(times) {
		return
	}
	f, err := os.OpenFile(j.logPath(), os.O_RDWR|os.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || uint64(st.Dev) != h.Dev || st.Ino != h.Ino || st.Size < h.Off || !frameAt(f, h.Last, h.Off, h.LastCRC) {
		f.Close()
		return
	}
	j.log, j.off, j.cp, j.intent = f, h.Off, h.Cp, h.Intent
	j.open = map[uint64]*openIntent{}
	for _, in := range h.Open {
		j.open[in.ID] = &openIntent{in.Intent, in.Start}
	}
	j.idx = index{first: h.First, offs: offs, times: times, last: h.Last, lastCRC: h.LastCRC, saved: h.Off}
}

// frameAt says whether f holds at off a whole frame that ends at end and
// whose payload's CRC is crc.
func frameAt(f *os.File, off, end int64, crc uint32) bool {
	if end-off <= frameHeader || end-off > frameHeader+maxRecord {
		return false
	}
	b := make([]byte, end-off)
	if _, err := f.ReadAt(b, off); err != nil {
		return false
	}
	return wholeAt(b, 0) == len(b) && crcOf(b, 0) == crc // wholeAt checked the payload against it
}

func deltas(v []int64) []byte {
	var b []byte
	prev := int64(0)
	for _, x := range v {
		b = binary.AppendVarint(b, x-prev)
		prev = x
	}
	return b
}

func undeltas(b []byte) ([]int64, bool) {
	var v []int64
	prev := int64(0)
	for len(b) > 0 {
		d, n := binary.Varint(b)
		if n <= 0 {
			return nil, false
		}
		prev += d
		v = append(v, prev)
		b = b[n:]
	}
	return v, true
}

// IndexEntry is a checkpoint as the index knows it.
type IndexEntry struct {
	Number int
	Time   time.Time
}

// Index lists the repository's checkpoints, oldest first, with the time
// each began. It reads only the records appended since the journal last
// looked, so it is cheap however long the log.
func (j *Journal) Index() ([]IndexEntry, error) {
	var list []IndexEntry
	err := j.locked(func() error {
		for i, off := range j.idx.offs {
			if off >= 0 {
				list = append(list, IndexEntry{Number: j.idx.first + i, Time: time.Unix(0, j.idx.times[i])})
			}
		}
		return nil
	})
	return list, err
}

// Changes returns the changes done in the checkpoints numbers, in that
// order, each checkpoint's in the order of its intents: aborted ones and
// intents with no outcome yet are left out. It reads the log from the
// first of them on.
func (j *Journal) Changes(numbers ...int) ([]Change, error) {
	var b []byte
	var from int64
	err := j.locked(func() error {
		from = -1
		for _, n := range numbers {
			at := j.idx.at(n)
			if at < 0 {
				return fmt.Errorf("%w: %d", ErrNoCheckpoint, n)
			}
			if from < 0 || at < from {
				from = at
			}
		}
		if from < 0 {
			return nil
		}
		// Read under the lock, from the file the index describes: a Prune
		// may replace it as soon as the lock is let go.
		b = make([]byte, j.off-from)
		if _, err := j.log.ReadAt(b, from); err != nil && err != io.EOF {
			return fmt.Errorf("journal: reading the log: %w", err)
		}
		return nil
	})
	if err != nil || from < 0 {
		return nil, err
	}
	want := map[int]bool{}
	for _, n := range numbers {
		want[n] = true
	}
	type intent struct {
		cp      int
		changes []Change
		done    bool
	}
	var order []*intent
	byID := map[uint64]*intent{}
	_, err = records(b, from, func(r *record, _ int64, _ []byte) error {
		if !want[r.Checkpoint] {
			return nil
		}
		switch r.Type {
		case recIntent:
			in := &intent{cp: r.Checkpoint, changes: r.Changes}
			byID[r.Intent] = in
			order = append(order, in)
		case recDone:
			if in := byID[r.Intent]; in != nil {
				in.done = true
				in.changes = withLater(in.changes, r.Changes)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var list []Change
	for _, n := range numbers {
		if !want[n] {
			continue // named twice
		}
		want[n] = false
		for _, in := range order {
			if in.cp == n && in.done {
				list = append(list, in.changes...)
			}
		}
	}
	return list, nil
}

// withLater gives an intent's states after that name their content by sum
// only (Later) the contents its done record holds (held): they are then
// as if the intent held them.
func withLater(changes, held []Change) []Change {
	if len(held) == 0 {
		return changes
	}
	data := map[string][]byte{}
	for _, h := range held {
		if h.After.Data != nil {
			data[h.After.Sum] = h.After.Data
		}
	}
	for i := range changes {
		if a := &changes[i].After; a.Later && a.Data == nil && data[a.Sum] != nil {
			a.Data, a.Later = data[a.Sum], false
		}
	}
	return changes
}
