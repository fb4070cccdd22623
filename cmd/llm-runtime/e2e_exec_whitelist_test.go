package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// The red team's command (issue 12): find -exec ran sh, with ; and pipes,
// though exec.shell is false.
const redTeam = `find . -maxdepth 0 -exec sh -c "id; cat .env; mount" \;`

// execLine is one line of --format jsonl output for an <exec>.
type execLine struct {
	Argument string
	OK       bool
	Output   string
	Error    *struct{ Code, Message string }
}

type execCase struct {
	command string
	want    string // refused: a part of the reason; otherwise a part of the output
	refused bool
	failed  bool // it passes the check and runs, but fails (EXEC_FAILED)
}

// runExecs runs each command as an <exec> in a repository configured by
// config, and checks each result in order. It returns the repository.
func runExecs(t *testing.T, config string, files map[string]string, cases []execCase) string {
	t.Helper()
	all := map[string]string{"llm-runtime.config.yaml": config}
	for name, content := range files {
		all[name] = content
	}
	dir := repo(t, all)
	var in strings.Builder
	for _, c := range cases {
		in.WriteString("<exec " + c.command + ">\n")
	}
	r := runBinary(t, dir, in.String(), nil, "--format", "jsonl")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != len(cases) {
		t.Fatalf("exit %d, %d lines for %d commands\n%s\n%s", r.code, len(lines), len(cases), r.stdout, r.stderr)
	}
	for i, c := range cases {
		var l execLine
		if err := json.Unmarshal([]byte(lines[i]), &l); err != nil {
			t.Fatalf("%s: %v", lines[i], err)
		}
		switch {
		case l.Argument != c.command:
			t.Errorf("line %d is for %q, want %q", i+1, l.Argument, c.command)
		case c.refused && (l.OK || l.Error == nil || l.Error.Code != "EXEC_VALIDATION"):
			t.Errorf("%s: ran; want EXEC_VALIDATION (%s)\n%s", c.command, c.want, lines[i])
		case c.refused && !strings.Contains(l.Error.Message, c.want):
			t.Errorf("%s: %q does not say %q", c.command, l.Error.Message, c.want)
		case c.refused && l.Output != "":
			t.Errorf("%s: refused, yet it printed %q", c.command, l.Output)
		case c.failed && (l.OK || l.Error == nil || l.Error.Code != "EXEC_FAILED" || !strings.Contains(l.Output, c.want)):
			t.Errorf("%s: want it to run, fail and print %q\n%s", c.command, c.want, lines[i])
		case !c.refused && !c.failed && (!l.OK || !strings.Contains(l.Output, c.want)):
			t.Errorf("%s: want it to run and print %q\n%s", c.command, c.want, lines[i])
		}
	}
	for _, leak := range []string{"uid=", "hunter2", "proc on /proc"} {
		if strings.Contains(r.stdout, leak) {
			t.Errorf("the output holds %q: a refused command ran\n%s", leak, r.stdout)
		}
	}
	return dir
}

var whitelistFiles = map[string]string{".env": "SECRET=hunter2\n", "a.go": "package a\n", "b.txt": "one\ntwo\n", "x.tmp": "x\n"}

// TestE2EExecWhitelistFollowsWhatListedProgramsStart runs, in the busybox
// exec image, the red team's command and the other ways a listed program
// starts a program that is not (or that runs any command): each is refused
// before anything runs, and the legitimate form beside it works.
func TestE2EExecWhitelistFollowsWhatListedProgramsStart(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)

	// The attack is real in this image: with "*", which turns the checks
	// off, it runs sh and prints id (but not .env, which exec never sees).
	star := repo(t, map[string]string{"llm-runtime.config.yaml": "exec:\n  enabled: true\n  whitelist: [\"*\"]\n  timeout: 1m\n", ".env": "SECRET=hunter2\n"})
	if r := runBinary(t, star, "<exec "+redTeam+">\n", nil); !strings.Contains(r.stdout, "uid=") || strings.Contains(r.stdout, "hunter2") {
		t.Fatalf("with \"*\" the red team's command did not run sh, or printed .env:\n%s\n%s", r.stdout, r.stderr)
	}

	config := "exec:\n  enabled: true\n  whitelist: [find, xargs, env, timeout, time, setsid, busybox, sh, awk, sed, grep, cat, echo, wc]\n  timeout: 1m\n"
	dir := runExecs(t, config, whitelistFiles, []execCase{
		{redTeam, `find -exec starts "sh -c id; cat .env; mount": sh runs any command`, true, false},
		{`find . -name '*.go'`, "./a.go", false, false},
		{`find . -maxdepth 0 -execdir sh -c id \;`, "find -execdir starts", true, false},
		{`find . -maxdepth 0 -ok sh -c id \;`, "find -ok starts", true, false},
		{`find . -maxdepth 0 -okdir sh -c id \;`, "find -okdir starts", true, false},
		{`find . -maxdepth 0 -exec id \;`, `find -exec starts "id", which is not on the whitelist`, true, false},
		{`find . -maxdepth 0 -exec busybox sh -c id \;`, `busybox starts "sh -c id": sh runs any command`, true, false},
		{`find . -maxdepth 0 -exec echo + -exec sh -c id \;`, "a + that does not follow {}", true, false},
		{`find . -name b.txt -exec cat {} \;`, "one\ntwo\n", false, false},
		{`find . -name '*.txt' -exec wc -l {} +`, "2 ./b.txt", false, false},
		{`xargs sh -c id`, `xargs starts "sh -c id": sh runs any command`, true, false},
		{`xargs -I{} {} -c id`, `(xargs puts its input in place of "{}")`, true, false},
		{`xargs echo listed`, "listed", false, false},
		{`env sh -c id`, `env starts "sh -c id"`, true, false},
		{`env -a sh busybox -c id`, "starts the command under another name", true, false},
		{`env FOO=1 grep -c o b.txt`, "2", false, false},
		{`timeout 5 sh -c id`, `timeout starts "sh -c id"`, true, false},
		{`timeout 50 grep one b.txt`, "one", false, false},
		{`time sh -c id`, `time starts "sh -c id"`, true, false},
		{`time echo timed`, "timed", false, false},
		{`setsid sh -c id`, `setsid starts "sh -c id"`, true, false},
		{`setsid echo in-a-session`, "in-a-session", false, false},
		{`busybox sh -c id`, `busybox starts "sh -c id": sh runs any command`, true, false},
		{`busybox echo applet`, "applet", false, false},
		{`sh -c id`, "sh runs any command given to it", true, false},
		{`awk 'BEGIN { system("id") }'`, "system() runs a shell command", true, false},
		{`awk 'BEGIN { "id" | getline x; print x }'`, "pipes to or from a shell command", true, false},
		{`awk 'BEGIN { print "id" | "sh" }'`, "pipes to or from a shell command", true, false},
		{`awk '{ print $1 }' b.txt`, "one\ntwo\n", false, false},
		{`sed -n '1e id' b.txt`, "sed's e command runs a shell command", true, false},
		{`sed 's/one/id/e' b.txt`, "sed's s///e flag", true, false},
		{`sed -n 's/one/ONE/p' b.txt`, "ONE", false, false},
		{`sed -n 'w out.txt' b.txt`, "sed's w writes files, and exec is read-only", true, false},
		{`sed -i s/one/1/ b.txt`, "sed -i edits files in place, and exec is read-only", true, false},
		{`find . -name x.tmp -delete`, "find -delete writes files, and exec is read-only", true, false},
		{`find . -maxdepth 0 -fprint out.txt`, "find -fprint writes files", true, false},
	})
	if b, err := os.ReadFile(filepath.Join(dir, "b.txt")); err != nil || string(b) != "one\ntwo\n" {
		t.Errorf("b.txt: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.tmp")); err != nil {
		t.Errorf("x.tmp: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.txt")); err == nil {
		t.Error("out.txt was written")
	}
}

// TestE2EExecWhitelistLetsWritingActionsThroughWhenWritable: exec.writable
// reaches the check, and sed's writes then work. The busybox image's find
// has no -delete: that it says so shows the check let it through.
func TestE2EExecWhitelistLetsWritingActionsThroughWhenWritable(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	config := "exec:\n  enabled: true\n  writable: true\n  whitelist: [find, sed, cat]\n  timeout: 1m\n"
	dir := runExecs(t, config, whitelistFiles, []execCase{
		{command: `find . -name x.tmp -delete`, want: "unrecognized: -delete", failed: true},
		{command: `sed -i s/one/1/ b.txt`},
		{command: `sed -n 'w out.txt' b.txt`},
		{command: `cat b.txt out.txt`, want: "1\ntwo\n1\ntwo\n"},
		{command: `find . -maxdepth 0 -exec sh -c id \;`, want: `find -exec starts "sh -c id", which is not on the whitelist`, refused: true},
		{command: `sed 's/one/id/e' b.txt`, want: "sed's s///e flag", refused: true},
	})
	if b, err := os.ReadFile(filepath.Join(dir, "b.txt")); err != nil || string(b) != "1\ntwo\n" {
		t.Errorf("b.txt: %q %v", b, err)
	}
}

// TestE2EExecWhitelistWithAShellChecksEachCommandOfAPipeline: with
// exec.shell, a program fed by a pipe is checked as xargs's is, and a word
// the shell expands after the check is not taken for what it spells.
func TestE2EExecWhitelistWithAShellChecksEachCommandOfAPipeline(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	config := "exec:\n  enabled: true\n  shell: true\n  whitelist: [find, xargs, grep, echo, sh, ls]\n  timeout: 1m\n"
	runExecs(t, config, whitelistFiles, []execCase{
		{`find . -name '*.txt' | xargs grep -c o`, "2", false, false},
		{`echo sh | xargs -I{} {} -c id`, `(xargs puts its input in place of "{}")`, true, false},
		{`echo id | sh`, "sh runs any command given to it", true, false},
		{`ls | xargs find . -exec`, "find's arguments decide what it starts or writes, and xargs adds arguments", true, false},
		{`find . -maxdepth 0 -exe? sh -c id \;`, `"-exe?" is not known when the command is checked (the shell expands it`, true, false},
		{`ls *.go`, "a.go", false, false},
	})
}
