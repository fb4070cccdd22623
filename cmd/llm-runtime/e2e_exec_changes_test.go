package main

// Exec's changesets (issue 25 §2 and §8), through the binary on the real
// daemon: whatever a command changes is found after that command, however
// it changed it.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// hardLinkAttack writes a file of the copy through a second name, which it
// then removes: no event is raised in the file's own directory. (tee
// writes the file in place; an <exec> cannot hold a '>'.)
const hardLinkAttack = "sh -c 'ln a/f b/g && echo POISON | tee b/g && rm b/g'"

// execAny is a configuration that lets any command run.
const execAny = "exec:\n  enabled: true\n  whitelist: [\"*\"]\n"

// TestE2EExecFindsWhatAHardLinkChanged: a command that writes a file
// through a hard link it then removes has changed that file, and the
// change is found after that command: discarded (the next command, and
// the next run through the daemon or MCP, see the repository's version),
// or, with exec.writable, applied as that command's.
func TestE2EExecFindsWhatAHardLinkChanged(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	files := map[string]string{"llm-runtime.config.yaml": execAny, "a/f": "original\n", "b/keep": "k\n"}
	t.Run("filter", func(t *testing.T) {
		t.Parallel()
		dir := repo(t, files)
		res := runJSONL(t, dir, "<exec "+hardLinkAttack+">\n<exec cat a/f>\n")
		if !res[0].OK {
			t.Fatalf("the attack failed: %+v", res[0])
		}
		if a, _ := res[0].change("a/f"); a != "discarded" {
			t.Errorf("a/f: %q, want discarded (changes %+v)", a, res[0].Changes)
		}
		if res[1].Output != "original\n" {
			t.Errorf("the next command read a/f as %q", res[1].Output)
		}
	})
	t.Run("filter, writable", func(t *testing.T) {
		t.Parallel()
		dir := repo(t, map[string]string{"llm-runtime.config.yaml": execAny + "  writable: true\n", "a/f": "original\n", "b/keep": "k\n", "c/x": "x\n"})
		// The third command renames a directory, which makes the copy's
		// next look whole: a change missed before would surface there,
		// as that command's.
		res := runJSONL(t, dir, "<exec "+hardLinkAttack+">\n<exec cat a/f>\n<exec mv c d>\n")
		if a, _ := res[0].change("a/f"); a != "updated" {
			t.Errorf("a/f: %q, want updated by the command that changed it (changes %+v)", a, res[0].Changes)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "a/f")); string(b) != "POISON\n" {
			t.Errorf("a/f in the repository = %q", b)
		}
		if a, _ := res[2].change("a/f"); a != "" {
			t.Errorf("a/f is %s by a later command: %+v", a, res[2].Changes)
		}
	})
	t.Run("daemon", func(t *testing.T) {
		t.Parallel()
		dir := repo(t, files)
		d := startServe(t, "", nil)
		first := runBinary(t, dir, "<exec "+hardLinkAttack+">\n", d.env)
		if first.code != 0 || !strings.Contains(first.stdout, "discarded a/f") {
			t.Errorf("the attack's run: exit %d\n%s%s", first.code, first.stdout, first.stderr)
		}
		next := runBinary(t, dir, "<exec cat a/f>\n", d.env)
		if !strings.Contains(next.stdout, "\noriginal\n") || strings.Contains(next.stdout, "POISON") {
			t.Errorf("the next run through the daemon read a/f as:\n%s%s", next.stdout, next.stderr)
		}
		if st := d.status(); st.Served != 2 {
			t.Errorf("the daemon served %d runs, want 2", st.Served)
		}
	})
	t.Run("mcp", func(t *testing.T) {
		t.Parallel()
		dir := repo(t, files)
		s := startMCP(t, dir, nil, "--exec")
		res, text := s.call(t, "exec", map[string]any{"command": hardLinkAttack})
		mustSucceed(t, res, text)
		if !strings.Contains(text, "discarded a/f") {
			t.Errorf("the attack's call does not list a/f:\n%s", text)
		}
		res, text = s.call(t, "exec", map[string]any{"command": "cat a/f"})
		mustSucceed(t, res, text)
		if !strings.Contains(text, "original") || strings.Contains(text, "POISON") {
			t.Errorf("the next call read a/f as:\n%s", text)
		}
	})
}

// TestE2EExecReplacesADirectoryWithAFile: a writable command that turns
// a directory into a file has both its changes applied: the directory's
// files and the directory go, the file comes (issue 25 §8: it was refused
// as "todir is not empty", the files it had removed being missed).
func TestE2EExecReplacesADirectoryWithAFile(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": execAny + "  writable: true\n", "todir/f": "f\n", "todir/sub/g": "g\n"})
	res := runJSONL(t, dir, "<exec sh -c 'rm -r todir && echo file | tee todir'>\n")
	var got []string
	for _, c := range res[0].Changes {
		got = append(got, c.Action+" "+c.Path+" "+c.Reason)
	}
	slices.Sort(got)
	if want := []string{"created todir ", "deleted todir/ ", "deleted todir/f ", "deleted todir/sub/ ", "deleted todir/sub/g "}; !slices.Equal(got, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "todir")); err != nil || string(b) != "file\n" {
		t.Errorf("todir in the repository: %q %v", b, err)
	}
}
