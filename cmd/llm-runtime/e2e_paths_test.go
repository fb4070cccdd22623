package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EAbsolutePathsInsideTheRepositoryWork: a model told where the
// repository is writes absolute paths; those inside it (by its real path,
// or by the linked path it was given as) are taken relative to it, in both
// sandboxes, and those outside it stay PATH_SECURITY (issue 13 §5).
func TestE2EAbsolutePathsInsideTheRepositoryWork(t *testing.T) {
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{"go.mod": "module x\n", "sub/a.txt": "a\n"})
		link := filepath.Join(t.TempDir(), "proj")
		if err := os.Symlink(dir, link); err != nil {
			t.Fatal(err)
		}
		in := "<open " + dir + "/go.mod>\n<open " + link + "/sub/a.txt>\n<write " + dir + "/new.txt>\nnew\n</write>\n" +
			"<edit " + link + "/go.mod>\n" + editBlock("module x", "module y") + "</edit>\n" +
			"<open " + dir + "/../outside.txt>\n<open " + dir + "x/go.mod>\n<open /etc/hostname>\n"
		r := runBinary(t, t.TempDir(), in, nil, "--sandbox", sb, "--root", link)
		for _, want := range []string{
			"=== FILE: go.mod ===\nmodule x\n",
			"=== FILE: sub/a.txt ===\na\n",
			"=== WRITE SUCCESSFUL: new.txt ===",
			"=== EDIT SUCCESSFUL: go.mod ===",
			"=== COMMAND: <open " + dir + "/../outside.txt> ===\n=== ERROR: PATH_SECURITY ===",
			"=== COMMAND: <open " + dir + "x/go.mod> ===\n=== ERROR: PATH_SECURITY ===",
			"=== COMMAND: <open /etc/hostname> ===\n=== ERROR: PATH_SECURITY ===",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("no %q in\n%s", want, r.stdout)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "new.txt")); string(b) != "new\n" {
			t.Errorf("new.txt = %q", b)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "go.mod")); string(b) != "module y\n" {
			t.Errorf("go.mod = %q", b)
		}
	})
}
