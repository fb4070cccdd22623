package agent

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// TestSocketServesOnlyTheOneWhoKnowsTheSecret: a connection that does not
// start with the secret (anything else in the container that can reach the
// socket) is closed unanswered; the host's is served, and the socket is
// gone once it is in, while the first stream still works.
func TestSocketServesOnlyTheOneWhoKnowsTheSecret(t *testing.T) {
	socketDir = t.TempDir()
	defer func() { socketDir = SocketDir }()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("A\n"), 0o644)
	p := startPipe(t, dir, sandbox.Limits{})
	defer p.Close()
	ctx := context.Background()
	secret := strings.Repeat("ab", SecretLen/2)
	if err := p.Listen(ctx, "short"); err == nil {
		t.Fatal("a short secret was taken")
	}
	if err := p.Listen(ctx, secret); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(socketDir, SocketName)
	for _, wrong := range []string{strings.Repeat("cd", SecretLen/2), strings.Repeat("ab", SecretLen/2-1) + "ac", "ping"} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, wrong)
		if len(wrong) < SecretLen {
			c.(*net.UnixConn).CloseWrite()
		}
		c.SetReadDeadline(time.Now().Add(time.Minute)) // a hang, not a speed check
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("a connection with %q: read %d, %v; want it closed", wrong, n, err)
		}
		c.Close()
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, secret)
	conn := NewConn(c, c, c)
	defer conn.Close()
	f, err := conn.Open(ctx, "a.txt")
	if err != nil || string(f.Content) != "A\n" {
		t.Fatalf("over the socket: %v %+v", err, f)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the socket is still there once the host is in: %v", err)
	}
	if _, err := p.Ping(ctx); err != nil {
		t.Fatalf("the first stream: %v", err)
	}
}
