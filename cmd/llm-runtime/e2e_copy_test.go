package main

// End-to-end tests of copy mode through the binary: on a "remote" Docker
// host (a loopback TCP forwarder to the local daemon), where nothing of
// this machine can be bind-mounted, the filter prints what it prints on
// the local daemon with the repository bind-mounted.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
	"github.com/llm-runtime/llm-runtime/prompt"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

// twoRepos makes two copies of a case's repository.
func twoRepos(t *testing.T, c servedCase) [2]string {
	return [2]string(repos(t, c, 2))
}

// repos is n copies of the case's repository.
func repos(t *testing.T, c servedCase, n int) []string {
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = filepath.Join(t.TempDir(), "repo")
		os.Mkdir(dirs[i], 0o755)
		for name, content := range c.files {
			p := filepath.Join(dirs[i], name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(content), 0o644)
		}
		if c.setup != nil {
			c.setup(dirs[i])
		}
	}
	return dirs
}

// TestE2ECopyModePrintsTheSameBytes runs the filter's cases on two copies
// of a repository: bind-mounted on the local daemon, and in copy mode (the
// default there) on a remote Docker host. Output, exit code, standard error
// and the repository afterwards are the same.
// copyCases are the filter's cases that copy mode, and Kubernetes, must
// print as bind mode does.
func copyCases(t *testing.T) []servedCase {
	redact := wasmtest.Build(t, "guests/redact")
	transform := filepath.Join(t.TempDir(), "transforms.yaml")
	os.WriteFile(transform, []byte("transforms:\n  - module: "+redact+"\n    timeout: 1m\n"), 0o644)
	var examples strings.Builder
	for _, e := range prompt.Examples {
		if !e.Exec {
			examples.WriteString(e.Input + "\n")
		}
	}
	big := strings.Repeat("0123456789abcdef\n", 200)
	return []servedCase{
		{name: "reads", files: map[string]string{"config.yaml": "port: 8080\n", "api.yaml": "version: 2\n"}, in: "Read configs: <open config.yaml> <open api.yaml>\n"},
		{name: "the prompt's examples", files: prompt.ExampleRepo, in: examples.String()},
		{name: "the prompt's examples, jsonl", files: prompt.ExampleRepo, in: examples.String(), args: []string{"--format", "jsonl"}},
		{name: "writes then reads", in: "<write danger.sh>\necho $(rm -rf /)\n</write> <open danger.sh> <write:EOF notes.md>\nit holds </write> inside\n</write:EOF> <open notes.md> <search holds> <list>"},
		{name: "edits", files: map[string]string{"a.txt": "one\ntwo\nthree\ntwo\n"},
			in: "<edit a.txt>\n<<<<<<< SEARCH\none\n=======\nONE\n>>>>>>> REPLACE\n</edit>\n<open a.txt> <edit a.txt>\n<<<<<<< SEARCH\ntwo\n=======\n2\n>>>>>>> REPLACE\n</edit>\n<edit a.txt>\n<<<<<<< SEARCH\nfour\n=======\n4\n>>>>>>> REPLACE\n</edit>\n"},
		{name: "lists, ranges, searches", files: map[string]string{"src/a.go": "package a\n// TODO one\n", "src/b/c.go": "package b\nfunc F() {}\n", "notes.txt": "two words\nand more\n", ".gitignore": "build/\n", "build/out": "x\n", ".env": "S=1\n", "m/k.key": "k"},
			in: "<list> <list src/**> <list **> <open notes.txt:2-> <open notes.txt:5-9> <open notes.txt:x-y> <search TODO> <search re:func [A-Z] in *.go> <search \"two words\" -C 1> <open build/out>"},
		{name: "errors", files: map[string]string{".env": "SECRET=1\n", "dir/f": "f\n", "bin.dat": "a\x00b", "big.txt": big},
			env: []string{"LLM_RUNTIME_SECURITY_MAX_FILE_SIZE=1KiB"},
			in:  "<open missing.txt> <open .env> <open ../x> <open dir> <open bin.dat> <open big.txt> <open big.txt:1-2> <write .git/config>x</write> <exec ls>"},
		{name: "odd bytes", files: map[string]string{"a.txt": "A\r\n"}, in: "\x00\xff\xfe prose\r\n<open a.txt>\r\n<open \xff\x00>\r\n<write c.txt>\r\nx\r\n</write>\r\n<search \xc3\x28>"},
		{name: "hostile paths", setup: func(dir string) {
			outside := filepath.Join(filepath.Dir(dir), "outside")
			os.MkdirAll(outside, 0o755)
			os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("SECRET"), 0o644)
			os.Symlink("../outside/secret.txt", filepath.Join(dir, "link"))
			os.Symlink("../outside", filepath.Join(dir, "dirlink"))
			os.Symlink(".env", filepath.Join(dir, "env-link"))
			os.WriteFile(filepath.Join(dir, ".env"), []byte("SECRET=2\n"), 0o600)
			os.Symlink("/etc/passwd", filepath.Join(dir, "abs"))
		}, in: "<open ../outside/secret.txt> <open link> <open dirlink/secret.txt> <open env-link> <open abs> <write dirlink/evil.txt>x</write> <write ../outside/evil.txt>x</write> <write link>x</write> <search SECRET> <list **>",
			args: []string{"--format", "jsonl"}},
		{name: "a transform", files: map[string]string{"deploy.sh": "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\necho deploying\n"},
			in: "<open deploy.sh> <search AKIA>", args: []string{"--config", transform}},
	}
}

func TestE2ECopyModePrintsTheSameBytes(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	host := dockertest.RemoteHost(t)
	cases := copyCases(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dirs := twoRepos(t, c)
			bind := runBinary(t, dirs[0], c.in, append(append([]string{}, c.env...), "LLM_RUNTIME_SERVER=never"), c.args...)
			cp := runBinary(t, dirs[1], c.in, append(append([]string{}, c.env...), "LLM_RUNTIME_SERVER=never", "DOCKER_HOST="+host), c.args...)
			if bind.code != cp.code || normalized(bind.stdout, dirs[0]) != normalized(cp.stdout, dirs[1]) || bind.stderr != cp.stderr {
				t.Fatalf("bind mode: exit %d\n%s%s\ncopy mode: exit %d\n%s%s", bind.code, bind.stdout, bind.stderr, cp.code, cp.stdout, cp.stderr)
			}
			if a, b := tree(t, dirs[0]), tree(t, dirs[1]); a != b {
				t.Fatalf("the repositories differ afterwards:\n%s\n%s", a, b)
			}
		})
	}
	// The runs said where they ran, and their replicas are volumes of
	// the test's state directory.
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	r := runBinary(t, dir, "<open a.txt>", []string{"LLM_RUNTIME_SERVER=never", "DOCKER_HOST=" + host}, "-v")
	if r.code != 0 || !strings.Contains(r.stderr, "Workspace: copy (a replica in the volume "+container.VolumePrefix) {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBinary(t, dir, "<open a.txt>", []string{"LLM_RUNTIME_SERVER=never"}, "-v")
	if r.code != 0 || !strings.Contains(r.stderr, "Workspace: bind (the repository, bind-mounted)") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	vs, err := env.Docker.Volumes(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range vs {
		if strings.HasPrefix(v.Labels[container.LabelState], stateDir+"/") {
			n++
		}
	}
	if n < len(cases) {
		t.Fatalf("%d volumes of the test's copies, want at least %d", n, len(cases))
	}
}

// TestE2ECopyModeExecAndTheCacheRemovingItsVolumes: exec runs in copy
// mode (its copy, build caches and agent in volumes, nothing bind-mounted),
// a writable command's changes land through the rules, a read-only one's
// are discarded and gone for the next command; cache remove takes the
// repository's volumes with its copies.
func TestE2ECopyModeExecAndTheCacheRemovingItsVolumes(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	host := dockertest.RemoteHost(t)
	dir := repo(t, map[string]string{"a.txt": "A\n", "b.txt": "B\n"})
	copyEnv := []string{"LLM_RUNTIME_SERVER=never", "DOCKER_HOST=" + host, "LLM_RUNTIME_EXEC_WHITELIST=sed,ls,rm,cat,touch", "LLM_RUNTIME_EXEC_TIMEOUT=2m"}
	r := runBinary(t, dir, "<exec sed -i s/A/AA/ a.txt> <exec touch new.txt> <exec ls> <exec cat a.txt>", copyEnv, "--exec")
	if r.code != 0 || strings.Count(r.stdout, "discarded") != 2 || !strings.Contains(r.stdout, "Output:\na.txt\nb.txt\n=== END EXEC") || !strings.Contains(r.stdout, "Output:\nA\n") {
		t.Fatalf("read-only exec: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBinary(t, dir, "<exec sed -i s/A/AA/ a.txt> <exec rm b.txt> <open a.txt> <exec ls>", append(copyEnv, "LLM_RUNTIME_EXEC_WRITABLE=true"), "--exec")
	if r.code != 0 || !strings.Contains(r.stdout, "updated a.txt") || !strings.Contains(r.stdout, "deleted b.txt") || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nAA\n") || !strings.Contains(r.stdout, "Output:\na.txt\n=== END EXEC") {
		t.Fatalf("writable exec: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.txt")); string(b) != "AA\n" {
		t.Fatalf("a.txt = %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.txt")); err == nil {
		t.Fatal("b.txt was not deleted")
	}
	real, _ := filepath.EvalSymlinks(dir)
	state := container.RepoStateDir(filepath.Join(stateDir, "exec"), real)
	ours := func() []string {
		vs, err := env.Docker.Volumes(context.Background(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, v := range vs {
			if strings.HasPrefix(v.Labels[container.LabelState], state+"/") {
				names = append(names, strings.TrimPrefix(v.Labels[container.LabelState], state+"/"))
			}
		}
		slices.Sort(names)
		return names
	}
	// The io replica, exec's replica and the build caches.
	if got := strings.Join(ours(), " "); got != "cache copy-0 replica-0" {
		t.Fatalf("the repository's volumes: %s", got)
	}
	r = runBinary(t, dir, "", nil, "cache", "remove")
	if r.code != 0 {
		t.Fatalf("cache remove: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := ours(); len(got) != 0 {
		t.Fatalf("volumes outlived cache remove: %v", got)
	}
}

// TestE2EADaemonSendsBackARunForAnotherDocker: a daemon serves only runs
// whose Docker environment is its own; a run for a remote Docker host is
// sent back, and runs here, in copy mode, on that host.
func TestE2EADaemonSendsBackARunForAnotherDocker(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	host := dockertest.RemoteHost(t)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	rt := testenv.ShortDir(t)
	xdg := []string{"XDG_RUNTIME_DIR=" + rt} // the default socket, so that auto finds it
	d := startServe(t, filepath.Join(rt, "llm-runtime", "serve.sock"), xdg)
	r := runBinary(t, dir, "<open a.txt>", append(xdg, "DOCKER_HOST="+host), "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\n") ||
		!strings.Contains(r.stderr, "Server: not used (llm-runtime serve is busy: the run's Docker environment (DOCKER_HOST="+host+") is not the daemon's (no DOCKER_ variable set))") ||
		!strings.Contains(r.stderr, "Workspace: copy") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if s := d.status(); s.Served != 0 {
		t.Fatalf("the daemon served %d runs", s.Served)
	}
	r = runBinary(t, dir, "<open a.txt>", append(d.env, "DOCKER_HOST="+host))
	if r.code != 3 || !strings.Contains(r.stderr, "is not the daemon's") {
		t.Fatalf("an explicit server for another Docker: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestE2ECopyModeGivesANewVolumeToItsUser: a new volume's root is root's;
// a user that is not root gets it (a one-off container with CAP_CHOWN
// alone), and the next run finds it its own.
func TestE2ECopyModeGivesANewVolumeToItsUser(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	host := dockertest.RemoteHost(t) // any uid reaches the daemon through it
	base := t.TempDir()
	dir := filepath.Join(base, "repo")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("A\n"), 0o644)
	bin, err := os.ReadFile(binary) // the test's directory is root's alone
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "llm-runtime"), bin, 0o755)
	const uid = 65534
	filepath.Walk(base, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, uid) })
	os.Chmod(filepath.Dir(base), 0o755)
	t.Cleanup(func() {
		vs, _ := env.Docker.Volumes(context.Background(), "", "")
		for _, v := range vs {
			if strings.HasPrefix(v.Labels[container.LabelState], base+"/") {
				env.Docker.RemoveVolume(context.Background(), v.Name)
			}
		}
	})
	for i, in := range []string{"<open a.txt> <write b.txt>B</write> <open b.txt>", "<open b.txt> <list>"} {
		cmd := exec.Command(filepath.Join(base, "llm-runtime"), "-v")
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(in)
		cmd.Env = append(cleanEnv(), "HOME="+base, "XDG_CACHE_HOME="+base+"/cache", "XDG_CONFIG_HOME="+base+"/config", "XDG_STATE_HOME="+base+"/state", "XDG_RUNTIME_DIR="+base+"/run",
			"LLM_RUNTIME_EXEC_STATE_DIR="+base+"/exec", "DOCKER_HOST="+host, "LLM_RUNTIME_SERVER=never")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		owned := strings.Contains(string(out), "; the new volume was given to uid 65534 first")
		if err != nil || !strings.Contains(string(out), "=== FILE: b.txt ===\nB\n") || owned != (i == 0) {
			t.Fatalf("run %d as uid %d: %v\n%s", i, uid, err, out)
		}
		noContainersOf(t, env, cmd.Process.Pid, time.Minute)
	}
	if fi, err := os.Stat(filepath.Join(dir, "b.txt")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != uid {
		t.Fatalf("b.txt: %v", err)
	}
}

// TestE2EAnSSHDockerHostGoesThroughSSH: DOCKER_HOST=ssh://USER@HOST:PORT
// runs ssh with the docker CLI's connection helper's arguments (here an
// ssh on PATH that logs them and runs docker system dial-stdio on this
// machine, with the real docker CLI and daemon), and the run works in copy
// mode over it, exec included.
func TestE2EAnSSHDockerHostGoesThroughSSH(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal("the docker CLI is needed for dial-stdio")
	}
	bin := t.TempDir()
	logf := filepath.Join(bin, "ssh.log")
	os.WriteFile(filepath.Join(bin, "ssh"), []byte("#!/bin/sh\necho \"$@\" >> "+logf+"\nexec env -u DOCKER_HOST "+docker+" system dial-stdio\n"), 0o755)
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	r := runBinary(t, dir, "<open a.txt> <write b.txt>B</write> <exec cat b.txt>", []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "DOCKER_HOST=ssh://me@build-box:2222", "LLM_RUNTIME_SERVER=never", "LLM_RUNTIME_EXEC_WHITELIST=cat"}, "-v", "--exec")
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\n") || !strings.Contains(r.stdout, "Output:\nB\n") || !strings.Contains(r.stderr, "Workspace: copy") ||
		!strings.Contains(r.stderr, "over the attach stream (the Docker daemon is at ssh://me@build-box:2222, not on this machine") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	b, _ := os.ReadFile(logf)
	if !strings.HasPrefix(string(b), "-o ConnectTimeout=30 -T -l me -p 2222 -- build-box docker system dial-stdio\n") {
		t.Fatalf("ssh was run with:\n%s", b)
	}
	r = runBinary(t, dir, "<open a.txt>", []string{"DOCKER_HOST=ssh://build-box/path", "LLM_RUNTIME_SERVER=never"})
	if r.code != 3 || !strings.Contains(r.stderr, "a path or a query is not supported") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
