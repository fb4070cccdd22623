package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Tests of the audit log against forgery, damage and hostile bytes.

// waitLong is how these tests open readers: a writer's background merge
// can hold main for longer than the default wait on a loaded machine, and
// here the wait only tells a hang.
var waitLong = Options{Wait: 2 * time.Minute}

func checkpoint(t *testing.T, dir string, since time.Time) *Checkpoint {
	t.Helper()
	r, err := OpenReader(dir, waitLong)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cp, err := r.Checkpoint(since)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func check(t *testing.T, dir string, cps ...*Checkpoint) *Report {
	t.Helper()
	r, err := OpenReader(dir, waitLong)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Check(cps)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// forge rewrites record seq of session with fn and recomputes the hashes
// of it and of every record after it, as someone who knows the format
// would: the chain holds.
func forge(t *testing.T, dir, session string, seq uint64, fn func(*Record)) {
	t.Helper()
	read(t, dir, Filter{}) // merges closed segments into main
	tamper(t, dir, func(db *pebble.DB, keys [][]byte) {
		var recs []*Record
		for _, k := range keys {
			v, c, err := db.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			r := new(Record)
			if err := r.UnmarshalBinary(v); err != nil {
				t.Fatal(err)
			}
			c.Close()
			if r.Session == session {
				recs = append(recs, r)
			}
		}
		slices.SortFunc(recs, func(a, b *Record) int { return int(a.Seq) - int(b.Seq) })
		if uint64(len(recs)) < seq {
			t.Fatalf("session %s has %d records in main, no seq %d", session, len(recs), seq)
		}
		for i, r := range recs {
			if r.Seq < seq {
				continue
			}
			old := r.Key()
			if r.Seq == seq {
				fn(r)
			} else {
				r.Prev = recs[i-1].Hash
			}
			r.seal()
			v, _ := r.MarshalBinary()
			db.Delete(old, nil)
			if err := db.Set(r.Key(), v, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// deleteRecords deletes the records of session that drop chooses.
func deleteRecords(t *testing.T, dir, session string, drop func(seq uint64) bool) {
	t.Helper()
	read(t, dir, Filter{})
	tamper(t, dir, func(db *pebble.DB, keys [][]byte) {
		for _, k := range keys {
			v, c, _ := db.Get(k)
			var r Record
			r.UnmarshalBinary(v)
			c.Close()
			if r.Session == session && drop(r.Seq) {
				db.Delete(k, pebble.Sync)
			}
		}
	})
}

// threeSessions writes sessions a, b and c of 4, 3 and 2 records.
func threeSessions(t *testing.T) string {
	dir := t.TempDir()
	i := 0
	for _, s := range []struct {
		id string
		n  int
	}{{"a", 4}, {"b", 3}, {"c", 2}} {
		var recs []*Record
		for range s.n {
			recs = append(recs, sample(i))
			i++
		}
		write(t, dir, s.id, recs...)
	}
	return dir
}

func only(t *testing.T, rep *Report, session string, seq uint64, want ...string) *Break {
	t.Helper()
	if len(rep.Breaks) != 1 {
		t.Fatalf("%d breaks, want 1: %v", len(rep.Breaks), rep.Breaks)
	}
	b := rep.Breaks[0]
	for _, w := range want {
		if !strings.Contains(b.Error(), w) {
			t.Errorf("%v: want it to say %q", b, w)
		}
	}
	if b.Session != session || b.Seq != seq {
		t.Errorf("%v: want session %s seq %d", b, session, seq)
	}
	return b
}

func TestACheckpointShowsWhatTheChainCannot(t *testing.T) {
	cases := []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		chainOK bool // the chain alone holds: the documented limit
		session string
		seq     uint64
		want    []string
	}{
		{"a record rewritten, the chain recomputed", func(t *testing.T, dir string) {
			forge(t, dir, "a", 2, func(r *Record) { r.Target = "innocent.txt" })
		}, true, "a", 4, []string{"a record of seq 1-4 was rewritten", "forged", "covered by the checkpoint of"}},
		{"the last record rewritten, the chain recomputed", func(t *testing.T, dir string) {
			forge(t, dir, "b", 3, func(r *Record) { r.Target = "innocent.txt" })
		}, true, "b", 3, []string{"seq 1-3"}},
		{"a record moved to another time, rehashed under its new key", func(t *testing.T, dir string) {
			forge(t, dir, "a", 4, func(r *Record) { r.Time = r.Time.Add(time.Hour) })
		}, true, "a", 4, []string{"forged"}},
		{"the last records of a session deleted", func(t *testing.T, dir string) {
			deleteRecords(t, dir, "a", func(seq uint64) bool { return seq >= 3 })
		}, true, "a", 4, []string{"the session ends at seq 2, the checkpoint holds 4 records: seq 3-4", "are gone (deleted)"}},
		{"a whole session deleted", func(t *testing.T, dir string) {
			deleteRecords(t, dir, "c", func(uint64) bool { return true })
		}, true, "c", 2, []string{"the session is gone: the checkpoint holds its 2 records", "(deleted)"}},
		{"a record deleted from the middle", func(t *testing.T, dir string) {
			deleteRecords(t, dir, "b", func(seq uint64) bool { return seq == 2 })
		}, false, "b", 3, []string{"chain broken", "a record is missing"}},
		{"a value changed without rehashing", func(t *testing.T, dir string) {
			tamper(t, dir, func(db *pebble.DB, keys [][]byte) {
				v, c, _ := db.Get(keys[0])
				var r Record
				r.UnmarshalBinary(v)
				c.Close()
				r.Target = "innocent.txt"
				b, _ := r.MarshalBinary()
				db.Set(keys[0], b, pebble.Sync)
			})
		}, false, "a", 1, []string{"chain broken", "changed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := threeSessions(t)
			cp := checkpoint(t, dir, time.Time{})
			if len(cp.Heads) != 3 || cp.Records() != 9 {
				t.Fatalf("checkpoint %+v", cp)
			}
			if rep := check(t, dir, cp); !rep.OK() || rep.Covered != 9 || rep.Records != 9 {
				t.Fatalf("a clean store against its checkpoint: %+v", rep)
			}
			c.tamper(t, dir)
			if _, b := verify(t, dir); (b == nil) != c.chainOK {
				t.Fatalf("the chain alone: break %v, want none: %v", b, c.chainOK)
			}
			only(t, check(t, dir, cp), c.session, c.seq, c.want...)
		})
	}
}

// Records appended after a checkpoint, to a session it covers or to new
// ones, are no departure from it.
func TestRecordsAppendedAfterACheckpointPassIt(t *testing.T) {
	dir := t.TempDir()
	live, err := OpenWriter(dir, "live", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for i := range 3 {
		live.Append(sample(i))
	}
	write(t, dir, "done", sample(10))
	cp := checkpoint(t, dir, time.Time{}) // of the live segment's copy
	if len(cp.Heads) != 2 || cp.Heads[1].Session != "live" || cp.Heads[1].LastSeq != 3 {
		t.Fatalf("checkpoint %+v", cp.Heads)
	}
	for i := 3; i < 6; i++ {
		live.Append(sample(i))
	}
	live.Close()
	write(t, dir, "later", sample(20), sample(21))
	rep := check(t, dir, cp)
	if !rep.OK() || rep.Records != 9 || rep.Covered != 4 {
		t.Fatalf("after appends: %+v %v", rep, rep.Breaks)
	}
	// A second checkpoint narrows a rewrite down to the records between
	// the last one that matches and the first that does not.
	cp2 := checkpoint(t, dir, time.Time{})
	forge(t, dir, "live", 4, func(r *Record) { r.Target = "x" })
	only(t, check(t, dir, cp, cp2), "live", 6, "a record of seq 4-6 was rewritten")
}

// With checkpoints of every record of a session, a rewrite is named to the
// record.
func TestCheckpointsAfterEachRecordNameTheRewrittenOne(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(dir, "s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var cps []*Checkpoint
	for i := range 4 {
		w.Append(sample(i))
		cps = append(cps, checkpoint(t, dir, time.Time{}))
	}
	w.Close()
	forge(t, dir, "s", 3, func(r *Record) { r.Target = "innocent.txt" })
	only(t, check(t, dir, cps...), "s", 3, "seq 3 was rewritten", "forged")
}

func TestCheckpointSinceKeepsOnlyRecentSessionsWhole(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "old", sample(0), sample(1))
	write(t, dir, "new", sample(5), sample(6), sample(7))
	cp := checkpoint(t, dir, t0.Add(6*time.Second))
	if len(cp.Heads) != 1 || cp.Heads[0].Session != "new" || cp.Heads[0].Count != 3 || !cp.Since.Equal(t0.Add(6*time.Second)) {
		t.Fatalf("since: %+v", cp)
	}
}

func TestNoCheckpointOfABrokenChain(t *testing.T) {
	dir := threeSessions(t)
	deleteRecords(t, dir, "b", func(seq uint64) bool { return seq == 1 })
	r, err := OpenReader(dir, waitLong)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cp, err := r.Checkpoint(time.Time{})
	var b *Break
	if cp != nil || !errors.As(err, &b) || b.Session != "b" {
		t.Fatalf("checkpoint %v, error %v", cp, err)
	}
}

func TestCheckpointFormat(t *testing.T) {
	cp := &Checkpoint{Time: t0, Store: "/state/audit", Heads: []Head{
		{Session: "s1", Count: 2, LastSeq: 2, Time: t0.Add(time.Second), Hash: [32]byte{0xab}},
		{Session: "s2", Count: 1, LastSeq: 1, Time: t0.Add(2500 * time.Millisecond), Hash: [32]byte{1, 2}},
	}}
	var b bytes.Buffer
	cp.WriteTo(&b)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		`{"llm_runtime_audit_checkpoint":1,"time":"2026-11-27T12:00:00Z","store":"/state/audit","sessions":2,"records":3}`,
		`{"session":"s1","count":2,"last_seq":2,"last_time":"2026-11-27T12:00:01Z","head_hash":"ab00000000000000000000000000000000000000000000000000000000000000"}`,
		`{"session":"s2","count":1,"last_seq":1,"last_time":"2026-11-27T12:00:02.5Z","head_hash":"0102000000000000000000000000000000000000000000000000000000000000"}`,
	}
	if len(lines) != 4 || !slices.Equal(lines[:3], want) || !strings.HasPrefix(lines[3], `{"checkpoint_sha256":"`) {
		t.Fatalf("format:\n%s", b.String())
	}
	// Version 1 is stable: this is its digest of those lines.
	if lines[3] != `{"checkpoint_sha256":"`+sha256Hex(strings.Join(want, "\n")+"\n")+`"}` {
		t.Fatalf("digest line %s", lines[3])
	}
	cps, bad, err := ReadCheckpoints(&b)
	if err != nil || len(bad) != 0 || len(cps) != 1 {
		t.Fatalf("read back: %v %v %v", cps, bad, err)
	}
	got := cps[0]
	if !got.Time.Equal(cp.Time) || got.Store != cp.Store || got.Line != 1 || len(got.Heads) != 2 {
		t.Fatalf("read back %+v", got)
	}
	for i, h := range got.Heads {
		w := cp.Heads[i]
		if h.Session != w.Session || h.Count != w.Count || h.LastSeq != w.LastSeq || !h.Time.Equal(w.Time) || h.Hash != w.Hash {
			t.Errorf("head %d: %+v, want %+v", i, h, w)
		}
	}
}

func TestReadCheckpointsReportsDamageAndKeepsTheRest(t *testing.T) {
	one := func(session string) string {
		var b bytes.Buffer
		(&Checkpoint{Time: t0, Store: "/s", Heads: []Head{{Session: session, Count: 3, LastSeq: 3, Time: t0, Hash: [32]byte{7}}}}).WriteTo(&b)
		return b.String()
	}
	good := one("s")
	flipped := strings.Replace(good, `"count":3,"last_seq":3`, `"count":3,"last_seq":3 `, 1)
	cases := []struct {
		name, text string
		intact     int
		damagedAt  []int // the lines found wrong
		reason     string
	}{
		{"intact, twice, blank lines between", good + "\n" + good + "\n", 2, nil, ""},
		{"a changed byte", strings.Replace(good, `"count":3,"last_seq":3`, `"count":2,"last_seq":2`, 1), 0, []int{3}, "do not match their checksum"},
		{"a changed digest", strings.Replace(good, `"checkpoint_sha256":"`, `"checkpoint_sha256":"0`, 1), 0, []int{3}, "do not match their checksum"},
		{"a space added", flipped, 0, []int{3}, "do not match"},
		{"cut after a session line", strings.Join(strings.SplitAfter(good, "\n")[:2], ""), 0, []int{1}, "cut short"},
		{"cut in the middle of a line", good[:len(good)-20], 0, []int{3}, "not JSON"},
		{"a second one starting before the first ends", strings.Join(strings.SplitAfter(good, "\n")[:2], "") + good, 1, []int{3}, "cut short"},
		{"damaged between two intact ones", good + "garbage\n" + good, 2, []int{4}, "not part of a checkpoint"},
		{"CRLF line ends", strings.ReplaceAll(good, "\n", "\r\n"), 0, []int{3}, "checksum"},
		{"a count that is not the last seq, digest recomputed", fix(strings.Replace(good, `"count":3`, `"count":2`, 1)), 0, []int{2}, "count = last_seq"},
		{"a bad hash, digest recomputed", fix(strings.Replace(good, `"head_hash":"07`, `"head_hash":"zz`, 1)), 0, []int{2}, "64 hex digits"},
		{"header counts that do not match, digest recomputed", fix(strings.Replace(good, `"records":3`, `"records":4`, 1)), 0, []int{3}, "header says"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cps, bad, err := ReadCheckpoints(strings.NewReader(c.text))
			if err != nil {
				t.Fatal(err)
			}
			var at []int
			for _, b := range bad {
				at = append(at, b.At)
				if !strings.Contains(b.Error(), c.reason) || !strings.HasPrefix(b.Error(), "audit: checkpoint damaged at line ") {
					t.Errorf("%v: want it to say %q", b, c.reason)
				}
			}
			if len(cps) != c.intact || !slices.Equal(at, c.damagedAt) {
				t.Fatalf("%d intact, damaged at %v; want %d, %v: %v\n%s", len(cps), at, c.intact, c.damagedAt, bad, c.text)
			}
		})
	}
	_, _, err := ReadCheckpoints(strings.NewReader(strings.Replace(good, `"llm_runtime_audit_checkpoint":1`, `"llm_runtime_audit_checkpoint":2`, 1)))
	if !errors.Is(err, ErrCheckpointVersion) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("a newer version: %v", err)
	}
}

// fix recomputes the digest line of a checkpoint, as a careful hand would.
func fix(text string) string {
	lines := strings.SplitAfter(text, "\n")
	body := strings.Join(lines[:len(lines)-2], "")
	return body + `{"checkpoint_sha256":"` + sha256Hex(body) + "\"}\n"
}

// flushMain writes main's records to a table file and returns its path.
func flushMain(t *testing.T, dir string) []string {
	t.Helper()
	db, err := pebble.Open(mainDir(dir), &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ssts, _ := filepath.Glob(filepath.Join(mainDir(dir), "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table file after a flush")
	}
	return ssts
}

func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x5a
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A flipped byte in a table file used to panic every reader (Pebble's
// default on corruption is Logger.Fatalf); it is an error naming the file,
// from every read, while writers go on.
func TestADamagedTableIsAnErrorNamingItAndWritersGoOn(t *testing.T) {
	dir := t.TempDir()
	var recs []*Record
	for i := range 20 {
		recs = append(recs, sample(i))
	}
	write(t, dir, "old", recs...)
	read(t, dir, Filter{})
	damaged := flushMain(t, dir)[0]
	write(t, dir, "new", sample(100), sample(101))
	read(t, dir, Filter{})
	if ssts := flushMain(t, dir); len(ssts) != 2 {
		t.Fatalf("tables %v, want two", ssts)
	}
	flipByte(t, damaged, 40) // in the first data block

	is := func(what string, err error) {
		t.Helper()
		var d *DamageError
		if !errors.As(err, &d) || !errors.Is(err, ErrDamaged) {
			t.Fatalf("%s: %v, want a DamageError", what, err)
		}
		if d.File != damaged || !d.From.Equal(t0) || !d.To.Equal(t0.Add(19*time.Second)) {
			t.Fatalf("%s: file %s, records %v to %v; want %s, the first 20", what, d.File, d.From, d.To, damaged)
		}
		if msg := d.Error(); !strings.Contains(msg, damaged) || !strings.Contains(msg, "checksum") || strings.Contains(msg, "\n") {
			t.Fatalf("%s: %q", what, msg)
		}
	}
	r, err := OpenReader(dir, waitLong)
	if err != nil {
		t.Fatal(err)
	}
	is("each", r.Each(Filter{}, func(*Record) error { return nil }))
	is("each, newest first", r.Each(Filter{Reverse: true}, func(*Record) error { return nil }))
	_, err = r.Stats(Filter{}, "session")
	is("stats", err)
	_, _, err = r.Verify()
	is("verify", err)
	_, err = r.Checkpoint(time.Time{})
	is("checkpoint", err)
	// The records outside the damaged file can still be read.
	var n int
	if err := r.Each(Filter{Since: t0.Add(time.Minute)}, func(*Record) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("around the damage: %d records, %v", n, err)
	}
	r.Close()
	// A writer appends, and merges earlier segments, as before.
	write(t, dir, "after", sample(200))
	write(t, dir, "after2", sample(201))
	if got := read(t, dir, Filter{Since: t0.Add(time.Minute)}); len(got) != 4 {
		t.Fatalf("%d records after the damage, want 4", len(got))
	}
}

// Pebble reads a damaged write-ahead log as one a crash cut short: the
// records after the damage are gone without an error, and the chain that
// is left holds. A checkpoint taken before shows it.
func TestACheckpointShowsRecordsLostToADamagedLog(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(dir, "s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		w.Append(sample(i))
	}
	cp := checkpoint(t, dir, time.Time{}) // of the live segment's copy
	w.Close()
	logs, _ := filepath.Glob(filepath.Join(segmentsDir(dir), "*", "*.log"))
	if len(logs) != 1 {
		t.Fatalf("logs %v", logs)
	}
	fi, _ := os.Stat(logs[0])
	flipByte(t, logs[0], int(fi.Size()/2))
	n, b := verify(t, dir)
	if b != nil || n >= 20 {
		t.Fatalf("the chain alone: %d records, break %v; want fewer than 20 and no break (Pebble's reading)", n, b)
	}
	only(t, check(t, dir, cp), "s", 20, fmt.Sprintf("the session ends at seq %d", n), "(deleted)")
}

// Verify's messages carry a session id from the store, which a forger
// chooses: its control characters are escaped.
func TestBreaksAndDamageEscapeControlCharacters(t *testing.T) {
	dir := t.TempDir()
	evil := "s\x1b[2J\x07\r" // no NUL: the id names the segment's directory
	write(t, dir, evil, sample(0), sample(1))
	cp := checkpoint(t, dir, time.Time{})
	var b bytes.Buffer
	cp.WriteTo(&b)
	cps, bad, err := ReadCheckpoints(&b)
	if err != nil || len(bad) != 0 || cps[0].Heads[0].Session != evil {
		t.Fatalf("the checkpoint keeps the id exactly: %v %v %+v", err, bad, cps)
	}
	deleteRecords(t, dir, evil, func(uint64) bool { return true })
	rep := check(t, dir, cps...)
	brk := only(t, rep, evil, 2, `s\x1b[2J\x07\r`)
	for _, msg := range []string{brk.Error(), (&DamageError{File: "/x/\x1b]0;t\x07", Err: errors.New("bad\x1b[2J")}).Error()} {
		if strings.ContainsFunc(msg, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Errorf("%q holds a control character", msg)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A checkpoint escapes what a terminal would obey (a forged session id
// can hold anything), and reads back exactly.
func TestACheckpointEscapesControlsAndReadsBackExactly(t *testing.T) {
	session := "s\u202e\u009b\x7f"
	cp := &Checkpoint{Time: t0, Store: "/st\u2066ore", Heads: []Head{{Session: session, Count: 1, LastSeq: 1, Time: t0}}}
	var b bytes.Buffer
	if _, err := cp.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsFunc(b.String(), func(r rune) bool { return r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x202e || r == 0x2066 }) ||
		!strings.Contains(b.String(), `"session":"s\u202e\u009b\u007f"`) {
		t.Fatalf("%s", b.String())
	}
	cps, bad, err := ReadCheckpoints(&b)
	if err != nil || len(bad) != 0 || len(cps) != 1 || cps[0].Heads[0].Session != session || cps[0].Store != cp.Store {
		t.Fatalf("%v %v %+v", err, bad, cps)
	}
}
