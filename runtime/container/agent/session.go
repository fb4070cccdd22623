package agent

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// A Kubernetes pod's agent has no input the host alone can write: its
// main process's streams are the pod's attach (open to whoever holds
// pods/attach in the namespace) and its log (read by the node and every
// log shipper). So it reads none of them and writes nothing but a line per
// connection on its standard error: it serves the protocol on its socket
// (ListenSessions), which the host reaches by an exec of the agent's
// relay (Relay) in the pod, through the API server.
//
// The session's secret cannot reach a warm pod before it is claimed, so
// the first connection that sends one (SecretLen lower-case hex digits)
// claims the agent: from then on a connection is served only if it starts
// with that secret, one at a time. Any other connection is closed unread
// past the secret's length. A client of pods/exec that connects before the
// session makes the session's own connection fail: the session never talks
// to an agent someone else holds (pods/exec gives away the pod anyway:
// docs/kubernetes.md).

// ListenSessions serves the protocol on the socket at path (made anew)
// for the connections that start with the session's secret, as above, for
// as long as the process lives: the agent ends by OpClose or by its lease,
// which it needs, since no stream's end tells it that the host is gone.
// log is told of each connection, without its secret.
func (a *Agent) ListenSessions(path string, log io.Writer) error {
	if a.Lease <= 0 {
		return errors.New("agent: a session socket needs a lease (--lease): nothing else ends an agent whose host is gone")
	}
	a.mu.Lock()
	a.sessions = true
	a.mu.Unlock()
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer ln.Close()
	var (
		claimMu sync.Mutex
		claimed []byte     // the session's secret, once a connection sent it
		serving sync.Mutex // one connection at a time
	)
	for {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		go func() {
			defer c.Close()
			got := make([]byte, SecretLen)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil || !isSecret(got) {
				fmt.Fprintln(log, "agent: closed a connection that sent no secret (64 hex digits)")
				return
			}
			claimMu.Lock()
			first := claimed == nil
			if first {
				claimed = got
			}
			ok := subtle.ConstantTimeCompare(got, claimed) == 1
			claimMu.Unlock()
			if !ok {
				fmt.Fprintln(log, "agent: closed a connection with another secret than the session's")
				return
			}
			c.SetReadDeadline(time.Time{})
			serving.Lock()
			defer serving.Unlock()
			if first {
				fmt.Fprintln(log, "agent: a session claimed this agent")
			} else {
				fmt.Fprintln(log, "agent: the session connected again")
			}
			a.touch()
			if err := a.Serve(c, c); err != nil {
				fmt.Fprintf(log, "agent: the session's connection ended: %v\n", err)
			}
		}()
	}
}

// isSecret reports whether b is SecretLen lower-case hex digits.
func isSecret(b []byte) bool {
	if len(b) != SecretLen {
		return false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// SessionSocket is where a pod's agent listens for its session
// (ListenSessions): the pod mounts an emptyDir at SocketDir.
func SessionSocket() string { return filepath.Join(socketDir, SocketName) }

// Relay connects to the agent's socket at path and copies in to it and
// what it answers to out, until either side ends: the process the host
// execs in a pod to reach its agent. It knows no secret: the host sends
// the secret first, on in, and the agent checks it. A pod's agent that is
// still starting (its socket not made yet, or not yet listened on) is
// waited for, up to relayWait: a pod can be Ready a moment before its
// agent listens.
func Relay(path string, in io.Reader, out io.Writer) error {
	c, err := net.Dial("unix", path)
	for deadline := time.Now().Add(relayWait); err != nil && time.Now().Before(deadline) &&
		(errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)); {
		time.Sleep(20 * time.Millisecond)
		c, err = net.Dial("unix", path)
	}
	if err != nil {
		return fmt.Errorf("no agent listens on %s (%w): a pod of llm-runtime kubernetes manifests runs its agent with --listen; apply the manifests of this version", path, err)
	}
	defer c.Close()
	sent := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, in)
		c.(*net.UnixConn).CloseWrite()
		sent <- err
	}()
	_, err = io.Copy(out, c)
	return err
}

// relayWait is how long Relay waits for an agent that is starting.
var relayWait = 30 * time.Second

// errSessions is OpSocket's reply on an agent that serves sessions on its
// socket already.
var errSessions error = sandbox.Errorf(sandbox.CodeInternal, "agent: this agent serves its session on its socket already")
