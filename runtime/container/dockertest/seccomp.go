package dockertest

import (
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container"
)

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

// SeccompProbe builds, once per test process, the static probe of
// runtime/container/testdata/seccompprobe (CGO_ENABLED=0) and returns its
// path, in the process's temporary directory.
func SeccompProbe(t testing.TB) string {
	t.Helper()
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "llm-runtime-seccompprobe-")
		if err != nil {
			probeErr = err
			return
		}
		probePath = filepath.Join(dir, "seccompprobe")
		build := exec.Command("go", "build", "-trimpath", "-o", probePath, "github.com/llm-runtime/llm-runtime/runtime/container/testdata/seccompprobe")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			probeErr = &buildError{err, out}
		}
	})
	if probeErr != nil {
		t.Fatalf("building the seccomp probe: %v", probeErr)
	}
	return probePath
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// Refused are the probe's attempts that llm-runtime's containers refuse,
// with the errno each gets; i386_getpid (amd64 only) is checked apart.
var Refused = map[string]string{
	"io_uring_setup": "EPERM",
	"socket_netlink": "EPERM", "socket_vsock": "EPERM", "socket_packet": "EPERM", "socket_alg": "EPERM", "socket_key": "EPERM",
	"ptrace_attach": "EPERM", "ptrace_traceme": "EPERM", "process_vm_readv": "EPERM", "kcmp": "EPERM",
	"unshare_user": "EPERM", "unshare_mount": "EPERM", "clone_newuts": "EPERM", "mount": "EPERM",
	"keyctl": "EPERM", "add_key": "EPERM", "bpf": "EPERM", "userfaultfd": "EPERM", "perf_event_open": "EPERM",
	"clone3": "ENOSYS", // so that a libc falls back to clone, whose flags the profile checks
}

// Allowed are the probe's attempts that commands need.
var Allowed = []string{"socket_unix", "socket_inet", "tcp_loopback", "fork_exec"}

// ExecRuntime is the runtime the tests run exec containers under:
// LLM_RUNTIME_TEST_EXEC_RUNTIME (runsc, on a daemon that has it: see
// docs/development.md), or "" for the daemon's default.
func ExecRuntime() string { return os.Getenv("LLM_RUNTIME_TEST_EXEC_RUNTIME") }

// CheckSeccompProbe checks the probe's output (SeccompProbe) from a
// container of ours run under runtime ("" the daemon's default, runc):
// seccomp filtering, no_new_privs, no capability, RLIMIT_NOFILE of
// container.NoFile, the invoking user's uid, every attempt of Refused
// refused with its errno, the 32-bit system call table closed, and what
// commands need (Allowed, AF_INET6) working. Under runsc (gVisor), whose
// own kernel answers the calls and which applies no seccomp profile of
// the container's unless told to (--oci-seccomp), it checks what holds
// there: no capability, nofile, the uid, what commands need, no vsock and
// no i386 table. It reports each difference as an error.
func CheckSeccompProbe(t testing.TB, out, runtime string) {
	t.Helper()
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, " ")
		got[k] = v
	}
	nofile := strconv.Itoa(container.NoFile)
	want := map[string]string{"capeff": "0000000000000000", "nofile": nofile + " " + nofile, "uid": strconv.Itoa(os.Getuid())}
	for _, k := range Allowed {
		want[k] = "ok"
	}
	gvisor := runtime == "runsc" || strings.HasPrefix(runtime, "runsc-")
	if !gvisor {
		want["seccomp"], want["no_new_privs"] = "2", "1"
		for k, v := range Refused {
			want[k] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("probe %s: %q, want %q", k, got[k], v)
		}
	}
	if v := got["socket_inet6"]; v != "ok" && v != "EAFNOSUPPORT" {
		t.Errorf("probe socket_inet6: %q, want ok (or EAFNOSUPPORT, where the kernel has no IPv6)", v)
	}
	if v := got["socket_vsock"]; v == "ok" || v == "" {
		t.Errorf("probe socket_vsock: %q: a command reaches the hypervisor's or host's vsock", v)
	}
	if goruntime.GOARCH == "amd64" {
		// runc 1.1 kills the calling thread for a system call of an
		// architecture the filter does not name; gVisor has no i386
		// entry ("other"); a kernel without ia32 emulation faults before
		// any filter ("fault", seen on a VM here); another runtime may
		// answer an errno.
		if v := got["i386_getpid"]; v == "ok" || v == "" {
			t.Errorf("probe i386_getpid: %q: a 64-bit process enters the 32-bit system call table", v)
		}
	}
	if t.Failed() {
		t.Logf("the probe printed (runtime %q):\n%s", runtime, out)
	}
}
