// Command seccompprobe tries, inside the container it runs in, the system
// calls that llm-runtime's seccomp profile refuses and a few that commands
// need, and prints one line per attempt, "NAME RESULT", where RESULT is
// "ok", the name of the errno the call failed with (EPERM, ENOSYS, ...), or
// "signal NAME" for a child the kernel killed ("killed", "other" and
// "fault" for the i386 entry: see child); and, first, what the
// process is: its seccomp mode, no_new_privs, effective capabilities,
// RLIMIT_NOFILE and uid.
//
// The tests build it static (CGO_ENABLED=0) and run it in both roles of
// container: runtime/container's TestDockerSeccompProbe and, through the
// binary, cmd/llm-runtime's TestE2EExecSeccompProbe.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// marker is read by process_vm_readv from a child: a static binary that is
// not position-independent has it at the same address in every process.
var marker = [8]byte{'s', 'e', 'c', 'c', 'o', 'm', 'p', '!'}

func main() {
	if len(os.Args) > 1 {
		child(os.Args[1])
		return
	}
	status()
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	fmt.Printf("nofile %d %d\n", lim.Cur, lim.Max)
	fmt.Printf("uid %d\n", os.Getuid())

	var params [30]uint32 // struct io_uring_params, 120 bytes
	report("io_uring_setup", fdOf(unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params)), 0)))

	for _, s := range []struct {
		name            string
		family, typ, pr int
	}{
		{"socket_unix", unix.AF_UNIX, unix.SOCK_STREAM, 0},
		{"socket_inet", unix.AF_INET, unix.SOCK_STREAM, 0},
		{"socket_inet6", unix.AF_INET6, unix.SOCK_STREAM, 0},
		{"socket_netlink", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE},
		{"socket_vsock", unix.AF_VSOCK, unix.SOCK_STREAM, 0},
		{"socket_packet", unix.AF_PACKET, unix.SOCK_DGRAM, 0},
		{"socket_alg", unix.AF_ALG, unix.SOCK_SEQPACKET, 0},
		{"socket_key", unix.AF_KEY, unix.SOCK_RAW, 2},
	} {
		fd, err := unix.Socket(s.family, s.typ, s.pr)
		if err == nil {
			unix.Close(fd)
		}
		report(s.name, err)
	}
	report("tcp_loopback", loopback())

	// A child to trace: it waits on its standard input.
	sleeper := exec.Command(os.Args[0], "sleep")
	in, _ := sleeper.StdinPipe()
	err := sleeper.Start()
	report("fork_exec", err)
	if err == nil {
		pid := sleeper.Process.Pid
		report("ptrace_attach", ptraceAttach(pid))
		var b [8]byte
		local := []unix.Iovec{{Base: &b[0], Len: 8}}
		remote := []unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&marker[0])), Len: 8}}
		_, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if err == nil && b != marker {
			err = errors.New("read something else")
		}
		report("process_vm_readv", err)
		_, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(os.Getpid()), uintptr(pid), 0 /* KCMP_FILE */, 0, 0, 0)
		report("kcmp", errnoOf(e))
		in.Close()
		sleeper.Process.Kill() // a tracer's SIGSTOP may outlive the detach (gVisor)
		sleeper.Wait()
	}
	report("ptrace_traceme", inChild("traceme"))
	if runtime.GOARCH == "amd64" {
		report("i386_getpid", inChild("int80"))
	}

	report("unshare_user", unix.Unshare(unix.CLONE_NEWUSER))
	report("unshare_mount", unix.Unshare(unix.CLONE_NEWNS))
	clone := exec.Command(os.Args[0], "exit")
	clone.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUTS}
	report("clone_newuts", clone.Run())
	// clone3 with no arguments: EINVAL where the call is let through,
	// ENOSYS where the profile makes it look absent (so that libcs fall
	// back to clone, whose flags it can check).
	_, _, e := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	report("clone3", errnoOf(e))
	report("mount", tryMount())
	_, err = unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 1, 0, 0)
	report("keyctl", err)
	_, err = unix.AddKey("user", "probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
	report("add_key", err)
	var attr [128]byte // union bpf_attr, BPF_MAP_CREATE of an array of one
	*(*uint32)(unsafe.Pointer(&attr[0])) = unix.BPF_MAP_TYPE_ARRAY
	*(*uint32)(unsafe.Pointer(&attr[4])) = 4
	*(*uint32)(unsafe.Pointer(&attr[8])) = 4
	*(*uint32)(unsafe.Pointer(&attr[12])) = 1
	report("bpf", fdOf(unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))))
	report("userfaultfd", fdOf(unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)))
	pa := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK, Size: uint32(unsafe.Sizeof(unix.PerfEventAttr{})), Bits: unix.PerfBitDisabled | unix.PerfBitExcludeKernel}
	fd, err := unix.PerfEventOpen(&pa, 0, -1, -1, 0)
	if err == nil {
		unix.Close(fd)
	}
	report("perf_event_open", err)
}

// status prints the process's seccomp mode, no_new_privs and effective
// capabilities, as /proc/self/status gives them.
func status() {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Printf("status %v\n", err)
		return
	}
	defer f.Close()
	want := map[string]string{"Seccomp": "seccomp", "NoNewPrivs": "no_new_privs", "CapEff": "capeff"}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), ":")
		if name, ok := want[k]; ok {
			fmt.Printf("%s %s\n", name, strings.TrimSpace(v))
		}
	}
}

// tryMount mounts a tmpfs on a directory of its own, and unmounts it if
// that worked.
func tryMount() error {
	dir, err := os.MkdirTemp("", "seccompprobe-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := unix.Mount("none", dir, "tmpfs", 0, ""); err != nil {
		return err
	}
	return unix.Unmount(dir, 0)
}

// errKilled: the kernel killed the child, or the thread of it that made
// the call (see inChild).
var errKilled = errors.New("killed")

// errOther: the call answered, but not what it answers (an i386 getpid
// that did not return the pid: the entry is not there).
var errOther = errors.New("other")

// errFault: the call faulted before the kernel took it (int $0x80 where
// the kernel has no i386 entry).
var errFault = errors.New("fault")

func report(name string, err error) {
	var errno syscall.Errno
	var exit *exec.ExitError
	switch {
	case err == nil:
		fmt.Println(name, "ok")
	case err == errKilled, err == errOther, err == errFault:
		fmt.Println(name, err)
	case errors.As(err, &errno):
		fmt.Println(name, errnoName(errno))
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			fmt.Println(name, "signal", unix.SignalName(ws.Signal()))
		} else {
			fmt.Println(name, "exit", exit.ExitCode())
		}
	default:
		fmt.Println(name, "error", strings.ReplaceAll(err.Error(), "\n", " "))
	}
}

func errnoName(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno%d", int(e))
}

func fdOf(r1, _ uintptr, e syscall.Errno) error {
	if e != 0 {
		return e
	}
	unix.Close(int(r1))
	return nil
}

func errnoOf(e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// loopback listens on 127.0.0.1 and connects to itself: what a test of
// a network server does in a container without a network.
func loopback() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// ptraceAttach attaches to pid and, if that worked, waits for its stop
// and detaches.
func ptraceAttach(pid int) error {
	runtime.LockOSThread() // ptrace requests come from the tracing thread
	defer runtime.UnlockOSThread()
	if err := unix.PtraceAttach(pid); err != nil {
		return err
	}
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, unix.WALL, nil)
	return unix.PtraceDetach(pid)
}

// inChild runs what in a child, which writes the errno of its call (0
// for none, -1 for an answer that is not the call's) and exits, and
// returns it once written, killing the child (which may be stopped,
// traced by us). A child the kernel killed, or whose calling thread it
// killed, is errKilled.
func inChild(what string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], what)
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	err = cmd.Start()
	w.Close()
	if err != nil {
		return err
	}
	fd := int(r.Fd())
	unix.SetNonblock(fd, true)
	// result is what the child wrote, if it wrote anything yet: it
	// writes before it exits, so a child gone (or whose main thread is)
	// without a result died before its call returned.
	result := func() (error, bool) {
		var b [16]byte
		n, _ := unix.Read(fd, b[:])
		if n <= 0 {
			return nil, false
		}
		e, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
		switch {
		case err != nil:
			return fmt.Errorf("child wrote %q", b[:n]), true
		case e == -2:
			return errFault, true
		case e < 0:
			return errOther, true
		case e == 0:
			return nil, true
		}
		return syscall.Errno(e), true
	}
	pid := cmd.Process.Pid
	var ws unix.WaitStatus
	end := func() { unix.Kill(pid, unix.SIGKILL); unix.Wait4(pid, &ws, unix.WALL, nil) }
	for {
		if err, ok := result(); ok {
			end() // it may be stopped, traced
			return err
		}
		got, err := unix.Wait4(pid, &ws, unix.WALL|unix.WNOHANG, nil)
		switch {
		case err != nil:
			return err
		case got == pid && ws.Stopped():
			unix.PtraceCont(pid, 0) // traced (PTRACE_TRACEME worked): go on
		case got == pid:
			if err, ok := result(); ok {
				return err
			}
			return errKilled
		default:
			// A child whose main thread the kernel killed lives on in
			// its other threads, its main thread a zombie. A traced one
			// stopped (which not every kernel reports to WNOHANG) goes on.
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if strings.Contains(string(b), ") t ") {
				unix.PtraceCont(pid, 0)
			}
			if strings.Contains(string(b), ") Z ") {
				err, ok := result()
				end()
				if !ok {
					err = errKilled
				}
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// The main goroutine runs on the main thread: a call that gets its thread
// killed gets the main thread killed, which inChild sees.
func init() { runtime.LockOSThread() }

// child is the probe run as its own child.
func child(what string) {
	switch what {
	case "sleep":
		os.Stdin.Read(make([]byte, 1))
	case "exit":
	case "traceme":
		// The result goes out at once: traced, the child stops at every
		// signal (the Go runtime sends itself some) until its parent,
		// which reads the result and kills it, lets it go.
		_, _, e := unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0)
		b := []byte(strconv.Itoa(int(e)) + "\n")
		unix.RawSyscall(unix.SYS_WRITE, 1, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	case "int80":
		// getpid through the i386 system call entry (int $0x80), which a
		// 64-bit process can use where the kernel emulates i386. Where the
		// filter does not know that architecture, the kernel may kill the
		// calling thread.
		// Where the kernel has no i386 entry at all (ia32 emulation off,
		// as on some VMs), int $0x80 faults before any filter sees it:
		// that is reported as "fault", not a crash on the probe's error.
		debug.SetPanicOnFault(true)
		defer func() {
			if recover() != nil {
				fmt.Println(-2)
			}
		}()
		r := int32(int80(20, 0, 0, 0))
		switch {
		case r < 0:
			fmt.Println(-r)
		case int(r) != os.Getpid():
			fmt.Println(-1) // not getpid's answer
		default:
			fmt.Println(0)
		}
	}
}
