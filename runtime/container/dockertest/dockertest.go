// Package dockertest gives tests a real Docker daemon and the sandbox image,
// and makes sure every container a test starts is gone when it ends.
//
// A test that needs Docker calls Require: it skips with a reason when no
// daemon answers, and fails instead when LLM_RUNTIME_REQUIRE_DOCKER=1 (as
// in CI), so CI cannot pass by skipping.
package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// RunID names this test process's images: the sandbox image of its own
// agent binary (which carries it after its end, so that its content tag
// is the process's too) and the tags of Tag. No two test processes share
// an image, so each removes its own at Teardown, and none can touch an
// image of the user's.
var RunID = func() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

var (
	tagsMu sync.Mutex
	tags   []string
)

// Tag returns the image reference this test process uses for the image
// what (exec, go, ...): llm-runtime-exec:test-WHAT-RUNID, never a tag of
// the user's, removed at Teardown.
func Tag(what string) string {
	ref := "llm-runtime-exec:test-" + what + "-" + RunID
	tagsMu.Lock()
	defer tagsMu.Unlock()
	if !slices.Contains(tags, ref) {
		tags = append(tags, ref)
	}
	return ref
}

// AppendRunID makes the static binary at path this process's own: a
// static binary runs with bytes after its end, and its image's tag is the
// hash of its content.
func AppendRunID(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString("\nllm-runtime-test-" + RunID + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Teardown removes what the process made on Docker: the images of Tag
// and the sandbox image of its agent binary, and that binary. Every
// container must be gone by then (each test checks its own). Give it to
// testenv.Main.
func Teardown() error {
	var errs []error
	tagsMu.Lock()
	refs := slices.Clone(tags)
	tagsMu.Unlock()
	if binary != "" {
		if ref, err := container.ImageRef(binary); err == nil {
			refs = append(refs, ref)
		}
	}
	errs = append(errs, RemoveImages(refs...))
	if binary != "" {
		errs = append(errs, os.RemoveAll(filepath.Dir(binary)))
	}
	if docker != nil {
		docker.Close()
	}
	return errors.Join(errs...)
}

// RemoveImages removes the images of refs that exist, with the docker
// CLI, once no container uses them: Docker removes a container of ours
// (AutoRemove) after its process let go, which can take seconds on a
// loaded machine. A container still there after two minutes is a leak:
// it is removed, and named in the error.
func RemoveImages(refs ...string) error {
	var errs []error
	for _, ref := range refs {
		tags, err := exec.Command("docker", "image", "inspect", "--format", "{{len .RepoTags}}", ref).Output()
		if err != nil {
			continue // not there
		}
		if strings.TrimSpace(string(tags)) != "1" {
			// The same image under another tag: another test process's
			// (the same busybox makes the same image), whose containers
			// the ancestor filter would count as ours. Untag it only.
			if out, err := exec.Command("docker", "rmi", ref).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("docker rmi %s: %v: %s", ref, err, strings.TrimSpace(string(out))))
			}
			continue
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			out, err := exec.Command("docker", "ps", "-a", "--filter", "ancestor="+ref, "--format", `{{.ID}} {{.Names}} {{.Status}} {{.Label "io.llm-runtime.test"}}`).Output()
			left := strings.TrimSpace(string(out))
			if err != nil || left == "" {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("containers of %s were left behind, now removed: %s", ref, strings.ReplaceAll(left, "\n", "; ")))
				for _, l := range strings.Split(left, "\n") {
					ForceRemove(strings.Fields(l)[0])
				}
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if out, err := exec.Command("docker", "rmi", ref).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("docker rmi %s: %v: %s", ref, err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
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
	if err := AppendRunID(binary); err != nil {
		initErr = err
		return
	}
	image, err = d.EnsureImage(ctx, binary)
	if err != nil {
		initErr = fmt.Errorf("building the image: %v", err)
	}
}

var (
	execOnce sync.Once
	execErr  error
)

// RequireExecImage builds this process's busybox exec image (Tag("busybox"))
// from /bin/busybox (Debian's busybox-static), once, and returns its
// reference.
func RequireExecImage(t testing.TB, env Env) string {
	t.Helper()
	ref := Tag("busybox")
	execOnce.Do(func() {
		_, execErr = env.Docker.BuildBusyboxImage(context.Background(), "/bin/busybox", ref)
	})
	if execErr != nil {
		t.Fatalf("the exec image: %v", execErr)
	}
	return ref
}
