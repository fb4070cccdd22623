package kube

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
)

// AgentContainer is the container of an agent pod (kubernetes manifests).
const AgentContainer = "agent"

// Attach attaches to the agent of pod in namespace, through the API
// server, with client-go's remotecommand: WebSocket (v5.channel.k8s.io),
// falling back to SPDY where the server cannot upgrade; stdin and stdout,
// no TTY, no stderr. It returns a Conn to the agent over the stream; closing
// the Conn ends the attach (the agent's input stays open: it exits by its
// lease, or by OpClose). done is closed, with the stream's error in *err,
// when the attach ends.
func Attach(ctx context.Context, cfg *rest.Config, namespace, pod string) (c *agent.Conn, done <-chan struct{}, streamErr *error, err error) {
	u, err := url.Parse(strings.TrimSuffix(cfg.Host, "/") + "/api/v1/namespaces/" + url.PathEscape(namespace) + "/pods/" + url.PathEscape(pod) + "/attach")
	if err != nil {
		return nil, nil, nil, err
	}
	u.RawQuery = url.Values{"container": {AgentContainer}, "stdin": {"true"}, "stdout": {"true"}, "stderr": {"false"}, "tty": {"false"}}.Encode()
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("attaching to %s/%s: %w", namespace, pod, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("attaching to %s/%s: %w", namespace, pod, err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return nil, nil, nil, err
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ch := make(chan struct{})
	var serr error
	go func() {
		defer close(ch)
		serr = exec.StreamWithContext(sctx, remotecommand.StreamOptions{Stdin: inR, Stdout: outW})
		if serr == nil {
			serr = io.EOF
		}
		outW.CloseWithError(serr)
		inR.CloseWithError(serr)
	}()
	closer := closerFunc(func() error { cancel(); inW.Close(); outR.Close(); return nil })
	return agent.NewConn(inW, outR, closer), ch, &serr, nil
}

// client-go's log (klog) reports on standard error the end of every
// attach we close as an error; what matters comes back as the attach's own
// errors. Silenced before any goroutine of client-go's can read it (klog's
// logger may not be set concurrently).
func init() { klog.SetLogger(logr.Discard()) }

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
