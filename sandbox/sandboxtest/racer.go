package sandboxtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// RaceDuration is how long each racer runs.
var RaceDuration = 1500 * time.Millisecond

// The secrets of the racer's repository: no result may ever hold one.
const (
	envSecret = "RACER_ENV_SECRET"
	gitSecret = "RACER_GIT_SECRET"
)

// testRacer runs operations while another process (a goroutine here, on
// the host, as a process in an exec container or any other program would)
// swaps names under them: a file for a link to .env, and a directory for a
// link to .git (renameat2 RENAME_EXCHANGE). No open (whole or by range),
// search, list or edit (its diff, or the closest lines of a miss) may
// return a secret, and no write, edit, delete or move may land in .git or
// .env, however the swaps fall.
func testRacer(t *testing.T, newSandbox Factory) {
	dir := filepath.Join(t.TempDir(), "repo")
	for name, content := range map[string]string{
		".env":        envSecret + "\n",
		".git/config": "[core]\n" + gitSecret + "\n",
		".git/HEAD":   "ref: refs/heads/main\n",
		"race.txt":    "public\n",
		"d/config":    "public\n",
		"plain.txt":   "public\n",
	} {
		writeFile(t, filepath.Join(dir, name), content)
	}
	sb := newSandbox(t, dir, sandbox.Limits{MaxSearchResults: 1000})
	defer sb.Close()
	gitBefore := TreeHash(t, filepath.Join(dir, ".git"))
	envBefore, _ := os.ReadFile(filepath.Join(dir, ".env"))
	ctx := context.Background()

	type racer struct {
		name  string
		setup func() error
		swap  func() error
	}
	at := func(name string) string { return filepath.Join(dir, name) }
	racers := []racer{
		{
			name: "file swapped for a link to .env",
			setup: func() error {
				writeFile(t, at("race.real"), "public\n")
				return os.Symlink(".env", at("race.link"))
			},
			// Exchange race.txt with the link, back and forth: race.txt is
			// the file, then the link, then the file...
			swap: func() error {
				return unix.Renameat2(unix.AT_FDCWD, at("race.txt"), unix.AT_FDCWD, at("race.link"), unix.RENAME_EXCHANGE)
			},
		},
		{
			name:  "directory swapped for a link to .git",
			setup: func() error { return os.Symlink(".git", at("d.link")) },
			swap: func() error {
				return unix.Renameat2(unix.AT_FDCWD, at("d"), unix.AT_FDCWD, at("d.link"), unix.RENAME_EXCHANGE)
			},
		},
	}
	for _, r := range racers {
		if err := r.setup(); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var swaps atomic.Int64
	var wg sync.WaitGroup
	for _, r := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := r.swap(); err != nil {
					t.Errorf("%s: %v", r.name, err)
					return
				}
				swaps.Add(1)
			}
		}()
	}
	var ops, refused, landed int
	leak := func(what, got string) {
		if strings.Contains(got, envSecret) || strings.Contains(got, gitSecret) {
			t.Errorf("%s leaked a secret: %q", what, got)
		}
	}
	deadline := time.Now().Add(RaceDuration)
	detail := func(err error) string { return err.Error() + sandbox.AsError(err).Detail }
	block := "<<<<<<< SEARCH\npublic\n=======\npublic\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nnot there\n=======\nx\n>>>>>>> REPLACE\n"
	for i := 0; time.Now().Before(deadline) || ops < 200; i++ {
		ops++
		switch i % 8 {
		case 4:
			f, err := sb.Open(sandbox.WithOptions(ctx, sandbox.Options{Lines: &sandbox.Lines{Start: 1}}), "race.txt")
			if err == nil {
				leak("open race.txt:1-", string(f.Content))
			} else {
				refused++
				leak("open race.txt:1-'s error", err.Error())
			}
		case 5:
			// The second block misses: the error shows the closest lines
			// of whatever file the edit reached.
			if e, err := sb.Edit(ctx, "race.txt", []byte(block)); err == nil {
				leak("edit race.txt", e.Diff)
			} else {
				refused++
				leak("edit race.txt's error", detail(err))
			}
		case 6:
			if _, err := sb.Edit(ctx, "d/config", []byte("<<<<<<< SEARCH\npublic\n=======\ncore.fsmonitor = touch /tmp/pwned\n>>>>>>> REPLACE\n")); err != nil {
				refused++
				leak("edit d/config's error", detail(err))
				continue
			}
			// It landed in the real d/config: put it back for the next.
			sb.Write(ctx, "d/config", []byte("public\n"))
		case 7:
			l, err := sb.List(ctx, "d", false)
			if err != nil {
				refused++
				continue
			}
			for _, e := range l.Entries {
				if strings.HasSuffix(e.Path, "HEAD") {
					t.Errorf("list d listed .git: %+v", l.Entries)
				}
			}
		}
		switch i % 8 {
		case 0:
			f, err := sb.Open(ctx, "race.txt")
			if err == nil {
				leak("open race.txt", string(f.Content))
			} else {
				refused++
				leak("open race.txt's error", err.Error())
			}
		case 1:
			f, err := sb.Open(ctx, "d/config")
			if err == nil {
				leak("open d/config", string(f.Content))
			} else {
				refused++
				leak("open d/config's error", err.Error())
			}
		case 2:
			if _, err := sb.Write(ctx, "d/config", []byte("core.fsmonitor = touch /tmp/pwned\n")); err != nil {
				refused++
			}
		case 3:
			res, err := sb.Search(ctx, parser.Query{Text: "SECRET"})
			if err != nil {
				t.Fatalf("search: %v", err)
			}
			for _, m := range res.Matches {
				leak("search", m.Path+": "+m.Text)
			}
		}
		// A delete or a move through d, which may be the link to .git
		// when it looks or when it acts: what it removes or renames is
		// never .git's (the hash below), and it is put back when it landed.
		switch i % 5 {
		case 0:
			if _, err := sb.Delete(ctx, "d/config"); err != nil {
				refused++
				leak("delete d/config's error", err.Error())
			} else {
				landed++
			}
			sb.Write(ctx, "d/config", []byte("public\n"))
		case 1:
			if _, err := sb.Move(ctx, "d/config", "d/config.moved"); err != nil {
				refused++
				leak("move d/config's error", err.Error())
				continue
			}
			landed++
			sb.Move(ctx, "d/config.moved", "d/config")
		}
	}
	stop.Store(true)
	wg.Wait()
	if after := TreeHash(t, filepath.Join(dir, ".git")); after != gitBefore {
		t.Fatal("a write, an edit, a delete or a move landed in .git")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".env")); string(b) != string(envBefore) {
		t.Fatal("an edit landed in .env")
	}
	t.Logf("%d operations (%d refused; %d deletes and moves landed) against %d swaps", ops, refused, landed, swaps.Load())
	if swaps.Load() == 0 {
		t.Fatal("the racers never swapped")
	}
}
