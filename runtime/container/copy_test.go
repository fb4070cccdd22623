package container_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/sandbox"
	"github.com/llm-runtime/llm-runtime/sandbox/sandboxtest"
)

// remoteDocker connects through a loopback TCP forwarder to the local
// daemon: to llm-runtime, a remote Docker host, where nothing of this
// machine can be bind-mounted.
func remoteDocker(t *testing.T) *container.Docker {
	t.Helper()
	t.Setenv("DOCKER_HOST", dockertest.RemoteHost(t))
	d, err := container.Connect(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func newCopySandbox(t *testing.T, d *container.Docker, env dockertest.Env, dir, stateDir string, limits sandbox.Limits) *container.Sandbox {
	t.Helper()
	sb, err := container.NewSandbox(d, container.Options{
		Root:      dir,
		Limits:    limits,
		Image:     env.Image,
		Labels:    env.Labels,
		Workspace: container.WorkspaceCopy,
		StateDir:  stateDir,
		Pool: container.PoolOptions{Enabled: true, Size: 3, StartupContainers: 1, MaxUsesPerContainer: 50,
			HealthCheckInterval: time.Second, IdleTimeout: time.Minute, AcquireTimeout: loadPatience},
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// bindMounts returns the bind mounts of every container of ours that the
// test started and that still runs.
func bindMounts(t *testing.T, env dockertest.Env) []string {
	t.Helper()
	items, err := env.Docker.Ours(context.Background(), dockertest.LabelTest, env.Labels[dockertest.LabelTest])
	if err != nil {
		t.Fatal(err)
	}
	var binds []string
	for _, it := range items {
		out, err := exec.Command("docker", "inspect", "--format", "{{range .Mounts}}{{.Type}}:{{.Source}}:{{.Destination}} {{end}}", it.ID).Output()
		if err != nil {
			continue // gone meanwhile
		}
		for _, m := range strings.Fields(string(out)) {
			if strings.HasPrefix(m, "bind:") {
				binds = append(binds, it.Names[0]+" "+m)
			}
		}
	}
	return binds
}

// TestDockerCopyConformance runs the whole sandbox suite, hostile cases
// and the racer included, in copy mode against a "remote" Docker host,
// and checks that no container of it has a bind mount.
func TestDockerCopyConformance(t *testing.T) {
	env := dockertest.Require(t)
	d := remoteDocker(t)
	if w := d.DefaultWorkspace(); w != container.WorkspaceCopy {
		t.Fatalf("a tcp:// daemon's default workspace is %q", w)
	}
	if w := env.Docker.DefaultWorkspace(); w != container.WorkspaceBind {
		t.Fatalf("the local daemon's default workspace is %q", w)
	}
	stateDir := t.TempDir()
	var checked int
	sandboxtest.RunCopy(t, func(t *testing.T, dir string, limits sandbox.Limits) sandbox.Sandbox {
		sb := newCopySandbox(t, d, env, dir, stateDir, limits)
		// The first operation starts a container and pushes the replica.
		if _, err := sb.Resolve(context.Background(), "."); err != nil {
			t.Fatal(err)
		}
		if binds := bindMounts(t, env); len(binds) > 0 {
			t.Fatalf("copy mode bind-mounted: %v", binds)
		}
		checked++
		return sb
	})
	if checked == 0 {
		t.Fatal("no sandbox was made")
	}
}

// TestDockerCopyPushesOnlyWhatChanged: a second run on the same repository
// finds the replica its volume kept and pushes only the file that changed;
// within a run, a change on the host reaches the replica before the next
// read, and a write lands on the host.
func TestDockerCopyPushesOnlyWhatChanged(t *testing.T) {
	env := dockertest.Require(t)
	d := remoteDocker(t)
	dir, stateDir := t.TempDir(), t.TempDir()
	for i := range 200 {
		p := filepath.Join(dir, "pkg", string(rune('a'+i%20)), "f"+strings.Repeat("x", i%7)+string(rune('a'+i/20))+".go")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Repeat("package x\n", 1+i)), 0o644)
	}
	os.WriteFile(filepath.Join(dir, ".env"), []byte("SECRET=1\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "big.bin"), make([]byte, 3<<20), 0o644)
	ctx := context.Background()
	limits := sandbox.Limits{MaxSearchResults: 1000}

	sb := newCopySandbox(t, d, env, dir, stateDir, limits)
	if _, err := sb.Resolve(ctx, "."); err != nil {
		t.Fatal(err)
	}
	first := sb.LastPush()
	if first.Files < 200 || first.Bytes < 3<<20 {
		t.Fatalf("the first push: %+v", first)
	}
	l, err := sb.List(ctx, ".", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Entries {
		if e.Path == ".env" {
			t.Fatal("the replica holds an excluded file")
		}
	}
	// A change on the host is there for the next read.
	os.WriteFile(filepath.Join(dir, "pkg/a/new.go"), []byte("package new\n"), 0o644)
	if f, err := sb.Open(ctx, "pkg/a/new.go"); err != nil || string(f.Content) != "package new\n" {
		t.Fatalf("open of a file made on the host: %v", err)
	}
	if p := sb.LastPush(); p.Files != 1 {
		t.Fatalf("the push of one new file: %+v", p)
	}
	// A write is applied on the host, and read back from the replica.
	if _, err := sb.Write(ctx, "pkg/b/w.go", []byte("package w\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "pkg/b/w.go")); string(b) != "package w\n" {
		t.Fatalf("the write on the host: %q", b)
	}
	if f, err := sb.Open(ctx, "pkg/b/w.go"); err != nil || string(f.Content) != "package w\n" {
		t.Fatalf("reading the write back: %v", err)
	}
	os.Remove(filepath.Join(dir, "pkg/a/new.go"))
	if _, err := sb.Open(ctx, "pkg/a/new.go"); sandbox.AsError(err).Code != sandbox.CodeFileNotFound {
		t.Fatalf("a file removed on the host: %v", err)
	}
	volume := sb.Volume()
	sb.Close()

	// The next run: one file changed.
	os.WriteFile(filepath.Join(dir, "pkg/c/changed.go"), []byte("package changed\n"), 0o644)
	sb = newCopySandbox(t, d, env, dir, stateDir, limits)
	defer sb.Close()
	if sb.Volume() != volume {
		t.Fatalf("the second run's volume %s, the first's %s", sb.Volume(), volume)
	}
	res, err := sb.Search(ctx, parser.Query{Text: "package changed"})
	if err != nil || res.Total != 1 {
		t.Fatalf("search: %+v %v", res, err)
	}
	if p := sb.LastPush(); p.Files != 1 || p.Removed != 0 {
		t.Fatalf("the second run's push: %+v, want the one changed file", p)
	}
	if binds := bindMounts(t, env); len(binds) > 0 {
		t.Fatalf("copy mode bind-mounted: %v", binds)
	}
}
