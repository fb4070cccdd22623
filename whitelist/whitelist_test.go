package whitelist

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

func argvs(c Command) [][]string {
	var a [][]string
	for _, s := range c {
		a = append(a, s.Argv)
	}
	return a
}

func TestParseCommandWithoutAShell(t *testing.T) {
	ok := map[string][]string{
		"go test ./...":                {"go", "test", "./..."},
		"  ls   -la  ":                 {"ls", "-la"},
		`grep -r "two words" .`:        {"grep", "-r", "two words", "."},
		`echo 'a && b' "c|d" e\ f`:     {"echo", "a && b", "c|d", "e f"},
		`echo "q\"uote" '$HOME' $HOME`: {"echo", `q"uote`, "$HOME", "$HOME"},
		`echo ""`:                      {"echo", ""},
	}
	for line, want := range ok {
		c, err := Parse(line, false)
		if err != nil || len(c) != 1 || !reflect.DeepEqual(c[0].Argv, want) {
			t.Errorf("%q: %q, %v; want %q", line, argvs(c), err, want)
		}
		if w := c[0].known(); len(w) != len(want) {
			t.Errorf("%q: without a shell nothing is expanded, but only %q is known", line, w)
		}
	}
	for _, line := range []string{
		"ls && rm -rf x", "ls; rm -rf x", "ls | sh", "ls || rm x", "cat x > y", "cat < x", "sleep 1 &",
		"echo $(rm -rf /)", "echo `id`", `echo "$(id)"`, "(ls)", "echo 'unterminated", `echo "unterminated`,
		"", "   ", "ls 2>/dev/null", "echo $'\\x41'", "ls\nrm -rf x", "ls\x00", "cat \xff",
	} {
		if _, err := Parse(line, false); sandbox.AsError(err).Code != sandbox.CodeExecValidation {
			t.Errorf("%q accepted: %v", line, err)
		}
	}
}

func TestParseCommandWithAShellChecksEverySimpleCommand(t *testing.T) {
	c, err := Parse("go test ./... && go vet ./... | wc -l; echo done", true)
	want := [][]string{{"go", "test", "./..."}, {"go", "vet", "./..."}, {"wc", "-l"}, {"echo", "done"}}
	if err != nil || !reflect.DeepEqual(argvs(c), want) {
		t.Fatalf("got %q, %v", argvs(c), err)
	}
	w := New([]string{"go test", "go vet", "wc", "echo"})
	if err := w.Check(c, false); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"ls && rm -rf x", "go test && go run evil.go", "echo $(id)", "go test > out", "&& ls", "ls &&", "ls & rm x"} {
		c, err := Parse(line, true)
		if err == nil {
			err = New([]string{"go test", "ls", "echo"}).Check(c, false)
		}
		if sandbox.AsError(err).Code != sandbox.CodeExecValidation {
			t.Errorf("%q accepted", line)
		}
	}
}

// With a shell, the words the shell expands after the check are not known.
func TestParseCommandWithAShellMarksTheWordsItExpands(t *testing.T) {
	line := `ls *.go '*.go' "$HOME" '$HOME' \* ~ a{b,c} {a..c} {} x,y "a b" f?o [ab] ./...`
	open := []bool{false, true, false, true, false, false, true, true, true, false, false, false, true, true, false}
	c, err := Parse(line, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range c[0].Argv {
		if got := c[0].openAt(i) != ""; got != open[i] {
			t.Errorf("%q: open %v, want %v", w, got, open[i])
		}
	}
	c, _ = Parse(line, false)
	if len(c[0].known()) != len(open) {
		t.Error("without a shell a word is open")
	}
}

func TestWhitelistMatchesArgumentVectorsNotPrefixes(t *testing.T) {
	w := New([]string{"go test", "ls", " make  build "})
	for argv, want := range map[string]bool{
		"go test ./...": true, "go test": true, "go testx": false, "go": false, "go run x": false,
		"ls": true, "ls -la /": true, "lsblk": false, "make build": true, "make": false, "make install": false,
	} {
		c, err := Parse(argv, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.allows(c[0].Argv); got != want {
			t.Errorf("%q: allowed %v, want %v", argv, got, want)
		}
	}
	if !New([]string{"*"}).allows([]string{"anything", "at", "all"}) {
		t.Error("* does not allow everything")
	}
	if New(nil).allows([]string{"ls"}) {
		t.Error("an empty whitelist allows ls")
	}
}

// listed is the whitelist testdata/check calls "listed": the default one, and the
// programs whose rules they test.
var listed = append(append([]string{}, config.DefaultWhitelist...),
	"xargs", "env", "nice", "nohup", "timeout", "stdbuf", "setsid", "flock", "time", "busybox", "chroot", "watch",
	"strace", "sudo", "tar", "ssh", "sh", "bash", "awk", "gawk", "sed", "go", "make", "git", "rg", "sort",
	"perl", "python3", "ruby", "node", "npx")

func TestProgramNamesDropPathsVersionsAndAliases(t *testing.T) {
	for in, want := range map[string]string{
		"python3.12": "python", "/usr/bin/gawk": "awk", "go1.22.0": "go", "bash": "sh", "/bin/ash": "sh",
		"linux32": "linux32", "ls": "ls", "./find": "find", "perl5.36": "perl", "nodejs": "node", "base64": "base64",
	} {
		if got := ProgramName(in); got != want {
			t.Errorf("programName(%q) = %q, want %q", in, got, want)
		}
	}
}

// ruleless are the programs of the default whitelist that have no rule:
// their arguments make them start nothing (docs/exec.md says so).
var ruleless = map[string]bool{"ls": true, "cat": true, "grep": true, "head": true, "tail": true, "wc": true, "echo": true, "pwd": true, "true": true}

func TestEveryProgramOfTheDefaultWhitelistIsConsidered(t *testing.T) {
	for _, e := range config.DefaultWhitelist {
		name := ProgramName(strings.Fields(e)[0])
		if _, ok := rules[name]; !ok && !ruleless[name] {
			t.Errorf("%q: its program %s has no rule and is not known to start nothing", e, name)
		}
	}
}

// The exec reference (docs/exec.md) names every program with a rule, an
// alias or a refusal.
func TestTheExecDocNamesEveryProgramTheWhitelistChecks(t *testing.T) {
	b, err := os.ReadFile("../docs/exec.md")
	if err != nil {
		t.Fatal(err)
	}
	exec := string(b)
	var names []string
	for n := range rules {
		names = append(names, n)
	}
	for n := range refused {
		names = append(names, n)
	}
	for n := range aliases {
		names = append(names, n)
	}
	for n := range ruleless {
		names = append(names, n)
	}
	for _, n := range names {
		if !strings.Contains(exec, "`"+n+"`") && !strings.Contains(exec, "`"+n+" ") {
			t.Errorf("docs/exec.md does not name `%s`", n)
		}
	}
}

// TestWhitelistDataDriven runs the cases of testdata/check (its head says
// how they are written). Regenerate the expectations with:
// go test ./whitelist -run DataDriven -rewrite
func TestWhitelistDataDriven(t *testing.T) {
	datadriven.RunTest(t, "testdata/check", func(t *testing.T, d *datadriven.TestData) string {
		if d.Cmd != "check" {
			t.Fatalf("%s: unknown directive %q", d.Pos, d.Cmd)
		}
		var white []string
		shell, writable := false, false
		for _, a := range d.CmdArgs {
			switch {
			case a.Key == "whitelist" && len(a.Vals) == 1 && a.Vals[0] == "default":
				white = config.DefaultWhitelist
			case a.Key == "whitelist" && len(a.Vals) == 1 && a.Vals[0] == "listed":
				white = listed
			case a.Key == "whitelist":
				white = a.Vals
			case a.Key == "shell":
				shell = true
			case a.Key == "writable":
				writable = true
			default:
				t.Fatalf("%s: unknown argument %q", d.Pos, a.Key)
			}
		}
		w := New(white)
		var b strings.Builder
		for _, line := range strings.Split(d.Input, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			cmd, err := Parse(line, shell)
			if err == nil {
				err = w.Check(cmd, writable)
			}
			b.WriteString(line + "\n")
			switch e := sandbox.AsError(err); {
			case err == nil:
				b.WriteString("  ok\n")
			case e.Code != sandbox.CodeExecValidation:
				fmt.Fprintf(&b, "  error, not EXEC_VALIDATION: %v\n", err)
			default:
				fmt.Fprintf(&b, "  refused: %s\n", e.Message)
			}
		}
		return b.String()
	})
}

func TestProgramsAreTheEntriesFirstWordsOnce(t *testing.T) {
	got := New([]string{"go test", "go build", "ls", "*", " python3  -m pytest", "/usr/bin/make"}).Programs()
	if want := []string{"go", "ls", "python3", "/usr/bin/make"}; !slices.Equal(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
}
