package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/internal/testenv"
	"github.com/llm-runtime/llm-runtime/serve/wire"
)

// A test binary run with LLM_RUNTIME_TEST_CONNECT=SOCKET connects to it,
// sends a status hello and prints what came back: the other user of
// TestAnotherUsersConnectionIsRefused.
func TestMain(m *testing.M) {
	if path := os.Getenv("LLM_RUNTIME_TEST_CONNECT"); path != "" {
		nc, err := net.Dial("unix", path)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(1)
		}
		c := wire.NewConn(nc)
		c.SendJSON(wire.FrameHello, wire.Hello{Build: "test", Op: "status"})
		typ, b, err := c.Recv()
		fmt.Printf("reply %q %s %v\n", typ, b, err)
		os.Exit(0)
	}
	os.Exit(testenv.Main(m))
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startDaemon(t *testing.T, dir string) (*Daemon, *logBuf) {
	t.Helper()
	log := &logBuf{}
	d, err := Listen(Options{Socket: filepath.Join(dir, "s.sock"), Build: "test", MaxPools: 2, Logf: log.logf})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(context.Background()) }()
	t.Cleanup(func() {
		d.Stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return d, log
}

func localRun(t *testing.T, root, audit string) *wire.RunRequest {
	cfg := config.Default()
	cfg.Sandbox = "local"
	cfg.Audit.Enabled = audit != ""
	return &wire.RunRequest{Root: root, Config: cfg, AuditDir: audit}
}

func TestARunComesBackAsTheFilterPrintsIt(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("A\n"), 0o644)
	d, _ := startDaemon(t, t.TempDir())
	var out bytes.Buffer
	r := &wire.Run{Socket: d.Socket(), Build: "test", Request: localRun(t, root, t.TempDir()), Timeout: 10 * time.Second,
		In: strings.NewReader("<open a.txt> <write b.txt>B</write> <open missing>"), Out: &out}
	s, err := r.Start()
	if err != nil {
		t.Fatal(err)
	}
	if s.Pool != "new" {
		t.Fatalf("pool %q, want new", s.Pool)
	}
	end, err := s.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if end.Commands != 3 || end.Failed != 1 || end.Kind != "" || end.Session == "" {
		t.Fatalf("end: %+v", end)
	}
	for _, want := range []string{"=== FILE: a.txt ===\nA\n", "=== WRITE SUCCESSFUL: b.txt ===", "=== ERROR: FILE_NOT_FOUND ===", "Commands executed: 3\n"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("no %q in\n%s", want, out.String())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "b.txt")); string(b) != "B" {
		t.Fatalf("b.txt = %q", b)
	}
	// The same root and settings: the same pool.
	r.In, r.Out = strings.NewReader("<open a.txt>"), io.Discard
	if s, err = r.Start(); err != nil || s.Pool != "warm" {
		t.Fatalf("second run: %v, pool %q", err, s.Pool)
	}
	s.Wait(context.Background())
	if st := d.Status(); st.Served != 2 || len(st.Pools) != 1 || st.Pools[0].Runs != 2 {
		t.Fatalf("status: %+v", st)
	}
}

func TestAnotherBuildRunsOnItsOwn(t *testing.T) {
	d, _ := startDaemon(t, t.TempDir())
	r := &wire.Run{Socket: d.Socket(), Build: "other", Request: localRun(t, t.TempDir(), ""), Timeout: 10 * time.Second, In: strings.NewReader(""), Out: io.Discard}
	_, err := r.Start()
	var busy *wire.BusyError
	if !errors.As(err, &busy) || !strings.Contains(busy.Reason, "the daemon is test, the client other") {
		t.Fatalf("err = %v", err)
	}
}

func TestACancelStopsTheRunAndSaysHowFarItGot(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("A\n"), 0o644)
	d, _ := startDaemon(t, t.TempDir())
	pr, pw := io.Pipe()
	out := &lockedBuffer{}
	r := &wire.Run{Socket: d.Socket(), Build: "test", Request: localRun(t, root, ""), Timeout: 10 * time.Second, In: pr, Out: out}
	s, err := r.Start()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		pw.Write([]byte("<open a.txt>"))
		// The input stays open, as a model still writing; then ^C.
		for !strings.Contains(out.String(), "=== END COMMAND ===") {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	end, err := s.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if end.Kind != "interrupted" || end.Commands != 1 {
		t.Fatalf("end: %+v", end)
	}
	// The output says so too, as a run of the filter's own does.
	if got := out.String(); !strings.Contains(got, "=== LLM TOOL INTERRUPTED ===\nCommands executed: 1\n") || !strings.HasSuffix(got, "=== END ===\n") {
		t.Fatalf("output:\n%s", got)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestNoDaemonIsSaidSo(t *testing.T) {
	dir := t.TempDir()
	r := &wire.Run{Socket: filepath.Join(dir, "none.sock"), Build: "test", Request: localRun(t, dir, ""), Timeout: time.Second}
	if _, err := r.Start(); !errors.Is(err, wire.ErrNoDaemon) {
		t.Fatalf("err = %v", err)
	}
	// A socket left by a dead daemon: nothing listens.
	ln, _ := net.Listen("unix", filepath.Join(dir, "dead.sock"))
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	r.Socket = filepath.Join(dir, "dead.sock")
	if _, err := r.Start(); !errors.Is(err, wire.ErrNoDaemon) {
		t.Fatalf("err = %v", err)
	}
	// A new daemon takes that socket over.
	d, _ := Listen(Options{Socket: r.Socket, Build: "test"})
	if d == nil {
		t.Fatal("no daemon could take a dead daemon's socket")
	}
	go d.Serve(context.Background())
	defer d.Stop()
	r.In, r.Out = strings.NewReader(""), io.Discard
	if s, err := r.Start(); err != nil {
		t.Fatalf("on the new daemon: %v", err)
	} else {
		s.Wait(context.Background())
	}
}

func TestOneDaemonPerSocket(t *testing.T) {
	dir := t.TempDir()
	startDaemon(t, dir)
	_, err := Listen(Options{Socket: filepath.Join(dir, "s.sock"), Build: "test"})
	if !strings.Contains(fmt.Sprint(err), fmt.Sprintf("another llm-runtime serve (pid %d) holds this socket", os.Getpid())) {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaultSocket(t *testing.T) {
	env := map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}
	get := func(k string) string { return env[k] }
	if got := wire.DefaultSocket(get); got != "/run/user/1000/llm-runtime/serve.sock" {
		t.Fatal(got)
	}
	env = map[string]string{"XDG_RUNTIME_DIR": "relative", "TMPDIR": "/var/tmp"}
	if got, want := wire.DefaultSocket(get), fmt.Sprintf("/var/tmp/llm-runtime-%d/serve.sock", os.Getuid()); got != want {
		t.Fatalf("%s, want %s", got, want)
	}
}

// TestAnotherUsersConnectionIsRefused: with the socket opened to everyone
// (as a careless chmod would), a process of another uid reaches it, and the
// daemon hangs up on it at once (SO_PEERCRED), answering nothing.
func TestAnotherUsersConnectionIsRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a process as another user")
	}
	dir, err := os.MkdirTemp("", "llm-runtime-peercred-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "helper")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	d, log := startDaemon(t, dir)
	os.Chmod(d.Socket(), 0o666)
	cmd := exec.Command(bin)
	cmd.Env = []string{"LLM_RUNTIME_TEST_CONNECT=" + d.Socket()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Hung up on without an answer: EOF, or a reset when the hello it sent
	// was still unread.
	if o := string(out); !strings.Contains(o, "reply '\\x00'  ") || !strings.Contains(o, "EOF") && !strings.Contains(o, "connection reset by peer") {
		t.Fatalf("the other user got: %s", out)
	}
	if !strings.Contains(log.String(), "Refused a connection from uid 65534") {
		t.Fatalf("log:\n%s", log)
	}
	// This user is served.
	if st, err := wire.GetStatus(d.Socket(), "test", 5*time.Second); err != nil || st.PID != os.Getpid() {
		t.Fatalf("status: %v %+v", err, st)
	}
}
