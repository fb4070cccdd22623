package agent

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
)

// EgressSocket is the name, in SocketDir, of the unix socket the host's
// egress proxy listens on while a command runs with exec.network
// allowlist (ExecRequest.Proxy).
const EgressSocket = "egress.sock"

// egress is the proxy a command sees: a listener on the container's
// loopback (the only interface an exec container has) whose every
// connection the agent carries, byte for byte, to the host's proxy at a
// unix socket. The agent reads nothing of them: the host's proxy decides
// on each (it allows only the destinations listed, and never intercepts
// TLS).
type egress struct {
	ln   net.Listener
	host string // the host's proxy socket

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// startEgress listens on 127.0.0.1, on a port the kernel picks, for
// connections to carry to the socket host.
func startEgress(host string) (*egress, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &egress{ln: ln, host: host, conns: map[net.Conn]bool{}}
	e.wg.Add(1)
	go e.serve()
	return e, nil
}

// URL is the proxy's URL, for HTTP_PROXY and HTTPS_PROXY.
func (e *egress) URL() string {
	return "http://127.0.0.1:" + strconv.Itoa(e.ln.Addr().(*net.TCPAddr).Port)
}

// env is the environment that points a command's proxy-aware programs at
// the proxy, in both cases' spellings (curl reads only the lower-case
// http_proxy; Go, pip and npm read either); the loopback itself is not
// proxied.
func (e *egress) env() []string {
	u := e.URL()
	return []string{
		"HTTP_PROXY=" + u, "HTTPS_PROXY=" + u, "http_proxy=" + u, "https_proxy=" + u,
		"NO_PROXY=localhost,127.0.0.1,::1", "no_proxy=localhost,127.0.0.1,::1",
	}
}

func (e *egress) serve() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return // closed, or out of descriptors: the command gets no more
		}
		if !e.track(c, true) {
			c.Close()
			return
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer e.track(c, false)
			e.carry(c)
		}()
	}
}

// track adds or removes a connection to close at the end; it says false
// once the proxy is closed.
func (e *egress) track(c net.Conn, add bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !add {
		delete(e.conns, c)
		return true
	}
	if e.closed {
		return false
	}
	e.conns[c] = true
	return true
}

// carry copies c to a new connection to the host's proxy and back, each
// way closed for writing when the other side is done with it.
func (e *egress) carry(c net.Conn) {
	defer c.Close()
	h, err := net.Dial("unix", e.host)
	if err != nil {
		return // the command sees its connection closed
	}
	if !e.track(h, true) {
		h.Close()
		return
	}
	defer e.track(h, false)
	defer h.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(h, c)
		closeWrite(h)
		close(done)
	}()
	io.Copy(c, h)
	closeWrite(c)
	<-done
}

// closeWrite shuts down c's writing side, where it has one.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Close stops listening and closes every connection still open, and
// waits until none is carried.
func (e *egress) Close() error {
	e.mu.Lock()
	e.closed = true
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	err := e.ln.Close()
	e.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
