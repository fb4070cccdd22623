package main

// The command language's rough edges of issue 24, through the binary: a
// loose edit's indentation, -C out of its rule, what a malformed command
// echoes, the end of an interrupted run, and a search's parts in JSONL.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ELooseEditTakesTheFilesIndentation: an edit whose SEARCH is
// indented with spaces, of files indented with tabs, writes tabs: the
// Python file still parses (no TabError) and gofmt has nothing to say of
// the Go file; an edit whose indentation says nothing of the file's is
// refused with the lines to copy, and changes nothing.
func TestE2ELooseEditTakesTheFilesIndentation(t *testing.T) {
	python3, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	gofmt := filepath.Join(goRoot(t), "bin", "gofmt")
	bothSandboxes(t, func(t *testing.T, sb string) {
		py := "def f(x):\n\tif x:\n\t\treturn 1\n\treturn 0\n"
		gosrc := "package p\n\nfunc f(ok bool) {\n\tfor {\n\t\tg()\n\t}\n}\n\nfunc g() {}\n"
		mixed := "a\n\tb\n  c\n"
		dir := repo(t, map[string]string{"f.py": py, "f.go": gosrc, "mixed.txt": mixed})
		in := "<edit f.py>\n" + editBlock("    if x:\n        return 1", "    if x:\n        if x > 1:\n            return 2\n        return 1") + "</edit>\n" +
			"<edit f.go>\n" + editBlock("g()", "if ok {\n    g()\n}") + "</edit>\n" +
			"<edit mixed.txt>\n" + editBlock("b\nc", "B\nC") + "</edit>\n"
		r := runBinary(t, dir, in, nil, "--sandbox", sb)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		wantAll(t, r.stdout,
			"=== EDIT SUCCESSFUL: f.py ===\nBlocks applied: 1\nBlock 1 matched only with the white space at the ends of its lines ignored\n",
			"+\t\tif x > 1:\n+\t\t\treturn 2\n",
			"=== EDIT SUCCESSFUL: f.go ===\n",
			"+\t\tif ok {\n+\t\t\tg()\n+\t\t}\n",
			"=== COMMAND: <edit mixed.txt> ===\n=== ERROR: EDIT_NO_MATCH ===\n"+
				"Message: edit block 1: its SEARCH matches lines 2-3 only with the white space at the ends of lines ignored, "+
				"and the file's indentation cannot be carried over to its REPLACE lines: SEARCH lines 1 and 2 are indented alike (no indentation), "+
				"but the file's lines 2 and 3 are not (1 tab, and 2 spaces); nothing was written; copy the lines exactly from the file as it is now "+
				"and retry the whole edit; the lines it matched, with their numbers, follow\n"+
				"Command: <edit mixed.txt>\nDetail:\n     1  a\n     2  \tb\n     3    c\n=== END DETAIL ===\n",
		)
		got, _ := os.ReadFile(filepath.Join(dir, "f.py"))
		if want := "def f(x):\n\tif x:\n\t\tif x > 1:\n\t\t\treturn 2\n\t\treturn 1\n\treturn 0\n"; string(got) != want {
			t.Errorf("f.py is %q, want %q", got, want)
		}
		if out, err := exec.Command(python3, "-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())", filepath.Join(dir, "f.py")).CombinedOutput(); err != nil {
			t.Errorf("python3 cannot parse f.py: %v\n%s", err, out)
		}
		got, _ = os.ReadFile(filepath.Join(dir, "f.go"))
		for _, l := range strings.Split(string(got), "\n") {
			if strings.HasPrefix(l, " ") || strings.Contains(l, "\t ") {
				t.Errorf("f.go has a line indented with spaces: %q", l)
			}
		}
		if out, err := exec.Command(gofmt, "-l", filepath.Join(dir, "f.go")).CombinedOutput(); err != nil || len(out) != 0 {
			t.Errorf("gofmt -l f.go: %v %s\n%s", err, out, got)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "mixed.txt")); string(got) != mixed {
			t.Errorf("a refused edit changed mixed.txt to %q", got)
		}
	})
}

// goRoot is the GOROOT of the go command that runs the tests.
func goRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
