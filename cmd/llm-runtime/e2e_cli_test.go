package main

// End-to-end tests of what the binary says to a new user: help, prompts,
// --verbose, config, version, the old flags, and the README's first example.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

func TestE2EHelpListsEveryCommandAndRunAsTheDefault(t *testing.T) {
	t.Parallel()
	r := runBinary(t, t.TempDir(), "", nil, "--help")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: llm-runtime [run] [flags]\n") {
		t.Fatalf("exit %d, help starts:\n%s", r.code, r.stdout[:min(200, len(r.stdout))])
	}
	_, list, ok := strings.Cut(r.stdout, "Other commands")
	if !ok {
		t.Fatalf("no list of the other commands in:\n%s", r.stdout)
	}
	k, err := kong.New(&cli{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range k.Model.Children {
		if c.Hidden || c.Name == "run" {
			continue
		}
		n++
		if !regexp.MustCompile(`(?m)^  +` + c.Name + ` `).MatchString(list) {
			t.Errorf("--help does not list the command %q", c.Name)
		}
	}
	if n < 6 {
		t.Fatalf("only %d visible commands in the model", n)
	}
	// Each command's own help keeps its own usage line.
	if r := runBinary(t, t.TempDir(), "", nil, "config", "--help"); !strings.HasPrefix(r.stdout, "Usage: llm-runtime config [flags]") {
		t.Errorf("config --help starts %q", r.stdout[:min(60, len(r.stdout))])
	}
}

func TestE2ETheTerminalHintOnlyForATerminal(t *testing.T) {
	t.Parallel()
	const hint = "reading model output from the terminal"
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	cmd := exec.Command(binary, "--sandbox", "local")
	cmd.Dir, cmd.Env, cmd.Stdin = t.TempDir(), cleanEnv(), null
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || strings.Contains(stderr.String(), hint) {
		t.Fatalf("</dev/null: %v, stderr %q", err, stderr.String())
	}

	// A real terminal: a pseudo-terminal, ended with Ctrl-D.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	cmd = exec.Command(binary, "--sandbox", "local")
	cmd.Dir, cmd.Env, cmd.Stdin = t.TempDir(), cleanEnv(), tty
	stderr.Reset()
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Ctrl-D ends the input once the terminal is in canonical mode; send
	// it until the run ends (a hang is caught by the test's own timeout).
	for {
		ptmx.Write([]byte{4})
		select {
		case err = <-done:
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	if err != nil || !strings.Contains(stderr.String(), hint) || !strings.Contains(stdout.String(), "Commands executed: 0") {
		t.Fatalf("on a terminal: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
}

func TestE2EVerboseSaysWhatThePoolAndExecAreDoing(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	// One container kept ready, so that no spare can take a turn however
	// slow the machine.
	r := runBinary(t, dir, "<open a.txt> <open a.txt> <open a.txt>", []string{"LLM_RUNTIME_CONTAINER_POOL_STARTUP_CONTAINERS=1"}, "-v")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	name := `llm-runtime-io-\d+-[0-9a-f]+`
	for _, want := range []string{
		`(?m)^Repository root: ` + regexp.QuoteMeta(dir) + `$`,
		`(?m)^Sandbox: docker, pooled \(size 5, 1 kept ready, `,
		`(?m)^Exec enabled: false \(exec\.enabled is false; --exec turns it on\)$`,
		`(?m)^pool: created #1 ` + name + ` in [0-9.]+m?s \(1 idle, 0 in use, 1 total\)$`,
		`(?m)^pool: first use #1 ` + name + ` \(0 idle, 1 in use, 1 total\)$`,
		`(?m)^pool: reused #1 ` + name + ` after 1 use \(0 idle, 1 in use, 1 total\)$`,
		`(?m)^pool: reused #1 ` + name + ` after 2 uses \(0 idle, 1 in use, 1 total\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stderr) {
			t.Errorf("stderr lacks %s:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "after 0 uses") || regexp.MustCompile(`created .*\(0 idle, 0 in use, 0 total\)`).MatchString(r.stderr) {
		t.Errorf("stderr:\n%s", r.stderr)
	}

	local := runBinary(t, dir, "", nil, "-v", "--sandbox", "local")
	if !strings.Contains(local.stderr, "\nExec enabled: false (the local sandbox cannot exec)\n") {
		t.Errorf("local:\n%s", local.stderr)
	}

	env := dockertest.Require(t)
	img := dockertest.RequireExecImage(t, env)
	x := runBinary(t, dir, "", nil, "-v", "--exec")
	if !strings.Contains(x.stderr, "\nExec enabled: true (container mode: a fresh container of "+img+" per command, on a copy of the repository, changes discarded, no shell, no network, timeout 30s)\n") {
		t.Errorf("--exec:\n%s", x.stderr)
	}
}

func TestE2EConfigShowsThePathsInUse(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	r := runBinary(t, t.TempDir(), "", []string{"XDG_CACHE_HOME=" + cache}, "config")
	audit := filepath.Join(stateDir, "llm-runtime", "audit")
	for _, want := range []string{
		`(?m)^audit\.dir: "" +# default; in use: ` + regexp.QuoteMeta(audit) + `$`,
		`(?m)^#   audit store: +` + regexp.QuoteMeta(audit) + `$`,
		`(?m)^#   image sum cache: +` + regexp.QuoteMeta(filepath.Join(cache, "llm-runtime", "agent-sum")) + `$`,
		`(?m)^#   compilation cache: +` + regexp.QuoteMeta(filepath.Join(cache, "llm-runtime", "wazero")) + `$`,
		`(?m)^#   exec state: +` + regexp.QuoteMeta(filepath.Join(stateDir, "exec")) + `$`, // cleanEnv sets exec.state_dir
		`(?m)^policies: \[\] +# default$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("config lacks %s:\n%s", want, r.stdout)
		}
	}
	other := t.TempDir()
	if r := runBinary(t, t.TempDir(), "", nil, "config", "--audit-dir", other); !strings.Contains(r.stdout, "# --audit-dir; in use: "+other+"\n") {
		t.Errorf("--audit-dir:\n%s", r.stdout)
	}
	h := runBinary(t, t.TempDir(), "", nil, "config", "--help")
	for _, want := range []string{`audit.dir (default "", $LLM_RUNTIME_AUDIT_DIR)`, "policies (default [],", "transforms (default [],"} {
		if !strings.Contains(h.stdout, want) {
			t.Errorf("config --help lacks %q", want)
		}
	}
}

func TestE2EPolicyTestCountsChangesInEnglish(t *testing.T) {
	t.Parallel()
	guest := wasmtest.Build(t, "guests/redact")
	r := runBinary(t, t.TempDir(), "", nil, "policy", "test", guest, "--", "key AKIAIOSFODNN7EXAMPLE")
	if r.code != 0 || !strings.HasSuffix(r.stdout, "\n(1 change)\n") {
		t.Fatalf("exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = runBinary(t, t.TempDir(), "", nil, "policy", "test", guest, "--", "AKIAIOSFODNN7EXAMPLE AKIAIOSFODNN7EXAMPLF")
	if !strings.HasSuffix(r.stdout, "\n(2 changes)\n") {
		t.Fatalf("%q", r.stdout)
	}
}

func TestE2EAuditStatsCountsDenialsApartFromErrors(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n", ".env": "X=1\n"})
	if r := runBinary(t, dir, "<open a.txt> <open .env> <open missing> <open .env>", nil, "--sandbox", "local"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	r := runBinary(t, t.TempDir(), "", nil, "audit", "stats", "--repo", dir, "--format", "json")
	var open struct {
		Group                 string
		Count, Denied, Errors int
		ErrorRate             float64 `json:"error_rate"`
	}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"group":"open"`) {
			if err := json.Unmarshal(sc.Bytes(), &open); err != nil {
				t.Fatal(err)
			}
		}
	}
	if open.Count != 4 || open.Denied != 2 || open.Errors != 1 || open.ErrorRate != 0.25 {
		t.Fatalf("open: %+v from\n%s", open, r.stdout)
	}
	table := runBinary(t, t.TempDir(), "", nil, "audit", "stats", "--repo", dir)
	if !regexp.MustCompile(`(?m)^ *OP +COUNT +DENIED +ERRORS +ERROR% `).MatchString(table.stdout) ||
		!regexp.MustCompile(`(?m)^ *open +4 +2 +1 +25\.0% `).MatchString(table.stdout) {
		t.Fatalf("table:\n%s", table.stdout)
	}
}

func TestE2ETheOriginalsFlagsStillWorkAndSaySo(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "0123456789\n", "secret.txt": "s\n"})
	r := runBinary(t, dir, "<open a.txt> <open secret.txt>", nil, "--sandbox", "local", "--json", "--max-size", "4", "--exclude", "secret*")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || !strings.Contains(lines[0], `"code":"RESOURCE_LIMIT"`) || !strings.Contains(lines[1], `"code":"PATH_SECURITY"`) {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, flag := range []string{"--json", "--max-size", "--exclude"} {
		if n := strings.Count(r.stderr, "llm-runtime: "+flag+" is the original llm-runtime's spelling"); n != 1 {
			t.Errorf("%s warned %d times:\n%s", flag, n, r.stderr)
		}
	}
	c := runBinary(t, dir, "", nil, "config", "--exec-whitelist", "ls,cat", "--exec-enabled", "--max-write-size", "2KiB")
	for _, want := range []string{
		`(?m)^exec\.whitelist: ls,cat +# --exec-whitelist$`,
		`(?m)^exec\.enabled: true +# --exec-enabled$`,
		`(?m)^security\.max_write_size: 2KiB +# --max-write-size$`,
	} {
		if !regexp.MustCompile(want).MatchString(c.stdout) {
			t.Errorf("config lacks %s:\n%s", want, c.stdout)
		}
	}
	for _, flag := range []string{"--io-image", "--io-container", "--io-timeout", "--io-memory"} {
		r := runBinary(t, dir, "<open a.txt>", nil, "--sandbox", "local", flag, "1")
		if r.code != 1 || !strings.Contains(r.stderr, flag+" is a flag of the original llm-runtime with no equivalent here: ") || r.stdout != "" {
			t.Errorf("%s: exit %d %q %q", flag, r.code, r.stdout, r.stderr)
		}
	}
	if h := runBinary(t, dir, "", nil, "--help"); strings.Contains(h.stdout, "--max-size") || strings.Contains(h.stdout, "--io-image") {
		t.Error("--help shows the old spellings")
	}
}

// TestE2EReadmeFirstExampleWorksInAClone runs the README's first "Run it"
// example as typed, in this repository, and expects no error block.
func TestE2EReadmeFirstExampleWorksInAClone(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(readme), "\n## Run it\n")
	m := regexp.MustCompile(`(?m)^    (echo .*\| \./llm-runtime)$`).FindStringSubmatch(after)
	if m == nil {
		t.Fatal(`no "echo ... | ./llm-runtime" example under "## Run it"`)
	}
	// ./llm-runtime is the binary under test, by way of a script that
	// tells its pid, so its containers can be checked for after.
	bin, pidFile := t.TempDir(), filepath.Join(t.TempDir(), "pid")
	script := fmt.Sprintf("#!/bin/sh\necho $$ > %s\nexec %s \"$@\"\n", pidFile, binary)
	if err := os.WriteFile(filepath.Join(bin, "llm-runtime"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	line := strings.Replace(m[1], "./llm-runtime", filepath.Join(bin, "llm-runtime"), 1)
	denv := dockertest.Require(t)
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir, cmd.Env = root, cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if b, rerr := os.ReadFile(pidFile); rerr == nil {
		var pid int
		fmt.Sscan(string(b), &pid)
		noContainersOf(t, denv, pid, 60*time.Second)
	}
	if err != nil || errb.Len() != 0 {
		t.Fatalf("%s: %v\n%s", m[1], err, errb.String())
	}
	if strings.Contains(out.String(), "=== ERROR") || !strings.Contains(out.String(), "=== FILE: ") {
		t.Fatalf("%s printed:\n%s", m[1], out.String())
	}
}
