// Package dockertest gives tests a real Docker daemon and the sandbox image,
// and makes sure every container a test starts is gone when it ends.
//
// A test that needs Docker calls Require: it skips with a reason when no
// daemon answers, and fails instead when LLM_RUNTIME_REQUIRE_DOCKER=1 (as
// in CI), so CI cannot pass by skipping.
package dockertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container"
)

// LabelTest names the test that started a container, and the test
// process: test binaries running at once on one daemon (go test runs
// packages in parallel; developers and CI jobs share daemons) must not
// count, or remove, each other's containers.
const LabelTest = "io.llm-runtime.test"

var (
	once    sync.Once
	docker  *container.Docker
	binary  string
	image   container.Image
	initErr error
	skipErr error
)

// Env is what a Docker test gets.
type Env struct {
	Docker *container.Docker
	Binary string // a static llm-runtime binary, the agent of the image
	Image  string
	Labels map[string]string // put these on every container the test starts
}

// Require returns the daemon and the image built from a fresh static
// build of llm-runtime, and registers a cleanup that removes, and then
// reports as a failure, any container labelled with the test's name.
func Require(t testing.TB) Env {
	t.Helper()
	once.Do(setup)
	if skipErr != nil {
		if os.Getenv("LLM_RUNTIME_REQUIRE_DOCKER") == "1" {
			t.Fatalf("Docker is required (LLM_RUNTIME_REQUIRE_DOCKER=1): %v", skipErr)
		}
		t.Skipf("no Docker daemon: %v", skipErr)
	}
	if initErr != nil {
		t.Fatal(initErr)
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() {
		// Give AutoRemove time before calling anything a leak: on a
		// loaded machine it can take seconds. A container still there
		// after a minute is a leak all the same, and fails the test.
		left, err := Gone(docker, LabelTest, name, time.Minute)
		if err != nil {
			t.Errorf("listing containers: %v", err)
		} else if left > 0 {
			t.Errorf("%d container(s) of %s were left behind, now removed", left, name)
		}
		// Copy mode's volumes outlive their runs on purpose; a test's go
		// with it.
		if vs, err := docker.Volumes(context.Background(), LabelTest, name); err == nil {
			for _, v := range vs {
				if _, err := docker.RemoveVolume(context.Background(), v.Name); err != nil {
					t.Errorf("the volume of %s: %v", name, err)
				}
			}
		}
	})
	return Env{Docker: docker, Binary: binary, Image: image.Ref, Labels: map[string]string{LabelTest: name}}
}

// Gone waits up to wait for every container of ours labelled key=value to
// be gone (AutoRemove finishes after its owner let go), then removes any
// left and returns how many there were.
func Gone(d *container.Docker, key, value string, wait time.Duration) (left int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait+20*time.Second)
	defer cancel()
	items, err := d.AwaitGone(ctx, key, value, wait)
	for _, it := range items {
		ForceRemove(it.ID)
	}
	return len(items), err
}

// ForceRemove removes a container with the docker CLI, for cleanups.
func ForceRemove(id string) {
	exec.Command("docker", "rm", "-f", id).Run()
}

func setup() {
	ctx := context.Background()
	d, err := container.Connect(ctx, "test")
	if err != nil {
		skipErr = err
		return
	}
	docker = d
	dir, err := os.MkdirTemp("", "llm-runtime-dockertest-")
	if err != nil {
		initErr = err
		return
	}
	binary = filepath.Join(dir, "llm-runtime")
	build := exec.Command("go", "build", "-trimpath", "-o", binary, "github.com/llm-runtime/llm-runtime/cmd/llm-runtime")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		initErr = fmt.Errorf("building the agent: %v\n%s", err, out)
		return
	}
	image, err = d.EnsureImage(ctx, binary)
	if err != nil {
		initErr = fmt.Errorf("building the image: %v", err)
	}
}

var execOnce sync.Once

// RequireExecImage builds the default exec image from /bin/busybox
// (Debian's busybox-static) if it is not there yet.
func RequireExecImage(t testing.TB, env Env) {
	t.Helper()
	var err error
	execOnce.Do(func() {
		ctx := context.Background()
		var ok bool
		if ok, err = env.Docker.HasImage(ctx, container.ExecImageName); err == nil && !ok {
			_, err = env.Docker.BuildBusyboxImage(ctx, "/bin/busybox", container.ExecImageName)
		}
	})
	if err != nil {
		t.Fatalf("the exec image: %v", err)
	}
}
