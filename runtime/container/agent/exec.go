package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/llm-runtime/llm-runtime/internal/proc"
)

// ExecRequest is the body of an exec request, as JSON in the header.
type ExecRequest struct {
	Argv      []string `json:"argv"`
	Dir       string   `json:"dir"`
	TimeoutMS int64    `json:"timeout_ms"`
	MaxOutput int64    `json:"max_output"`
	// Env is set over the image's own environment (NAME=value).
	Env []string `json:"env,omitempty"`
	// Proxy, when set, is the unix socket (in SocketDir: EgressSocket)
	// of the host's egress proxy: the agent listens on the container's
	// loopback for the command's connections, carries each to it, and
	// sets HTTP_PROXY, HTTPS_PROXY and NO_PROXY to that listener.
	Proxy string `json:"proxy,omitempty"`
}

// ExecReply is the result of an exec; the output is the frame's body.
type ExecReply struct {
	ExitCode   int   `json:"exit_code"`
	TimedOut   bool  `json:"timed_out,omitempty"`
	Dropped    int64 `json:"dropped,omitempty"` // output bytes past MaxOutput
	DurationNS int64 `json:"duration_ns"`
	// Alone: every other process of the container is gone (the agent is
	// its init and killed and reaped them), so nothing changes the
	// workspace after the reply.
	Alone bool `json:"alone,omitempty"`
}

// execEnv is the environment of an exec'd command: the image's own (what
// the container started with: the image's ENV and what Docker adds, never
// the host's), with env set over it, a HOME that can be written (/tmp,
// when the image has none, or "/"), and a PATH and LANG when the image
// sets none.
func execEnv(base, env []string) []string {
	vars := map[string]string{}
	var order []string
	set := func(kv string) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return
		}
		if _, seen := vars[k]; !seen {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, kv := range base {
		set(kv)
	}
	for _, kv := range env {
		set(kv)
	}
	if h := vars["HOME"]; h == "" || h == "/" {
		set("HOME=/tmp")
	}
	if vars["PATH"] == "" {
		set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if vars["LANG"] == "" {
		set("LANG=C.UTF-8")
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// runExec runs argv in its own process group, stdout and stderr merged in
// order, keeping the first MaxOutput bytes. On timeout the whole group is
// killed and the exit code is 124, as timeout(1) reports it.
func runExec(req ExecRequest) (ExecReply, []byte, error) {
	if len(req.Argv) == 0 {
		return ExecReply{}, nil, errors.New("empty command")
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	out := &capped{max: req.MaxOutput}
	env := req.Env
	if req.Proxy != "" {
		eg, err := startEgress(req.Proxy)
		if err != nil {
			return ExecReply{}, nil, fmt.Errorf("the network proxy: %v", err)
		}
		defer eg.Close() // after every process of the command is gone (reapAll)
		env = append(slices.Clone(env), eg.env()...)
	}
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Dir = req.Dir
	cmd.Env = execEnv(os.Environ(), env)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A background process that keeps the output pipe open must not hold
	// the reply once the command itself has exited or been killed.
	cmd.WaitDelay = 500 * time.Millisecond
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return ExecReply{}, nil, err
	}
	// Make the command, not the agent, what the OOM killer picks first.
	os.WriteFile("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/oom_score_adj", []byte("1000"), 0)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	timedOut := false
	stop := context.AfterFunc(ctx, func() {
		timedOut = ctx.Err() == context.DeadlineExceeded
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	err := cmd.Wait()
	stopped := stop()
	// Whatever the command left running in its group goes too.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	rep := ExecReply{DurationNS: int64(time.Since(start)), Dropped: out.dropped, Alone: reapAll()}
	var ee *exec.ExitError
	switch {
	case !stopped && timedOut:
		rep.ExitCode, rep.TimedOut = 124, true
	case errors.Is(err, exec.ErrWaitDelay):
		// It exited 0, and left something behind that held its output
		// open (killed with its group above).
		rep.ExitCode = cmd.ProcessState.ExitCode()
	case errors.As(err, &ee):
		rep.ExitCode = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			rep.ExitCode = 128 + int(ws.Signal())
		}
	case err != nil:
		return ExecReply{}, nil, fmt.Errorf("running %s: %v", req.Argv[0], err)
	}
	return rep, out.buf.Bytes(), nil
}

// Warm looks up, once, each directory of the PATH a command gets (the
// image's, else execEnv's default) and a name in it that does not exist,
// and reads each of programs as a command's lookup would find it, whole
// (at most 256 MiB in all): in a fresh container's overlay the first
// lookups under a directory are slow (finding true in busybox's PATH took
// 1.7-4 ms, 0.1-0.5 ms once the directories had been looked up), and so
// is the first run of a program whose file was never read through it
// (busybox's first run took 4.7-5.1 ms, 1.0-1.2 ms once its file had
// been read, 0.5-0.9 ms a second time), and every exec container runs one
// command. It runs before any command, reads files of the image (or what
// their links name) and nothing else, opens nothing but regular files, and
// starts nothing.
func Warm(programs []string) {
	var dirs []string
	for _, kv := range execEnv(os.Environ(), nil) {
		if path, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, dir := range filepath.SplitList(path) {
				if filepath.IsAbs(dir) {
					dirs = append(dirs, dir)
					os.Stat(dir)
					os.Lstat(filepath.Join(dir, ".llm-runtime-warm"))
				}
			}
		}
	}
	budget := int64(256 << 20)
	read := map[[2]uint64]bool{}
	buf := make([]byte, 256<<10)
	for _, p := range programs {
		cands := []string{p}
		if !strings.Contains(p, "/") {
			cands = nil
			for _, dir := range dirs {
				cands = append(cands, filepath.Join(dir, p))
			}
		} else if !filepath.IsAbs(p) {
			continue // the repository's: not the image's to warm
		}
		for _, c := range cands {
			if n, found := warmFile(c, buf, budget, read); found {
				budget -= n
				break
			}
		}
	}
}

// warmFile reads the regular, executable file at path whole, within
// budget, unless read holds it; found says there was one.
func warmFile(path string, buf []byte, budget int64, read map[[2]uint64]bool) (n int64, found bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, true
	}
	id := [2]uint64{st.Dev, st.Ino}
	if read[id] {
		return 0, true
	}
	read[id] = true
	n, _ = io.CopyBuffer(io.Discard, io.LimitReader(f, budget), buf)
	return n, true
}

// reapAll, in the agent that is its container's init (pid 1), kills every
// other process of the container, whatever process group or session it
// moved to, and waits until each is gone: after it nothing the command
// started can touch the workspace. Elsewhere (a test on the host) it does
// nothing and reports false.
func reapAll() bool {
	if os.Getpid() != 1 {
		return false
	}
	syscall.Kill(-1, syscall.SIGKILL)
	for {
		_, err := syscall.Wait4(-1, nil, 0, nil)
		if err == syscall.ECHILD {
			return true
		}
		if err != nil && err != syscall.EINTR {
			return false
		}
	}
}

// capped keeps the first max bytes written and counts the rest.
type capped struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int64
	dropped int64
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - int64(c.buf.Len())
	if room < 0 {
		room = 0
	}
	keep := min(int64(len(p)), room)
	c.buf.Write(p[:keep])
	c.dropped += int64(len(p)) - keep
	return len(p), nil
}

// ReserveThreads makes the Go runtime start n more OS threads now and keep
// them idle. A fork bomb exhausts the container's process limit, and a Go
// program that cannot start a thread when it needs one dies; with threads
// in reserve the agent outlives the bomb and reports it. Goroutines blocked
// in read(2) on blocking pipes each hold a thread; once released, the
// threads stay in the runtime's idle list.
func ReserveThreads(n int) {
	target := threads() + n
	var fds [][2]int
	defer func() {
		for _, p := range fds {
			syscall.Close(p[0])
			syscall.Close(p[1])
		}
	}()
	var wg sync.WaitGroup
	for range n {
		var p [2]int
		if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
			break
		}
		fds = append(fds, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [1]byte
			syscall.Read(p[0], b[:])
		}()
	}
	for deadline := time.Now().Add(time.Second); threads() < target && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	for _, p := range fds {
		syscall.Write(p[1], []byte{0})
	}
	wg.Wait()
}

// threads returns the process's thread count, from /proc.
func threads() int {
	v, _ := proc.SelfStatus("Threads")
	n, _ := strconv.Atoi(v)
	return n
}

// Install copies the running binary to dir/llm-runtime (mode 0755), under
// a temporary name first, so that the name appears only once the whole
// binary is there.
func Install(dir string) error {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer self.Close()
	tmp := filepath.Join(dir, ".llm-runtime.tmp")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, self)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o755)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, "llm-runtime"))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
