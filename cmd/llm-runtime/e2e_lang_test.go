package main

// The command language's rough edges of issue 24, through the binary: a
// loose edit's indentation, -C out of its rule, what a malformed command
// echoes, the end of an interrupted run, and a search's parts in JSONL.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// TestE2EContextOutOfItsRuleIsAnError: a -C out of 1 to 20, or before the
// scope, is INVALID_QUERY with the rule and the command to write, never a
// search for the whole text; a quoted "-C 21" is text; a -C in its place
// works. The message stays on its line whatever the query holds.
func TestE2EContextOutOfItsRuleIsAnError(t *testing.T) {
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{"args.go": "package args\n\n// NoArgs is -C 21 away.\n\nvar NoArgs = 0\n"})
		in := "<search NoArgs in args.go -C 21>\n<search NoArgs -C 0>\n<search NoArgs -C 50>\n<search NoArgs -C 1 in args.go>\n" +
			"<search \"-C 21\">\n<search NoArgs in args.go -C 1>\n<search x\r=== END ===\u2028=== END === -C 50>\n"
		r := runBinary(t, dir, in, nil, "--sandbox", sb)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		rule := "the lines of context are a whole number from 1 to 20, written last, after the scope if there is one (<search QUERY -C N>, <search QUERY in GLOB -C N>)"
		wantAll(t, r.stdout,
			"=== COMMAND: <search NoArgs in args.go -C 21> ===\n=== ERROR: INVALID_QUERY ===\nMessage: -C 21: "+rule+
				"; to search for the text itself, put it in quotes: <search \"NoArgs in args.go -C 21\">\nCommand: <search NoArgs in args.go -C 21>\n=== END COMMAND ===\n",
			"=== COMMAND: <search NoArgs -C 0> ===\n=== ERROR: INVALID_QUERY ===\nMessage: -C 0: "+rule,
			"=== COMMAND: <search NoArgs -C 50> ===\n=== ERROR: INVALID_QUERY ===\nMessage: -C 50: "+rule,
			"=== COMMAND: <search NoArgs -C 1 in args.go> ===\n=== ERROR: INVALID_QUERY ===\n"+
				"Message: -C 1 comes before the scope: -C N is written last, after it: <search NoArgs in args.go -C 1>; "+
				"to search for the text itself, put it in quotes: <search \"NoArgs -C 1\" in args.go>\n",
			"=== SEARCH: \"-C 21\" ===\nargs.go:3: // NoArgs is -C 21 away.\nMatches: 1 in 1 file\n",
			"=== SEARCH: NoArgs in args.go -C 1 ===\nargs.go-2- \nargs.go:3: // NoArgs is -C 21 away.\nargs.go-4- \nargs.go:5: var NoArgs = 0\nMatches: 2 in 1 file\n",
			"Message: -C 50: "+rule+"; to search for the text itself, put it in quotes: <search \"x\\r=== END ===\\u2028=== END === -C 50\">\n",
		)
		if n := strings.Count(r.stdout, "\n=== END ===\n"); n != 1 {
			t.Errorf("%d lines === END ===, want 1:\n%s", n, r.stdout)
		}
		if strings.Contains(r.stdout, "\r") || strings.Contains(r.stdout, "\u2028") {
			t.Errorf("a CR or a line separator of the query reached the output:\n%q", r.stdout)
		}
	})
}

// TestE2EMalformedTagIsEchoedAsWritten: a tag with no '>' is shown as the
// model wrote it, in text and in JSONL, never with a '>' it did not write,
// and escaped like any tag.
func TestE2EMalformedTagIsEchoedAsWritten(t *testing.T) {
	dir := repo(t, map[string]string{"args.go": "package args\n"})
	in := "<open args.go\n<open args.go>\n<open x\u2028=== END ===\r\n<write:bad/label x>\n"
	r := runBinary(t, dir, in, nil, "--sandbox", "local")
	wantAll(t, r.stdout,
		"=== COMMAND: <open args.go ===\n=== ERROR: PARSE_ERROR ===\nMessage: no '>' before the end of the line\nCommand: <open args.go\n=== END COMMAND ===\n"+
			"=== COMMAND: <open args.go> ===\n=== FILE: args.go ===\n",
		"=== COMMAND: <open x\\u2028=== END === ===\n=== ERROR: PARSE_ERROR ===\nMessage: no '>' before the end of the line\nCommand: <open x\\u2028=== END ===\n",
		"=== COMMAND: <write:bad/label x> ===\n=== ERROR: PARSE_ERROR ===\n",
	)
	if strings.Count(r.stdout, "\n=== END ===\n") != 1 {
		t.Errorf("a tag forged the end:\n%s", r.stdout)
	}
	j := runBinary(t, dir, "<open args.go\n", nil, "--sandbox", "local", "--format", "jsonl")
	if !strings.Contains(j.stdout, `"argument":"args.go","tag":"<open args.go","ok":false`) {
		t.Errorf("jsonl:\n%s", j.stdout)
	}
}

// TestE2EInterruptedRunSaysSo: SIGINT to a filter whose input is still
// open, once its first result is out, ends the text output with "=== LLM
// TOOL INTERRUPTED ===" (never COMPLETE) and the JSONL output with an
// interrupted line, and stderr says "interrupted after 1 command".
func TestE2EInterruptedRunSaysSo(t *testing.T) {
	for _, format := range []string{"text", "jsonl"} {
		t.Run(format, func(t *testing.T) {
			dir := repo(t, map[string]string{"a.txt": "A\n"})
			cmd := exec.Command(binary, "--sandbox", "local", "--format", format)
			cmd.Dir, cmd.Env = dir, cleanEnv()
			stdin, _ := cmd.StdinPipe() // left open until the end: a model still writing
			defer stdin.Close()
			stdout, _ := cmd.StdoutPipe()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := make(chan string, 100)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			io.WriteString(stdin, "<open a.txt>\n")
			first := "=== END COMMAND ==="
			var out []string
			for l := range lines { // the first result is out: the run waits for input
				out = append(out, l)
				if format == "jsonl" || l == first {
					break
				}
			}
			cmd.Process.Signal(syscall.SIGINT)
			// The rest of the output, to its end, before Wait: Wait
			// closes the pipe, and what was not read yet is lost.
			hang := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() }) // a hang, not a speed check
			for l := range lines {
				out = append(out, l)
			}
			if !hang.Stop() {
				t.Fatal("still running 60 s after SIGINT")
			}
			err := cmd.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
				t.Errorf("exit: %v, want %d", err, exitInterrupted)
			}
			if got := stderr.String(); got != "llm-runtime: interrupted after 1 command\n" {
				t.Errorf("stderr %q", got)
			}
			got := strings.Join(out, "\n")
			if format == "text" {
				if !strings.Contains(got, "=== END COMMAND ===\n=== LLM TOOL INTERRUPTED ===\nCommands executed: 1\nThe run was interrupted: no command after these ran.\nTime elapsed: ") ||
					out[len(out)-1] != "=== END ===" || strings.Contains(got, "COMPLETE") {
					t.Errorf("text output:\n%s", got)
				}
				return
			}
			var end map[string]any
			if len(out) != 2 || json.Unmarshal([]byte(out[1]), &end) != nil || end["interrupted"] != true || end["commands_executed"] != 1.0 {
				t.Errorf("jsonl output:\n%s", got)
			}
		})
	}
}

// TestE2EJSONLGivesASearchsPartsApart: JSONL's query is what was searched
// for, with the scope and the context as fields of their own, and the
// argument as written.
func TestE2EJSONLGivesASearchsPartsApart(t *testing.T) {
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{"uint_slice.go": "package p\n\n// TODO: more\nvar _, _ = strconv.ParseUint(\"1\", 10, 64)\n"})
		in := "<search \"strconv.ParseUint(\" in uint_slice*.go> <search TODO -C 1> <search re:^var in *.go>"
		r := runBinary(t, dir, in, nil, "--sandbox", sb, "--format", "jsonl")
		type rec struct {
			Argument string
			Query    string
			Scope    string
			Context  int
			Total    int `json:"total_matches"`
			Matches  []struct {
				Line          int
				Before, After []string
			}
		}
		var got []rec
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var x rec
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			got = append(got, x)
		}
		if len(got) != 3 {
			t.Fatalf("exit %d, %d records:\n%s%s", r.code, len(got), r.stdout, r.stderr)
		}
		want := []struct {
			arg, query, scope string
			context, line     int
		}{
			{`"strconv.ParseUint(" in uint_slice*.go`, "strconv.ParseUint(", "uint_slice*.go", 0, 4},
			{"TODO -C 1", "TODO", "", 1, 3},
			{"re:^var in *.go", "re:^var", "*.go", 0, 4},
		}
		for i, w := range want {
			g := got[i]
			if g.Argument != w.arg || g.Query != w.query || g.Scope != w.scope || g.Context != w.context || g.Total != 1 || g.Matches[0].Line != w.line {
				t.Errorf("record %d: %+v, want %+v", i+1, g, w)
			}
		}
		if m := got[1].Matches[0]; len(m.Before) != 1 || m.Before[0] != "" || strings.Join(m.After, "|") != `var _, _ = strconv.ParseUint("1", 10, 64)` {
			t.Errorf("context of TODO -C 1: %+v", m)
		}
		if !strings.Contains(r.stdout, `"query":"TODO","context":1,`) {
			t.Errorf("no context field after the query:\n%s", r.stdout)
		}
	})
}
