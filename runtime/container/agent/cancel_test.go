package agent

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// costly takes about a minute to match a line of a megabyte; nothing but
// a cancel stops it here (the agents of these tests have no time limit).
var costly = parser.Query{Text: `(.*.*...){500}x|needle`, Regex: true}

// hostileDir holds a.txt, with a match, and b.txt, a megabyte costly
// takes a minute to search; it returns a channel closed once b.txt has
// been read.
func hostileDir(t *testing.T) (string, <-chan struct{}) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a needle\n"), 0o644)
	b := filepath.Join(dir, "b.txt")
	os.WriteFile(b, []byte(strings.Repeat("y", sandbox.DefaultMaxFileSize-1)), 0o644)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, b, unix.IN_CLOSE_NOWRITE); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		unix.Read(fd, make([]byte, 4096)) // the one event watched for
		close(read)
	}()
	return dir, read
}

// TestCancelledSearchRepliesWithWhatItFoundAndKeepsTheStream: a search
// whose context is cancelled mid-call gets its reply, with the matches
// found so far and a Partial, and the Conn stays usable (before, the
// stream was cut: no result, and the container thrown away, waiting for
// the agent to finish the search). One worker (GOMAXPROCS 1) searches
// the files in order, so a.txt is done when b.txt has been read.
func TestCancelledSearchRepliesWithWhatItFoundAndKeepsTheStream(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	dir, read := hostileDir(t)
	p := startPipe(t, dir, sandbox.Limits{})
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-read
		cancel()
	}()
	res, err := p.Search(ctx, costly)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Partial, "interrupted after 1 file") || res.Total != 1 || res.Matches[0].Path != "a.txt" {
		t.Fatalf("got %+v, want a.txt's match and an interrupted search", res)
	}
	if err := p.Err(); err != nil {
		t.Fatalf("the Conn broke: %v", err)
	}
	if _, err := p.Ping(context.Background()); err != nil {
		t.Fatalf("ping after the cancel: %v", err)
	}
}

// TestAgentStopsWhatRunsWhenItsInputEnds: a host that goes away (its
// end of the agent's input closed) stops the search it asked for, and
// the agent exits, rather than searching on for a minute.
func TestAgentStopsWhatRunsWhenItsInputEnds(t *testing.T) {
	dir, read := hostileDir(t)
	ws, err := sandbox.OpenWorkspace(dir, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	reqR, reqW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(reqR, io.Discard, ws, "test") }()
	if err := WriteFrame(reqW, Request{ID: 1, Op: OpSearch, Query: []byte(costly.Text), Search: &parser.Query{Regex: true}}, nil); err != nil {
		t.Fatal(err)
	}
	<-read
	reqW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // the search alone: about a minute, at least
		t.Fatal("the agent still searched 30 s after its input ended")
	}
}

// TestConnGivesUpOnAStuckAgentAfterTheGrace: an agent that neither
// answers nor reads is cut off CancelGrace after a search's cancel, and
// the Conn is broken.
func TestConnGivesUpOnAStuckAgentAfterTheGrace(t *testing.T) {
	reqR, reqW := io.Pipe()
	repR, repW := io.Pipe()
	defer repW.Close()
	got := make(chan struct{})
	go func() { // reads the search, then nothing
		var req Request
		ReadFrame(reqR, &req)
		close(got)
	}()
	c := NewConn(reqW, repR, closers{reqW, repR})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-got
		cancel()
	}()
	_, err := c.Search(ctx, parser.Query{Text: "x"})
	if e := sandbox.AsError(err); e == nil || e.Code != sandbox.CodeCanceled {
		t.Fatalf("got %v, want CANCELED", err)
	}
	if c.Err() == nil {
		t.Fatal("a Conn cut off at a cancel stayed usable")
	}
}
