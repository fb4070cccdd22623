package container

// DOCKER_HOST=ssh://[USER@]HOST[:PORT]: the Docker client has no SSH of its
// own; like the docker CLI's connection helper, llm-runtime runs
//
//	ssh -o ConnectTimeout=30 -T [-l USER] [-p PORT] -- HOST docker system dial-stdio
//
// and speaks the Engine API over the command's standard input and output,
// one ssh per connection. ssh reads the user's own configuration (keys,
// agent, known hosts, ProxyJump); the docker CLI must be installed on the
// remote host.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// sshCommand returns the command that reaches the Docker daemon of an
// ssh:// DOCKER_HOST.
func sshCommand(host string) ([]string, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("DOCKER_HOST %q: %v", host, err)
	}
	if u.Scheme != "ssh" || u.Hostname() == "" {
		return nil, fmt.Errorf("DOCKER_HOST %q: want ssh://[USER@]HOST[:PORT]", host)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("DOCKER_HOST %q: a path or a query is not supported after ssh://[USER@]HOST[:PORT]", host)
	}
	args := []string{"ssh", "-o", "ConnectTimeout=30", "-T"}
	if u.User != nil {
		args = append(args, "-l", u.User.Username())
	}
	if p := u.Port(); p != "" {
		args = append(args, "-p", p)
	}
	return append(args, "--", u.Hostname(), "docker", "system", "dial-stdio"), nil
}

// commandDialer dials by starting argv: its standard input and output are
// the connection.
func commandDialer(argv []string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		cmd := exec.Command(argv[0], argv[1:]...)
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		c := &commandConn{cmd: cmd, in: in, out: out, stderr: &limitedBuffer{max: 4096}}
		cmd.Stderr = c.stderr
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("%s: %v", argv[0], err)
		}
		return c, nil
	}
}

// commandConn is a net.Conn over a command's standard input and output.
type commandConn struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    io.ReadCloser
	stderr *limitedBuffer
	once   sync.Once
}

func (c *commandConn) Read(p []byte) (int, error) {
	n, err := c.out.Read(p)
	if errors.Is(err, io.EOF) && c.stderr.Len() > 0 {
		return n, fmt.Errorf("%s: %s", c.cmd.Args[0], strings.TrimSpace(c.stderr.String()))
	}
	return n, err
}

func (c *commandConn) Write(p []byte) (int, error) { return c.in.Write(p) }

// CloseWrite closes the command's input: the attach stream's end of input.
func (c *commandConn) CloseWrite() error { return c.in.Close() }

// Close ends the command.
func (c *commandConn) Close() error {
	c.once.Do(func() {
		c.in.Close()
		c.out.Close()
		if c.cmd.Process != nil {
			c.cmd.Process.Kill()
		}
		c.cmd.Wait()
	})
	return nil
}

type commandAddr string

func (a commandAddr) Network() string { return "command" }
func (a commandAddr) String() string  { return string(a) }

func (c *commandConn) LocalAddr() net.Addr              { return commandAddr("llm-runtime") }
func (c *commandConn) RemoteAddr() net.Addr             { return commandAddr(strings.Join(c.cmd.Args, " ")) }
func (c *commandConn) SetDeadline(time.Time) error      { return nil }
func (c *commandConn) SetReadDeadline(time.Time) error  { return nil }
func (c *commandConn) SetWriteDeadline(time.Time) error { return nil }
