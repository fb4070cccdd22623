package agent

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// lockedBuffer is a bytes.Buffer safe for the agent's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// listening starts an agent serving sessions of ws on SessionSocket, and
// waits for its socket.
func listening(t *testing.T, ws *sandbox.Workspace, dir string, log io.Writer) {
	t.Helper()
	ag := NewAgent(ws, dir, "test")
	ag.Lease = time.Hour
	ag.Exit = func(int) {}
	go ag.ListenSessions(SessionSocket(), log)
	for {
		if _, err := os.Stat(SessionSocket()); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialSession connects to the session socket and sends secret.
func dialSession(t *testing.T, secret string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", SessionSocket())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, secret)
	return c
}

// closedUnread reports whether the agent closes c without a byte.
func closedUnread(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute)) // a hang, not a speed check
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err == io.EOF
}

// TestASessionSocketServesOnlyTheSessionThatClaimedIt: an agent serving
// sessions (a Kubernetes pod's) is claimed by the first connection that
// sends a secret; one that sends no secret, or a malformed one, claims
// nothing; after the claim, another secret is closed unread, and the
// session's own secret is served again (a reconnect). The agent's log says
// what happened without the secret; OpSocket is refused on such an agent.
func TestASessionSocketServesOnlyTheSessionThatClaimedIt(t *testing.T) {
	socketDir = t.TempDir()
	defer func() { socketDir = SocketDir }()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("A\n"), 0o644)
	ws, err := sandbox.OpenWorkspace(dir, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var log lockedBuffer
	if err := NewAgent(ws, dir, "test").ListenSessions(SessionSocket(), &log); err == nil || !strings.Contains(err.Error(), "needs a lease") {
		t.Fatalf("without a lease: %v", err)
	}
	listening(t, ws, dir, &log)
	ctx := context.Background()
	secret := strings.Repeat("ab", SecretLen/2)
	// Malformed secrets claim nothing.
	for _, bad := range []string{strings.Repeat("AB", SecretLen/2), strings.Repeat("zz", SecretLen/2), "ping"} {
		c := dialSession(t, bad)
		if len(bad) < SecretLen {
			c.(*net.UnixConn).CloseWrite()
		}
		if !closedUnread(t, c) {
			t.Fatalf("a connection with %q was answered", bad)
		}
		c.Close()
	}
	c := dialSession(t, secret)
	conn := NewConn(c, c, c)
	if f, err := conn.Open(ctx, "a.txt"); err != nil || string(f.Content) != "A\n" {
		t.Fatalf("the first session: %v", err)
	}
	if err := conn.Listen(ctx, strings.Repeat("cd", SecretLen/2)); err == nil || !strings.Contains(err.Error(), "serves its session on its socket") {
		t.Fatalf("OpSocket on a session agent: %v", err)
	}
	// Another secret, while the session is connected and after.
	other := dialSession(t, strings.Repeat("cd", SecretLen/2))
	if !closedUnread(t, other) {
		t.Fatal("another secret was answered while the session was connected")
	}
	other.Close()
	conn.Close()
	other = dialSession(t, strings.Repeat("cd", SecretLen/2))
	if !closedUnread(t, other) {
		t.Fatal("another secret was answered after the session left")
	}
	other.Close()
	// The session's own secret again: served.
	c = dialSession(t, secret)
	conn = NewConn(c, c, c)
	defer conn.Close()
	if _, err := conn.Ping(ctx); err != nil {
		t.Fatalf("the session connecting again: %v", err)
	}
	got := log.String()
	for _, want := range []string{"closed a connection that sent no secret", "a session claimed this agent", "closed a connection with another secret than the session's", "the session connected again"} {
		if !strings.Contains(got, want) {
			t.Errorf("the agent's log has no %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "abab") || strings.Contains(got, "cdcd") {
		t.Errorf("the agent's log holds a secret:\n%s", got)
	}
}

// TestRelayCarriesASessionToTheSocket: the relay (what the host execs in
// a pod) carries its input to the agent's socket and the agent's answers
// back, waits for an agent that is starting, and says plainly when no
// agent listens.
func TestRelayCarriesASessionToTheSocket(t *testing.T) {
	socketDir = t.TempDir()
	defer func() { socketDir = SocketDir }()
	relayWait = 100 * time.Millisecond
	err := Relay(SessionSocket(), strings.NewReader(""), io.Discard)
	relayWait = 30 * time.Second
	if err == nil || !strings.Contains(err.Error(), "no agent listens") {
		t.Fatalf("no agent: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("A\n"), 0o644)
	ws, err := sandbox.OpenWorkspace(dir, sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	// The relay starts before the agent listens (a pod Ready a moment
	// before its agent), and waits for it.
	go func() { done <- Relay(SessionSocket(), inR, outW); outW.Close() }()
	listening(t, ws, dir, io.Discard)
	io.WriteString(inW, strings.Repeat("0f", SecretLen/2))
	conn := NewConn(inW, outR, inW)
	if f, err := conn.Open(context.Background(), "a.txt"); err != nil || string(f.Content) != "A\n" {
		t.Fatalf("through the relay: %v", err)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatalf("the relay's end: %v", err)
	}
}
