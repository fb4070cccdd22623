package main

// End-to-end tests of the audit log against forgery, damage and hostile
// bytes. Each test that damages or forges a store has a store of its own
// (--audit-dir under t.TempDir()), so the tests sharing the default state
// directory never see it.

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/llm-runtime/llm-runtime/audit"
	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

// auditIn runs `llm-runtime --audit-dir adir audit ARGS...`.
func auditIn(t *testing.T, adir string, args ...string) result {
	t.Helper()
	return runBinary(t, t.TempDir(), "", nil, append([]string{"--audit-dir", adir, "audit"}, args...)...)
}

// sessionsIn lists the store's sessions, oldest first.
func sessionsIn(t *testing.T, adir string) []string {
	t.Helper()
	r := auditIn(t, adir, "list", "--format", "json")
	if r.code != 0 {
		t.Fatalf("audit list: exit %d %s", r.code, r.stderr)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var a auditLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if !slices.Contains(out, a.Session) {
			out = append(out, a.Session)
		}
	}
	return out
}

// editMain opens the store's shared database directly, as someone with
// access to the files would, after a reader merged every segment into it.
func editMain(t *testing.T, adir string, fn func(db *pebble.DB, recs map[string]*audit.Record)) {
	t.Helper()
	if r := auditIn(t, adir, "list", "--limit", "1"); r.code != 0 {
		t.Fatalf("audit list: %s", r.stderr)
	}
	db, err := pebble.Open(filepath.Join(adir, "main"), &pebble.Options{Logger: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := map[string]*audit.Record{}
	it, _ := db.NewIter(nil)
	for ok := it.First(); ok; ok = it.Next() {
		r := new(audit.Record)
		if err := r.UnmarshalBinary(it.Value()); err != nil {
			t.Fatal(err)
		}
		recs[string(it.Key())] = r
	}
	it.Close()
	fn(db, recs)
}

type silent struct{}

func (silent) Infof(string, ...any)           {}
func (silent) Errorf(string, ...any)          {}
func (silent) Fatalf(format string, a ...any) { panic(format) }

// ofSession returns the records of a session, by sequence number.
func ofSession(recs map[string]*audit.Record, session string) []*audit.Record {
	var out []*audit.Record
	for _, r := range recs {
		if r.Session == session {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *audit.Record) int { return int(a.Seq) - int(b.Seq) })
	return out
}

// reseal sets a record's hash from its content, with the format's own
// encoding: SHA-256 of the encoding without its last 32 bytes, the hash.
func reseal(r *audit.Record) {
	b, _ := r.MarshalBinary()
	r.Hash = sha256.Sum256(b[:len(b)-32])
}

func put(t *testing.T, db *pebble.DB, r *audit.Record) {
	t.Helper()
	v, _ := r.MarshalBinary()
	if err := db.Set(r.Key(), v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// copyStore copies a store directory (no process has it open).
func copyStore(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "audit")
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

func TestE2EAuditCheckpointShowsForgeryAndDeletion(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n", "b.txt": "B\n"})
	adir := filepath.Join(t.TempDir(), "audit")
	for range 3 {
		if r := runBinary(t, dir, "<open a.txt> <search A> <open b.txt>", nil, "--sandbox", "local", "--audit-dir", adir); r.code != 0 {
			t.Fatalf("run: exit %d %s", r.code, r.stderr)
		}
	}
	sessions := sessionsIn(t, adir)
	if len(sessions) != 3 {
		t.Fatalf("sessions %v", sessions)
	}
	cp := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	if r := auditIn(t, adir, "checkpoint", "--output", cp); r.code != 0 || r.stdout != "checkpoint of 3 sessions (9 records) appended to "+cp+"\n" {
		t.Fatalf("checkpoint: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := auditIn(t, adir, "verify", "--checkpoint", cp); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 9 records, every chain intact; 1 checkpoint (the latest of ") || !strings.Contains(r.stdout, "covers 9 of them, all as they were") {
		t.Fatalf("verify against it: exit %d %q %q", r.code, r.stdout, r.stderr)
	}

	cases := []struct {
		name    string
		edit    func(t *testing.T, db *pebble.DB, recs map[string]*audit.Record)
		chainOK bool // verify alone passes: the documented limit of a chain
		want    []string
	}{
		{"a record rewritten, every hash after it recomputed", func(t *testing.T, db *pebble.DB, recs map[string]*audit.Record) {
			s := ofSession(recs, sessions[0])
			s[1].Target = "innocent.txt"
			for i := 1; i < len(s); i++ {
				s[i].Prev = s[i-1].Hash
				reseal(s[i])
				put(t, db, s[i])
			}
		}, true, []string{"record ", "(session " + sessions[0] + ", seq 3), covered by the checkpoint of ", cp + " line 1)",
			"a record of seq 1-3 was rewritten and the chain rehashed from it (forged)"}},
		{"the last record of a session deleted", func(t *testing.T, db *pebble.DB, recs map[string]*audit.Record) {
			db.Delete(ofSession(recs, sessions[1])[2].Key(), pebble.Sync)
		}, true, []string{"(session " + sessions[1] + ", seq 3)", "the session ends at seq 2, the checkpoint holds 3 records: seq 3, the last at ", "is gone (deleted)"}},
		{"a whole session deleted", func(t *testing.T, db *pebble.DB, recs map[string]*audit.Record) {
			for _, r := range ofSession(recs, sessions[2]) {
				db.Delete(r.Key(), pebble.Sync)
			}
		}, true, []string{"(session " + sessions[2] + ", seq 3)", "the session is gone: the checkpoint holds its 3 records"}},
		{"a record moved to another key", func(t *testing.T, db *pebble.DB, recs map[string]*audit.Record) {
			r := ofSession(recs, sessions[0])[0]
			v, _ := r.MarshalBinary()
			k := r.Key()
			db.Delete(k, nil)
			k[7]++ // a nanosecond later
			db.Set(k, v, pebble.Sync)
		}, false, []string{"chain broken at record ", "(session " + sessions[0] + ", seq 1)", "(moved)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := copyStore(t, adir)
			editMain(t, store, func(db *pebble.DB, recs map[string]*audit.Record) { c.edit(t, db, recs) })
			alone := auditIn(t, store, "verify")
			if (alone.code == 0) != c.chainOK {
				t.Fatalf("verify alone: exit %d %q %q", alone.code, alone.stdout, alone.stderr)
			}
			if c.chainOK && !strings.Contains(alone.stdout, "every chain intact") {
				t.Fatalf("verify alone: %q", alone.stdout)
			}
			r := auditIn(t, store, "verify", "--checkpoint", cp)
			if r.code != 4 || !strings.HasSuffix(r.stderr, "checked against 1 checkpoint: 1 problem, listed above\n") || strings.Count(r.stdout, "\n") != 1 {
				t.Fatalf("verify --checkpoint: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("verify --checkpoint says\n%s\nwant %q in it", r.stdout, w)
				}
			}
			// A checkpoint vouches for what a chain can show: a forged
			// store passes, a broken chain does not.
			if k := auditIn(t, store, "checkpoint"); c.chainOK == (k.code != 0) {
				t.Errorf("checkpoint of the edited store: exit %d %s", k.code, k.stderr)
			}
		})
	}

	t.Run("records appended after the checkpoint", func(t *testing.T) {
		// A new session, and one running while a second checkpoint is taken.
		if r := runBinary(t, dir, "<open a.txt>", nil, "--sandbox", "local", "--audit-dir", adir); r.code != 0 {
			t.Fatal(r.stderr)
		}
		s := startSession(t, dir, "--sandbox", "local", "--audit-dir", adir)
		s.send("<open a.txt>")
		if r := auditIn(t, adir, "checkpoint", "-o", cp); r.code != 0 || !strings.HasPrefix(r.stdout, "checkpoint of 5 sessions (11 records)") {
			t.Fatalf("second checkpoint: %q %q", r.stdout, r.stderr)
		}
		s.send("<open b.txt>")
		s.stdin.Close()
		if err := s.cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		r := auditIn(t, adir, "verify", "--checkpoint", cp)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 12 records, every chain intact; 2 checkpoints (the latest of ") || !strings.Contains(r.stdout, "cover 11 of them") {
			t.Fatalf("verify after appends: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("a damaged checkpoint", func(t *testing.T) {
		text, _ := os.ReadFile(cp)
		lines := strings.SplitAfter(string(text), "\n")
		edited := filepath.Join(t.TempDir(), "cp.jsonl")
		// A digit of the first checkpoint's first head hash changed; the
		// second checkpoint intact.
		i := strings.Index(lines[1], `"head_hash":"`) + len(`"head_hash":"`)
		b := []byte(lines[1])
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		lines[1] = string(b)
		os.WriteFile(edited, []byte(strings.Join(lines, "")), 0o600)
		r := auditIn(t, adir, "verify", "--checkpoint", edited)
		if r.code != 4 || !strings.Contains(r.stdout, edited+": checkpoint damaged at line 5: the lines before do not match their checksum") {
			t.Fatalf("a changed digit: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
		// Cut short: the last line gone.
		os.WriteFile(edited, text[:bytes.LastIndexByte(text[:len(text)-1], '\n')+1], 0o600)
		if r := auditIn(t, adir, "verify", "--checkpoint", edited); r.code != 4 || !strings.Contains(r.stdout, "cut short") {
			t.Fatalf("cut short: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
		if r := auditIn(t, adir, "verify", "--checkpoint", filepath.Join(t.TempDir(), "none")); r.code != 1 {
			t.Fatalf("a missing checkpoint file: exit %d %q", r.code, r.stderr)
		}
		os.WriteFile(edited, nil, 0o600)
		if r := auditIn(t, adir, "verify", "--checkpoint", edited); r.code != 1 || !strings.Contains(r.stderr, "no checkpoint in it") {
			t.Fatalf("an empty checkpoint file: exit %d %q", r.code, r.stderr)
		}
	})
}

// A flipped byte in a table file of the store made verify, list and stats
// panic with a stack trace (exit 2). Now each names the file, verify exits
// 4, and filter runs go on.
func TestE2EAuditDamagedStoreIsReportedWithoutAPanic(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	adir := filepath.Join(t.TempDir(), "audit")
	for range 2 {
		if r := runBinary(t, dir, "<open a.txt> <search A>", nil, "--sandbox", "local", "--audit-dir", adir); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	editMain(t, adir, func(db *pebble.DB, _ map[string]*audit.Record) {
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	})
	ssts, _ := filepath.Glob(filepath.Join(adir, "main", "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table file")
	}
	damaged := ssts[0]
	b, _ := os.ReadFile(damaged)
	b[40] ^= 0x5a
	os.WriteFile(damaged, b, 0o600)
	mark := time.Now()

	noPanic := func(what string, r result, code int) {
		t.Helper()
		if r.code != code || !strings.Contains(r.stderr, "audit: the store is damaged: "+damaged+": ") || !strings.Contains(r.stderr, "checksum mismatch") ||
			strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, want %d naming %s:\n%s", what, r.code, code, damaged, r.stderr)
		}
	}
	noPanic("verify", auditIn(t, adir, "verify"), 4)
	noPanic("checkpoint", auditIn(t, adir, "checkpoint"), 4)
	for _, args := range [][]string{{"list"}, {"list", "--format", "csv"}, {"list", "--reverse"}, {"stats"}, {"stats", "--by", "session"}, {"export"}} {
		noPanic(strings.Join(args, " "), auditIn(t, adir, args...), 1)
	}
	// A run goes on, recording; its records can be read around the damage.
	r := runBinary(t, dir, "<open a.txt>", nil, "--sandbox", "local", "--audit-dir", adir)
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "=== FILE: a.txt ===") {
		t.Fatalf("a run with a damaged store: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	l := auditIn(t, adir, "list", "--since", mark.Format(time.RFC3339Nano), "--format", "json")
	if l.code != 0 || strings.Count(l.stdout, "\n") != 1 || !strings.Contains(l.stdout, `"target":"a.txt"`) {
		t.Fatalf("list --since around the damage: exit %d %q %q", l.code, l.stdout, l.stderr)
	}
}

// Hostile bytes in every text field reach the table and the CSV escaped,
// and the JSON exactly.
func TestE2EAuditListEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	adir := filepath.Join(t.TempDir(), "audit")
	query := "\x1b[2J\x1b]0;pwned\x07x\r\x00y"
	if r := runBinary(t, dir, "<search "+query+"> <open a\x1b[31m\r.txt>", nil, "--sandbox", "local", "--audit-dir", adir); r.code != 0 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
	// A session the model cannot name, but a forger can: written here.
	evil := "evil\x1b[2J\x07"
	w, err := audit.OpenWriter(adir, evil, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Append(&audit.Record{Repo: "/r\x1b[1m", Op: "exec", Target: "t\x1b[2J", Outcome: "denied\x07", Code: "C\r", Container: "c\x00", Decider: "d\x1b", Reason: "r\x1b]0;x\x07"})
	w.Close()
	// Its segment is this process's, which only this process merges.
	rd, err := audit.OpenReader(adir, audit.Options{Wait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rd.Close()

	controls := func(what, s string) {
		t.Helper()
		if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f }); i >= 0 {
			t.Errorf("%s holds a control character at %d:\n%q", what, i, s)
		}
	}
	table := auditIn(t, adir, "list")
	controls("the table", table.stdout)
	if strings.Count(table.stdout, "\n") != 4 || !strings.Contains(table.stdout, parser.Printable(query)) || !strings.Contains(table.stdout, `a\x1b[31m\r.txt`) ||
		!strings.Contains(table.stdout, `evil\x1b[2J\x07`) || !strings.Contains(table.stdout, `denied\x07`) || !strings.Contains(table.stdout, `C\r`) {
		t.Errorf("table:\n%s", table.stdout)
	}
	c := auditIn(t, adir, "list", "--format", "csv")
	controls("the CSV", c.stdout)
	rows, err := csv.NewReader(strings.NewReader(c.stdout)).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("csv: %v\n%s", err, c.stdout)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	if got := rows[1][col["target"]]; got != `\x1b[2J\x1b]0;pwned\x07x\r\x00y` {
		t.Errorf("csv target %q", got)
	}
	last := rows[3]
	for field, want := range map[string]string{"session": `evil\x1b[2J\x07`, "repo": `/r\x1b[1m`, "target": `t\x1b[2J`, "outcome": `denied\x07`, "code": `C\r`,
		"container": `c\x00`, "decider": `d\x1b`, "reason": `r\x1b]0;x\x07`} {
		if got := last[col[field]]; got != want {
			t.Errorf("csv %s: %q, want %q", field, got, want)
		}
	}
	var exact []auditLine
	for _, l := range strings.Split(strings.TrimSpace(auditIn(t, adir, "list", "--format", "json").stdout), "\n") {
		var a auditLine
		json.Unmarshal([]byte(l), &a)
		exact = append(exact, a)
	}
	if len(exact) != 3 || exact[0].Target != query || exact[2].Session != evil || exact[2].Code != "C\r" {
		t.Errorf("json is not exact: %+v", exact)
	}
	st := auditIn(t, adir, "stats", "--by", "session")
	controls("stats --by session", st.stdout)
	if !strings.Contains(st.stdout, `evil\x1b[2J\x07`) {
		t.Errorf("stats:\n%s", st.stdout)
	}
	if sj := auditIn(t, adir, "stats", "--by", "session", "--format", "json"); !strings.Contains(sj.stdout, `"group":"evil\u001b[2J\u0007"`) {
		t.Errorf("stats json:\n%s", sj.stdout)
	}
	// Verify names the session escaped too, here gone after a checkpoint.
	cp := filepath.Join(t.TempDir(), "cp.jsonl")
	if r := auditIn(t, adir, "checkpoint", "-o", cp); r.code != 0 {
		t.Fatal(r.stderr)
	}
	editMain(t, adir, func(db *pebble.DB, recs map[string]*audit.Record) {
		for _, r := range ofSession(recs, evil) {
			db.Delete(r.Key(), pebble.Sync)
		}
	})
	v := auditIn(t, adir, "verify", "--checkpoint", cp)
	controls("verify", v.stdout+v.stderr)
	if v.code != 4 || !strings.Contains(v.stdout, `(session evil\x1b[2J\x07, seq 1)`) {
		t.Errorf("verify: exit %d %q %q", v.code, v.stdout, v.stderr)
	}
}

// printRecords escapes every text field of the table and the CSV, and
// never cuts a table cell inside an escape.
func TestAuditListEscapesEveryTextField(t *testing.T) {
	t.Parallel()
	r := &audit.Record{Time: time.Unix(0, 0), Session: "s\x1b", Seq: 1, Repo: "/r\x07", Op: "o\r", Target: "t\x00\u009b\xff", Outcome: "x\x1b",
		Code: "c\x1b", Container: "k\x1b", Decider: "d\x1b", Reason: "r\x1b"}
	for _, format := range []string{"table", "csv"} {
		var b bytes.Buffer
		if err := printRecords(&b, format, []*audit.Record{r}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if strings.ContainsFunc(out, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0xfffd }) ||
			strings.Count(out, "\n") != 2 || !strings.Contains(out, `t\x00\u009b\xff`) {
			t.Errorf("%s:\n%q", format, out)
		}
		if format == "csv" {
			for _, want := range []string{`s\x1b`, `/r\x07`, `o\r`, `x\x1b`, `c\x1b`, `k\x1b`, `d\x1b`, `r\x1b`} {
				if !strings.Contains(out, ","+want+",") && !strings.HasSuffix(strings.TrimSpace(out), ","+want) {
					t.Errorf("csv lacks %q:\n%s", want, out)
				}
			}
		}
	}
	if got := cell(strings.Repeat("a", 56)+"\x1b[2J", 60); got != strings.Repeat("a", 56)+"..." {
		t.Errorf("cut inside an escape: %q", got)
	}
	if got := cell("short\x1b", 60); got != `short\x1b` {
		t.Errorf("%q", got)
	}
}

// A kill (first seen: a run piped to head, dead of SIGPIPE) inside the
// removal of a segment just merged into main left the segment half
// removed, no longer a database: list, verify and checkpoint exited 1 and
// later segments piled up unmerged until the store was deleted by hand.
// Here the store is left as such a kill leaves it, after each of the
// files the removal unlinks, in the order it unlinks them; every query
// works, no record is lost or read twice, and merging goes on.
func TestE2EAuditSurvivesAMergeKilledWhileItRemovesTheSegment(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	adir := filepath.Join(t.TempDir(), "audit")
	if r := runBinary(t, dir, "<open a.txt> <search A>", nil, "--sandbox", "local", "--audit-dir", adir); r.code != 0 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
	segs, _ := os.ReadDir(filepath.Join(adir, "segments"))
	if len(segs) != 1 {
		t.Fatalf("%d segments after one run, want its own", len(segs))
	}
	seg := filepath.Join(adir, "segments", segs[0].Name())
	f, err := os.Open(seg)
	if err != nil {
		t.Fatal(err)
	}
	names, err := f.Readdirnames(-1) // unsorted: the order os.RemoveAll unlinks them in
	f.Close()
	if err != nil || len(names) < 3 {
		t.Fatalf("the segment holds %v (%v)", names, err)
	}
	files := map[string][]byte{}
	for _, n := range names {
		if files[n], err = os.ReadFile(filepath.Join(seg, n)); err != nil {
			t.Fatal(err)
		}
	}
	// A query merges the closed segment into main, and removes it.
	if r := auditIn(t, adir, "list"); r.code != 0 {
		t.Fatalf("list: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(seg); !os.IsNotExist(err) {
		t.Fatalf("the merged segment is still there: %v", err)
	}
	// Its writer's pid, in its name, is one no process can have.
	parts := strings.SplitN(segs[0].Name(), "-", 3)
	deadName := parts[0] + "-2147483647-" + parts[2]
	for k := 0; k <= len(names); k++ {
		t.Run(fmt.Sprintf("killed after unlinking %d of %d files", k, len(names)), func(t *testing.T) {
			t.Parallel()
			store := copyStore(t, adir)
			left := filepath.Join(store, "segments", deadName)
			if err := os.MkdirAll(left, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, n := range names[k:] {
				if err := os.WriteFile(filepath.Join(left, n), files[n], 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{{"verify"}, {"checkpoint"}, {"stats"}} {
				if r := auditIn(t, store, args...); r.code != 0 {
					t.Errorf("audit %s with %v left: exit %d\n%s%s", strings.Join(args, " "), names[k:], r.code, r.stdout, r.stderr)
				}
			}
			if got := sessionsIn(t, store); len(got) != 1 {
				t.Fatalf("sessions %v", got)
			}
			if r := auditIn(t, store, "list", "--format", "json"); r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
				t.Fatalf("list: exit %d, want the 2 records once each:\n%s%s", r.code, r.stdout, r.stderr)
			}
			// Later segments are merged: a run's, by the next query.
			if r := runBinary(t, dir, "<open a.txt>", nil, "--sandbox", "local", "--audit-dir", store); r.code != 0 || r.stderr != "" {
				t.Fatalf("a later run: exit %d %s", r.code, r.stderr)
			}
			if r := auditIn(t, store, "list", "--format", "json"); r.code != 0 || strings.Count(r.stdout, "\n") != 3 {
				t.Fatalf("list after a later run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if left, _ := os.ReadDir(filepath.Join(store, "segments")); len(left) != 0 {
				t.Errorf("segments left after a query merged: %v", left)
			}
			if r := auditIn(t, store, "verify"); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 3 records") {
				t.Errorf("verify at the end: exit %d %q %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// `audit list --path 'config/*'` found 1 of 4 reads of config/prod.yaml:
// the others were written ./config/prod.yaml, config/../config/prod.yaml
// and through a link. A record keeps the path as written and the path
// the operation touched, and --path matches either.
func TestE2EAuditRecordsTheResolvedPath(t *testing.T) {
	t.Parallel()
	for _, sb := range []string{"local", "docker"} {
		t.Run(sb, func(t *testing.T) {
			t.Parallel()
			dir := repo(t, map[string]string{"config/prod.yaml": "db: prod\n", "a.txt": "A\n"})
			if err := os.Symlink("config", filepath.Join(dir, "cfg")); err != nil {
				t.Fatal(err)
			}
			adir := filepath.Join(t.TempDir(), "audit")
			in := "<open config/prod.yaml> <open ./config/prod.yaml> <open config/../config/prod.yaml> <open cfg/prod.yaml> " +
				"<open " + dir + "/cfg/prod.yaml> <write ./cfg/new.yaml>x</write> <open a.txt> <open cfg/../.env>"
			if r := runBinary(t, dir, in, nil, "--sandbox", sb, "--audit-dir", adir); r.code != 0 {
				t.Fatalf("run: exit %d %s", r.code, r.stderr)
			}
			list := func(glob string) []auditLine {
				t.Helper()
				r := auditIn(t, adir, "list", "--format", "json", "--path", glob)
				if r.code != 0 {
					t.Fatalf("list --path %s: exit %d %s", glob, r.code, r.stderr)
				}
				var out []auditLine
				for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
					var a auditLine
					if l != "" {
						if err := json.Unmarshal([]byte(l), &a); err != nil {
							t.Fatalf("%q: %v", l, err)
						}
						out = append(out, a)
					}
				}
				return out
			}
			got := list("config/*")
			var targets, resolved []string
			for _, a := range got {
				targets, resolved = append(targets, a.Target), append(resolved, a.Resolved)
			}
			wantTargets := []string{"config/prod.yaml", "./config/prod.yaml", "config/../config/prod.yaml", "cfg/prod.yaml", dir + "/cfg/prod.yaml", "./cfg/new.yaml"}
			wantResolved := []string{"config/prod.yaml", "config/prod.yaml", "config/prod.yaml", "config/prod.yaml", "config/prod.yaml", "config/new.yaml"}
			if !slices.Equal(targets, wantTargets) || !slices.Equal(resolved, wantResolved) {
				t.Errorf("--path 'config/*': targets %q resolved %q\nwant %q and %q", targets, resolved, wantTargets, wantResolved)
			}
			// As written still matches, and a record without a resolved
			// path (refused before it touched anything) keeps only its target.
			if got := list("cfg/*"); len(got) != 1 || got[0].Target != "cfg/prod.yaml" {
				t.Errorf("--path 'cfg/*': %+v", got)
			}
			if got := list("a.txt"); len(got) != 1 || got[0].Resolved != "a.txt" {
				t.Errorf("--path a.txt: %+v", got)
			}
			if got := list("cfg/../.env"); len(got) != 1 || got[0].Resolved != "" || got[0].Code != "PATH_SECURITY" {
				t.Errorf("--path cfg/../.env: %+v", got)
			}
			c := auditIn(t, adir, "list", "--format", "csv", "--path", "cfg/prod.yaml")
			rows, err := csv.NewReader(strings.NewReader(c.stdout)).ReadAll()
			if err != nil || len(rows) != 2 {
				t.Fatalf("csv: %v\n%s", err, c.stdout)
			}
			col := slices.Index(rows[0], "resolved")
			if col < 0 || rows[1][col] != "config/prod.yaml" {
				t.Errorf("csv has no resolved column with the path: %q", rows)
			}
			if v := auditIn(t, adir, "verify"); v.code != 0 {
				t.Errorf("verify: exit %d %q %q", v.code, v.stdout, v.stderr)
			}
		})
	}
	// A refusal by a policy, which decides on the resolved path, records it.
	t.Run("policy", func(t *testing.T) {
		t.Parallel()
		guest := wasmtest.Build(t, "guests/protect-secrets")
		dir := repo(t, map[string]string{"config/prod.yaml": "db: prod\n"})
		adir := filepath.Join(t.TempDir(), "audit")
		args := append(withPolicy(t, guest), "--sandbox", "local", "--audit-dir", adir)
		// .env is excluded by default, and the sandbox's rule answers before
		// a policy is asked: narrow the exclusions so that the policy decides.
		r := runBinary(t, dir, "<write config/../.env>X=1</write>", []string{"LLM_RUNTIME_SECURITY_EXCLUDED_PATHS=.git"}, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "POLICY_DENIED") {
			t.Fatalf("run: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		l := auditIn(t, adir, "list", "--format", "json", "--path", ".env")
		var a auditLine
		if err := json.Unmarshal([]byte(l.stdout), &a); err != nil || a.Target != "config/../.env" || a.Resolved != ".env" || a.Code != "POLICY_DENIED" {
			t.Errorf("--path .env: exit %d %q (%v)", l.code, l.stdout, err)
		}
	})
}

// `audit list --format json` and `export` printed U+009B (a C1 control,
// CSI on some terminals) and U+202E (right-to-left override) raw, as
// encoding/json leaves them. Every character the table escapes is now a
// \u escape in the JSON too, which still decodes to exactly the string.
func TestE2EAuditJSONEscapesC1AndBidirectionalControls(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	adir := filepath.Join(t.TempDir(), "audit")
	target := "a\u202etxt.exe\u009b2J\u2066\u200f\u061c\x7f.txt"
	if r := runBinary(t, dir, "<open "+target+">", nil, "--sandbox", "local", "--audit-dir", adir); r.code != 0 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
	// A session the model cannot name, but a forger can: written here.
	evil := "evil\u202e\u0085"
	w, err := audit.OpenWriter(adir, evil, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Append(&audit.Record{Repo: "/r\u2067", Op: "exec", Target: "t\u009b", Outcome: "ok", Reason: "r\u202a\u2028", Client: "c\u200e"})
	w.Close()
	// Its segment is this process's, which only this process merges.
	rd, err := audit.OpenReader(adir, audit.Options{Wait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rd.Close()

	raw := func(r rune) bool { return parser.Printable(string(r)) != string(r) && r != '\n' }
	for _, args := range [][]string{{"list", "--format", "json"}, {"export"}, {"stats", "--by", "session", "--format", "json"}, {"checkpoint"}} {
		r := auditIn(t, adir, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d %s", args, r.code, r.stderr)
		}
		if i := strings.IndexFunc(r.stdout, raw); i >= 0 {
			t.Errorf("%v prints %U raw:\n%s", args, []rune(r.stdout[i:])[0], r.stdout)
		}
		if !strings.Contains(r.stdout, `evil\u202e\u0085`) {
			t.Errorf("%v:\n%s", args, r.stdout)
		}
	}
	for _, args := range [][]string{{"list", "--format", "json"}, {"export"}} {
		var recs []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(auditIn(t, adir, args...).stdout), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%v: %q: %v", args, l, err)
			}
			recs = append(recs, m)
		}
		if len(recs) != 2 || recs[0]["target"] != target || recs[1]["session"] != evil || recs[1]["target"] != "t\u009b" ||
			recs[1]["repo"] != "/r\u2067" || recs[1]["reason"] != "r\u202a\u2028" || recs[1]["client"] != "c\u200e" {
			t.Errorf("%v does not decode to the exact strings: %q", args, recs)
		}
	}
	// A checkpoint so escaped still reads back and verifies.
	cp := filepath.Join(t.TempDir(), "cp.jsonl")
	if r := auditIn(t, adir, "checkpoint", "-o", cp); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if b, _ := os.ReadFile(cp); strings.ContainsFunc(string(b), raw) {
		t.Errorf("the checkpoint file holds a raw control:\n%s", b)
	}
	if r := auditIn(t, adir, "verify", "--checkpoint", cp); r.code != 0 || !strings.Contains(r.stdout, "covers 2 of them") {
		t.Errorf("verify --checkpoint: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}
