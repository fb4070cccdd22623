package journal

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPut4KiB stores new 4 KiB contents (source-like text, which
// compresses): two fsyncs each, the object's and its directory's.
func BenchmarkPut4KiB(b *testing.B) {
	j := newJournal(b)
	content := make([]byte, 4096)
	for i := range content {
		content[i] = "func main() {\n\treturn\n}\n"[i%24]
	}
	b.SetBytes(4096)
	var n uint64
	for b.Loop() {
		n++
		binary.LittleEndian.PutUint64(content, n) // new content each time
		if _, err := j.Put(content); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut4KiBStored is a Put of content already there: a hash and a
// stat.
func BenchmarkPut4KiBStored(b *testing.B) {
	j := newJournal(b)
	content := make([]byte, 4096)
	b.SetBytes(4096)
	for b.Loop() {
		if _, err := j.Put(content); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntendDone journals one change, its contents put before: the
// intent's fsync, and the done record appended (not fsynced).
func BenchmarkIntendDone(b *testing.B) {
	j := newJournal(b)
	cp, err := j.Begin(Meta{FrontEnd: "filter"})
	if err != nil {
		b.Fatal(err)
	}
	c := fileChange(b, j, "src/main.go", []byte("before"), []byte("after"))
	for b.Loop() {
		id, err := cp.Intend([]Change{c})
		if err != nil {
			b.Fatal(err)
		}
		if err := cp.Done(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlainWrite4KiB is the write a journaled one adds to: a 4 KiB
// file written to a temporary name and renamed, without fsync, as a
// sandbox writes.
func BenchmarkPlainWrite4KiB(b *testing.B) {
	dir := b.TempDir()
	content := make([]byte, 4096)
	p := filepath.Join(dir, "f")
	for b.Loop() {
		if err := os.WriteFile(p+".tmp", content, 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan lists the checkpoints of a log of 1,000 checkpoints of 10
// changes each (and reads one's changes), which reads the whole log.
// bigLog journals 1,000 checkpoints of 10 changes each, as a long
// session leaves them.
func bigLog(b *testing.B) *Journal {
	j := newJournal(b)
	var changes []Change
	for i := range 10 {
		changes = append(changes, fileChange(b, j, fmt.Sprintf("pkg/dir%d/file%d.go", i, i), []byte(fmt.Sprint("before", i)), []byte(fmt.Sprint("after", i))))
	}
	for range 1000 {
		cp, err := j.Begin(Meta{Session: "20260101T000000Z-abcd1234", FrontEnd: "daemon"})
		if err != nil {
			b.Fatal(err)
		}
		// The records Intend and Done write, without the 10,000 fsyncs.
		err = j.locked(func() error {
			for _, c := range changes {
				id := j.intent + 1
				if err := j.append(false, record{Type: recIntent, Checkpoint: cp.n, Intent: id, Changes: []Change{c}, Time: time.Now().UTC(), PID: os.Getpid(), Start: 1}); err != nil {
					return err
				}
				if err := j.append(false, record{Type: recDone, Checkpoint: cp.n, Intent: id}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		cp.End()
	}
	return j
}

func BenchmarkScan(b *testing.B) {
	j := bigLog(b)
	for b.Loop() {
		list, err := j.Checkpoints()
		if err != nil || len(list) != 1000 || list[0].Changes != 10 {
			b.Fatal(len(list), err)
		}
		if _, err := j.Changes(500); err != nil {
			b.Fatal(err)
		}
	}
	fi, _ := os.Stat(j.logPath())
	b.ReportMetric(float64(fi.Size())/1e6, "MB-log")
}

// BenchmarkIntendInline4KiB journals a change of a 4 KiB file, its
// contents before and after inline in the intent: the log's one fsync,
// and the objects written lazily. Compare BenchmarkPut4KiB twice and
// BenchmarkIntendDone, what the same change costs with its contents Put.
func BenchmarkIntendInline4KiB(b *testing.B) {
	j := newJournal(b)
	cp, err := j.Begin(Meta{FrontEnd: "filter"})
	if err != nil {
		b.Fatal(err)
	}
	before, after := make([]byte, 4096), make([]byte, 4096)
	for i := range before {
		before[i] = "func main() {\n\treturn\n}\n"[i%24]
	}
	copy(after, before)
	var n uint64
	for b.Loop() {
		n++
		binary.LittleEndian.PutUint64(after, n) // new content each time
		c := Change{Path: "src/main.go", Before: State{Kind: File, Mode: 0o644, Size: 4096, Data: before}, After: State{Kind: File, Mode: 0o644, Size: 4096, Data: after}}
		id, err := cp.Intend([]Change{c})
		if err != nil {
			b.Fatal(err)
		}
		if err := cp.Done(id); err != nil {
			b.Fatal(err)
		}
		before, after = after, before
	}
}

// BenchmarkOpen is what a session's start and its <undo> read of a long
// log: Open, the index, the last checkpoint's changes, Close; from the
// head a Close saved, and (NoHead) from the log's start.
func BenchmarkOpen(b *testing.B) {
	for _, keep := range []bool{true, false} {
		b.Run(map[bool]string{true: "Head", false: "NoHead"}[keep], func(b *testing.B) {
			j := bigLog(b)
			j.Close()
			for b.Loop() {
				if !keep {
					os.Remove(j.headPath())
				}
				k, err := Open(j.Dir())
				if err != nil {
					b.Fatal(err)
				}
				list, err := k.Index()
				if err != nil || len(list) != 1000 {
					b.Fatal(len(list), err)
				}
				if cs, err := k.Changes(1000); err != nil || len(cs) != 10 {
					b.Fatal(len(cs), err)
				}
				k.Close()
			}
		})
	}
}
