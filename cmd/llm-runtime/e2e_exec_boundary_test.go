package main

// The red team's attacks on exec (issue 12 §2 and §3), through the binary
// on the real daemon: what a command can read, and what it can leave in
// the repository for the host's tools.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// execJSON is one --format jsonl line of an <exec> (or of another
// command, which leaves the exec fields empty).
type execJSON struct {
	Command  string
	Argument string
	OK       bool
	Output   string
	Error    *struct{ Code, Message string }
	Changes  []change
}

func (e execJSON) change(path string) (action, reason string) {
	for _, c := range e.Changes {
		if c.Path == path {
			return c.Action, c.Reason
		}
	}
	return "", ""
}

func runJSONL(t *testing.T, dir, input string, args ...string) []execJSON {
	t.Helper()
	return runJSONLWith(t, dir, nil, input, args...)
}

// runJSONLWith is runJSONL with more environment variables.
func runJSONLWith(t *testing.T, dir string, env []string, input string, args ...string) []execJSON {
	t.Helper()
	r := runBinary(t, dir, input, env, append([]string{"--format", "jsonl"}, args...)...)
	if r.code != 0 && r.code != 1 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var out []execJSON
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e execJSON
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%q: %v\n%s", l, err, r.stderr)
		}
		out = append(out, e)
	}
	return out
}

const secret = "hunter2"

// TestE2EExecNeverSeesExcludedPaths: every path security.excluded_paths
// excludes from <open> is absent from what exec sees, at any depth, and a
// secret created after the pre-started container started is absent too.
func TestE2EExecNeverSeesExcludedPaths(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	dir := repo(t, map[string]string{
		"llm-runtime.config.yaml": "exec:\n  enabled: true\n",
		"main.go":                 "package main\n",
		".env":                    "SECRET=" + secret + "\n",
		"deploy/prod/.env.local":  "SECRET=" + secret + "\n",
		"keys/server.key":         secret + "\n",
		"home/.ssh/id_ed25519":    secret + "\n",
		".git/config":             "[remote]\n\turl = https://" + secret + "@example.com\n",
		"sub/.git":                "gitdir: ../.git/worktrees/" + secret + "\n",
	})
	res := runJSONL(t, dir, "<exec cat .env>\n<exec grep -r "+secret+" .>\n<exec find .>\n<exec cat deploy/prod/.env.local>\n<exec ls -a sub>\n")
	if len(res) != 5 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		if strings.Contains(r.Output, secret) {
			t.Errorf("<exec %s> printed the secret:\n%s", r.Argument, r.Output)
		}
	}
	if res[0].OK || !strings.Contains(res[0].Output, "No such file") {
		t.Errorf("cat .env: %+v", res[0])
	}
	if res[1].OK || res[1].Error == nil || res[1].Error.Code != "EXEC_FAILED" { // grep found nothing: exit 1
		t.Errorf("grep -r: %+v", res[1])
	}
	for _, hidden := range []string{".env", ".git", "server.key", "id_ed25519", "sub/.git"} {
		if strings.Contains(res[2].Output, hidden) {
			t.Errorf("find . lists %s:\n%s", hidden, res[2].Output)
		}
	}
	if !strings.Contains(res[2].Output, "./main.go") || !strings.Contains(res[2].Output, "./deploy/prod") {
		t.Errorf("find . misses what it may see:\n%s", res[2].Output)
	}

	// Correct at the moment the command runs: files made after the exec
	// container was started (it is started with the run).
	s := startSession(t, dir, "--exec")
	s.send("<exec ls>\n")
	os.WriteFile(filepath.Join(dir, "late.pem"), []byte(secret+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "late.txt"), []byte("visible\n"), 0o644)
	if got := strings.Join(s.send("<exec cat late.pem>\n"), "\n"); strings.Contains(got, secret) || !strings.Contains(got, "No such file") {
		t.Errorf("a secret made during the run was seen:\n%s", got)
	}
	if got := strings.Join(s.send("<exec cat late.txt>\n"), "\n"); !strings.Contains(got, "visible") {
		t.Errorf("a file made during the run was not seen:\n%s", got)
	}
}

// attackScript is what a hostile writable command leaves behind; each
// line is one of the red team's tricks, and the last lines are legitimate
// changes that must land.
const attackScript = `
chmod 4755 rootme
chmod 2755 rootg
cp rootme copied && chmod u+s copied
ln -s /etc/passwd out
ln -s ../../../.. up
mkfifo pipe
printf 'exec:\n  enabled: true\n  whitelist: ["*"]\n  shell: true\nsecurity:\n  excluded_paths: []\n' > llm-runtime.config.yaml
mkdir -p deep && cp llm-runtime.config.yaml deep/
echo SECRET=planted > .env
echo key > planted.pem
mkdir -p sub/.git && printf '[core]\n\tfsmonitor = "touch PWNED"\n' > sub/.git/config
ln a.go hard.go
sed -i s/old/new/ a.go b.go
mkdir -p gen && echo one > gen/one.go && echo two > gen/two.go && echo three > gen/three.go
rm gone.go
`

// gitAttack is the part of the attack aimed at the repository's git
// directory: make one where there is none, change the one there is, or
// point a worktree's .git file elsewhere.
var gitAttack = map[string]string{
	"absent":   "mkdir -p .git/hooks && printf '[core]\\n\\tfsmonitor = \"touch PWNED\"\\n' > .git/config && printf '#!/bin/sh\\ntouch PWNED\\n' > .git/hooks/pre-commit && chmod 755 .git/hooks/pre-commit\n",
	"dir":      "mkdir -p .git && printf '[core]\\n\\tfsmonitor = \"touch PWNED\"\\n' > .git/config\n",
	"worktree": "echo 'gitdir: evilgit' > .git\n",
}

// TestE2EWritableExecCannotReachTheHost runs the red team's writable
// exec with every check of the whitelist off ("*", a shell): whatever the
// command does, the repository ends up holding only what <write> could
// have made there, each refusal is reported, and the legitimate changes
// beside them land.
func TestE2EWritableExecCannotReachTheHost(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	git, _ := exec.LookPath("git")
	// bind: on the local daemon, the copy bind-mounted; copy: on a
	// "remote" one, the copy pushed to a volume and the command's changes
	// pulled back.
	modes := map[string][]string{"bind": nil, "copy": {"DOCKER_HOST=" + dockertest.RemoteHost(t)}}
	for _, mode := range []string{"bind", "copy"} {
		for _, layout := range []string{"absent", "dir", "worktree"} {
			denv := modes[mode]
			t.Run(mode+"/"+layout, func(t *testing.T) {
				config := "exec:\n  enabled: true\n  writable: true\n  whitelist: [\"*\"]\n  timeout: 1m\n"
				files := map[string]string{
					"llm-runtime.config.yaml": config,
					".env":                    "SECRET=" + secret + "\n",
					"a.go":                    "package a // old\n",
					"b.go":                    "package a // old\n",
					"gone.go":                 "package a\n",
				}
				switch layout {
				case "dir":
					files[".git/config"] = "[core]\n\tbare = false\n"
				case "worktree":
					files[".git"] = "gitdir: /elsewhere/.git/worktrees/x\n"
				}
				dir := repo(t, files)
				pwned := filepath.Join(t.TempDir(), "pwned")
				script := strings.ReplaceAll(gitAttack[layout]+attackScript, "PWNED", pwned)
				before := map[string]string{}
				for _, p := range []string{".git", ".git/config", ".env", "llm-runtime.config.yaml"} {
					if b, err := os.ReadFile(filepath.Join(dir, p)); err == nil {
						before[p] = string(b)
					}
				}
				res := runJSONLWith(t, dir, denv, "<write rootme>\nELF\n</write>\n<write rootg>\nELF\n</write>\n<write attack.sh>\n"+script+"</write>\n<exec sh -e attack.sh>\n")
				x := res[len(res)-1]
				if !x.OK {
					why := ""
					if x.Error != nil {
						why = x.Error.Code + ": " + x.Error.Message
					}
					t.Fatalf("the attack script failed: %s\n%s", why, x.Output)
				}
				refused := []string{"rootme", "rootg", "copied", "out", "up", "pipe", "llm-runtime.config.yaml", "deep/llm-runtime.config.yaml", ".env", "planted.pem", "sub/.git"}
				switch layout {
				case "absent", "dir":
					refused = append(refused, ".git")
				case "worktree":
					refused = append(refused, ".git")
				}
				for _, p := range refused {
					if p == "pipe" && mode == "bind" && strings.HasPrefix(dockertest.ExecRuntime(), "runsc") {
						continue // gVisor makes the FIFO in its own kernel, not in the copy on the host: nothing comes back to refuse (nor lands: see below)
					}
					if action, reason := x.change(p); action != "refused" || reason == "" {
						t.Errorf("%s: %q %q, want refused with a reason", p, action, reason)
					}
				}
				for p, want := range map[string]string{"a.go": "updated", "b.go": "updated", "gen/one.go": "created", "gen/two.go": "created", "gen/three.go": "created", "hard.go": "created", "gone.go": "deleted"} {
					if action, _ := x.change(p); action != want {
						t.Errorf("%s: %q, want %s", p, action, want)
					}
				}
				// On the host: regular files and directories only, no special
				// bits, nothing new at an excluded path, nothing changed that
				// a write could not change.
				filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
					if err != nil {
						return err
					}
					rel, _ := filepath.Rel(dir, p)
					if fi.Mode()&(os.ModeSymlink|os.ModeNamedPipe|os.ModeSocket|os.ModeDevice|os.ModeCharDevice) != 0 {
						t.Errorf("%s is %v on the host", rel, fi.Mode())
					}
					if fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
						t.Errorf("%s has mode %v on the host", rel, fi.Mode())
					}
					if st, ok := fi.Sys().(*syscall.Stat_t); ok && !fi.IsDir() && st.Nlink != 1 {
						t.Errorf("%s has %d hard links on the host", rel, st.Nlink)
					}
					return nil
				})
				for _, p := range []string{"copied", "out", "up", "pipe", "deep/llm-runtime.config.yaml", "planted.pem", "sub/.git"} {
					if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
						t.Errorf("%s is in the repository", p)
					}
				}
				for p, b := range before {
					if now, _ := os.ReadFile(filepath.Join(dir, p)); string(now) != b {
						t.Errorf("%s changed: %q", p, now)
					}
				}
				if layout == "absent" {
					if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
						t.Error(".git was created")
					}
				}
				for p, want := range map[string]string{"a.go": "package a // new\n", "gen/three.go": "three\n"} {
					if b, _ := os.ReadFile(filepath.Join(dir, p)); string(b) != want {
						t.Errorf("%s = %q, want %q", p, b, want)
					}
				}
				if _, err := os.Lstat(filepath.Join(dir, "gone.go")); err == nil {
					t.Error("gone.go was not deleted")
				}
				if git != "" && layout != "worktree" {
					c := exec.Command(git, "status", "--short")
					c.Dir = dir
					c.Run()
					if _, err := os.Stat(pwned); err == nil {
						t.Error("a plain git status on the host ran the command's fsmonitor")
					}
				}
				// The audit record lists the changes too.
				var found bool
				for _, a := range auditOf(t, dir, "--op", "exec") {
					if strings.Contains(a.Changes, "refused rootme: has the setuid bit") && strings.Contains(a.Changes, "created gen/one.go\n") {
						found = true
					}
				}
				if !found {
					t.Error("no audit record lists the exec's changes")
				}
				// The next plain run still runs with the repository's own
				// configuration: excluded files stay hidden.
				next := runJSONLWith(t, dir, denv, "<open .env>\n<exec cat .env>\n<exec ls -a>\n")
				if next[0].OK || strings.Contains(next[0].Output+next[1].Output, secret) {
					t.Errorf("the next run saw the secret: %+v", next)
				}
				// Nothing the attack left that was refused is there for the
				// next command: the copy, and in copy mode the replica, were
				// put back.
				for _, p := range []string{"rootme\n", "copied", "pipe", "planted.pem", "up\n", "out\n"} {
					if p == "rootme\n" {
						continue // rootme itself was written by <write>: it stays, without its setuid bit
					}
					if strings.Contains(next[2].Output, p) {
						t.Errorf("the next command sees %q:\n%s", p, next[2].Output)
					}
				}
			})
		}
	}
}

// TestE2EReadOnlyExecWritesOnlyItsCopy: with exec.writable false a command
// may write (a coverage profile, a build), its writes are listed as
// discarded, the repository is untouched, and the next command does not
// see them.
func TestE2EReadOnlyExecWritesOnlyItsCopy(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	dir := repo(t, map[string]string{
		"llm-runtime.config.yaml": "exec:\n  enabled: true\n  whitelist: [\"*\"]\n",
		"a.go":                    "package a\n",
	})
	res := runJSONL(t, dir, "<write w.sh>\necho cover > c.out && echo changed > a.go && rm w.sh\n</write>\n<exec sh -e w.sh>\n<exec ls>\n")[1:]
	if !res[0].OK {
		t.Fatalf("%+v", res[0])
	}
	if a, _ := res[0].change("c.out"); a != "discarded" {
		t.Errorf("c.out: %q, want discarded (%+v)", a, res[0].Changes)
	}
	if a, _ := res[0].change("a.go"); a != "discarded" {
		t.Errorf("a.go: %q, want discarded", a)
	}
	if a, _ := res[0].change("w.sh"); a != "discarded" {
		t.Errorf("w.sh: %q, want discarded", a)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.go")); string(b) != "package a\n" {
		t.Errorf("a.go = %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.out")); err == nil {
		t.Error("c.out is in the repository")
	}
	if strings.Contains(res[1].Output, "c.out") || !strings.Contains(res[1].Output, "a.go") || !strings.Contains(res[1].Output, "w.sh") {
		t.Errorf("the next command saw the discarded writes: %q", res[1].Output)
	}
}

// TestE2ECacheListsAndRemovesARepositorysCopyAndBuildCache: exec's state
// of a repository is listed by 'cache' and removed by 'cache remove', and
// the next exec works from a fresh copy.
func TestE2ECacheListsAndRemovesARepositorysCopyAndBuildCache(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": "exec:\n  enabled: true\n", "a.go": "package a\n"})
	if r := runJSONL(t, dir, "<exec ls>\n"); !r[0].OK {
		t.Fatalf("%+v", r[0])
	}
	list := runBinary(t, dir, "", nil, "cache")
	if list.code != 0 || !strings.Contains(list.stdout, dir+" ") {
		t.Fatalf("cache: exit %d\n%s%s", list.code, list.stdout, list.stderr)
	}
	if rm := runBinary(t, dir, "", nil, "cache", "remove"); rm.code != 0 || !strings.Contains(rm.stdout, "Removed the copies and build caches of 1 repository.") {
		t.Fatalf("cache remove: exit %d\n%s%s", rm.code, rm.stdout, rm.stderr)
	}
	if list := runBinary(t, dir, "", nil, "cache"); strings.Contains(list.stdout, dir+" ") {
		t.Fatalf("still listed after cache remove:\n%s", list.stdout)
	}
	if r := runJSONL(t, dir, "<exec cat a.go>\n"); !r[0].OK || r[0].Output != "package a\n" {
		t.Fatalf("after cache remove: %+v", r[0])
	}
}

// TestE2ETwoRunsOnOneRepositoryEachGetTheirOwnCopy: a second run of exec
// on a repository whose copy a first run holds makes a copy of its own;
// both land their changes.
func TestE2ETwoRunsOnOneRepositoryEachGetTheirOwnCopy(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": "exec:\n  enabled: true\n  writable: true\n  whitelist: [\"*\"]\n", "a.txt": "a\n", "b.txt": "b\n"})
	one, two := startSession(t, dir), startSession(t, dir)
	r1 := strings.Join(one.send("<exec sed -i s/a/A/ a.txt>\n"), "\n")
	r2 := strings.Join(two.send("<exec sed -i s/b/B/ b.txt>\n"), "\n")
	for _, r := range []string{r1, r2} {
		if !strings.Contains(r, "=== EXEC SUCCESSFUL") || !strings.Contains(r, "  updated ") {
			t.Errorf("a run's exec:\n%s", r)
		}
	}
	for p, want := range map[string]string{"a.txt": "A\n", "b.txt": "B\n"} {
		if b, _ := os.ReadFile(filepath.Join(dir, p)); string(b) != want {
			t.Errorf("%s = %q, want %q", p, b, want)
		}
	}
	// The first run's copy sees the second run's change.
	if r := strings.Join(one.send("<exec cat b.txt>\n"), "\n"); !strings.Contains(r, "\nB\n") {
		t.Errorf("the first run's copy missed the second's change:\n%s", r)
	}
}
