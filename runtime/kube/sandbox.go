package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Options configure a Kubernetes sandbox.
type Options struct {
	Config    *rest.Config
	Namespace string
	Pool      string        // the SandboxWarmPool
	Lease     time.Duration // the claim's and the agent's lifeline; renewed at a third of it
	Root      string        // the repository on the host
	Limits    sandbox.Limits
	StateDir  string // where the copy the pod is pushed from is kept (paths.ExecStateDir's default)
	MaxSize   int64  // the most content pushed (0: container.DefaultCopyMaxSize)
	Session   string // labels the claim
	// Log, if set, is told of what the API server does to the session:
	// each request it throttles (429), which client-go retries after the
	// Retry-After it gives.
	Log func(format string, args ...any)
}

// Sandbox runs a session's operations on an agent pod of a warm pool: it
// claims one at the first operation, connects to its agent, sends it the
// session's limits and pushes it the repository (copy mode), keeps the
// claim and the agent alive while it lives, and releases the claim at
// Close. Writes and edits are applied on the host, as in copy mode. A pod
// that dies is replaced by a new claim, and a read is retried there.
// Operations are serialised on the one stream.
type Sandbox struct {
	o       Options
	claims  *Claims
	replica *container.Replica

	mu     sync.Mutex // the claim and the Conn
	claim  *Claim
	conn   *agent.Conn
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// NewSandbox opens the copy of the repository; the first operation claims
// a pod.
func NewSandbox(o Options) (*Sandbox, error) {
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	o.Config = Throttled(o.Config, o.Log)
	dyn, err := dynamic.NewForConfig(o.Config)
	if err != nil {
		return nil, err
	}
	r, err := container.OpenReplica(o.Root, o.StateDir, o.Limits, o.MaxSize)
	if err != nil {
		return nil, err
	}
	s := &Sandbox{o: o, replica: r, claims: &Claims{Client: dyn, Namespace: o.Namespace, Pool: o.Pool, Lease: o.Lease},
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.keepAlive()
	return s, nil
}

// Throttled returns cfg with a transport that tells log of each response
// 429 (Too Many Requests) of the API server: client-go retries such a
// request itself, after the Retry-After the server gives (up to 10 times),
// and says nothing.
func Throttled(cfg *rest.Config, log func(format string, args ...any)) *rest.Config {
	if log == nil {
		return cfg
	}
	cfg = rest.CopyConfig(cfg)
	wrap := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if wrap != nil {
			rt = wrap(rt)
		}
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			res, err := rt.RoundTrip(req)
			if err == nil && res.StatusCode == http.StatusTooManyRequests {
				log("Kubernetes: the API server throttled %s %s (429); retrying after %ss", req.Method, req.URL.Path, cmp.Or(res.Header.Get("Retry-After"), "1"))
			}
			return res, err
		})
	}
	return cfg
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// keepAlive pings the agent and renews the claim at a third of the lease.
func (s *Sandbox) keepAlive() {
	defer close(s.done)
	t := time.NewTicker(s.o.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		conn, claim := s.conn, s.claim
		s.mu.Unlock()
		if conn == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.o.Lease/3)
		conn.Ping(ctx)
		s.claims.Renew(ctx, claim)
		cancel()
	}
}

// session returns the stream to the session's pod, claiming one, and
// pushing it the repository's copy, when there is none (or it broke).
func (s *Sandbox) session(ctx context.Context) (*agent.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, sandbox.Errorf(sandbox.CodeCanceled, "the sandbox is closed")
	}
	if s.conn != nil && s.conn.Err() == nil {
		return s.conn, nil
	}
	if s.claim != nil { // its pod died, or the stream broke: another claim
		s.conn.Close()
		s.claims.Release(context.WithoutCancel(ctx), s.claim)
		s.claim, s.conn = nil, nil
	}
	cl, err := s.claims.Claim(ctx, s.o.Session)
	if err != nil {
		return nil, unavailable(err)
	}
	st, err := Connect(ctx, s.o.Config, s.o.Namespace, cl.Pod)
	if err == nil {
		if err = st.Configure(ctx, s.o.Limits); err != nil {
			if st.Err() != nil { // the stream ended: what the relay said comes with its end
				select {
				case <-st.Done():
				case <-ctx.Done():
				}
			}
			st.Close()
			err = st.Explain(err)
		}
	}
	if err != nil {
		s.claims.Release(context.WithoutCancel(ctx), cl)
		return nil, unavailable(err)
	}
	s.replica.Forget() // a new pod's workspace: listed by the first push
	s.claim, s.conn = cl, st.Conn
	return st.Conn, nil
}

func unavailable(err error) error {
	var se *sandbox.Error
	if errors.As(err, &se) {
		return se
	}
	return &sandbox.Error{Code: container.CodeDockerUnavailable, Message: fmt.Sprintf("no sandbox pod: %v", err), Err: err}
}

// read runs a read-only operation on the pod, its workspace brought up to
// date first; if the pod dies under it, it is run again on a new one.
func (s *Sandbox) read(ctx context.Context, fn func(c *agent.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := s.session(ctx)
		if err != nil {
			return err
		}
		if err = s.replica.Refresh(ctx, c); err == nil {
			err = fn(c)
		}
		if c.Err() == nil || attempt > 0 || ctx.Err() != nil {
			return err
		}
	}
}

// Open implements sandbox.Sandbox.
func (s *Sandbox) Open(ctx context.Context, path string) (f *sandbox.File, err error) {
	err = s.read(ctx, func(c *agent.Conn) error { f, err = c.Open(ctx, path); return err })
	return f, err
}

// List implements sandbox.Sandbox.
func (s *Sandbox) List(ctx context.Context, path string, recursive bool) (r *sandbox.ListResult, err error) {
	err = s.read(ctx, func(c *agent.Conn) error { r, err = c.List(ctx, path, recursive); return err })
	return r, err
}

// Search implements sandbox.Sandbox.
func (s *Sandbox) Search(ctx context.Context, q parser.Query) (r *sandbox.SearchResult, err error) {
	err = s.read(ctx, func(c *agent.Conn) error { r, err = c.Search(ctx, q); return err })
	return r, err
}

// Resolve implements sandbox.Sandbox.
func (s *Sandbox) Resolve(ctx context.Context, path string) (rel string, err error) {
	err = s.read(ctx, func(c *agent.Conn) error { rel, err = c.Resolve(ctx, path); return err })
	return rel, err
}

// Write implements sandbox.Sandbox: on the host, by the rules of a write;
// the pod gets it with the next push.
func (s *Sandbox) Write(ctx context.Context, path string, content []byte) (*sandbox.WriteResult, error) {
	return s.replica.Workspace().WriteWith(path, content, sandbox.OptionsFrom(ctx))
}

// Edit implements sandbox.Sandbox, on the host like Write.
func (s *Sandbox) Edit(ctx context.Context, path string, body []byte) (*sandbox.EditResult, error) {
	return s.replica.Workspace().EditWith(path, body, sandbox.OptionsFrom(ctx))
}

// Delete implements sandbox.Sandbox, on the host like Write.
func (s *Sandbox) Delete(ctx context.Context, path string) (*sandbox.DeleteResult, error) {
	return s.replica.Workspace().DeleteWith(path, sandbox.OptionsFrom(ctx))
}

// Move implements sandbox.Sandbox, on the host like Write.
func (s *Sandbox) Move(ctx context.Context, src, dst string) (*sandbox.MoveResult, error) {
	return s.replica.Workspace().MoveWith(src, dst, sandbox.OptionsFrom(ctx))
}

// Exec implements sandbox.Sandbox: exec does not run on Kubernetes yet,
// and a run that enables it is refused at the start (engine), so here it
// is disabled, as in a Docker sandbox with exec.enabled false.
func (s *Sandbox) Exec(ctx context.Context, command string) (*sandbox.ExecResult, error) {
	return nil, sandbox.Errorf(sandbox.CodeExecDisabled, "exec is disabled; enable it with exec.enabled: true (or --exec)")
}

// Claim is the session's claim, nil before the first operation.
func (s *Sandbox) Claim() *Claim {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claim
}

// LastPush says what the last push to the pod cost.
func (s *Sandbox) LastPush() container.PushStats { return s.replica.LastPush() }

// Close ends the agent, releases the claim and closes the copy.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conn, claim := s.conn, s.claim
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	var err error
	if conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn.CloseAgent(ctx)
		err = s.claims.Release(ctx, claim)
		cancel()
	}
	s.replica.Close()
	return err
}
