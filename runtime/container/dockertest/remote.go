package dockertest

import (
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
)

// RemoteHost makes the local Docker daemon look like a remote one: it
// listens on a loopback TCP port and forwards each connection to the
// daemon's unix socket, until the test ends. It returns the DOCKER_HOST
// value (tcp://127.0.0.1:PORT) that reaches it. Bind mounts still work
// through it (the daemon is in fact local); what it shows is what
// llm-runtime does when it cannot tell.
func RemoteHost(t testing.TB) string {
	t.Helper()
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		sock = strings.TrimPrefix(h, "unix://")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("unix", sock)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, d)
			mu.Unlock()
			go func() { io.Copy(d, c); d.(*net.UnixConn).CloseWrite() }()
			go func() { io.Copy(c, d); c.(*net.TCPConn).CloseWrite() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "tcp://" + ln.Addr().String()
}
