package audit

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// patient is how the tests open readers. A reader waits for the shared
// database while a writer's background merge holds it; the default wait
// (10 s) is a bound a loaded machine can make that merge outlast, and
// here the wait only tells a hang.
var patient = Options{Wait: 2 * time.Minute}

func sample(i int) *Record {
	ops := []string{"open", "write", "search", "exec"}
	outcomes := []string{OK, OK, OK, Error, Denied}
	r := &Record{
		Time:     t0.Add(time.Duration(i) * time.Second),
		Repo:     "/repo",
		Op:       ops[i%len(ops)],
		Target:   fmt.Sprintf("dir%d/file%d.go", i%3, i),
		Outcome:  outcomes[i%len(outcomes)],
		BytesIn:  int64(i),
		BytesOut: int64(2 * i),
		Latency:  time.Duration(i+1) * time.Millisecond,
		Wait:     time.Duration(i) * time.Microsecond,
		Sandbox:  time.Duration(i+1) * 900 * time.Microsecond,
		Pooled:   i%2 == 0,
	}
	if r.Outcome != OK {
		r.Code = "FILE_NOT_FOUND"
	}
	return r
}

func write(t testing.TB, dir, session string, recs ...*Record) {
	t.Helper()
	w, err := OpenWriter(dir, session, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func read(t testing.TB, dir string, f Filter) []*Record {
	t.Helper()
	r, err := OpenReader(dir, patient)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []*Record
	if err := r.Each(f, func(rec *Record) error { out = append(out, rec); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRecordRoundTrip(t *testing.T) {
	r := sample(7)
	r.Session, r.Seq, r.PID, r.Container, r.Decider, r.Reason = "s", 3, 42, "abc123", "protect-secrets", "a .env file"
	r.Target, r.Resolved = "./cfg/../cfg/prod.yaml", "config/prod.yaml"
	r.Prev = genesis("s")
	r.seal()
	b, _ := r.MarshalBinary()
	if b[0] != version {
		t.Fatalf("first byte %d, want the version", b[0])
	}
	var back Record
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*r, back) {
		t.Fatalf("round trip:\n%+v\n%+v", *r, back)
	}
	for _, bad := range [][]byte{nil, {2}, b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		if err := new(Record).UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d bytes decoded: %v", len(bad), err)
		}
	}
}

func TestAppendAndReadBackEveryField(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "s1", sample(0), sample(1), sample(2))
	got := read(t, dir, Filter{})
	if len(got) != 3 {
		t.Fatalf("%d records", len(got))
	}
	for i, r := range got {
		want := sample(i)
		if r.Session != "s1" || r.Seq != uint64(i+1) || r.Op != want.Op || r.Target != want.Target || r.Latency != want.Latency ||
			r.Wait != want.Wait || r.Sandbox != want.Sandbox || r.BytesOut != want.BytesOut || r.Pooled != want.Pooled || !r.Time.Equal(want.Time) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// The reader merged the closed segment into main.
	if segs, _ := os.ReadDir(segmentsDir(dir)); len(segs) != 0 {
		t.Fatalf("%d segments left", len(segs))
	}
}

// A writer leaves its segment at Close (merging it would delay the end of
// every run); the next writer merges it in the background.
func TestTheNextWriterMergesClosedSegments(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "s1", sample(0), sample(1))
	segs, _ := os.ReadDir(segmentsDir(dir))
	if len(segs) != 1 {
		t.Fatalf("%d segments after the first writer, want its own", len(segs))
	}
	first := segs[0].Name()
	write(t, dir, "s2", sample(2))
	segs, _ = os.ReadDir(segmentsDir(dir))
	if len(segs) != 1 || segs[0].Name() == first {
		t.Fatalf("segments %v: the second writer did not merge the first's", segs)
	}
	if got := read(t, dir, Filter{}); len(got) != 3 {
		t.Fatalf("%d records, want 3", len(got))
	}
}

func TestFilters(t *testing.T) {
	dir := t.TempDir()
	var recs []*Record
	for i := range 20 {
		recs = append(recs, sample(i))
		if i%5 == 0 { // written through a link
			recs[i].Resolved = "real/" + path.Base(recs[i].Target)
		}
	}
	write(t, dir, "a", recs[:10]...)
	write(t, dir, "b", recs[10:]...)
	count := func(f Filter) int { return len(read(t, dir, f)) }
	cases := []struct {
		name string
		f    Filter
		want int
	}{
		{"everything", Filter{}, 20},
		{"since", Filter{Since: t0.Add(15 * time.Second)}, 5},
		{"until", Filter{Until: t0.Add(3 * time.Second)}, 3},
		{"range", Filter{Since: t0.Add(2 * time.Second), Until: t0.Add(4 * time.Second)}, 2},
		{"op", Filter{Op: "write"}, 5},
		{"outcome", Filter{Outcome: Denied}, 4},
		{"path glob", Filter{Path: "dir1/*"}, 7},
		{"path exact", Filter{Path: "dir0/file9.go"}, 1},
		{"path as resolved", Filter{Path: "real/*"}, 4},
		{"path as written, resolved elsewhere", Filter{Path: "dir2/file[0-5].go"}, 2},
		{"session", Filter{Session: "b"}, 10},
		{"repo", Filter{Repo: "/other"}, 0},
		{"limit", Filter{Limit: 4}, 4},
		{"combined", Filter{Op: "open", Session: "a", Outcome: OK}, 1},
	}
	for _, c := range cases {
		if got := count(c.f); got != c.want {
			t.Errorf("%s: %d records, want %d", c.name, got, c.want)
		}
	}
	rev := read(t, dir, Filter{Reverse: true, Limit: 3})
	if len(rev) != 3 || !rev[0].Time.Equal(t0.Add(19*time.Second)) || !rev[2].Time.Equal(t0.Add(17*time.Second)) {
		t.Fatalf("reverse: %v %v", rev[0].Time, rev[2].Time)
	}
}

func TestStatsAgainstAHandComputedSet(t *testing.T) {
	dir := t.TempDir()
	// Ten opens of 1..10 ms (two of them errors) and one write of 50 ms.
	var recs []*Record
	for i := 1; i <= 10; i++ {
		r := &Record{Time: t0.Add(time.Duration(i) * time.Second), Op: "open", Outcome: OK, Latency: time.Duration(i) * time.Millisecond, Wait: time.Duration(i) * time.Microsecond}
		if i == 3 || i == 7 {
			r.Outcome = Error
		}
		recs = append(recs, r)
	}
	recs = append(recs, &Record{Time: t0.Add(time.Minute), Op: "write", Outcome: Denied, Latency: 50 * time.Millisecond})
	write(t, dir, "s", recs...)
	rd, err := OpenReader(dir, patient)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	groups, err := rd.Stats(Filter{}, "op")
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 3 || groups[0].Key != "open" || groups[1].Key != "write" || groups[2].Key != "all" {
		t.Fatalf("groups %+v", groups)
	}
	open := groups[0]
	ms := time.Millisecond
	// Nearest rank: p50 of 1..10 is the 5th value, p95 and p99 the 10th.
	if open.Count != 10 || open.Errors != 2 || open.Denied != 0 || open.ErrorRate() != 0.2 ||
		open.Latency != (Summary{Count: 10, P50: 5 * ms, P95: 10 * ms, P99: 10 * ms, Max: 10 * ms}) ||
		open.Wait.P50 != 5*time.Microsecond {
		t.Fatalf("open: %+v", open)
	}
	all := groups[2]
	// 1..10 and 50: p50 is the 6th value, p95 and p99 the 11th.
	if all.Count != 11 || all.Errors != 2 || all.Denied != 1 || all.Latency != (Summary{Count: 11, P50: 6 * ms, P95: 50 * ms, P99: 50 * ms, Max: 50 * ms}) {
		t.Fatalf("all: %+v", all)
	}
	byOutcome, _ := rd.Stats(Filter{}, "outcome")
	if len(byOutcome) != 4 || byOutcome[0].Key != Denied || byOutcome[1].Key != Error || byOutcome[1].Count != 2 {
		t.Fatalf("by outcome: %+v", byOutcome)
	}
	if _, err := rd.Stats(Filter{}, "color"); err == nil {
		t.Fatal("grouping by an unknown field")
	}
}

// tamper opens main directly and changes it.
func tamper(t *testing.T, dir string, fn func(db *pebble.DB, keys [][]byte)) {
	t.Helper()
	db, err := pebble.Open(mainDir(dir), &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, _ := db.NewIter(nil)
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	it.Close()
	fn(db, keys)
}

func verify(t *testing.T, dir string) (int, *Break) {
	t.Helper()
	r, err := OpenReader(dir, patient)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, b, err := r.Verify()
	if err != nil {
		t.Fatal(err)
	}
	return n, b
}

func TestVerifyCatchesTampering(t *testing.T) {
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		var recs []*Record
		for i := range 6 {
			recs = append(recs, sample(i))
		}
		write(t, dir, "s", recs...)
		write(t, dir, "other", sample(10), sample(11))
		if n, b := verify(t, dir); n != 8 || b != nil {
			t.Fatalf("a clean store: %d records, break %v", n, b)
		}
		return dir
	}
	cases := map[string]struct {
		fn   func(db *pebble.DB, keys [][]byte)
		want string
	}{
		"a changed value": {func(db *pebble.DB, keys [][]byte) {
			v, c, _ := db.Get(keys[2])
			var r Record
			r.UnmarshalBinary(v)
			c.Close()
			r.Target = "innocent.txt"
			b, _ := r.MarshalBinary()
			db.Set(keys[2], b, pebble.Sync)
		}, "changed"},
		"a deleted record in the middle": {func(db *pebble.DB, keys [][]byte) {
			db.Delete(keys[3], pebble.Sync)
		}, "missing"},
		"two records swapped": {func(db *pebble.DB, keys [][]byte) {
			a, ca, _ := db.Get(keys[1])
			b, cb, _ := db.Get(keys[4])
			a, b = append([]byte(nil), a...), append([]byte(nil), b...)
			ca.Close()
			cb.Close()
			db.Set(keys[1], b, nil)
			db.Set(keys[4], a, pebble.Sync)
		}, "moved"},
		"a record re-keyed to another time": {func(db *pebble.DB, keys [][]byte) {
			v, c, _ := db.Get(keys[2])
			v = append([]byte(nil), v...)
			c.Close()
			db.Delete(keys[2], nil)
			k := append([]byte(nil), keys[2]...)
			k[7]++ // one nanosecond later
			db.Set(k, v, pebble.Sync)
		}, "moved"},
		"a forged record with a fresh hash": {func(db *pebble.DB, keys [][]byte) {
			v, c, _ := db.Get(keys[2])
			var r Record
			r.UnmarshalBinary(v)
			c.Close()
			r.Target = "innocent.txt"
			r.seal() // consistent in itself, but the next record no longer follows
			b, _ := r.MarshalBinary()
			db.Set(keys[2], b, pebble.Sync)
		}, "previous hash"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := setup(t)
			tamper(t, dir, c.fn)
			_, b := verify(t, dir)
			if b == nil || !strings.Contains(b.Reason, c.want) {
				t.Fatalf("break %v, want one saying %q", b, c.want)
			}
		})
	}
}

func TestConcurrentWritersAndAReaderDuringTheWrites(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr, err := OpenWriter(dir, fmt.Sprintf("w%d", w), Options{})
			if err != nil {
				t.Error(err)
				return
			}
			for i := range 50 {
				if err := wr.Append(sample(i)); err != nil {
					t.Error(err)
				}
			}
			wr.Close()
		}()
	}
	// A live writer, read while it is open.
	live, err := OpenWriter(dir, "live", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		live.Append(sample(i))
	}
	got := read(t, dir, Filter{Session: "live"})
	if len(got) != 5 {
		t.Fatalf("%d records of the live session, want 5", len(got))
	}
	wg.Wait()
	live.Append(sample(5))
	live.Close()
	if got := read(t, dir, Filter{}); len(got) != 206 {
		t.Fatalf("%d records, want 206", len(got))
	}
	if n, b := verify(t, dir); n != 206 || b != nil {
		t.Fatalf("verify: %d, %v", n, b)
	}
}

func TestLeftoverSegmentsAreMergedByTheNextReader(t *testing.T) {
	dir := t.TempDir()
	// A writer whose process died: its segment was never merged.
	seg := filepath.Join(segmentsDir(dir), "1-2147483647-dead")
	db, err := pebble.Open(seg, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	r := sample(1)
	r.Session, r.Seq, r.Prev = "dead", 1, genesis("dead")
	r.seal()
	v, _ := r.MarshalBinary()
	db.Set(r.Key(), v, pebble.Sync)
	db.Close()
	os.MkdirAll(filepath.Join(segmentsDir(dir), "2-2147483647-empty"), 0o700)
	if got := read(t, dir, Filter{}); len(got) != 1 || got[0].Session != "dead" {
		t.Fatalf("got %d records", len(got))
	}
	if segs, _ := os.ReadDir(segmentsDir(dir)); len(segs) != 0 {
		t.Fatalf("%d segments left after a read", len(segs))
	}
}

func TestOlderVersionsStillDecodeAndVerify(t *testing.T) {
	for _, v := range []byte{1, 2, 3, 4, 5} {
		r := &Record{Time: time.Unix(1700000000, 0).UTC(), Session: "s", Seq: 1, Op: "exec", Target: "true", Outcome: OK, enc: v}
		if v >= 2 {
			r.Changes = "created a.go\n"
		}
		r.Prev = genesis("s")
		r.seal()
		b, _ := r.MarshalBinary()
		if b[0] != v {
			t.Fatalf("encoded as version %d, want %d", b[0], v)
		}
		var got Record
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if got.computeHash() != got.Hash || got.Target != "true" || got.Changes != r.Changes {
			t.Fatalf("a version %d record does not verify: %+v", v, got)
		}
	}
	n := &Record{Time: time.Unix(1700000000, 0).UTC(), Session: "s", Seq: 2, Op: "exec", Changes: "created a.go\nrefused .git: no\n", FrontEnd: "mcp", Client: "claude-code 2.1",
		Target: "cfg/a.go", Resolved: "config/a.go", Network: "allowed proxy.golang.org:443 (142.250.1.1:443) sent 517 received 4096\nrefused other.example:443: not in exec.network_allow\n"}
	n.seal()
	b, _ := n.MarshalBinary()
	var back Record
	if err := back.UnmarshalBinary(b); err != nil || back.Changes != n.Changes || back.FrontEnd != "mcp" || back.Client != n.Client || back.Resolved != n.Resolved || back.Network != n.Network || back.computeHash() != n.Hash {
		t.Fatalf("version %d round trip: %v %+v", version, err, back)
	}
	m := *n
	m.Client = "someone else"
	if m.computeHash() == n.Hash {
		t.Fatal("the client is not covered by the hash")
	}
	m = *n
	m.Resolved = "config/other.go"
	if m.computeHash() == n.Hash {
		t.Fatal("the resolved path is not covered by the hash")
	}
}

func TestSessionsOfOneLogChainApartAndShareItsSegment(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for s := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := l.Writer(fmt.Sprintf("s%d", s))
			for i := range 25 {
				if err := w.Append(sample(i)); err != nil {
					t.Error(err)
				}
			}
			w.Close()
			if err := w.Append(sample(99)); err == nil {
				t.Error("an append after the session's Close succeeded")
			}
		}()
	}
	wg.Wait()
	// Read while the log is open: every session, in its own chain.
	if got := read(t, dir, Filter{Session: "s2"}); len(got) != 25 || got[24].Seq != 25 {
		t.Fatalf("session s2: %d records", len(got))
	}
	if segs, _ := os.ReadDir(segmentsDir(dir)); len(segs) != 1 {
		t.Fatalf("%d segments, want the log's one", len(segs))
	}
	late := l.Writer("late")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := late.Append(sample(0)); err == nil {
		t.Fatal("an append after the log's Close succeeded")
	}
	if n, b := verify(t, dir); n != 100 || b != nil {
		t.Fatalf("verify: %d, %v", n, b)
	}
}
