package main

// End-to-end tests of a search's bounds under a hostile query (issue 25,
// section 3): its time limit, its size limit, and a signal in the middle.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

// costlySearch is a regular expression that Go's regexp (linear in the
// text, but in the size of its program too) matches at about 4,500 steps
// a byte: about a minute a megabyte of long lines, on one CPU. It is
// under the size limit, so only the time limit can stop it.
const costlySearch = `re:(.*.*...){500}x`

// costlyRepo is a repository that costlySearch takes some ten CPU-minutes
// to search: eight files of 2,000-byte lines and one of a single line,
// each a megabyte.
func costlyRepo(t *testing.T) string {
	files := map[string]string{"one-line.txt": strings.Repeat("y", 1<<20-1)}
	line := strings.Repeat("y", 1999) + "\n"
	for i := range 8 {
		files[fmt.Sprintf("lines%d.txt", i)] = strings.Repeat(line, 1<<20/2000)
	}
	return repo(t, files)
}

// runBounded is runBinary with a bound on the run: killed after limit,
// it fails the test. The bound is a hang's, not a speed check.
func runBounded(t *testing.T, limit time.Duration, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	denv := dockertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = withEnv(cleanEnv(), env)
	start := time.Now()
	r, err := collect(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the run took %s", time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Errorf("still running after %s (killed):\n%s", limit, r.stdout)
	}
	noContainersOf(t, denv, cmd.Process.Pid, time.Minute)
	return r
}

// TestE2ESearchKeepsItsTimeLimitAndItsSizeLimit: a search that would take
// some ten CPU-minutes stops at search.timeout (2 s), with a Partial
// line, in both sandboxes; and a regular expression over the size limit
// is refused before any file is read. (Before: the limit was looked at
// only while files were queued, all nine were queued at once, and the
// search ran to its end with no Partial; (.*.*...){1000}x was searched.)
func TestE2ESearchKeepsItsTimeLimitAndItsSizeLimit(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := costlyRepo(t)
		// Three minutes is a hang: the search stops at 2 s, and the
		// rest is starting the run (a container, on a loaded machine).
		r := runBounded(t, 3*time.Minute, dir, "<search re:(.*.*...){1000}x>\n<search "+costlySearch+">\n",
			[]string{"LLM_RUNTIME_SEARCH_TIMEOUT=2s"}, "--sandbox", sb)
		if r.code != 0 {
			t.Fatalf("exit %d: %s\n%s", r.code, r.stderr, r.stdout)
		}
		for _, want := range []string{
			"=== ERROR: INVALID_QUERY ===\nMessage: regular expression too large: it compiles to 9003 instructions, and the limit is 5000 ",
			"\nPartial: stopped at search.timeout (2s) after 0 files; a narrower query, or a larger search.timeout, searches the rest\n",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("no %q in:\n%s", want, r.stdout)
			}
		}
	})
}

// TestE2ESignalEndsALongSearchWithWhatItFound: SIGINT while a search
// matches a costly file (with no time limit: it would take a minute)
// ends the run at once, with the match found before and a Partial line
// saying the search was interrupted, in both sandboxes. (Before: the
// local run searched on to the end; the Docker one printed CANCELED,
// without the match, and waited for the container's forced removal.)
//
// The search has two workers (GOMAXPROCS 2 here; Go's least in a
// container limited to one CPU), which take a.txt, b.txt and c.txt in
// order: the one that reads c.txt is not in b.txt, so it, or the other
// before it took b.txt, has searched a.txt. So the signal is sent once
// b.txt and c.txt have been read.
func TestE2ESignalEndsALongSearchWithWhatItFound(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		var env dockertest.Env
		if sb == "docker" {
			env = dockertest.Require(t)
			if runtime.NumCPU() < 2 {
				t.Skip("one CPU: the agent would have one worker, which never reads c.txt")
			}
		}
		dir := repo(t, map[string]string{"a.txt": "a needle\n", "b.txt": strings.Repeat("y", 1<<20-1), "c.txt": "c\n"})
		readB := closedAfterReading(t, filepath.Join(dir, "b.txt"))
		readC := closedAfterReading(t, filepath.Join(dir, "c.txt"))
		cmd := exec.Command(binary, "--sandbox", sb)
		cmd.Dir = dir
		cmd.Env = withEnv(cleanEnv(), []string{"LLM_RUNTIME_SEARCH_TIMEOUT=0", "GOMAXPROCS=2"})
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		lines := make(chan string, 1000)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		io.WriteString(stdin, "<search "+costlySearch+"|needle>\n") // stdin stays open
		hang := time.After(3 * time.Minute)                         // a hang: starting the run, on a loaded machine
		for _, read := range []<-chan struct{}{readB, readC} {
			select {
			case <-read:
			case <-hang:
				t.Fatal("the search did not read b.txt and c.txt")
			}
		}
		start := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		var out []string
		hang = time.After(60 * time.Second) // a hang, not a speed check: the search alone is a minute
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				out = append(out, l)
			case <-hang:
				t.Fatalf("still running 60 s after SIGINT; output so far:\n%s", strings.Join(out, "\n"))
			}
		}
		err := cmd.Wait()
		t.Logf("exited %s after SIGINT", time.Since(start).Round(time.Millisecond))
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
			t.Fatalf("exit: %v, want %d", err, exitInterrupted)
		}
		got := strings.Join(out, "\n")
		// c.txt was read, but the signal may come before its worker
		// counted it as searched (it counts after the file is closed):
		// a.txt alone, or a.txt and c.txt.
		for _, want := range []string{
			"a.txt:1: a needle\nMatches: 1 in 1 file\nPartial: interrupted after (1 file|2 files) \\(the run was stopped\\); the matches above are those found until then\n=== END SEARCH ===",
			"=== LLM TOOL INTERRUPTED ===",
		} {
			if !regexp.MustCompile(want).MatchString(got) {
				t.Fatalf("no %q in:\n%s", want, got)
			}
		}
		if sb == "docker" {
			noContainersOf(t, env, cmd.Process.Pid, time.Minute)
		}
	})
}

// TestE2EMCPSearchKeepsItsTimeLimitAndItsSizeLimit: the same limits hold
// for the MCP server's search tool.
func TestE2EMCPSearchKeepsItsTimeLimitAndItsSizeLimit(t *testing.T) {
	t.Parallel()
	s := startMCP(t, costlyRepo(t), []string{"LLM_RUNTIME_SEARCH_TIMEOUT=2s"})
	res, text := s.call(t, "search", map[string]any{"query": `(.*.*...){1000}x`, "regex": true})
	if c := errorCode(t, res); c != "INVALID_QUERY" || !strings.Contains(text, "compiles to 9003 instructions, and the limit is 5000") {
		t.Fatalf("got %s: %s", c, text)
	}
	res, text = s.call(t, "search", map[string]any{"query": strings.TrimPrefix(costlySearch, "re:"), "regex": true})
	mustSucceed(t, res, text)
	if !strings.Contains(text, "[the search stopped at search.timeout (2s) after 0 files; ") {
		t.Fatalf("no partial result: %s", text)
	}
}

// closedAfterReading returns a channel closed when the file at path has
// been opened and closed without being written (inotify's
// IN_CLOSE_NOWRITE, which a read through a container's bind mount
// raises too): a search has read it.
func closedAfterReading(t *testing.T, path string) <-chan struct{} {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_CLOSE_NOWRITE); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		unix.Read(fd, make([]byte, 4096)) // the one event watched for
		close(done)
	}()
	return done
}

// TestE2EAPartialSearchShowsNoLineAPolicyDenies: a search stopped at its
// time limit, under a policy, shows no line of a file the policy would
// not let the model open. Its two workers (GOMAXPROCS 2 here; Go's least
// in a container limited to one CPU) stop in .env.a and .env.b, which
// match and are denied; searched again without them, the search got
// further, to credentials.json, which was never put to the policy
// (before: its secret was shown). It is now searched again on the files
// allowed alone.
func TestE2EAPartialSearchShowsNoLineAPolicyDenies(t *testing.T) {
	t.Parallel()
	guest := wasmtest.Build(t, "guests/protect-secrets")
	env := []string{"LLM_RUNTIME_SECURITY_EXCLUDED_PATHS=.git", "LLM_RUNTIME_SEARCH_TIMEOUT=2s", "GOMAXPROCS=2"}
	bothSandboxes(t, func(t *testing.T, sb string) {
		costly := strings.Repeat("y", 1<<20-100) + "\n"
		dir := repo(t, map[string]string{
			".env.a": "MARKER env S3CR3T\n" + costly, ".env.b": "MARKER env S3CR3T\n" + costly,
			"credentials.json": "MARKER creds S3CR3T\n", "notes.txt": "MARKER public\n",
		})
		r := runBounded(t, 3*time.Minute, dir, "<search "+costlySearch+"|MARKER>\n", env,
			append([]string{"--sandbox", sb}, withPolicy(t, guest)...)...)
		if r.code != 0 || strings.Contains(r.stdout, "S3CR3T") || !strings.Contains(r.stdout, "\nPartial: stopped at search.timeout (2s) after 0 files; ") {
			t.Fatalf("exit %d:\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})
}
