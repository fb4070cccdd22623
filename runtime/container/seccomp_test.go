package container_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// TestDockerSeccompProbe runs the probe in a container of each role,
// hardened as Start hardens it, with the probe in place of the agent: what
// the profile refuses is refused, what commands need works, and nofile is
// ours.
func TestDockerSeccompProbe(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	probe := dockertest.SeccompProbe(t)
	for role, spec := range map[string]container.Spec{
		"io":   {Image: env.Image, Workspace: t.TempDir(), ReadOnly: true, Labels: env.Labels},
		"exec": {Image: env.Image, Workspace: t.TempDir(), Role: "exec", PIDs: 128, Memory: 512 << 20, Tmpfs: "rw,nosuid,nodev,exec,size=64m", Labels: env.Labels, Runtime: dockertest.ExecRuntime()},
	} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			out, err := env.Docker.RunHardened(context.Background(), spec, probe)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			dockertest.CheckSeccompProbe(t, out, spec.Runtime)
		})
	}
}

// TestSeccompProfileLetsThroughNoneOfWhatItRemoves reads the profile
// itself: no io_uring, ptrace or process_vm_*, no 32-bit table, sockets of
// AF_UNSPEC, AF_UNIX, AF_INET and AF_INET6 only, EPERM by default, and no
// rule that depends on a capability.
func TestSeccompProfileLetsThroughNoneOfWhatItRemoves(t *testing.T) {
	t.Parallel()
	var p struct {
		DefaultAction   string
		DefaultErrnoRet int
		ArchMap         []struct {
			Architecture     string
			SubArchitectures []string
		}
		Syscalls []struct {
			Names  []string
			Action string
			Args   []struct {
				Index, Value uint64
				Op           string
			}
			Includes *struct {
				Caps      []string
				MinKernel string
			}
			Excludes *struct{ Caps []string }
		}
	}
	if err := json.Unmarshal(container.SeccompProfile(), &p); err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != "SCMP_ACT_ERRNO" || p.DefaultErrnoRet != 1 {
		t.Errorf("default: %s %d, want SCMP_ACT_ERRNO 1 (EPERM)", p.DefaultAction, p.DefaultErrnoRet)
	}
	for _, a := range p.ArchMap {
		if len(a.SubArchitectures) > 0 {
			t.Errorf("%s lets through %v", a.Architecture, a.SubArchitectures)
		}
	}
	forbidden := []string{"io_uring_setup", "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv", "process_vm_writev",
		"socketcall", "modify_ldt", "bpf", "mount", "unshare", "setns", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "kcmp", "pidfd_getfd"}
	for _, r := range p.Syscalls {
		if r.Includes != nil && (len(r.Includes.Caps) > 0 || r.Includes.MinKernel != "") || r.Excludes != nil && len(r.Excludes.Caps) > 0 {
			t.Errorf("a rule on capabilities or kernels: %v", r.Names)
		}
		if r.Action != "SCMP_ACT_ALLOW" {
			continue
		}
		for _, n := range r.Names {
			if slices.Contains(forbidden, n) {
				t.Errorf("%s is let through", n)
			}
		}
		if slices.Contains(r.Names, "socket") {
			if len(r.Args) != 1 || r.Args[0].Index != 0 {
				t.Errorf("socket: %+v", r.Args)
				continue
			}
			a := r.Args[0]
			if !(a.Op == "SCMP_CMP_LT" && a.Value == 3) && !(a.Op == "SCMP_CMP_EQ" && a.Value == 10) {
				t.Errorf("socket(%s %s) is let through", a.Op, strconv.FormatUint(a.Value, 10))
			}
		}
	}
}

// TestDockerStartUsesTheSpecsRuntime: Spec.Runtime is the container's
// runtime, and CheckRuntime tells a runtime the daemon has from one it
// has not.
func TestDockerStartUsesTheSpecsRuntime(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	ctx := context.Background()
	if path, err := env.Docker.CheckRuntime(ctx, "runc"); err != nil || path == "" {
		t.Fatalf("runc: %q, %v", path, err)
	}
	_, err := env.Docker.CheckRuntime(ctx, "lrt-no-such-runtime")
	if !errors.Is(err, container.ErrUnknownRuntime) || !strings.Contains(err.Error(), "runc") {
		t.Fatalf("an unknown runtime: %v", err)
	}
	c, err := env.Docker.Start(ctx, container.Spec{Image: env.Image, Workspace: t.TempDir(), Labels: env.Labels, Runtime: "runc"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	in, err := env.Docker.Inspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if in.HostConfig.Runtime != "runc" {
		t.Fatalf("runtime %q, want runc", in.HostConfig.Runtime)
	}
}
