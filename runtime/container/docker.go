// Package container is the Docker sandbox: the image, the hardened
// container spec, the resident agent's containers, the pooled and unpooled
// sandboxes, and exec.
//
// It talks to the Docker Engine API with github.com/moby/moby/client, which
// honours DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH and negotiates
// the API version (Engine 19.03, API 1.40, or newer).
//
// No image is ever pulled. The sandbox image, llm-runtime-io, is FROM
// scratch plus the static llm-runtime binary, run as "llm-runtime agent";
// it is built locally on first use and tagged by the binary's SHA-256, so a
// new version builds a new image.
//
// Every container carries the labels of [Labels]: the owner's pid, host and
// start time and the version. Containers run with AutoRemove and the agent
// exits when its standard input closes, so a killed host leaves nothing
// behind; [Docker.Sweep] removes, at start-up, any container whose owner is
// gone.
package container

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/llm-runtime/llm-runtime/internal/private"
	"github.com/llm-runtime/llm-runtime/internal/proc"
	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Names users can see.
const (
	ImageName  = "llm-runtime-io" // the sandbox image, tagged by content
	NamePrefix = "llm-runtime-io-"
)

// Labels on every container and image of ours.
const (
	LabelApp      = "io.llm-runtime"           // always "1"
	LabelOwnerPID = "io.llm-runtime.owner-pid" // the llm-runtime process that started it
	// LabelOwnerStart is that process's start time (proc.StartTime): a
	// pid is reused once its process is gone, and the two name one
	// process. Absent on the containers of earlier builds.
	LabelOwnerStart = "io.llm-runtime.owner-start"
	LabelHost       = "io.llm-runtime.owner-host"
	LabelStarted    = "io.llm-runtime.started" // RFC 3339
	LabelVersion    = "io.llm-runtime.version"
	LabelRole       = "io.llm-runtime.role" // "io", "exec", or "probe" (InspectExecImage's, never started)
)

// Error codes of this package.
const (
	CodeDockerUnavailable = "DOCKER_UNAVAILABLE"
	CodePoolExhausted     = "POOL_EXHAUSTED"
)

// ErrUnavailable wraps every failure to reach the Docker daemon.
var ErrUnavailable = errors.New("docker unavailable")

// Docker is a connection to the Docker daemon.
type Docker struct {
	cli     *client.Client
	version string // llm-runtime's, for labels
	host    string // the daemon, as DOCKER_HOST names it
}

// Host is the daemon's address, as DOCKER_HOST gives it (ssh://... for
// one reached through ssh).
func (d *Docker) Host() string { return d.host }

// Local reports whether the daemon is on this machine's unix socket, where
// a directory of the host can be bind-mounted.
func (d *Docker) Local() bool { return strings.HasPrefix(d.host, "unix://") }

// Connect connects to the daemon named by the environment and checks that
// it answers. Its errors wrap ErrUnavailable and say how to fix them.
func Connect(ctx context.Context, version string) (*Docker, error) {
	opts := []client.Opt{client.FromEnv, client.WithUserAgent("llm-runtime/" + version)}
	host := os.Getenv("DOCKER_HOST")
	if strings.HasPrefix(host, "ssh://") {
		argv, err := sshCommand(host)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		opts = []client.Opt{client.WithAPIVersionFromEnv(), client.WithUserAgent("llm-runtime/" + version),
			client.WithHost("http://docker.example.com"), client.WithDialContext(commandDialer(argv))}
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w: %v\nStart Docker (and check DOCKER_HOST), or run with --sandbox local, which has no container boundary", ErrUnavailable, err)
	}
	if host == "" {
		host = cli.DaemonHost()
	}
	return &Docker{cli: cli, version: version, host: host}, nil
}

// ServerVersion returns the daemon's version. It costs a round trip, which
// Connect leaves to the few commands that show it.
func (d *Docker) ServerVersion(ctx context.Context) (string, error) {
	sv, err := d.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return sv.Version, nil
}

// CPUs is how many CPUs the Docker daemon's machine has (docker info's
// NCPU): a container asking for more is refused.
func (d *Docker) CPUs(ctx context.Context) (int, error) {
	info, err := d.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return info.Info.NCPU, nil
}

// ErrUnknownRuntime: the daemon has no runtime of that name.
var ErrUnknownRuntime = errors.New("the Docker daemon has no such runtime")

// CheckRuntime returns the path of the daemon's OCI runtime name (docker
// info's Runtimes), or an error wrapping ErrUnknownRuntime that names
// those it has and how to register one.
func (d *Docker) CheckRuntime(ctx context.Context, name string) (path string, err error) {
	info, err := d.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if rt, ok := info.Info.Runtimes[name]; ok {
		return rt.Path, nil
	}
	known := slices.Sorted(maps.Keys(info.Info.Runtimes))
	how := "register it under \"runtimes\" in the daemon's daemon.json and reload dockerd (kill -HUP its pid)"
	if name == "runsc" {
		how = `for gVisor, install runsc (Debian: apt-get install runsc), add "runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}} to /etc/docker/daemon.json and reload dockerd (kill -HUP its pid)`
	}
	return "", fmt.Errorf("%w: %q (it has %s); %s, or leave exec.runtime empty for the daemon's default", ErrUnknownRuntime, name, strings.Join(known, ", "), how)
}

// Close closes the connection.
func (d *Docker) Close() error { return d.cli.Close() }

// Labels returns the labels of a container of ours with the given role.
func (d *Docker) Labels(role string) map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		LabelApp:        "1",
		LabelOwnerPID:   strconv.Itoa(os.Getpid()),
		LabelOwnerStart: strconv.FormatUint(proc.Self, 10),
		LabelHost:       host,
		LabelStarted:    time.Now().UTC().Format(time.RFC3339Nano),
		LabelVersion:    d.version,
		LabelRole:       role,
	}
}

// Image is a built sandbox image.
type Image struct {
	Ref     string // llm-runtime-io:<tag>
	ID      string
	Created bool // built by this call
}

// AgentBinary returns the path of the running executable, which must be a
// static binary to run in a FROM-scratch image.
func AgentBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return exe, CheckStatic(exe)
}

// CheckStatic reports an error unless path is a statically linked ELF
// binary.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("the agent binary %s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("the agent binary %s is dynamically linked; build llm-runtime with CGO_ENABLED=0 (make build)", path)
		}
	}
	return nil
}

// ImageRef returns the content-addressed reference of the image built from
// the agent binary at path: its tag is the start of the binary's SHA-256.
func ImageRef(path string) (string, error) {
	sum, err := fileSum(path)
	if err != nil {
		return "", err
	}
	return ImageName + ":" + sum[:16], nil
}

// fileSum returns the hex SHA-256 of the file at path. Hashing a 20 MB
// binary takes ~20 ms, on the path of every run, so the last sum is kept
// in the user's cache directory with the file's identity (device, inode,
// size, modification and change times: what git's index trusts; a change
// time cannot be set back). A missing or unwritable cache only costs the
// hash.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	key := ""
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		key = fmt.Sprintf("%d %d %d %d.%09d %d.%09d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	}
	cache := ""
	if key != "" {
		cache = paths.AgentSumPath()
	}
	if cache != "" {
		if b, err := os.ReadFile(cache); err == nil {
			if k, sum, ok := strings.Cut(strings.TrimSpace(string(b)), " = "); ok && k == key && len(sum) == 64 {
				return sum, nil
			}
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if cache != "" {
		writeCache(cache, key+" = "+sum+"\n")
	}
	return sum, nil
}

// writeCache replaces the file at path with content, atomically, or does
// nothing.
func writeCache(path, content string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".agent-sum-*")
	if err != nil {
		return
	}
	_, err = tmp.WriteString(content)
	if cerr := tmp.Close(); err == nil && cerr == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

// Spec describes a sandbox container.
type Spec struct {
	Image     string
	Workspace string // host directory mounted at /workspace
	Volume    string // or, in copy mode, the volume mounted there
	ReadOnly  bool   // mount the workspace read-only
	Limits    sandbox.Limits
	Role      string            // "io" or "exec"; a label
	Labels    map[string]string // extra labels
	Memory    int64             // bytes; default 256 MiB
	PIDs      int64             // default 64
	NanoCPUs  int64             // default one CPU
	// Agent, if set, is a static agent binary mounted into the container
	// and run as its entrypoint, so any image can host the agent (exec
	// containers). Unset: the image's own entrypoint, the agent.
	Agent string
	// AgentVolume, in copy mode, is a volume holding the agent binary (at
	// llm-runtime), mounted read-only and run in place of Agent.
	AgentVolume string
	AgentArgs   []string      // more arguments for the agent
	Mounts      []mount.Mount // more mounts, after the workspace
	Tmpfs       string        // the options of /tmp; default rw,nosuid,nodev,noexec,size=64m
	// Runtime is the daemon's OCI runtime for the container (runsc for
	// gVisor); "" is the daemon's default (runc). See Docker.CheckRuntime.
	Runtime string
	// Socket serves operations over a unix socket in a directory of the
	// host's bind-mounted into the container, past dockerd's attach proxy;
	// the attach stream stays open as the lifeline. Where that cannot work
	// (a remote Docker host, a directory that cannot be made private), the
	// attach stream serves them; Container.Transport says which.
	Socket bool
}

// defaultPIDs is a container's pids limit where its Spec sets none.
const defaultPIDs = 64

// Transports: how the host reaches a container's agent.
const (
	TransportSocket = "socket" // a unix socket in a bind-mounted directory
	TransportAttach = "attach" // the container's attach stream, through dockerd
)

// Container is a running sandbox container with its agent.
type Container struct {
	*agent.Conn
	ID, Name string

	d         *Docker
	hijack    client.HijackedResponse
	exited    chan struct{} // closed when the container is gone
	agentDone chan struct{} // closed when the agent's output ends: it exited, or we hung up
	hungUp    atomic.Bool   // we closed the stream (a cancelled call, or Close)

	// Transport is how operations reach the agent (TransportSocket or
	// TransportAttach); Fallback, for a Spec that asked for the socket,
	// why it is the attach stream.
	Transport, Fallback string

	sockDir string // the agent's socket directory on the host, if any
}

// Start creates, attaches to and starts a hardened container running the
// agent, and waits until the agent answers a ping.
func (d *Docker) Start(ctx context.Context, s Spec) (*Container, error) {
	cfg, hc, err := d.hardened(s)
	if err != nil {
		return nil, err
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("%s%d-%s", NamePrefix, os.Getpid(), hex.EncodeToString(rnd[:]))
	var sockDir, fallback string
	if s.Socket {
		if sockDir, err = d.socketDir(name); err != nil {
			sockDir, fallback = "", err.Error()
		} else {
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: sockDir, Target: agent.SocketDir})
		}
	}
	switch {
	case s.AgentVolume != "":
		cfg.Entrypoint = []string{agentVolumeMount + "/llm-runtime", "agent"}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: s.AgentVolume, Target: agentVolumeMount, ReadOnly: true})
	case s.Agent != "":
		cfg.Entrypoint = []string{agentMount, "agent"}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: s.Agent, Target: agentMount, ReadOnly: true})
	}
	// Not cancellable: a create cancelled in flight may still happen on the
	// daemon, and then only its id lets us remove it.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	cr, err := d.cli.ContainerCreate(cctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
	ccancel()
	if err != nil {
		// A create that timed out may still be made by the daemon, and a
		// container never started is not removed by AutoRemove: it is
		// removed by its name, which is ours alone.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		d.cli.ContainerRemove(rctx, name, client.ContainerRemoveOptions{Force: true})
		rcancel()
		if sockDir != "" {
			os.RemoveAll(sockDir)
		}
		return nil, fmt.Errorf("%w: creating a container: %v", ErrUnavailable, err)
	}
	c := &Container{ID: cr.ID, Name: name, d: d, exited: make(chan struct{}), agentDone: make(chan struct{}), Transport: TransportAttach, Fallback: fallback, sockDir: sockDir}
	fail := func(err error) (*Container, error) {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.cli.ContainerRemove(rctx, cr.ID, client.ContainerRemoveOptions{Force: true})
		if sockDir != "" {
			os.RemoveAll(sockDir)
		}
		return nil, err
	}
	ar, err := d.cli.ContainerAttach(ctx, cr.ID, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return fail(fmt.Errorf("%w: attaching to %s: %v", ErrUnavailable, name, err))
	}
	c.hijack = ar.HijackedResponse
	wait := d.cli.ContainerWait(context.Background(), cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	go func() {
		select {
		case <-wait.Result:
		case <-wait.Error:
		}
		if sockDir != "" {
			os.RemoveAll(sockDir)
		}
		close(c.exited)
	}()
	// With Tty false the stream is multiplexed whatever its media type says.
	pr, pw := io.Pipe()
	stderr := &limitedBuffer{max: 4096}
	go func() {
		_, err := stdcopy.StdCopy(pw, stderr, ar.Reader)
		if err == nil && stderr.Len() > 0 {
			err = fmt.Errorf("agent stopped: %s", strings.TrimSpace(stderr.String()))
		}
		pw.CloseWithError(err)
		close(c.agentDone)
	}()
	hangUp := closerFunc(func() error { c.hungUp.Store(true); ar.Close(); return pr.Close() })
	c.Conn = agent.NewConn(ar.Conn, pr, hangUp)
	if _, err := d.cli.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		ar.Close()
		return fail(fmt.Errorf("%w: starting %s: %v", ErrUnavailable, name, err))
	}
	if _, err := c.Ping(ctx); err != nil {
		c.Destroy()
		return nil, fmt.Errorf("%w: the agent in %s does not answer: %v", ErrUnavailable, name, err)
	}
	if sockDir != "" {
		if err := c.toSocket(ctx, sockDir, hangUp); err != nil {
			if c.Conn.Err() != nil { // the attach stream broke too
				c.Destroy()
				return nil, fmt.Errorf("%w: the agent in %s: %v", ErrUnavailable, name, err)
			}
			c.Fallback = "the agent's socket: " + err.Error()
		}
	}
	return c, nil
}

// hardened returns the configuration of a container of s, hardened, with
// the agent as its command and no mount but the workspace and s.Mounts.
func (d *Docker) hardened(s Spec) (*container.Config, *container.HostConfig, error) {
	if s.Memory == 0 {
		s.Memory = 256 << 20
	}
	if s.PIDs == 0 {
		s.PIDs = defaultPIDs
	}
	if s.NanoCPUs == 0 {
		s.NanoCPUs = 1e9
	}
	if s.Role == "" {
		s.Role = "io"
	}
	limits, err := json.Marshal(s.Limits)
	if err != nil {
		return nil, nil, err
	}
	labels := d.Labels(s.Role)
	for k, v := range s.Labels {
		labels[k] = v
	}
	pids := s.PIDs
	cfg := &container.Config{
		Image:           s.Image,
		Cmd:             append([]string{"--limits", string(limits)}, s.AgentArgs...),
		Labels:          labels,
		AttachStdin:     true,
		AttachStdout:    true,
		AttachStderr:    true,
		OpenStdin:       true,
		StdinOnce:       true, // the agent sees EOF when we go away
		NetworkDisabled: true, // no network namespace setup: ~230 ms faster than NetworkMode none alone
		User:            fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()),
	}
	hc := &container.HostConfig{
		NetworkMode:    "none",
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    securityOpts(),
		Runtime:        s.Runtime,
		Resources: container.Resources{
			PidsLimit:  &pids,
			Memory:     s.Memory,
			MemorySwap: s.Memory,
			NanoCPUs:   s.NanoCPUs,
			Ulimits:    ulimits(),
		},
		Tmpfs:      map[string]string{"/tmp": cmp.Or(s.Tmpfs, "rw,nosuid,nodev,noexec,size=64m")},
		Mounts:     append([]mount.Mount{workspaceMount(s)}, s.Mounts...),
		AutoRemove: true,
		LogConfig:  container.LogConfig{Type: "none"},
	}
	return cfg, hc, nil
}

// workspaceMount is what a container sees at /workspace: the repository
// bind-mounted, or a replica's volume.
func workspaceMount(s Spec) mount.Mount {
	if s.Volume != "" {
		return mount.Mount{Type: mount.TypeVolume, Source: s.Volume, Target: "/workspace", ReadOnly: s.ReadOnly}
	}
	return mount.Mount{Type: mount.TypeBind, Source: s.Workspace, Target: "/workspace", ReadOnly: s.ReadOnly}
}

// toSocket moves the container's operations to the agent's socket in dir:
// it sends the agent a fresh secret on the attach stream (which only the
// agent reads), connects, proves itself with the secret, and pings. A
// call cancelled on the socket hangs up the attach stream too, so that the
// agent exits and the container goes.
func (c *Container) toSocket(ctx context.Context, dir string, hangUp io.Closer) error {
	var b [agent.SecretLen / 2]byte
	rand.Read(b[:])
	secret := hex.EncodeToString(b[:])
	if err := c.Conn.Listen(ctx, secret); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var dl net.Dialer
	sock, err := dl.DialContext(dctx, "unix", filepath.Join(dir, agent.SocketName))
	if err != nil {
		return err
	}
	if _, err := io.WriteString(sock, secret); err != nil {
		sock.Close()
		return err
	}
	conn := agent.NewConn(sock, sock, closerFunc(func() error { sock.Close(); return hangUp.Close() }))
	if _, err := conn.Ping(dctx); err != nil {
		sock.Close()
		return err
	}
	c.Conn, c.Transport = conn, TransportSocket
	return nil
}

// socketDir makes the directory, private to this user, that holds the
// socket of container name's agent: SocketBase()/name. It fails where a
// bind-mounted socket cannot work: a Docker daemon that is not on this
// machine's unix socket.
func (d *Docker) socketDir(name string) (string, error) {
	if host := d.host; !d.Local() {
		return "", fmt.Errorf("the Docker daemon is at %s, not on this machine: a socket in a bind-mounted directory cannot reach it", host)
	}
	base := SocketBase()
	if err := private.SocketPath(filepath.Join(base, name, agent.SocketName)); err != nil {
		return "", err
	}
	sweepSocketDirs.Do(func() { removeDeadSocketDirs(base) })
	if err := os.MkdirAll(filepath.Dir(base), 0o700); err != nil {
		return "", err
	}
	if err := private.Dir(filepath.Dir(base), false); err != nil {
		return "", err
	}
	if err := private.Dir(base, true); err != nil {
		return "", err
	}
	dir := filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// SocketBase is where the agents' socket directories are made: agents in
// private.RuntimeDir, that is $XDG_RUNTIME_DIR/llm-runtime/agents, else
// /tmp/llm-runtime-UID/agents ($TMPDIR for /tmp), beside the daemon's
// socket.
func SocketBase() string { return filepath.Join(private.RuntimeDir(os.Getenv), "agents") }

var sweepSocketDirs sync.Once

// removeDeadSocketDirs removes the socket directories of processes that are
// gone (killed before they could): their names are NamePrefix PID-....
func removeDeadSocketDirs(base string) {
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), NamePrefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() || proc.Alive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(base, e.Name()))
	}
}

// Destroy stops the container for good: it closes the agent's input, so
// the agent exits and Docker removes the container (AutoRemove; that takes
// Docker ~100 ms more, which Destroy does not wait for). If the agent has
// not exited within a second (stuck in a long operation, or frozen), or we
// cannot tell because we hung up on it first (a cancelled call) and Docker
// has not removed it within that second, Destroy forces the removal and
// waits for it.
func (c *Container) Destroy() {
	c.hijack.CloseWrite()
	timeout := time.After(time.Second)
	agentDone := c.agentDone
wait:
	for {
		select {
		case <-agentDone:
			if !c.hungUp.Load() {
				c.Conn.Close()
				// The agent is gone: its socket directory goes now, not
				// when Docker has removed the container, which this
				// process may not live to see.
				c.removeSockDir()
				return
			}
			agentDone = nil // the stream ended because we hung up: that proves nothing
		case <-c.exited:
			c.Conn.Close()
			return
		case <-timeout:
			break wait
		}
	}
	c.Conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.d.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	select {
	case <-c.exited:
	case <-ctx.Done():
		c.removeSockDir()
	}
}

// removeSockDir removes the agent's socket directory on the host, if it
// has one (once nothing will connect to the agent again).
func (c *Container) removeSockDir() {
	if c.sockDir != "" {
		os.RemoveAll(c.sockDir)
	}
}

// retire ends an idle container without waiting for it to go: once its
// agent has answered a ping, it is blocked reading its input, so closing
// that input ends it and Docker removes the container (AutoRemove), even
// if this process exits first. Waiting for that, as Destroy does, would
// add ~70 ms to the end of every run. If the agent does not answer,
// retire falls back to Destroy.
func (c *Container) retire() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := c.Ping(ctx)
	cancel()
	if err != nil {
		c.Destroy()
		return
	}
	c.hijack.CloseWrite()
	c.Conn.Close()
	// The agent is leaving and nothing will connect again: its socket
	// directory goes now, not when Docker has removed the container,
	// which this process (at the end of a run) does not wait for.
	c.removeSockDir()
}

// destroyer destroys a pool's containers: fully while the pool is in use,
// and by retire once it closes, when every container left is idle.
type destroyer struct{ closing atomic.Bool }

func (d *destroyer) destroy(c *Container) {
	if d.closing.Load() {
		c.retire()
		return
	}
	c.Destroy()
}

// Exited is closed once the container is gone.
func (c *Container) Exited() <-chan struct{} { return c.exited }

// Kill kills the container from outside, as `docker kill` would (tests use
// it to break a container).
func (c *Container) Kill(ctx context.Context) error {
	_, err := c.d.cli.ContainerKill(ctx, c.ID, client.ContainerKillOptions{Signal: "SIGKILL"})
	return err
}

// Ours lists our containers on this daemon (all of them: any owner, any
// state), optionally only those with the extra label key=value.
func (d *Docker) Ours(ctx context.Context, key, value string) ([]container.Summary, error) {
	f := make(client.Filters).Add("label", LabelApp+"=1")
	if key != "" {
		f.Add("label", key+"="+value)
	}
	l, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return l.Items, nil
}

// AwaitGone waits up to wait for Docker to remove every container of ours
// on this host labelled key=value (AutoRemove finishes after its owner let
// go of it), and returns those still there.
func (d *Docker) AwaitGone(ctx context.Context, key, value string, wait time.Duration) ([]container.Summary, error) {
	host, _ := os.Hostname()
	deadline := time.Now().Add(wait)
	for {
		items, err := d.Ours(ctx, key, value)
		if err != nil {
			return nil, err
		}
		var left []container.Summary
		for _, it := range items {
			if it.Labels[LabelHost] == host {
				left = append(left, it)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Sweep force-removes our containers whose owner process on this host is
// gone (its pid unused, or used by a process started at another time),
// and returns how many it removed.
func (d *Docker) Sweep(ctx context.Context) (int, error) {
	return d.removeWhere(ctx, "", "", func(labels map[string]string) bool {
		pid, err := strconv.Atoi(labels[LabelOwnerPID])
		return err == nil && pid > 0 && !proc.Same(pid, ownerStart(labels))
	})
}

// RemoveOwned force-removes every container of ours that process pid on
// this host, started at start (proc.StartTime; 0: whenever), started, and
// returns how many it removed. The start time keeps a reaper from taking
// the containers of a new process that was given its owner's pid.
func (d *Docker) RemoveOwned(ctx context.Context, pid int, start uint64) (int, error) {
	return d.removeWhere(ctx, LabelOwnerPID, strconv.Itoa(pid), func(labels map[string]string) bool {
		s := ownerStart(labels)
		return start == 0 || s == 0 || s == start
	})
}

// ownerStart is a container's LabelOwnerStart, or 0.
func ownerStart(labels map[string]string) uint64 {
	s, _ := strconv.ParseUint(labels[LabelOwnerStart], 10, 64)
	return s
}

// removeWhere force-removes our containers on this host, with the label
// key=value if key is set, for which remove says yes.
func (d *Docker) removeWhere(ctx context.Context, key, value string, remove func(labels map[string]string) bool) (int, error) {
	items, err := d.Ours(ctx, key, value)
	if err != nil {
		return 0, err
	}
	host, _ := os.Hostname()
	n := 0
	for _, it := range items {
		if it.Labels[LabelHost] != host || !remove(it.Labels) {
			continue
		}
		if _, err := d.cli.ContainerRemove(ctx, it.ID, client.ContainerRemoveOptions{Force: true}); err == nil || cerrdefs.IsNotFound(err) {
			n++
		}
	}
	return n, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Inspect returns the daemon's view of a container.
func (d *Docker) Inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	r, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, err
	}
	return r.Container, nil
}
