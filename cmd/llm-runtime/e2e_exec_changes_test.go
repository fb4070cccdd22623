package main

// Exec's changesets (issue 25 §2 and §8), through the binary on the real
// daemon: whatever a command changes is found after that command, however
// it changed it.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// hardLinkAttack writes a file of the copy through a second name, which it
// then removes: no event is raised in the file's own directory. (tee
// writes the file in place; an <exec> cannot hold a '>'.)
const hardLinkAttack = "sh -c 'ln a/f b/g && echo POISON | tee b/g && rm b/g'"

// change is one of execJSON's changes.
type change = struct {
	Path, Action, Reason string
	HostToolFile         string `json:"host_tool_file"`
}

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

// deepChain is a script that makes a chain of depth directories, d/d/...
func deepChain(depth int) string {
	return "<write chain.sh>\nmkdir -p " + strings.TrimSuffix(strings.Repeat("d/", depth), "/") + "\n</write>\n<exec sh chain.sh>\n"
}

// TestE2EExecBoundsAChangeset: a command that makes a 2,000-deep chain of
// directories (which cost the host 30-55 s to apply, past exec.timeout)
// has none of its changes applied, past exec.max_depth, and says so:
// RESOURCE_LIMIT, with its output and each change refused; nor has one
// that changes more than exec.max_changes files. Under a bound raised to
// fit it, the chain lands.
func TestE2EExecBoundsAChangeset(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	config := execAny + "  writable: true\n  timeout: 5m\n"
	t.Run("depth", func(t *testing.T) {
		t.Parallel()
		dir := repo(t, map[string]string{"llm-runtime.config.yaml": config, "a.go": "a\n"})
		res := runJSONL(t, dir, deepChain(2000)+"<exec ls>\n")
		x := res[1]
		if x.OK || x.Error == nil || x.Error.Code != "RESOURCE_LIMIT" || !strings.Contains(x.Error.Message, "more than exec.max_depth (64): none of its changes were applied") {
			t.Fatalf("the chain's exec: %+v %+v", x, x.Error)
		}
		if a, why := x.change("d"); a != "refused" || !strings.Contains(why, "exec.max_depth") {
			t.Errorf("d: %q %q", a, why)
		}
		if _, err := os.Lstat(filepath.Join(dir, "d")); err == nil {
			t.Error("the chain is in the repository")
		}
		if strings.Contains(res[2].Output, "d\n") || !strings.Contains(res[2].Output, "chain.sh") {
			t.Errorf("the next command sees %q", res[2].Output)
		}
	})
	t.Run("depth raised", func(t *testing.T) {
		t.Parallel()
		dir := repo(t, map[string]string{"llm-runtime.config.yaml": config + "  max_depth: 2048\n"})
		start := time.Now()
		res := runJSONL(t, dir, deepChain(2000))
		t.Logf("the run took %s (the command alone: see its duration_ms)", time.Since(start).Round(time.Millisecond))
		if x := res[1]; !x.OK || len(x.Changes) != 1000 || x.Changes[0] != (change{"d/", "created", "", ""}) {
			t.Fatalf("%+v: %d changes listed: %+v...", x.Error, len(x.Changes), x.Changes[:min(len(x.Changes), 3)])
		}
		if fi, err := os.Stat(filepath.Join(dir, strings.Repeat("d/", 2000))); err != nil || !fi.IsDir() {
			t.Errorf("the chain's end: %v", err)
		}
	})
	t.Run("changes", func(t *testing.T) {
		t.Parallel()
		dir := repo(t, map[string]string{"llm-runtime.config.yaml": config + "  max_changes: 100\n", "a.go": "a\n"})
		res := runJSONL(t, dir, "<exec sh -c 'mkdir gen && cd gen && seq 1 150 | xargs touch && echo made'>\n")
		x := res[0]
		if x.Error == nil || x.Error.Code != "RESOURCE_LIMIT" || !strings.Contains(x.Error.Message, "more than 100 files and directories (exec.max_changes)") || x.Output != "made\n" {
			t.Fatalf("%+v %+v", x, x.Error)
		}
		if _, err := os.Lstat(filepath.Join(dir, "gen")); err == nil {
			t.Error("gen is in the repository")
		}
	})
}

// manyFiles writes 8,000 files of 16 KiB under gen/: seconds of work for
// the host to apply.
const manyFiles = "data=$(head -c 16384 /dev/zero | tr '\\0' x)\nmkdir gen\ni=0\nwhile [ $i -lt 8000 ]; do echo \"$data\" > gen/f$i; i=$((i+1)); done\n"

// applying waits until the changes of a command are being applied to the
// repository dir (gen, or something of llm-runtime's own under a temporary
// name, is there), or done is closed; it says which.
func applying(t *testing.T, dir string, done <-chan struct{}) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute) // a hang, not a speed check
	for {
		names, _ := os.ReadDir(dir)
		for _, n := range names {
			if n.Name() == "gen" || strings.HasPrefix(n.Name(), ".llm-runtime-") {
				return true
			}
		}
		select {
		case <-done:
			return false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the changes were never applied")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// untouched fails unless dir holds exactly what it held (before, its
// tree): nothing of a cancelled command's changes, nothing temporary.
func untouched(t *testing.T, dir, before string) {
	t.Helper()
	if now := tree(t, dir); now != before {
		t.Errorf("the repository changed:\n%.2000s\nwas\n%s", now, before)
	}
}

// TestE2EACancelledExecAppliesNothing: a writable command's 8,000 files
// are being applied when the call is cancelled (SIGINT to the filter, or
// to a client of the daemon; an MCP cancel): none of them lands, nothing
// temporary is left, and the next command does not see them.
func TestE2EACancelledExecAppliesNothing(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	config := execAny + "  writable: true\n  timeout: 5m\n"
	files := map[string]string{"llm-runtime.config.yaml": config, "gen.sh": manyFiles, "a.go": "a\n"}
	interrupt := func(t *testing.T, dir string, extra []string) {
		before := tree(t, dir)
		cmd := exec.Command(binary)
		cmd.Dir = dir
		cmd.Env = withEnv(cleanEnv(), extra)
		cmd.Stdin = strings.NewReader("<exec sh gen.sh>\n")
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		if !applying(t, dir, done) {
			t.Fatalf("the run ended before its changes were applied:\n%s", out.String())
		}
		cmd.Process.Signal(syscall.SIGINT)
		<-done
		if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
			t.Errorf("exit %d, want %d\n%s", code, exitInterrupted, out.String())
		}
		noContainersOf(t, env, cmd.Process.Pid, time.Minute)
		untouched(t, dir, before)
		if r := runBinary(t, dir, "<exec ls>\n", extra); strings.Contains(r.stdout, "gen\n") {
			t.Errorf("the next command sees gen:\n%s", r.stdout)
		}
	}
	t.Run("filter", func(t *testing.T) {
		t.Parallel()
		interrupt(t, repo(t, files), nil)
	})
	t.Run("daemon", func(t *testing.T) {
		t.Parallel()
		d := startServe(t, "", nil)
		interrupt(t, repo(t, files), d.env)
	})
	t.Run("mcp", func(t *testing.T) {
		t.Parallel()
		dir := repo(t, files)
		before := tree(t, dir)
		s := startMCP(t, dir, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		var callErr error
		go func() {
			_, callErr = s.cs.CallTool(ctx, &mcp.CallToolParams{Name: "exec", Arguments: map[string]any{"command": "sh gen.sh"}})
			close(done)
		}()
		if !applying(t, dir, done) {
			t.Fatalf("the call ended before its changes were applied: %v", callErr)
		}
		cancel()
		<-done
		if callErr == nil {
			t.Error("a cancelled call returned a result")
		}
		// The server serves the next call once the cancelled one is done
		// with the copy: its changes were taken out of it.
		res, text := s.call(t, "exec", map[string]any{"command": "ls"})
		mustSucceed(t, res, text)
		if strings.Contains(text, "gen\n") {
			t.Errorf("the next call sees gen:\n%s", text)
		}
		untouched(t, dir, before)
	})
}

// TestE2EExecCopiesASparseFileAsSparse: a sparse file of 1 GiB in the
// repository is as sparse in exec's copy (it cost 1 GiB of disk), and
// the copy's size on disk is bounded by sandbox_copy_max_size.
func TestE2EExecCopiesASparseFileAsSparse(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": execAny})
	f, err := os.Create(filepath.Join(dir, "sparse.img"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("head"), 0)
	f.Truncate(1 << 30)
	f.Close()
	var st syscall.Stat_t
	if syscall.Stat(filepath.Join(dir, "sparse.img"), &st); st.Blocks*512 > 1<<20 {
		t.Skipf("this file system keeps no holes: %d bytes on disk", st.Blocks*512)
	}
	// ls -s: the blocks of 1 KiB the file holds.
	res := runJSONL(t, dir, "<exec ls -s sparse.img>\n")
	var kib int
	if _, err := fmt.Sscan(res[0].Output, &kib); err != nil || kib > 1024 {
		t.Errorf("in exec's copy the file holds %q KiB on disk: %v", res[0].Output, err)
	}
	// 3 MiB of content, in a copy of at most 1 MiB.
	os.WriteFile(filepath.Join(dir, "big.bin"), []byte(strings.Repeat("x", 3<<20)), 0o644)
	res = runJSONLWith(t, dir, []string{"LLM_RUNTIME_SANDBOX_COPY_MAX_SIZE=1MiB"}, "<exec ls>\n")
	if x := res[0]; x.OK || x.Error == nil || x.Error.Code != "RESOURCE_LIMIT" || !strings.Contains(x.Error.Message, "more than 1 MiB on disk (sandbox_copy_max_size)") {
		t.Errorf("past the bound: %+v %+v", x, x.Error)
	}
}

// inotifyWatches counts the inotify watches process pid holds.
func inotifyWatches(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); l != "anon_inode:inotify" {
			continue
		}
		info, _ := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		n += strings.Count(string(info), "\ninotify wd:")
	}
	return n
}

// TestE2EExecReleasesItsInotifyWatches: the directories a command makes
// in its copy cost no inotify watch (20,000 of them held 20,000 of the
// user's watches for as long as the pool lived); the repository's are
// released once the server has been idle for a while: MCP's after
// container_pool.idle_timeout (3 s here, under a minute), the daemon's
// after a minute, while its pool lives on.
func TestE2EExecReleasesItsInotifyWatches(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	for _, writable := range []bool{false, true} {
		t.Run(map[bool]string{false: "read-only", true: "writable"}[writable], func(t *testing.T) {
			t.Parallel()
			config := execAny + "  timeout: 5m\ncontainer_pool:\n  idle_timeout: 3s\n"
			if writable {
				config = strings.Replace(config, "exec:\n", "exec:\n  writable: true\n", 1)
			}
			dir := repo(t, map[string]string{"llm-runtime.config.yaml": config, "a/b": "b\n"})
			s := startMCP(t, dir, nil)
			pid := s.cmd.Process.Pid
			res, text := s.call(t, "exec", map[string]any{"command": "sh -c 'mkdir w && cd w && seq 1 2000 | xargs mkdir'"})
			mustSucceed(t, res, text)
			res, text = s.call(t, "exec", map[string]any{"command": "true"}) // its Sync watches what landed
			mustSucceed(t, res, text)
			n := inotifyWatches(t, pid)
			t.Logf("watches after the commands: %d", n)
			if !writable && n > 2 {
				t.Errorf("%d inotify watches for a repository of 2 directories", n)
			}
			if writable && n < 2000 {
				t.Errorf("%d inotify watches for a repository of 2,003 directories", n)
			}
			await(t, 3*time.Minute, "the watches were not released", func() bool { return inotifyWatches(t, pid) == 0 })
			// And the next command watches again, and sees what changed.
			os.WriteFile(filepath.Join(dir, "a/b"), []byte("changed\n"), 0o644)
			res, text = s.call(t, "exec", map[string]any{"command": "cat a/b"})
			mustSucceed(t, res, text)
			if !strings.Contains(text, "changed") {
				t.Errorf("after the watches were released, a/b reads:\n%s", text)
			}
		})
	}
	// Through the daemon, with the default idle_timeout (5m): the pool
	// lives on, and its watches go after a minute.
	t.Run("daemon", func(t *testing.T) {
		t.Parallel()
		dir := repo(t, map[string]string{"llm-runtime.config.yaml": execAny + "  writable: true\n  timeout: 5m\n", "a/b": "b\n"})
		d := startServe(t, "", nil)
		if r := runBinary(t, dir, "<exec sh -c 'mkdir w && cd w && seq 1 2000 | xargs mkdir'>\n<exec true>\n", d.env); r.code != 0 {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		pid := d.cmd.Process.Pid
		n := inotifyWatches(t, pid)
		t.Logf("the daemon's watches after the run: %d", n)
		if n < 2000 || n > 2010 {
			t.Errorf("%d inotify watches for a repository of 2,003 directories (and a copy of as many)", n)
		}
		await(t, 3*time.Minute, "the watches were not released", func() bool { return inotifyWatches(t, pid) == 0 })
		if st := d.status(); len(st.Pools) != 1 {
			t.Errorf("the pool did not live on: %+v", st.Pools)
		}
	})
}
