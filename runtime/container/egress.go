package container

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/llm-runtime/llm-runtime/egress"
	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// egressServer serves one command's egress proxy on the unix socket in
// its container's agent socket directory (agent.EgressSocket), and keeps
// what the proxy reports of each connection.
type egressServer struct {
	srv    *http.Server
	cancel context.CancelFunc // ends the connections still open
	wg     sync.WaitGroup     // the requests being served

	mu      sync.Mutex
	conns   []sandbox.NetConn
	closing bool
	once    sync.Once
}

// serveEgress starts the proxy p for a command about to run in c. The
// socket is made by this process in c's socket directory on the host,
// before the command starts (the container holds only its agent then);
// whatever the command later puts in that directory can only reach this
// same proxy, or itself.
func serveEgress(ctx context.Context, c *Container, p egress.Proxy) (*egressServer, error) {
	if c.sockDir == "" {
		why := c.Fallback
		if why == "" {
			why = "the container has no socket directory"
		}
		return nil, sandbox.Errorf(sandbox.CodeExecValidation, "exec.network allowlist needs a socket shared with the exec container, which this one cannot have (%s); nothing was run", why)
	}
	path := filepath.Join(c.sockDir, agent.EgressSocket)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, sandbox.Errorf(sandbox.CodeSandboxError, "the egress proxy's socket: %v; nothing was run", err)
	}
	// The container's user is this process's (Spec: the host's uid and
	// gid), and the directory is private to it.
	os.Chmod(path, 0o600)
	e := &egressServer{}
	p.OnConn = func(c egress.Conn) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.conns = append(e.conns, sandbox.NetConn{Host: c.Host, Port: c.Port, Allowed: c.Allowed, Reason: c.Reason, Addr: c.Addr, Sent: c.Sent, Received: c.Received})
	}
	served := p.Serve()
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.mu.Lock()
			if e.closing {
				e.mu.Unlock()
				http.Error(w, "llm-runtime: the command is over", http.StatusServiceUnavailable)
				return
			}
			e.wg.Add(1)
			e.mu.Unlock()
			defer e.wg.Done()
			// The command's end, not its client's, ends a request: a
			// client that sends CONNECT and its first bytes and then
			// shuts down its writing (as nc does) still gets its tunnel.
			served.ServeHTTP(w, r.WithContext(cctx))
		}),
		ReadHeaderTimeout: 30 * time.Second,
	}
	go e.srv.Serve(ln)
	return e, nil
}

// close ends what is still open of the command's connections (the
// command is over) and returns every connection, in the order they
// ended.
func (e *egressServer) close() []sandbox.NetConn {
	e.once.Do(func() {
		e.mu.Lock()
		e.closing = true
		e.mu.Unlock()
		e.cancel()
		e.srv.Close()
		e.wg.Wait()
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conns
}
