package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/sandbox"
	"github.com/llm-runtime/llm-runtime/sandbox/sandboxtest"
)

// pipeSandbox is a sandbox whose operations go through the protocol to an
// agent serving in a goroutine: the whole agent path but the container.
type pipeSandbox struct {
	*Conn
	done chan error
	in   io.Closer
}

func (p *pipeSandbox) Exec(ctx context.Context, cmd string) (*sandbox.ExecResult, error) {
	return nil, sandbox.Errorf(sandbox.CodeExecDisabled, "no exec here")
}

func (p *pipeSandbox) Close() error {
	p.in.Close()
	return <-p.done
}

func startPipe(t *testing.T, dir string, limits sandbox.Limits) *pipeSandbox {
	ws, err := sandbox.OpenWorkspace(dir, limits)
	if err != nil {
		t.Fatal(err)
	}
	reqR, reqW := io.Pipe()
	repR, repW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Serve(reqR, repW, ws, "test")
		repW.Close()
		ws.Close()
		done <- err
	}()
	return &pipeSandbox{Conn: NewConn(reqW, repR, reqW), done: done, in: reqW}
}

func TestAgentConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T, dir string, limits sandbox.Limits) sandbox.Sandbox {
		return startPipe(t, dir, limits)
	})
}

func TestAgentPingStatAndCleanExit(t *testing.T) {
	dir := t.TempDir()
	p := startPipe(t, dir, sandbox.Limits{})
	ctx := context.Background()
	if v, err := p.Ping(ctx); err != nil || v != "test" {
		t.Fatalf("ping: %q %v", v, err)
	}
	if _, err := p.Write(ctx, "d/f.txt", []byte("12345")); err != nil {
		t.Fatal(err)
	}
	if st, err := p.Stat(ctx, "d/f.txt"); err != nil || st.Size != 5 || st.IsDir || st.Path != "d/f.txt" {
		t.Fatalf("stat: %+v %v", st, err)
	}
	if st, err := p.Stat(ctx, "d"); err != nil || !st.IsDir {
		t.Fatalf("stat dir: %+v %v", st, err)
	}
	if _, err := p.Stat(ctx, "../x"); sandbox.AsError(err).Code != sandbox.CodePathSecurity {
		t.Fatalf("stat outside: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("the agent did not exit cleanly at the end of its input: %v", err)
	}
}

func TestAgentBigFilesTravelIntact(t *testing.T) {
	p := startPipe(t, t.TempDir(), sandbox.Limits{MaxFileSize: 8 << 20, MaxWriteSize: 8 << 20})
	defer p.Close()
	content := bytes.Repeat([]byte("0123456789abcdef\n"), 400000) // 6.8 MB
	ctx := context.Background()
	if _, err := p.Write(ctx, "big.txt", content); err != nil {
		t.Fatal(err)
	}
	f, err := p.Open(ctx, "big.txt")
	if err != nil || !bytes.Equal(f.Content, content) {
		t.Fatalf("read back %d bytes, %v", len(f.Content), err)
	}
}

func TestConnBreaksForGoodOnCancel(t *testing.T) {
	// An agent that never answers.
	reqR, reqW := io.Pipe()
	repR, repW := io.Pipe()
	go io.Copy(io.Discard, reqR)
	defer repW.Close()
	c := NewConn(reqW, repR, closers{reqW, repR})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Open(ctx, "a.txt")
	if e := sandbox.AsError(err); e.Code != sandbox.CodeCanceled {
		t.Fatalf("got %v", err)
	}
	if c.Err() == nil {
		t.Fatal("a cancelled call left the Conn usable")
	}
	if _, err := c.Ping(context.Background()); err == nil {
		t.Fatal("a broken Conn answered")
	}
}

type closers []io.Closer

func (cs closers) Close() error {
	for _, c := range cs {
		c.Close()
	}
	return nil
}

func TestConnReportsADeadAgent(t *testing.T) {
	reqR, reqW := io.Pipe()
	repR, repW := io.Pipe()
	go func() {
		var req Request
		ReadFrame(reqR, &req)
		repW.Close() // the container died
	}()
	c := NewConn(reqW, repR, nil)
	_, err := c.Open(context.Background(), "a.txt")
	if e := sandbox.AsError(err); e.Code != sandbox.CodeSandboxError || !strings.Contains(e.Message, "container stopped") {
		t.Fatalf("got %v", err)
	}
}

func TestReadFrameRejectsGarbage(t *testing.T) {
	var req Request
	for name, in := range map[string][]byte{
		"bad magic":      []byte("\x01\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00{}"),
		"header too big": []byte("LLM1\x7f\x00\x00\x00\x00\x00\x00\x00"),
		"truncated":      []byte("LLM1\x00\x00\x00\x10\x00\x00\x00\x00{}"),
		"short head":     []byte("LLM1\x00"),
		"bad json":       []byte("LLM1\x00\x00\x00\x01\x00\x00\x00\x00{"),
	} {
		if _, err := ReadFrame(bytes.NewReader(in), &req); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: got %v, want a protocol error", name, err)
		}
	}
	if _, err := ReadFrame(bytes.NewReader(nil), &req); err != io.EOF {
		t.Errorf("empty stream: %v", err)
	}
}

func BenchmarkAgentOpen4KiB(b *testing.B) {
	dir := b.TempDir()
	p := startPipe(&testing.T{}, dir, sandbox.Limits{})
	defer p.Close()
	ctx := context.Background()
	if _, err := p.Write(ctx, "4k.txt", bytes.Repeat([]byte("x"), 4096)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Open(ctx, "4k.txt"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWarmLooksAndTouchesNothing: the lookups and reads an exec
// container's agent makes before its command create nothing, in the PATH's
// directories or anywhere, and a PATH with a relative or missing directory,
// a program that is nowhere or is the repository's, are no error.
func TestWarmLooksAndTouchesNothing(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	os.WriteFile(filepath.Join(dirs[1], "true"), []byte("#!/bin/sh\n"), 0o755)
	// A FIFO where a program would be: opened without blocking, not read.
	if err := syscall.Mkfifo(filepath.Join(dirs[0], "fifo"), 0o755); err != nil {
		t.Fatal(err)
	}
	cwd := t.TempDir()
	t.Chdir(cwd)
	t.Setenv("PATH", strings.Join([]string{dirs[0], "relative", filepath.Join(dirs[0], "missing"), dirs[1]}, ":"))
	Warm([]string{"fifo", "true", "missing", "./relative", filepath.Join(dirs[1], "true")})
	for _, d := range append(dirs, cwd) {
		es, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		if want := map[string]string{dirs[0]: "fifo", dirs[1]: "true"}[d]; strings.Join(names, ",") != want {
			t.Errorf("%s holds %q after WarmPath, want %q", d, names, want)
		}
	}
}
