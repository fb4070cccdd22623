package agent

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// startAgent serves an Agent on dir over pipes; exited receives its exit
// codes.
func startAgent(t *testing.T, dir string, lease time.Duration) (*Conn, chan int, chan error) {
	t.Helper()
	ws, err := sandbox.OpenWorkspace(dir, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan int, 4)
	a := NewAgent(ws, dir, "test")
	a.Lease, a.Exit = lease, func(code int) { exited <- code }
	reqR, reqW := io.Pipe()
	repR, repW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := a.Serve(reqR, repW)
		repW.Close()
		done <- err
	}()
	t.Cleanup(func() { reqW.Close() })
	return NewConn(reqW, repR, reqW), exited, done
}

// TestAgentConfigureTakesTheSessionsLimitsOnce: an agent started before
// its session (a warm pool's pod) gets the session's limits, once.
func TestAgentConfigureTakesTheSessionsLimitsOnce(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello\n"), 0o644)
	c, _, _ := startAgent(t, dir, 0)
	ctx := context.Background()
	if _, err := c.Open(ctx, "notes.txt"); err != nil {
		t.Fatalf("before configure: %v", err)
	}
	if err := c.Configure(ctx, sandbox.Limits{Excluded: []string{"notes.txt"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(ctx, "notes.txt"); sandbox.AsError(err).Code != sandbox.CodePathSecurity {
		t.Fatalf("after configure: %v, want the new exclusion", err)
	}
	if err := c.Configure(ctx, sandbox.Limits{}); err == nil {
		t.Fatal("a second configure was taken")
	}
	if _, err := c.Open(ctx, "notes.txt"); sandbox.AsError(err).Code != sandbox.CodePathSecurity {
		t.Fatalf("after the refused configure: %v", err)
	}
}

// TestAgentCloseAndLease: OpClose ends the agent after its reply; with a
// lease, the agent ends that long after its last request, and not before
// its first.
func TestAgentCloseAndLease(t *testing.T) {
	ctx := context.Background()
	c, exited, done := startAgent(t, t.TempDir(), 0)
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseAgent(ctx); err != nil {
		t.Fatal(err)
	}
	if code := <-exited; code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Only lower bounds on time: load can delay an exit, never hasten it.
	const lease = 2 * time.Second
	c, exited, _ = startAgent(t, t.TempDir(), lease)
	select {
	case <-exited:
		t.Fatal("the lease ran before the first request")
	case <-time.After(lease + lease/2):
	}
	start := time.Now()
	var last time.Time // before the last request: the lease runs from no earlier
	for range 3 {      // each request renews the lease
		last = time.Now()
		if _, err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	code := <-exited
	if code != 0 || time.Since(last) < lease {
		t.Fatalf("exit %d %s after the last request (lease %s; first request %s before)", code, time.Since(last), lease, time.Since(start))
	}
}
