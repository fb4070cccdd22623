package main

// <delete PATH> and <move FROM TO> through the binary, in both sandboxes
// (issue 26 §3).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

// TestE2EDeleteAndMoveAScratchFileAndAPackage: a model's sequence, a
// scratch file written, renamed and deleted, a package moved with its
// files, a file replaced with --overwrite; the results in text and JSONL,
// and each an audited op of its own with its change.
func TestE2EDeleteAndMoveAScratchFileAndAPackage(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{"pkg/a.go": "package pkg\n", "pkg/sub/b.go": "package sub\n", "main.go": "package main\n", "old.txt": "old\n"})
		in := "<write scratch/try.go>package main\n</write>\n" +
			"<move scratch/try.go \"scratch/my try.go\">\n" +
			"<delete \"scratch/my try.go\">\n" + // the quotes are part of a delete's path: not found
			"<delete scratch/my try.go>\n" +
			"<delete scratch>\n" +
			"<move pkg internal/pkg>\n" +
			"<move main.go old.txt>\n" +
			"<move main.go old.txt --overwrite>\n"
		r := runBinary(t, dir, in, nil, "--sandbox", sb)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		wantAll(t, r.stdout,
			"=== MOVE SUCCESSFUL: scratch/try.go ===\nMoved to: scratch/my try.go\nWhat: file\n",
			"=== ERROR: FILE_NOT_FOUND ===",
			"=== DELETE SUCCESSFUL: scratch/my try.go ===\nDeleted: file (13 bytes)\n",
			"=== DELETE SUCCESSFUL: scratch ===\nDeleted: empty directory\n",
			"=== MOVE SUCCESSFUL: pkg ===\nMoved to: internal/pkg\nWhat: directory (3 entries under it)\n",
			"=== ERROR: FILE_EXISTS ===\nMessage: old.txt exists; nothing was moved (to replace it, ask to overwrite it)\n",
			"=== MOVE SUCCESSFUL: main.go ===\nMoved to: old.txt\nWhat: file\nReplaced: the file that was at old.txt\n",
		)
		for _, gone := range []string{"scratch", "pkg", "main.go"} {
			if _, err := os.Lstat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
				t.Errorf("%s is still there: %v", gone, err)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "internal/pkg/sub/b.go")); string(b) != "package sub\n" {
			t.Errorf("internal/pkg/sub/b.go = %q", b)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "old.txt")); string(b) != "package main\n" {
			t.Errorf("old.txt = %q", b)
		}
		var deletes, moves []string
		for _, a := range auditOf(t, dir) {
			switch a.Op {
			case "delete":
				deletes = append(deletes, a.Outcome+" "+strings.TrimSpace(a.Changes))
			case "move":
				moves = append(moves, a.Outcome+" "+strings.TrimSpace(a.Changes))
			}
		}
		if strings.Join(deletes, "|") != "error |ok deleted scratch/my try.go|ok deleted scratch" ||
			strings.Join(moves, "|") != "ok moved scratch/try.go to scratch/my try.go|ok moved pkg to internal/pkg|error |ok moved main.go to old.txt" {
			t.Errorf("audit: deletes %q, moves %q", deletes, moves)
		}

		j := runBinary(t, dir, "<move internal/pkg pkg> <delete old.txt>", nil, "--sandbox", sb, "--format", "jsonl")
		var recs []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(j.stdout), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			recs = append(recs, m)
		}
		if len(recs) != 2 || recs[0]["command"] != "move" || recs[0]["path"] != "internal/pkg" || recs[0]["to"] != "pkg" || recs[0]["kind"] != "dir" || recs[0]["entries_moved"] != float64(3) ||
			recs[1]["command"] != "delete" || recs[1]["path"] != "old.txt" || recs[1]["kind"] != "file" || recs[1]["bytes"] != float64(13) {
			t.Fatalf("jsonl:\n%s", j.stdout)
		}
	})
}

// TestE2EDeleteAndMoveKeepTheRulesOfWrite: nothing excluded, outside, of
// llm-runtime's own or swapped in by a link is deleted or moved, at
// either end of a move and at any depth of a directory moved; a link is
// deleted or moved as itself; policies decide on both ends, and a policy
// built before delete and move (ABI 1) has them denied.
func TestE2EDeleteAndMoveKeepTheRulesOfWrite(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{".env": "SECRET=1\n", "llm-runtime.config.yaml": "sandbox: " + sb + "\n", "a.txt": "a\n",
			"app/.env.local": "X=1\n", "app/main.go": "package app\n", "secrets/prod.yaml": "password: x\n", "stage/prod.yaml": "planted\n",
			".git/config": "[core]\n"})
		outside := filepath.Join(t.TempDir(), "outside.txt")
		os.WriteFile(outside, []byte("outside\n"), 0o644)
		os.Symlink(outside, filepath.Join(dir, "out"))
		os.Symlink(filepath.Dir(outside), filepath.Join(dir, "outdir"))
		os.Symlink(".env", filepath.Join(dir, "env-link"))
		cfg := "sandbox: " + sb + "\nsecurity:\n  excluded_paths: [.env, .env.*, .git, secrets/prod.yaml]\n"
		os.WriteFile(filepath.Join(dir, "llm-runtime.config.yaml"), []byte(cfg), 0o644)
		keep := []string{filepath.Join(dir, ".env"), filepath.Join(dir, "llm-runtime.config.yaml"), filepath.Join(dir, "app/.env.local"),
			filepath.Join(dir, "secrets/prod.yaml"), filepath.Join(dir, "stage/prod.yaml"), filepath.Join(dir, ".git/config"), outside}
		in := "<delete .env> <delete .git/config> <delete llm-runtime.config.yaml> <delete ../outside.txt> <delete outdir/outside.txt>" +
			" <move .env env.txt> <move a.txt .env> <move a.txt .git/hooks/pre-commit> <move a.txt llm-runtime.config.yaml --overwrite>" +
			" <move a.txt .mcp.json> <move a.txt ../a.txt> <move outdir/outside.txt stolen.txt> <move a.txt outdir/a.txt>" +
			" <move app app2> <move secrets public> <move stage deploy/secrets>"
		mustRefuse(t, dir, in, nil, keep, "--sandbox", sb)
		for _, p := range []string{"env.txt", "app2", "public", "deploy", "stolen.txt", ".mcp.json"} {
			if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
				t.Errorf("%s was made", p)
			}
		}

		// A link is the object: deleting one leaves its target.
		r := runBinary(t, dir, "<delete env-link> <move out out-link>", nil, "--sandbox", sb)
		wantAll(t, r.stdout, "=== DELETE SUCCESSFUL: env-link ===\nDeleted: symbolic link (not what it points to)\n", "=== MOVE SUCCESSFUL: out ===\nMoved to: out-link\n")
		if l, _ := os.Readlink(filepath.Join(dir, "out-link")); l != outside {
			t.Errorf("the moved link points to %q", l)
		}
		if b, _ := os.ReadFile(outside); string(b) != "outside\n" {
			t.Errorf("the link's target changed: %q", b)
		}

		guest := wasmtest.Build(t, "guests/protect-secrets")
		// The sandbox's exclusions answer before a policy is asked: narrowed,
		// so that the policy decides.
		r = runBinary(t, dir, "<move a.txt app/id_rsa> <move a.txt b.txt>", []string{"LLM_RUNTIME_SECURITY_EXCLUDED_PATHS=.git"}, append([]string{"--sandbox", sb}, withPolicy(t, guest)...)...)
		wantAll(t, r.stdout, "=== ERROR: POLICY_DENIED ===\nMessage: denied by policy protect-secrets: a.txt (app/id_rsa) looks like a credential file", "=== MOVE SUCCESSFUL: a.txt ===")
		old := wasmtest.Build(t, "runtime/wasm/testdata/abi1")
		r = runBinary(t, dir, "<delete b.txt> <move b.txt c.txt> <open b.txt>", nil, append([]string{"--sandbox", sb}, withPolicy(t, old)...)...)
		if strings.Count(r.stdout, "=== ERROR: POLICY_DENIED ===\nMessage: denied by policy abi1: the policy speaks ABI 1") != 2 || !strings.Contains(r.stdout, "=== FILE: b.txt ===") {
			t.Fatalf("an ABI 1 policy:\n%s%s", r.stdout, r.stderr)
		}
	})
}
