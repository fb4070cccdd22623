package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The merge helper is this test binary run again with these variables: it
// opens a reader of the store (which merges its closed segments) and, at
// the merge's step N, kills itself with SIGKILL; with N 0 it runs to the
// end. Each step it reaches is a line on its standard output, "N STEP".
// Only a test sets mergeHook: a release build has no such step.
const (
	helperStore  = "LLM_RUNTIME_TEST_AUDIT_MERGE_STORE"
	helperKillAt = "LLM_RUNTIME_TEST_AUDIT_MERGE_KILL_AT"
)

// mergeHelper is the helper's main (TestMain runs it instead of the tests).
func mergeHelper() int {
	killAt, _ := strconv.Atoi(os.Getenv(helperKillAt))
	n := 0
	mergeHook = func(step string) {
		n++
		fmt.Fprintf(os.Stdout, "%d %s\n", n, step) // unbuffered: written before the kill
		if n == killAt {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	r, err := OpenReader(os.Getenv(helperStore), patient)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r.Close()
	return 0
}

// runMergeHelper runs the helper on store, killed at step killAt (0:
// never), and returns the steps it reached.
func runMergeHelper(t *testing.T, store string, killAt int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperStore+"="+store, helperKillAt+"="+strconv.Itoa(killAt))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var steps []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		_, step, _ := strings.Cut(sc.Text(), " ")
		steps = append(steps, step)
	}
	var ee *exec.ExitError
	switch {
	case killAt == 0 && err != nil:
		t.Fatalf("the helper: %v\n%s", err, stderr.String())
	case killAt > 0 && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL):
		t.Fatalf("the helper was to die of SIGKILL at step %d: %v, after %q\n%s", killAt, err, steps, stderr.String())
	case killAt > 0 && len(steps) != killAt:
		t.Fatalf("the helper died after %d steps, want %d: %q", len(steps), killAt, steps)
	}
	return steps
}

// deadSegment writes records of session into a segment whose writer's
// process is gone (its pid, in its name, can be no process's), as Pebble
// leaves it when that process is killed; flushAfter > 0 flushes the first
// flushAfter records into a table file, the rest stay in the log.
func deadSegment(t *testing.T, dir, session string, n, flushAfter int) []*Record {
	t.Helper()
	segNo++
	seg := filepath.Join(segmentsDir(dir), fmt.Sprintf("%d-2147483647-%s", t0.UnixNano()+segNo, session))
	db, err := pebble.Open(seg, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	var recs []*Record
	prev := genesis(session)
	for i := range n {
		r := sample(i)
		r.Session, r.Seq, r.Prev = session, uint64(i+1), prev
		r.seal()
		prev = r.Hash
		v, _ := r.MarshalBinary()
		if err := db.Set(r.Key(), v, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if i+1 == flushAfter {
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		recs = append(recs, r)
	}
	// Not Close: a killed writer does not close.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// segNo numbers the segments deadSegment makes, in the order made, which
// is the order a merge takes them in.
var segNo int64

// copyTree copies a store no process has open.
func copyTree(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "store")
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
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

// holdsExactly checks that the store reads as want, each record once and
// as written, that list, verify and checkpoint work, and that no segment,
// merged or not, is left.
func holdsExactly(t *testing.T, dir string, want []*Record) {
	t.Helper()
	r, err := OpenReader(dir, patient)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	var got []string
	if err := r.Each(Filter{}, func(rec *Record) error {
		got = append(got, rec.Session+" "+strconv.FormatUint(rec.Seq, 10)+" "+hex.EncodeToString(rec.Hash[:]))
		return nil
	}); err != nil {
		t.Fatalf("list: %v", err)
	}
	rep, err := r.Check(nil)
	if err != nil || !rep.OK() || rep.Records != len(want) {
		t.Errorf("verify: %v, %+v", err, rep)
	}
	if _, err := r.Checkpoint(time.Time{}); err != nil {
		t.Errorf("checkpoint: %v", err)
	}
	r.Close()
	var exp []string
	for _, rec := range want {
		exp = append(exp, rec.Session+" "+strconv.FormatUint(rec.Seq, 10)+" "+hex.EncodeToString(rec.Hash[:]))
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Errorf("the store holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
	for _, d := range []string{segmentsDir(dir), mergedDir(dir)} {
		if left, _ := os.ReadDir(d); len(left) != 0 {
			t.Errorf("left in %s: %v", d, left)
		}
	}
}

// A SIGKILL inside the removal of a segment just merged left it half
// removed, a segment no longer a database: every later merge, and so
// every query, failed on it. Here a real process is killed at each step
// of a merge (read, commit, retire into merged/, sync, each file removed)
// and the next reader finds every record once, lists, verifies and
// checkpoints, and leaves nothing behind; merges go on after.
func TestAKillAtEveryStepOfAMergeLosesNothing(t *testing.T) {
	template := t.TempDir()
	want := slices.Clone(write2(t, template, "merged", 3)) // already in main
	want = append(want, deadSegment(t, template, "small", 2, 0)...)
	want = append(want, deadSegment(t, template, "flushed", 6, 4)...) // a table file and a log
	steps := runMergeHelper(t, copyTree(t, template), 0)
	for _, s := range []string{"read ", "committed ", "renamed ", "synced ", "removed "} {
		if !slices.ContainsFunc(steps, func(step string) bool { return strings.HasPrefix(step, s) }) {
			t.Fatalf("no step %q* among %q", s, steps)
		}
	}
	if n := len(steps); n < 16 {
		t.Fatalf("%d steps: %q", n, steps)
	}
	for i := 1; i <= len(steps); i++ {
		t.Run(fmt.Sprintf("%d %s", i, steps[i-1]), func(t *testing.T) {
			store := copyTree(t, template)
			runMergeHelper(t, store, i)
			holdsExactly(t, store, want)
			// And later segments are merged.
			more := deadSegment(t, store, "later", 2, 0)
			holdsExactly(t, store, append(slices.Clone(want), more...))
		})
	}
}

// write2 writes n records of session through a writer and merges them
// into main with a reader.
func write2(t *testing.T, dir, session string, n int) []*Record {
	t.Helper()
	var recs []*Record
	for i := range n {
		recs = append(recs, sample(100+i))
	}
	write(t, dir, session, recs...)
	read(t, dir, Filter{})
	return recs
}

// Earlier versions removed a merged segment in place, and a kill midway
// left any part of its files. Every such leftover is salvaged: its
// records, already in main, are read once, and it goes.
func TestASegmentHalfRemovedByAnEarlierVersionIsSalvaged(t *testing.T) {
	template := t.TempDir()
	want := write2(t, template, "merged", 2)
	want = append(want, deadSegment(t, template, "dead", 6, 4)...)
	segs, _ := os.ReadDir(segmentsDir(template))
	seg := filepath.Join(segmentsDir(template), segs[0].Name())
	files := map[string][]byte{}
	entries, _ := os.ReadDir(seg)
	var names []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(seg, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()], names = b, append(names, e.Name())
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, ".sst") }) {
		t.Fatalf("no table file in %v", names)
	}
	// The old merge: records into main, then the removal cut short.
	read(t, template, Filter{})
	var cases [][]string // the files left
	for i := range names {
		cases = append(cases, []string{names[i]}, slices.Delete(slices.Clone(names), i, i+1))
		cases = append(cases, names[i:], names[:i])
	}
	for _, left := range cases {
		t.Run(strings.Join(left, ","), func(t *testing.T) {
			store := copyTree(t, template)
			half := filepath.Join(segmentsDir(store), segs[0].Name())
			os.MkdirAll(half, 0o700)
			for _, n := range left {
				os.WriteFile(filepath.Join(half, n), files[n], 0o600)
			}
			holdsExactly(t, store, want)
		})
	}
}

// What is left of a half-removed segment is read, not taken on trust:
// records main lacks (here, a segment that lost its MANIFEST before it
// was ever merged) are merged from its log and its table file.
func TestSalvageMergesWhatMainLacks(t *testing.T) {
	dir := t.TempDir()
	want := deadSegment(t, dir, "dead", 5, 3)
	segs, _ := os.ReadDir(segmentsDir(dir))
	seg := filepath.Join(segmentsDir(dir), segs[0].Name())
	manifests, _ := filepath.Glob(filepath.Join(seg, "MANIFEST-*"))
	if len(manifests) == 0 {
		t.Fatal("no MANIFEST")
	}
	for _, m := range manifests {
		os.Remove(m)
	}
	holdsExactly(t, dir, want)
}

// A file left in a half-removed segment that does not read is damage: the
// segment stays for a reader to report, and the others are merged.
func TestADamagedHalfRemovedSegmentStays(t *testing.T) {
	dir := t.TempDir()
	deadSegment(t, dir, "dead", 5, 3)
	segs, _ := os.ReadDir(segmentsDir(dir))
	seg := filepath.Join(segmentsDir(dir), segs[0].Name())
	manifests, _ := filepath.Glob(filepath.Join(seg, "MANIFEST-*"))
	for _, m := range manifests {
		os.Remove(m)
	}
	ssts, _ := filepath.Glob(filepath.Join(seg, "*.sst"))
	if len(ssts) != 1 {
		t.Fatalf("table files %v", ssts)
	}
	b, _ := os.ReadFile(ssts[0])
	b[40] ^= 0x5a
	os.WriteFile(ssts[0], b, 0o600)
	other := deadSegment(t, dir, "other", 2, 0)
	_, err := OpenReader(dir, patient)
	var d *DamageError
	if !errors.As(err, &d) || d.File != ssts[0] {
		t.Fatalf("open: %v, want damage naming %s", err, ssts[0])
	}
	if _, err := os.Stat(seg); err != nil {
		t.Fatalf("the damaged segment went: %v", err)
	}
	// The other segment was merged: main alone holds it.
	db, err := pebble.Open(mainDir(dir), &pebble.Options{Logger: quiet{}, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, r := range other {
		if _, c, err := db.Get(r.Key()); err != nil {
			t.Errorf("record %d of the other segment is not in main: %v", r.Seq, err)
		} else {
			c.Close()
		}
	}
}
