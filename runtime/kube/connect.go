package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
)

// AgentContainer is the container of an agent pod (kubernetes manifests).
const AgentContainer = "agent"

// RelayCommand is what Connect execs in the agent's container: the
// sandbox image's binary, relaying the exec's streams to the agent's
// socket. It names no secret: an exec's command is in the API server's
// audit log and the kubelet's.
var RelayCommand = []string{"/llm-runtime", "agent", "--connect"}

// Stream is a session's connection to its pod's agent.
type Stream struct {
	*agent.Conn
	done   chan struct{}
	err    error         // the exec's, once done is closed
	stderr boundedWriter // what the relay said
}

// Done is closed when the exec ends.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Ended returns why the exec ended, once Done is closed.
func (s *Stream) Ended() error { <-s.done; return s.err }

// Explain adds to err, from a call over the stream, what the relay in the
// pod said, if anything.
func (s *Stream) Explain(err error) error {
	if said := strings.TrimSpace(s.stderr.String()); err != nil && said != "" {
		return fmt.Errorf("%w (the pod: %s)", err, said)
	}
	return err
}

// Connect reaches the agent of pod in namespace, through the API server:
// it execs the agent's relay in the pod's agent container with client-go's
// remotecommand (WebSocket, v5.channel.k8s.io, falling back to SPDY where
// the server cannot upgrade; stdin, stdout and stderr, no TTY) and sends
// it a new secret of SecretLen hex digits first, which claims the agent
// (agent.ListenSessions). Neither the secret nor anything of the session
// passes on the pod's own streams: not in its log, not on its attach.
// Closing the Stream ends the exec (the agent lives on until its lease,
// or OpClose).
func Connect(ctx context.Context, cfg *rest.Config, namespace, pod string) (*Stream, error) {
	var raw [agent.SecretLen / 2]byte
	rand.Read(raw[:])
	secret := hex.EncodeToString(raw[:])
	q := url.Values{"container": {AgentContainer}, "stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}, "tty": {"false"}, "command": RelayCommand}
	u, err := url.Parse(strings.TrimSuffix(cfg.Host, "/") + "/api/v1/namespaces/" + url.PathEscape(namespace) + "/pods/" + url.PathEscape(pod) + "/exec")
	if err != nil {
		return nil, err
	}
	u.RawQuery = q.Encode()
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		return nil, fmt.Errorf("connecting to %s/%s: %w", namespace, pod, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s/%s: %w", namespace, pod, err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return nil, err
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Stream{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = exec.StreamWithContext(sctx, remotecommand.StreamOptions{Stdin: inR, Stdout: outW, Stderr: &s.stderr})
		err := s.err
		if err == nil {
			err = io.EOF
		}
		outW.CloseWithError(err)
		inR.CloseWithError(err)
	}()
	closer := closerFunc(func() error { cancel(); inW.Close(); outR.Close(); return nil })
	s.Conn = agent.NewConn(&secretFirst{w: inW, secret: []byte(secret)}, outR, closer)
	return s, nil
}

// secretFirst writes the secret before the first write's bytes, in the
// same write: the relay passes it to the agent ahead of the first frame.
type secretFirst struct {
	w      io.Writer
	secret []byte
}

func (s *secretFirst) Write(p []byte) (int, error) {
	if s.secret != nil {
		b := append(s.secret, p...)
		s.secret = nil
		n, err := s.w.Write(b)
		return max(0, n-agent.SecretLen), err
	}
	return s.w.Write(p)
}

// boundedWriter keeps the first 4 KiB written to it.
type boundedWriter struct {
	mu sync.Mutex
	b  []byte
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p[:min(len(p), 4096-len(w.b))]...)
	return len(p), nil
}

func (w *boundedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// client-go's log (klog) reports on standard error the end of every
// stream we close as an error; what matters comes back as the stream's
// own errors. Silenced before any goroutine of client-go's can read it
// (klog's logger may not be set concurrently).
func init() { klog.SetLogger(logr.Discard()) }

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
