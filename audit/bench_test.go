package audit

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
)

// BenchmarkAppend is the cost of one durable record: the price of "a record
// is on disk before its result is printed".
func BenchmarkAppend(b *testing.B) {
	w, err := OpenWriter(b.TempDir(), "bench", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	i := 0
	for b.Loop() {
		if err := w.Append(sample(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAppendParallel appends from several goroutines: they share
// syncs (group commit).
func BenchmarkAppendParallel(b *testing.B) {
	w, err := OpenWriter(b.TempDir(), "bench", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := w.Append(sample(i)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

var (
	bigOnce sync.Once
	bigDir  string
)

const bigN = 1_000_000

// bigStore builds, once per process, a store of a million records in 100
// sessions, written in batches straight into main.
func bigStore(b *testing.B) string {
	bigOnce.Do(func() {
		dir, err := os.MkdirTemp("", "llm-runtime-audit-1m-")
		if err != nil {
			b.Fatal(err)
		}
		os.MkdirAll(mainDir(dir), 0o700)
		db, err := pebble.Open(mainDir(dir), &pebble.Options{Logger: quiet{}})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		prev := map[string][32]byte{}
		seq := map[string]uint64{}
		batch := db.NewBatch()
		for i := range bigN {
			r := sample(i)
			r.Time = t0.Add(time.Duration(i) * time.Millisecond)
			r.Session = fmt.Sprintf("s%03d", i%100)
			if _, ok := prev[r.Session]; !ok {
				prev[r.Session] = genesis(r.Session)
			}
			seq[r.Session]++
			r.Seq, r.Prev = seq[r.Session], prev[r.Session]
			r.seal()
			prev[r.Session] = r.Hash
			v, _ := r.MarshalBinary()
			batch.Set(r.Key(), v, nil)
			if batch.Len() > 4<<20 {
				batch.Commit(pebble.NoSync)
				batch = db.NewBatch()
			}
		}
		batch.Commit(pebble.Sync)
		db.Compact(context.Background(), nil, []byte{0xff}, true)
		db.Close()
		bigDir = dir
		b.Logf("built a store of %d records in %s", bigN, time.Since(start).Round(time.Millisecond))
	})
	return bigDir
}

func TestMain(m *testing.M) {
	if os.Getenv(helperStore) != "" {
		os.Exit(mergeHelper())
	}
	os.Exit(testenv.Main(m, func() error {
		if bigDir != "" {
			return os.RemoveAll(bigDir)
		}
		return nil
	}))
}

// BenchmarkStats1M is `audit stats` over a million records: open, merge,
// scan, decode, group and sort. Target: 2 s.
func BenchmarkStats1M(b *testing.B) {
	dir := bigStore(b)
	for b.Loop() {
		r, err := OpenReader(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		groups, err := r.Stats(Filter{}, "op")
		r.Close()
		if err != nil || groups[len(groups)-1].Count != bigN {
			b.Fatalf("%v %+v", err, groups)
		}
	}
}

// BenchmarkList100Filtered1M is `audit list --limit 100 --op write` over a
// million records. Target: 100 ms.
func BenchmarkList100Filtered1M(b *testing.B) {
	dir := bigStore(b)
	for b.Loop() {
		r, err := OpenReader(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		err = r.Each(Filter{Op: "write", Limit: 100, Reverse: true}, func(*Record) error { n++; return nil })
		r.Close()
		if err != nil || n != 100 {
			b.Fatalf("%v, %d records", err, n)
		}
	}
}

// BenchmarkVerify1M walks every chain of a million records.
func BenchmarkVerify1M(b *testing.B) {
	dir := bigStore(b)
	for b.Loop() {
		r, err := OpenReader(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		n, brk, err := r.Verify()
		r.Close()
		if err != nil || brk != nil || n != bigN {
			b.Fatalf("%d %v %v", n, brk, err)
		}
	}
}
