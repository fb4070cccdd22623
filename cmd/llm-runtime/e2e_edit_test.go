package main

// <edit PATH> through the binary, in both sandboxes (issue 13 §1).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

func editBlock(search, replace string) string {
	return "<<<<<<< SEARCH\n" + search + "\n=======\n" + replace + "\n>>>>>>> REPLACE\n"
}

// TestE2EEditAppliesBlocksAndShowsTheDiff: an edit of a file far over the
// write limit, with two blocks, one matched only ignoring indentation,
// lands whole and prints its diff; a miss prints the closest lines and
// changes nothing; the same in JSONL.
func TestE2EEditAppliesBlocksAndShowsTheDiff(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		var big strings.Builder
		for i := range 20000 {
			big.WriteString("// filler line " + strings.Repeat("x", i%7) + "\n")
		}
		flag := "package flag\n\nfunc parse() error {\n\tif bad {\n\t\treturn nil\n\t}\n\treturn nil // end\n}\n" + big.String()
		dir := repo(t, map[string]string{"flag.go": flag})
		in := "<edit flag.go>\n" + editBlock("\t\treturn nil\n\t}", "\t\treturn errBad\n\t}") + editBlock("return nil // end", "return nil // done") + "</edit>\n" +
			"<edit flag.go>\n" + editBlock("func parse() err {", "func parse() error {") + "</edit>\n"
		r := runBinary(t, dir, in, nil, "--sandbox", sb)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		wantAll(t, r.stdout,
			"=== COMMAND: <edit flag.go> ===\n=== EDIT SUCCESSFUL: flag.go ===\nBlocks applied: 2\nBlock 2 matched only with the white space at the ends of its lines ignored\n",
			"Diff:\n--- a/flag.go\n+++ b/flag.go\n",
			"-\t\treturn nil\n+\t\treturn errBad\n",
			"-\treturn nil // end\n+\treturn nil // done\n",
			"=== END DIFF ===\n=== END COMMAND ===\n",
			"=== ERROR: EDIT_NO_MATCH ===\n",
			"Detail:\n",
			"     3  func parse() error {\n",
			"=== END DETAIL ===\n",
		)
		got, _ := os.ReadFile(filepath.Join(dir, "flag.go"))
		want := strings.Replace(strings.Replace(flag, "\t\treturn nil\n", "\t\treturn errBad\n", 1), "return nil // end", "return nil // done", 1)
		if string(got) != want {
			t.Fatalf("flag.go is not what the first edit makes (%d bytes, want %d)", len(got), len(want))
		}

		j := runBinary(t, dir, "<edit flag.go>\n"+editBlock("return nil // done", "return nil")+"</edit>\n", nil, "--sandbox", sb, "--format", "jsonl")
		var rec struct {
			Command       string
			OK            bool
			Path          string
			BlocksApplied int   `json:"blocks_applied"`
			LooseBlocks   []int `json:"loose_blocks"`
			Bytes         int64
			Diff          string
		}
		if err := json.Unmarshal([]byte(j.stdout), &rec); err != nil || !rec.OK || rec.Command != "edit" || rec.Path != "flag.go" || rec.BlocksApplied != 1 ||
			rec.Bytes != int64(len(want)-len(" // done")) || !strings.Contains(rec.Diff, "+\treturn nil\n") {
			t.Fatalf("jsonl: %v %+v\n%s", err, rec, j.stdout)
		}
		for _, a := range auditOf(t, dir) {
			if a.Op != "edit" || a.Target != "flag.go" {
				t.Errorf("audit record %+v", a)
			}
		}
	})
}

// TestE2EEditKeepsTheRulesOfWrite: an edit may not reach what a write may
// not (excluded files, the configuration, a link out), and a policy that
// denies writes denies edits.
func TestE2EEditKeepsTheRulesOfWrite(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{".env": "SECRET=1\n", "llm-runtime.config.yaml": "sandbox: " + sb + "\n", "a.txt": "a\n"})
		os.Symlink("/etc/hostname", filepath.Join(dir, "out"))
		in := "<edit .env>\n" + editBlock("SECRET=1", "SECRET=2") + "</edit>\n" +
			"<edit llm-runtime.config.yaml>\n" + editBlock("sandbox: "+sb, "sandbox: local") + "</edit>\n" +
			"<edit out>\n" + editBlock("x", "y") + "</edit>\n"
		mustRefuse(t, dir, in, nil, []string{filepath.Join(dir, ".env"), filepath.Join(dir, "llm-runtime.config.yaml")}, "--sandbox", sb)

		guest := wasmtest.Build(t, "guests/readonly")
		r := runBinary(t, dir, "<edit a.txt>\n"+editBlock("a", "b")+"</edit>\n", nil, append([]string{"--sandbox", sb}, withPolicy(t, guest)...)...)
		if !strings.Contains(r.stdout, "=== ERROR: POLICY_DENIED ===") {
			t.Errorf("the readonly policy let an edit through:\n%s\n%s", r.stdout, r.stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "a.txt")); string(b) != "a\n" {
			t.Errorf("a.txt = %q", b)
		}
	})
}

// TestE2EPoliciesDecideOnTheFileAnEditLeaves: a policy that judges what a
// write leaves in a file judges an edit by the whole file after it, and
// knows it is an edit.
func TestE2EPoliciesDecideOnTheFileAnEditLeaves(t *testing.T) {
	t.Parallel()
	guest := wasmtest.Build(t, "runtime/wasm/testdata/nocontent")
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{"a.txt": "one\ntwo\n"})
		in := "<edit a.txt>\n" + editBlock("two", "FORBIDDEN") + "</edit>\n<edit a.txt>\n" + editBlock("two", "2") + "</edit>\n"
		r := runBinary(t, dir, in, nil, append([]string{"--sandbox", sb}, withPolicy(t, guest)...)...)
		if !strings.Contains(r.stdout, "=== ERROR: POLICY_DENIED ===\nMessage: denied by policy nocontent: the edit would leave FORBIDDEN in a.txt\n") ||
			!strings.Contains(r.stdout, "=== EDIT SUCCESSFUL: a.txt ===") {
			t.Fatalf("\n%s\n%s", r.stdout, r.stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "a.txt")); string(b) != "one\n2\n" {
			t.Fatalf("a.txt = %q", b)
		}
	})
}

// TestE2EEditReplacesEveryPlaceWhenAsked: a SEARCH that matches several
// places is ambiguous, and the error names SEARCH ALL; a block opened with
// it replaces every exact match (a loose one left alone), says where, in
// text and JSONL, and matches exactly or not at all (issue 26 §3).
func TestE2EEditReplacesEveryPlaceWhenAsked(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		src := "package p\n\nfunc a() {\n\tlog.Print(\"debug\")\n}\n\nfunc b() {\n\tlog.Print(\"debug\")\n\tlog.Print(\"debug\") \n}\n"
		dir := repo(t, map[string]string{"p.go": src})
		all := "<<<<<<< SEARCH ALL\n\tlog.Print(\"debug\")\n=======\n>>>>>>> REPLACE\n" // an empty REPLACE deletes
		in := "<edit p.go>\n" + editBlock("\tlog.Print(\"debug\")", "") + "</edit>\n" + "<edit p.go>\n" + all + "</edit>\n"
		r := runBinary(t, dir, in, nil, "--sandbox", sb)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		wantAll(t, r.stdout,
			"=== ERROR: EDIT_AMBIGUOUS ===\nMessage: edit block 1: its SEARCH matches 2 places, starting at lines 4, 8; ",
			"or, to change every place, open the block with <<<<<<< SEARCH ALL;",
			"=== EDIT SUCCESSFUL: p.go ===\nBlocks applied: 1\nBlock 1 replaced 2 places (lines 4, 8)\n",
			"-\tlog.Print(\"debug\")\n",
		)
		want := "package p\n\nfunc a() {\n}\n\nfunc b() {\n\tlog.Print(\"debug\") \n}\n"
		if got, _ := os.ReadFile(filepath.Join(dir, "p.go")); string(got) != want {
			t.Fatalf("p.go:\n%s\nwant:\n%s", got, want)
		}

		// What is left matches only loosely: refused, nothing written.
		j := runBinary(t, dir, "<edit p.go>\n"+all+"</edit>\n", nil, "--sandbox", sb, "--format", "jsonl")
		if !strings.Contains(j.stdout, `"code":"EDIT_NO_MATCH"`) || !strings.Contains(j.stdout, "1 place match them with the white space at the ends of lines ignored, but a SEARCH ALL replaces exact matches only") {
			t.Fatalf("a loose SEARCH ALL: %s", j.stdout)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "p.go")); string(got) != want {
			t.Fatalf("a refused SEARCH ALL wrote p.go:\n%s", got)
		}
		fix := strings.Replace(editBlock("\tlog.Print(\"debug\") ", "\tlog.Print(\"info\")\n\tlog.Print(\"info\")"), "SEARCH\n", "SEARCH ALL\n", 1) +
			strings.Replace(editBlock("\tlog.Print(\"info\")", "\tlog.Print(\"done\")"), "SEARCH\n", "SEARCH ALL\n", 1)
		j = runBinary(t, dir, "<edit p.go>\n"+fix+"</edit>\n", nil, "--sandbox", sb, "--format", "jsonl")
		if !strings.Contains(j.stdout, `"replaced_blocks":[{"block":1,"lines":[7]},{"block":2,"lines":[7,8]}]`) {
			t.Fatalf("jsonl: %s", j.stdout)
		}
	})
}
