package agent

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEgressCarriesEachConnectionToTheHostsSocket: what a command writes
// to the loopback proxy reaches the host's socket unread and unchanged,
// the answer comes back, each side's end of writing is passed on, and
// Close ends the connections still open.
func TestEgressCarriesEachConnectionToTheHostsSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), EgressSocket)
	host, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go func() {
		for {
			c, err := host.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c) // to the command's end of writing
				c.Write(bytes.ToUpper(b))
			}()
		}
	}()
	e, err := startEgress(sock)
	if err != nil {
		t.Fatal(err)
	}
	env := e.env()
	if !slices.Contains(env, "HTTPS_PROXY="+e.URL()) || !slices.Contains(env, "http_proxy="+e.URL()) || !strings.HasPrefix(e.URL(), "http://127.0.0.1:") {
		t.Fatalf("the command's environment: %v", env)
	}
	addr := strings.TrimPrefix(e.URL(), "http://")
	payload := bytes.Repeat([]byte("connect example.com:443 \x00\xff"), 50000) // 1.2 MB, binary
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c.Write(payload)
			c.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, bytes.ToUpper(payload)) {
			t.Fatalf("the answer: %d bytes of %d, %v", len(got), len(payload), err)
		}
	}
	// A connection still open when the command ends is closed.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("held open"))
	time.Sleep(10 * time.Millisecond) // not a deadline: only lets the carry begin
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the open connection after Close: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("the proxy still listens after Close")
	}
}
