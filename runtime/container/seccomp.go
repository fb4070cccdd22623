package container

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"sync"

	"github.com/moby/moby/api/types/container"
)

// seccompJSON is llm-runtime's seccomp profile, which every container of
// ours runs under (both roles, the agent's and exec's, and the one-off
// container that gives a new volume to its user), in place of the
// daemon's default.
//
// It is Docker's default profile (github.com/moby/profiles/seccomp
// v0.3.0, default.json, Apache License 2.0), which refuses by default
// (EPERM) and lets through a list, less what neither the agent nor a
// build or test needs:
//
//   - io_uring_setup, io_uring_enter, io_uring_register: a second system
//     call interface, outside what seccomp can filter, with a long record
//     of kernel flaws. Moby's newer profile dropped them; Docker 20.10's,
//     still in use, lets them through.
//   - ptrace, process_vm_readv, process_vm_writev (moby lets them through
//     on kernels from 4.8): a command could read and change the memory of
//     the other processes in its container, the agent included.
//   - Sockets other than AF_UNIX, AF_INET and AF_INET6 (and AF_UNSPEC):
//     AF_NETLINK (the kernel's routing, audit, netfilter... interfaces),
//     AF_VSOCK (a channel to the hypervisor, or to the host of a VM), and
//     every other family moby lets through (AF_ALG, AF_KEY, AF_BLUETOOTH,
//     ...). The containers have no network; a test still listens and
//     connects on loopback. Go's net.Interfaces, glibc's getifaddrs and
//     Node's os.networkInterfaces, which read the interfaces over netlink,
//     fail.
//   - socketcall, and every 32-bit system call table (moby's
//     subArchitectures: x86 and x32 beside x86-64, arm beside arm64, ...):
//     a 64-bit process can enter the i386 table (int $0x80), where
//     socketcall passes its arguments in memory, out of seccomp's sight.
//     A 32-bit call is now refused by the kernel (runc 1.1 kills the
//     calling thread); 32-bit programs do not run.
//   - modify_ldt: 16-bit segments for old emulators, with a record of
//     flaws.
//   - Every rule for a capability (bpf, mount, unshare, setns,
//     perf_event_open, kcmp, pidfd_getfd, ...): our containers have none.
//     Without CAP_SYS_ADMIN, clone may not make namespaces and clone3
//     answers ENOSYS, so that libcs fall back to clone, as in moby's.
//
// keyctl, add_key, request_key, userfaultfd and the rest of what moby
// refuses stay refused. seccomp_gen.go writes seccomp.json from moby's
// profile (go generate); docs/security.md lists what the probe in
// testdata/seccompprobe shows, in both roles.
//
//go:generate sh -c "go run seccomp_gen.go -version v0.3.0 > seccomp.json"
//go:embed seccomp.json
var seccompJSON []byte

// seccompOpt is the security option that applies seccompJSON: Docker
// takes the profile itself, not a path, in the Engine API.
var seccompOpt = sync.OnceValue(func() string {
	var b bytes.Buffer
	if err := json.Compact(&b, seccompJSON); err != nil {
		panic("seccomp.json: " + err.Error())
	}
	return "seccomp=" + b.String()
})

// SeccompProfile returns llm-runtime's seccomp profile, as Docker reads
// it (docker run --security-opt seccomp=FILE).
func SeccompProfile() []byte { return bytes.Clone(seccompJSON) }

// NoFile is the most files a process of our containers may have open
// (RLIMIT_NOFILE, soft and hard), in place of the daemon's default (often
// 1,048,576, 20,000 here): the agent holds a descriptor per directory
// level of a walk, and a build or test rarely needs more than a few
// hundred.
const NoFile = 4096

// securityOpts are the security options of every container of ours.
func securityOpts() []string { return []string{"no-new-privileges", seccompOpt()} }

// ulimits are the resource limits of every container of ours.
func ulimits() []*container.Ulimit {
	return []*container.Ulimit{{Name: "nofile", Soft: NoFile, Hard: NoFile}}
}
