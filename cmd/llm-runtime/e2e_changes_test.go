package main

// The journal of changes through the binary (issue 26 §1, §2, §4): every
// change of a run, of a served run and of an MCP call recorded, listed
// and shown as a diff that git applies.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

type checkpointLine struct {
	Number   int      `json:"number"`
	FrontEnd string   `json:"front_end"`
	Changes  int      `json:"changes"`
	Pending  int      `json:"pending"`
	Ended    bool     `json:"ended"`
	Paths    []string `json:"paths"`
}

func checkpointsOf(t *testing.T, dir string, env []string) []checkpointLine {
	t.Helper()
	r := runBinary(t, dir, "", env, "changes", "list", "--json")
	if r.code != 0 {
		t.Fatalf("changes list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var out []checkpointLine
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var c checkpointLine
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, c)
	}
	return out
}

// TestE2EChangesAreJournaledAndShown: with journal.enabled, a run's
// writes, edit, move and deletes are one checkpoint, a served run's and
// each MCP call's their own; changes lists them newest first and shows a
// checkpoint as a diff that git applies in reverse to take it back, byte
// for byte; without it, nothing is recorded.
func TestE2EChangesAreJournaledAndShown(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: the diff is checked with git apply")
	}
	bothSandboxes(t, func(t *testing.T, sb string) {
		orig := map[string]string{"main.go": "package main\n\nfunc main() {}\n", "old.txt": "old\n", "keep.txt": "keep\n"}
		dir := repo(t, orig)
		on := []string{"LLM_RUNTIME_JOURNAL_ENABLED=true"}
		off := []string{"LLM_RUNTIME_JOURNAL_ENABLED=false"}
		// Off: nothing recorded.
		if r := runBinary(t, dir, "<write off.txt>x</write>", off, "--sandbox", sb); r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		if r := runBinary(t, dir, "", off, "changes"); r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "journal.enabled is false") {
			t.Fatalf("changes with nothing recorded: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		os.Remove(filepath.Join(dir, "off.txt"))
		in := "<write scratch/a.txt>hello\n</write> <edit main.go>\n" + editBlock("func main() {}", "func main() { println(\"hi\") }") + "</edit>" +
			" <move old.txt docs/old.md> <delete scratch/a.txt> <write new.bin>\x00\x01</write>"
		if r := runBinary(t, dir, in, on, "--sandbox", sb); r.code != 0 || strings.Contains(r.stdout, "=== ERROR") {
			t.Fatalf("the run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		cps := checkpointsOf(t, dir, on)
		// The directories a write or a move made on its way are changes too.
		if len(cps) != 1 || cps[0].Number != 1 || cps[0].FrontEnd != "filter" || cps[0].Changes != 8 || !cps[0].Ended || cps[0].Pending != 0 ||
			strings.Join(cps[0].Paths, " ") != "scratch scratch/a.txt main.go docs old.txt docs/old.md new.bin" {
			t.Fatalf("checkpoints: %+v", cps)
		}
		// The audit records of the changes name their checkpoint.
		for _, a := range auditOf(t, dir, "--op", "write") {
			if a.Outcome == "ok" && a.Checkpoint != 1 && a.Target != "off.txt" {
				t.Errorf("audit record %+v does not name checkpoint 1", a)
			}
		}
		show := runBinary(t, dir, "", on, "changes", "show", "1")
		wantAll(t, show.stdout,
			"--- a/main.go\n+++ b/main.go\n", "-func main() {}\n+func main() { println(\"hi\") }\n",
			"--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-old\n", "--- /dev/null\n+++ b/docs/old.md\n",
			"Binary files /dev/null and b/new.bin differ\n")
		if strings.Contains(show.stdout, "scratch/a.txt") {
			t.Errorf("a file written and deleted in the checkpoint is in its diff:\n%s", show.stdout)
		}
		// git takes it back (all but the binary file, which it names).
		applyReverse(t, dir, strings.Replace(show.stdout, "Binary files /dev/null and b/new.bin differ\n", "", 1), orig)
		if _, err := os.Stat(filepath.Join(dir, "docs/old.md")); !os.IsNotExist(err) {
			t.Errorf("docs/old.md is still there: %v", err)
		}

		// Through the daemon: a checkpoint of its own.
		d := startServe(t, "", nil)
		if r := runBinary(t, dir, "<write served.txt>s\n</write>", append(on, d.env...), "--sandbox", sb); r.code != 0 {
			t.Fatalf("served run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if st := d.status(); st.Served == 0 {
			t.Fatal("the run did not go through the daemon")
		}
		// Through MCP: each call that changes something, its own.
		if sb == "docker" {
			s := startMCP(t, dir, on)
			for _, call := range []struct {
				tool string
				args map[string]any
			}{
				{"write_file", map[string]any{"path": "m1.txt", "content": "1\n"}},
				{"read_file", map[string]any{"path": "m1.txt"}},
				{"move_file", map[string]any{"from": "m1.txt", "to": "m2.txt"}},
			} {
				res, text := s.call(t, call.tool, call.args)
				mustSucceed(t, res, text)
			}
		}
		cps = checkpointsOf(t, dir, on)
		want := []string{"2 filter served.txt"}
		if sb == "docker" {
			want = []string{"4 mcp m1.txt m2.txt", "3 mcp m1.txt", "2 filter served.txt"}
		}
		var got []string
		for _, c := range cps[:len(cps)-1] {
			got = append(got, strings.Join(append([]string{string(rune('0' + c.Number)), c.FrontEnd}, c.Paths...), " "))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("checkpoints after the daemon and MCP: %q, want %q", got, want)
		}
	})
}

// TestE2EAKillDuringJournaledWritesLosesNothing: runs of many journaled
// writes killed (SIGKILL) at random points, in both sandboxes; the next
// session settles what each left, so no intent stays pending, and for
// every file, the last state the journal recorded is what the disk
// holds: neither the change nor its record is lost (issue 26 §1).
func TestE2EAKillDuringJournaledWritesLosesNothing(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{"f0.txt": "start\n"})
		on := []string{"LLM_RUNTIME_JOURNAL_ENABLED=true"}
		root, _ := filepath.EvalSymlinks(dir)
		sum := sha256.Sum256([]byte(root))
		jdir := filepath.Join(stateDir, "llm-runtime", "journal", hex.EncodeToString(sum[:8]))
		const rounds = 8
		left := 0 // intents a kill left without an outcome
		for round := range rounds {
			cmd := exec.Command(binary, "--sandbox", sb)
			cmd.Dir, cmd.Env = dir, withEnv(cleanEnv(), on)
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The commands are fed one by one, and the run killed a few
			// milliseconds (what a write takes here) after the kill-th, at
			// whatever step of it that falls on: the assertions hold
			// wherever it falls.
			kill := 5 + rand.IntN(100)
			sc := bufio.NewScanner(stdout)
			for i := range kill {
				fmt.Fprintf(stdin, "<write f%d.txt>round %d write %d\n</write>\n", i%7, round, i)
				if i == kill-1 {
					time.Sleep(time.Duration(rand.IntN(6000)) * time.Microsecond)
					cmd.Process.Signal(syscall.SIGKILL)
					break
				}
				for sc.Scan() && !strings.HasPrefix(sc.Text(), "=== END COMMAND") {
				}
			}
			go io.Copy(io.Discard, stdout)
			cmd.Wait()
			if j, err := journal.Open(jdir); err == nil {
				p, _ := j.Pending()
				left += len(p)
				j.Close()
			}
		}
		t.Logf("%d kills left %d intents without an outcome", rounds, left)
		// A session settles what the killed ones left.
		r := runBinary(t, dir, "<open f0.txt>", on, "--sandbox", sb, "--verbose")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.HasPrefix(l, "Journal: ") {
				t.Log(l) // how many changes the kills left to settle
			}
		}
		j, err := journal.Open(jdir)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if p, err := j.Pending(); err != nil || len(p) != 0 {
			t.Fatalf("pending after recovery: %+v, %v", p, err)
		}
		cps, err := j.Checkpoints()
		if err != nil || len(cps) != rounds {
			t.Fatalf("%d checkpoints, %v; want %d", len(cps), err, rounds)
		}
		last := map[string]journal.State{}
		for i := len(cps) - 1; i >= 0; i-- { // oldest first
			cs, err := j.Changes(cps[i].Number)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				last[c.Path] = c.After
			}
		}
		for i := range 7 {
			name := fmt.Sprintf("f%d.txt", i)
			b, err := os.ReadFile(filepath.Join(dir, name))
			st, ok := last[name]
			if !ok {
				if i == 0 && string(b) == "start\n" || i > 0 && os.IsNotExist(err) {
					continue // never written
				}
				t.Errorf("%s holds %q (%v), and the journal has no change of it", name, b, err)
				continue
			}
			if got, _ := j.Content(st); string(got) != string(b) {
				t.Errorf("%s holds %q; the journal's last state of it is %q", name, b, got)
			}
		}
	})
}

// TestE2EChangesPruneKeepsTheNewest: changes prune drops the checkpoints
// past journal.max_age, never the last journal.keep, and numbering goes
// on after it.
func TestE2EChangesPruneKeepsTheNewest(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "a\n"})
	on := []string{"LLM_RUNTIME_JOURNAL_ENABLED=true"}
	for i := range 5 {
		if r := runBinary(t, dir, fmt.Sprintf("<write f%d.txt>%d\n</write>", i, i), on, "--sandbox", "local"); r.code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, r.code, r.stderr)
		}
	}
	prune := []string{"LLM_RUNTIME_JOURNAL_MAX_AGE=1ms", "LLM_RUNTIME_JOURNAL_KEEP=2"}
	r := runBinary(t, dir, "", prune, "changes", "prune")
	if r.code != 0 || !strings.Contains(r.stdout, "pruned the oldest 3 checkpoints, through 3;") {
		t.Fatalf("prune: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runBinary(t, dir, "<write f5.txt>5\n</write>", on, "--sandbox", "local"); r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	var got []string
	for _, c := range checkpointsOf(t, dir, on) {
		got = append(got, fmt.Sprint(c.Number, " ", strings.Join(c.Paths, ",")))
	}
	if strings.Join(got, "|") != "6 f5.txt|5 f4.txt|4 f3.txt" {
		t.Fatalf("after prune: %q", got)
	}
	if r := runBinary(t, dir, "", prune, "changes", "prune"); r.code != 0 || !strings.Contains(r.stdout, "pruned the oldest 1 checkpoint, through 4;") {
		t.Fatalf("second prune: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runBinary(t, dir, "", nil, "changes", "show", "2"); r.code != 1 || !strings.Contains(r.stderr, "no checkpoint 2") {
		t.Fatalf("show of a pruned checkpoint: exit %d %s", r.code, r.stderr)
	}
}

// TestE2EExecChangesAreJournaled: a writable exec that rewrites, deletes
// and makes files has every change it applied recorded, with what it
// replaced, in the run's checkpoint, and git takes them back byte for
// byte; a read-only exec records nothing and begins no checkpoint.
func TestE2EExecChangesAreJournaled(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: the diff is checked with git apply")
	}
	orig := map[string]string{"a.txt": "A\nkeep\n", "b.txt": "B\n", "sub/c.txt": "C\n"}
	dir := repo(t, orig)
	on := []string{"LLM_RUNTIME_JOURNAL_ENABLED=true", "LLM_RUNTIME_EXEC_WHITELIST=sed,rm,touch,mkdir,cat", "LLM_RUNTIME_EXEC_TIMEOUT=2m"}
	if r := runBinary(t, dir, "<exec cat a.txt> <exec touch ignored.txt>", on, "--exec"); r.code != 0 {
		t.Fatalf("read-only exec: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runBinary(t, dir, "", on, "changes"); !strings.Contains(r.stdout, ": 0 checkpoints") && !strings.Contains(r.stderr, "no changes recorded") {
		t.Fatalf("a read-only exec began a checkpoint:\n%s%s", r.stdout, r.stderr)
	}
	w := append(on, "LLM_RUNTIME_EXEC_WRITABLE=true")
	r := runBinary(t, dir, "<exec sed -i s/A/AA/ a.txt> <exec rm b.txt sub/c.txt> <exec mkdir -p gen/deep> <exec touch gen/deep/new.txt>", w, "--exec")
	if r.code != 0 || !strings.Contains(r.stdout, "updated a.txt") || !strings.Contains(r.stdout, "deleted b.txt") {
		t.Fatalf("writable exec: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	cps := checkpointsOf(t, dir, on)
	if len(cps) != 1 || cps[0].Pending != 0 || !cps[0].Ended {
		t.Fatalf("checkpoints: %+v", cps)
	}
	paths := strings.Join(cps[0].Paths, " ")
	for _, p := range []string{"a.txt", "b.txt", "sub/c.txt", "gen", "gen/deep", "gen/deep/new.txt"} {
		if !strings.Contains(" "+paths+" ", " "+p+" ") {
			t.Errorf("the checkpoint's paths %q lack %s", paths, p)
		}
	}
	show := runBinary(t, dir, "", on, "changes", "show", fmt.Sprint(cps[0].Number))
	wantAll(t, show.stdout, "-A\n+AA\n", "--- a/b.txt\n+++ /dev/null\n", "--- a/sub/c.txt\n+++ /dev/null\n", "# gen: nothing -> directory",
		"# gen/deep/new.txt: nothing -> file (mode 644, 0 bytes)")
	applyReverse(t, dir, show.stdout, orig)
}

// TestE2EUndoAndRedo: llm-runtime undo puts back what a run changed,
// byte for byte and mode for mode, the directories it made removed, and
// leaves a file changed since as it is, listed; redo takes the undo back;
// undo --force puts back the file changed since too (issue 26 §4, §5).
func TestE2EUndoAndRedo(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		orig := map[string]string{"main.go": "package main\n\nfunc main() {}\n", "run.sh": "#!/bin/sh\necho hi\n", "notes.txt": "notes\n", "gone.txt": "gone\n"}
		dir := repo(t, orig)
		os.Chmod(filepath.Join(dir, "run.sh"), 0o755)
		on := []string{"LLM_RUNTIME_JOURNAL_ENABLED=true"}
		in := "<edit main.go>\n" + editBlock("func main() {}", "func main() { run() }") + "</edit> <move run.sh scripts/run.sh>" +
			" <delete gone.txt> <write new/deep/file.txt>new\n</write> <write notes.txt>notes, rewritten\n</write>"
		if r := runBinary(t, dir, in, on, "--sandbox", sb); r.code != 0 || strings.Contains(r.stdout, "=== ERROR") {
			t.Fatalf("the run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		after := snapshot(t, dir)
		// The user changes a file the run changed.
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("the user's\n"), 0o644)
		r := runBinary(t, dir, "", on, "undo")
		if r.code != 0 || !strings.Contains(r.stdout, "Undid checkpoint 1: ") || !strings.Contains(r.stdout, "Left as they are") ||
			!strings.Contains(r.stdout, "  notes.txt: notes.txt changed since") || !strings.Contains(r.stdout, "This is checkpoint 2:") {
			t.Fatalf("undo: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		want := map[string]string{"main.go": orig["main.go"], "run.sh": orig["run.sh"], "gone.txt": orig["gone.txt"], "notes.txt": "the user's\n"}
		if got := snapshot(t, dir); !equalSnap(got, want) {
			t.Fatalf("after undo: %v, want %v", got, want)
		}
		if fi, _ := os.Stat(filepath.Join(dir, "run.sh")); fi == nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("run.sh's mode after undo: %v", fi)
		}
		for _, d := range []string{"scripts", "new"} {
			if _, err := os.Lstat(filepath.Join(dir, d)); !os.IsNotExist(err) {
				t.Errorf("%s, which the run made, is still there: %v", d, err)
			}
		}
		// Redo: the run's changes again (notes.txt, left, stays the user's).
		if r := runBinary(t, dir, "", on, "redo"); r.code != 0 || !strings.Contains(r.stdout, "Redid (took back the undo) checkpoint 2") {
			t.Fatalf("redo: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		after["notes.txt"] = "the user's\n"
		if got := snapshot(t, dir); !equalSnap(got, after) {
			t.Fatalf("after redo: %v, want %v", got, after)
		}
		if r := runBinary(t, dir, "", on, "redo"); r.code != 1 || !strings.Contains(r.stderr, "nothing to redo") {
			t.Fatalf("a second redo: exit %d %s", r.code, r.stderr)
		}
		// --force puts back the file changed since, as the run found it.
		if r := runBinary(t, dir, "", on, "undo", "1", "--force"); r.code != 0 || strings.Contains(r.stdout, "Left as they are") {
			t.Fatalf("undo --force: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "notes\n" {
			t.Errorf("notes.txt after undo --force: %q", b)
		}
	})
}

// snapshot is every regular file under dir (but the audit's and the
// journal's, which are elsewhere), by path.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	return out
}

func equalSnap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// applyReverse applies diff in reverse in dir with git apply -R, and
// checks that the files of orig hold their content again.
func applyReverse(t *testing.T, dir, diff string, orig map[string]string) {
	t.Helper()
	patch := filepath.Join(t.TempDir(), "p.diff")
	os.WriteFile(patch, []byte(diff), 0o644)
	git := exec.Command("git", "apply", "-R", patch)
	git.Dir = dir
	if out, err := git.CombinedOutput(); err != nil {
		t.Fatalf("git apply -R: %v\n%s\n%s", err, out, diff)
	}
	for name, content := range orig {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != content {
			t.Errorf("after git apply -R, %s = %q (%v), want %q", name, b, err, content)
		}
	}
}

// TestE2EAModelSeesAndTakesBackItsChanges: a model's loop, reply by
// reply: a fix written; <diff> shows today's work; <undo> takes back the
// previous reply, <undo> again takes the undo back (redo); <diff PATH>
// shows one file's; without the journal both are JOURNAL_DISABLED; a
// policy built before them (ABI 1) denies them (issue 26 §3).
func TestE2EAModelSeesAndTakesBackItsChanges(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		orig := map[string]string{"main.go": "package main\n\nfunc main() {}\n"}
		dir := repo(t, orig)
		on := []string(nil) // the default
		if r := runBinary(t, dir, "<diff> <undo>", []string{"LLM_RUNTIME_JOURNAL_ENABLED=false"}, "--sandbox", sb); strings.Count(r.stdout, "=== ERROR: JOURNAL_DISABLED ===") != 2 {
			t.Fatalf("without the journal:\n%s", r.stdout)
		}
		reply1 := "<edit main.go>\n" + editBlock("func main() {}", "func main() { fix() }") + "</edit> <write fix.go>package main\n\nfunc fix() {}\n</write>"
		if r := runBinary(t, dir, reply1, on, "--sandbox", sb); r.code != 0 || strings.Contains(r.stdout, "=== ERROR") {
			t.Fatalf("reply 1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		fixed := snapshot(t, dir)
		r := runBinary(t, dir, "<diff> <undo>", on, "--sandbox", sb)
		wantAll(t, r.stdout,
			"=== DIFF: today's work (checkpoints 1 to 1) ===\nPaths: 2\n--- a/main.go\n+++ b/main.go\n",
			"--- /dev/null\n+++ b/fix.go\n@@ -0,0 +1,3 @@\n+package main\n",
			"=== UNDO SUCCESSFUL: checkpoint 1 ===\nPut back: 2\n  fix.go\n  main.go\nThis undo is checkpoint 2: <undo> takes it back\n")
		if got := snapshot(t, dir); !equalSnap(got, orig) {
			t.Fatalf("after <undo>: %v", got)
		}
		// The next reply's <undo> takes the undo back: the fix again.
		r = runBinary(t, dir, "<undo> <diff fix.go>", on, "--sandbox", sb, "--format", "jsonl")
		var recs []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var m map[string]any
			json.Unmarshal([]byte(l), &m)
			recs = append(recs, m)
		}
		if len(recs) != 2 || recs[0]["command"] != "undo" || recs[0]["of"] != "checkpoint 2" || recs[0]["checkpoint"] != float64(3) ||
			recs[1]["command"] != "diff" || recs[1]["paths"] != float64(1) || !strings.Contains(fmt.Sprint(recs[1]["diff"]), "+func fix() {}") {
			t.Fatalf("jsonl:\n%s", r.stdout)
		}
		if got := snapshot(t, dir); !equalSnap(got, fixed) {
			t.Fatalf("after the second <undo>: %v, want %v", got, fixed)
		}
		old := wasmtest.Build(t, "runtime/wasm/testdata/abi1")
		r = runBinary(t, dir, "<diff> <undo>", on, append([]string{"--sandbox", sb}, withPolicy(t, old)...)...)
		if strings.Count(r.stdout, "=== ERROR: POLICY_DENIED ===\nMessage: denied by policy abi1: the policy speaks ABI 1") != 2 {
			t.Fatalf("an ABI 1 policy:\n%s", r.stdout)
		}
	})
}

// TestE2EMCPDiffAndUndo: with the journal, the MCP server lists diff and
// undo; a call's changes are its own checkpoint, which undo takes back
// and undo again puts back; without it, neither is listed.
func TestE2EMCPDiffAndUndo(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "a\n"})
	s := startMCP(t, dir, []string{"LLM_RUNTIME_JOURNAL_ENABLED=true"})
	ctx := context.Background()
	tools, err := s.cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "diff") || !slices.Contains(names, "undo") {
		t.Fatalf("tools with the journal: %v", names)
	}
	res, text := s.call(t, "write_file", map[string]any{"path": "a.txt", "content": "A\n"})
	mustSucceed(t, res, text)
	res, text = s.call(t, "diff", map[string]any{"path": "a.txt"})
	mustSucceed(t, res, text)
	wantAll(t, text, "a.txt in today's work (checkpoints 1 to 1): 1 path changed\n", "-a\n+A\n")
	res, text = s.call(t, "undo", map[string]any{})
	mustSucceed(t, res, text)
	if text != "undid checkpoint 1: 1 path put back (a.txt); this undo is checkpoint 2: undo again takes it back" {
		t.Fatalf("undo: %q", text)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.txt")); string(b) != "a\n" {
		t.Fatalf("after undo: %q", b)
	}
	res, text = s.call(t, "undo", map[string]any{})
	mustSucceed(t, res, text)
	if b, _ := os.ReadFile(filepath.Join(dir, "a.txt")); string(b) != "A\n" {
		t.Fatalf("after undo again: %q, %s", b, text)
	}
	// Calls grouped under a name are one checkpoint: one undo takes them
	// all back.
	for _, call := range []struct {
		tool string
		args map[string]any
	}{
		{"checkpoint", map[string]any{"name": "refactor"}},
		{"write_file", map[string]any{"path": "b.txt", "content": "b\n"}},
		{"move_file", map[string]any{"from": "a.txt", "to": "c.txt"}},
		{"checkpoint", map[string]any{"name": ""}},
		{"undo", map[string]any{}},
	} {
		res, text := s.call(t, call.tool, call.args)
		mustSucceed(t, res, text)
	}
	if got := snapshot(t, dir); !equalSnap(got, map[string]string{"a.txt": "A\n"}) {
		t.Fatalf("after the grouped calls' undo: %v", got)
	}
	r := runBinary(t, dir, "", []string{"LLM_RUNTIME_JOURNAL_ENABLED=true"}, "changes")
	if !strings.Contains(r.stdout, "(refactor) b.txt, a.txt, c.txt") {
		t.Fatalf("changes:\n%s", r.stdout)
	}
	plain := startMCP(t, dir, []string{"LLM_RUNTIME_JOURNAL_ENABLED=false"})
	tools, err = plain.cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		if tool.Name == "diff" || tool.Name == "undo" {
			t.Errorf("%s is listed without the journal", tool.Name)
		}
	}
}
