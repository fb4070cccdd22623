package container_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/proc"
	"github.com/llm-runtime/llm-runtime/pool/pooltest"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/sandbox"
	"github.com/llm-runtime/llm-runtime/sandbox/sandboxtest"
)

// loadPatience bounds every wait for Docker: starting, removing or
// answering. It only tells a hang from slow progress on a loaded machine
// (CI runs the suite at a load of 12-17 on two cores), so it is long: a
// wait that ends early costs nothing of it.
const loadPatience = 2 * time.Minute

func newSandbox(t *testing.T, env dockertest.Env, dir string, limits sandbox.Limits, pooled bool) *container.Sandbox {
	return newSandboxOver(t, env, dir, limits, pooled, "")
}

func newSandboxOver(t *testing.T, env dockertest.Env, dir string, limits sandbox.Limits, pooled bool, transport string) *container.Sandbox {
	t.Helper()
	sb, err := container.NewSandbox(env.Docker, container.Options{
		Transport: transport,
		Root:      dir,
		Limits:    limits,
		Image:     env.Image,
		Labels:    env.Labels,
		Pool: container.PoolOptions{Enabled: pooled, Size: 3, StartupContainers: 1, MaxUsesPerContainer: 50,
			HealthCheckInterval: time.Second, IdleTimeout: time.Minute, AcquireTimeout: loadPatience},
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// TestDockerPooledConformance runs the sandbox suite, its hostile cases
// included, over both transports.
func TestDockerPooledConformance(t *testing.T) {
	env := dockertest.Require(t)
	for _, transport := range []string{container.TransportSocket, container.TransportAttach} {
		t.Run(transport, func(t *testing.T) {
			sandboxtest.Run(t, func(t *testing.T, dir string, limits sandbox.Limits) sandbox.Sandbox {
				return newSandboxOver(t, env, dir, limits, true, transport)
			})
		})
	}
}

// TestDockerSocketTransport: a container asked for the socket is reached
// through it, in a private directory of the host's bind-mounted at
// agent.SocketDir, which goes with the container; asked for the attach
// stream, it is reached through that.
func TestDockerSocketTransport(t *testing.T) {
	env := dockertest.Require(t)
	ctx := context.Background()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("A\n"), 0o644)
	for _, socket := range []bool{true, false} {
		c, err := env.Docker.Start(ctx, container.Spec{Image: env.Image, Workspace: dir, Labels: env.Labels, Socket: socket})
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: container.TransportSocket, false: container.TransportAttach}[socket]
		if c.Transport != want || c.Fallback != "" {
			t.Fatalf("socket %v: transport %q, fallback %q", socket, c.Transport, c.Fallback)
		}
		if f, err := c.Open(ctx, "a.txt"); err != nil || string(f.Content) != "A\n" {
			t.Fatalf("socket %v: open: %v", socket, err)
		}
		sockDir := filepath.Join(container.SocketBase(), c.Name)
		fi, err := os.Stat(sockDir)
		if socket && (err != nil || fi.Mode().Perm() != 0o700) {
			t.Fatalf("the socket directory: %v %v", fi, err)
		}
		if !socket && err == nil {
			t.Fatal("a socket directory for a container that does not use one")
		}
		if socket {
			out, _ := exec.Command("docker", "inspect", "--format", "{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", c.ID).Output()
			if !strings.Contains(string(out), sockDir+":"+agent.SocketDir) {
				t.Fatalf("mounts: %s", out)
			}
		}
		c.Destroy()
		select {
		case <-c.Exited():
		case <-time.After(loadPatience):
			t.Fatal("the container did not go")
		}
		if _, err := os.Stat(sockDir); err == nil {
			t.Fatal("the socket directory outlived its container")
		}
	}
}

func TestDockerUnpooledRunsAContainerPerOperation(t *testing.T) {
	env := dockertest.Require(t)
	fx := sandboxtest.NewFixture(t)
	sb := newSandbox(t, env, fx.Dir, sandboxtest.Limits, false)
	defer sb.Close()
	for _, op := range sandboxtest.Hostile(fx)[:6] {
		sandboxtest.Do(t, sb, fx, op)
	}
	sandboxtest.Do(t, sb, fx, sandboxtest.Op{Name: "write", Kind: "write", Arg: "u.txt", Content: "unpooled", Want: "unpooled"})
	sandboxtest.Do(t, sb, fx, sandboxtest.Op{Name: "read", Kind: "open", Arg: "u.txt", Want: "unpooled"})
}

func TestDockerPoolConformance(t *testing.T) {
	env := dockertest.Require(t)
	dir := t.TempDir()
	spec := container.Spec{Image: env.Image, Workspace: dir, Labels: env.Labels}
	ctx := context.Background()
	pooltest.Conformance(t, pooltest.Backend[*container.Container]{
		Create:  func(ctx context.Context) (*container.Container, error) { return env.Docker.Start(ctx, spec) },
		Destroy: (*container.Container).Destroy,
		Check:   func(ctx context.Context, c *container.Container) error { _, err := c.Ping(ctx); return err },
		Break: func(c *container.Container) {
			if err := c.Kill(ctx); err != nil {
				t.Fatal(err)
			}
		},
		Live: func() int {
			items, err := env.Docker.Ours(ctx, dockertest.LabelTest, env.Labels[dockertest.LabelTest])
			if err != nil {
				t.Fatal(err)
			}
			return len(items)
		},
		Patience: loadPatience,
	})
}

func TestDockerContainersAreHardened(t *testing.T) {
	env := dockertest.Require(t)
	ctx := context.Background()
	c, err := env.Docker.Start(ctx, container.Spec{Image: env.Image, Workspace: t.TempDir(), Labels: env.Labels})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	in, err := env.Docker.Inspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	hc, cfg := in.HostConfig, in.Config
	checks := map[string]bool{
		"network none":         string(hc.NetworkMode) == "none" && cfg.NetworkDisabled,
		"read-only root":       hc.ReadonlyRootfs,
		"all capabilities off": len(hc.CapDrop) == 1 && hc.CapDrop[0] == "ALL" && len(hc.CapAdd) == 0,
		"no new privileges":    slices.Contains(hc.SecurityOpt, "no-new-privileges"),
		"our seccomp profile":  len(hc.SecurityOpt) == 2 && seccompIs(hc.SecurityOpt[1], container.SeccompProfile()),
		"nofile":               len(hc.Ulimits) == 1 && hc.Ulimits[0].Name == "nofile" && hc.Ulimits[0].Soft == container.NoFile && hc.Ulimits[0].Hard == container.NoFile,
		"the default runtime":  hc.Runtime == "" || hc.Runtime == "runc",
		"not privileged":       !hc.Privileged,
		"pids limit":           hc.PidsLimit != nil && *hc.PidsLimit == 64,
		"memory limit":         hc.Memory == 256<<20 && hc.MemorySwap == 256<<20,
		"cpu limit":            hc.NanoCPUs == 1e9,
		"tmpfs /tmp":           hc.Tmpfs["/tmp"] != "",
		"auto remove":          hc.AutoRemove,
		"no logging":           hc.LogConfig.Type == "none",
		"invoking user":        cfg.User == strconv.Itoa(os.Getuid())+":"+strconv.Itoa(os.Getgid()),
		"stdin once":           cfg.StdinOnce && cfg.OpenStdin,
		"owner label":          cfg.Labels[container.LabelOwnerPID] == strconv.Itoa(os.Getpid()),
		"version label":        cfg.Labels[container.LabelVersion] != "",
		"started label":        cfg.Labels[container.LabelStarted] != "",
		"only the workspace":   len(in.Mounts) == 1 && in.Mounts[0].Destination == "/workspace",
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("not hardened: %s", what)
		}
	}
}

// seccompIs reports whether the security option opt applies the
// profile.
func seccompIs(opt string, profile []byte) bool {
	v, ok := strings.CutPrefix(opt, "seccomp=")
	var a, b any
	return ok && json.Unmarshal([]byte(v), &a) == nil && json.Unmarshal(profile, &b) == nil && reflect.DeepEqual(a, b)
}

func TestDockerDestroyRemovesTheContainer(t *testing.T) {
	env := dockertest.Require(t)
	c, err := env.Docker.Start(context.Background(), container.Spec{Image: env.Image, Workspace: t.TempDir(), Labels: env.Labels})
	if err != nil {
		t.Fatal(err)
	}
	c.Destroy()
	select {
	case <-c.Exited():
	case <-time.After(loadPatience):
		t.Fatal("the container is still there")
	}
	if _, err := c.Ping(context.Background()); err == nil {
		t.Fatal("a destroyed container answered")
	}
}

func TestDockerSweepRemovesOrphans(t *testing.T) {
	env := dockertest.Require(t)
	// The owner is a real process, alive while the container starts (so
	// no other llm-runtime's start-up sweep takes it), then killed.
	owner := exec.Command("sleep", "3600") // killed below, however long the start takes
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Process.Kill() })
	labels := map[string]string{}
	for k, v := range env.Labels {
		labels[k] = v
	}
	// The owner is the sleep: its pid, and its start time (a pid alone is
	// another process's once reused).
	start, err := proc.StartTime(owner.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	labels[container.LabelOwnerPID], labels[container.LabelOwnerStart] = strconv.Itoa(owner.Process.Pid), strconv.FormatUint(start, 10)
	c, err := env.Docker.Start(context.Background(), container.Spec{Image: env.Image, Workspace: t.TempDir(), Labels: labels})
	if err != nil {
		owner.Process.Kill()
		t.Fatal(err)
	}
	defer c.Conn.Close()
	if _, err := env.Docker.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatalf("the container of a live owner was swept: %v", err)
	}
	owner.Process.Kill()
	owner.Wait()
	// Another llm-runtime starting now (tests run in parallel) may sweep it
	// first; either way it must go.
	n, err := env.Docker.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Exited():
	case <-time.After(loadPatience):
		t.Fatal("the orphan is still there")
	}
	t.Logf("swept %d", n)
}

func TestDockerImageIsTaggedByContent(t *testing.T) {
	env := dockertest.Require(t)
	ref, err := container.ImageRef(env.Binary)
	if err != nil || ref != env.Image {
		t.Fatalf("ref %q, image %q, %v", ref, env.Image, err)
	}
	img, ok, err := env.Docker.InspectImage(context.Background(), env.Binary)
	if err != nil || !ok || img.ID == "" {
		t.Fatalf("inspect: %+v %v %v", img, ok, err)
	}
	other := filepath.Join(t.TempDir(), "other")
	b, _ := os.ReadFile(env.Binary)
	os.WriteFile(other, append(b, 0), 0o755)
	if ref2, _ := container.ImageRef(other); ref2 == ref {
		t.Fatal("a different binary has the same tag")
	}
	if err := container.CheckStatic("/bin/sh"); err == nil {
		t.Fatal("/bin/sh passed for static")
	}
}

// Close does not wait for healthy idle containers to go (closing their
// agent's input ends them), but it must not leave a stuck one behind:
// a container whose agent cannot answer (paused here) is removed by force.
func TestDockerSandboxCloseEndsEveryContainer(t *testing.T) {
	env := dockertest.Require(t)
	fx := sandboxtest.NewFixture(t)
	sb, err := container.NewSandbox(env.Docker, container.Options{
		Root: fx.Dir, Limits: sandboxtest.Limits, Image: env.Image, Labels: env.Labels,
		Pool: container.PoolOptions{Enabled: true, Size: 2, StartupContainers: 2, MaxUsesPerContainer: 50, AcquireTimeout: loadPatience},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() }) // if the test fails first; a second Close does nothing
	sandboxtest.Do(t, sb, fx, sandboxtest.Op{Name: "write", Kind: "write", Arg: "c.txt", Content: "close", Want: "close"})
	ctx := context.Background()
	var items []string
	for deadline := time.Now().Add(loadPatience); ; time.Sleep(20 * time.Millisecond) {
		if s := sb.Stat(); s.Idle == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spare never became idle: %+v", sb.Stat())
		}
	}
	ours, err := env.Docker.Ours(ctx, dockertest.LabelTest, env.Labels[dockertest.LabelTest])
	if err != nil || len(ours) != 2 {
		t.Fatalf("%d containers, %v; want 2", len(ours), err)
	}
	for _, it := range ours {
		items = append(items, it.ID)
	}
	if out, err := exec.Command("docker", "pause", items[0]).CombinedOutput(); err != nil {
		t.Fatalf("docker pause: %v: %s", err, out)
	}
	sb.Close()
	left, err := dockertest.Gone(env.Docker, dockertest.LabelTest, env.Labels[dockertest.LabelTest], loadPatience)
	if err != nil || left > 0 {
		t.Fatalf("%d container(s) left after Close, now removed (%v)", left, err)
	}
}

// TestAPanicInAnOperationDestroysItsContainer: an operation that panics
// (a bug, which llm-runtime serve recovers from) does not leave its
// container in use for ever: it is destroyed, and the pool serves on.
func TestAPanicInAnOperationDestroysItsContainer(t *testing.T) {
	env := dockertest.Require(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("A\n"), 0o644)
	sb := newSandbox(t, env, dir, sandboxtest.Limits, true)
	var name string
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Fatalf("recovered %v", v)
			}
		}()
		sb.Do(context.Background(), func(c *container.Container) error { name = c.Name; panic("boom") })
	}()
	if st := sb.Stat(); st.InUse != 0 || st.Destroyed != 1 {
		t.Fatalf("after the panic: %+v", st)
	}
	f, err := sb.Open(context.Background(), "a.txt")
	if err != nil || string(f.Content) != "A\n" {
		t.Fatalf("%v %+v", err, f)
	}
	sb.Close()
	if _, err := env.Docker.Inspect(context.Background(), name); err == nil {
		t.Fatalf("the container %s of the operation that panicked still exists after Close", name)
	}
}
