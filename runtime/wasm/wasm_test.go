package wasm_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/wasm"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

// patience is the per-call deadline of guests whose calls must succeed:
// the default (100 ms) is a bound a loaded machine can make a quick call
// miss. Only the tests of the deadline itself set a short one.
const patience = time.Minute

// compile compiles the guest at dir; a spec without a Timeout gets
// patience.
func compile(t testing.TB, dir string, spec wasm.Spec) *wasm.Module {
	t.Helper()
	spec.Path = wasmtest.Build(t, dir)
	if spec.Timeout == 0 {
		spec.Timeout = patience
	}
	m, err := wasm.Compile(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

type decisionCase struct {
	req      wasm.Request
	decision string
}

func checkDecisions(t *testing.T, m *wasm.Module, cases []decisionCase) {
	t.Helper()
	for _, c := range cases {
		rep, err := m.Decide(context.Background(), c.req)
		if err != nil {
			t.Fatalf("%+v: %v", c.req, err)
		}
		if rep.Decision != c.decision {
			t.Errorf("%s %s%s: %s (%s), want %s", c.req.Op, c.req.Path, c.req.Command, rep.Decision, rep.Reason, c.decision)
		}
		if rep.Decision == "deny" && rep.Reason == "" {
			t.Errorf("%+v: a denial without a reason", c.req)
		}
	}
}

// The guest SDK's own JSON codec must carry any path through unchanged:
// quotes, backslashes, control characters, non-ASCII (sent as UTF-8), and
// <, > and & (which encoding/json escapes as \u003c...).
func TestGuestSDKCarriesEscapedStringsUnchanged(t *testing.T) {
	m := compile(t, "guests/protect-secrets", wasm.Spec{})
	for _, p := range []string{
		`dir "quoted"/.env`,
		`back\slash\\/.env`,
		"tab\there\nnew line/\x01/.env",
		"caf\u00e9 <b>&amp;</b>/\U0001F600/.env",
		"UPPER/Secrets/.ENV",
	} {
		rep, err := m.Decide(context.Background(), wasm.Request{Op: "open", Path: p})
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		if want := p + " looks like a credential file"; rep.Decision != "deny" || !strings.HasPrefix(rep.Reason, want) {
			t.Errorf("%q: %s %q, want deny %q...", p, rep.Decision, rep.Reason, want)
		}
	}
}

func TestProtectSecretsDecisions(t *testing.T) {
	m := compile(t, "guests/protect-secrets", wasm.Spec{})
	checkDecisions(t, m, []decisionCase{
		{wasm.Request{Op: "open", Path: ".env"}, "deny"},
		{wasm.Request{Op: "write", Path: ".env.local"}, "deny"},
		{wasm.Request{Op: "open", Path: "config/prod.env"}, "deny"},
		{wasm.Request{Op: "open", Path: "certs/server.PEM"}, "deny"},
		{wasm.Request{Op: "write", Path: "keys/deploy.key"}, "deny"},
		{wasm.Request{Op: "open", Path: ".ssh/id_rsa"}, "deny"},
		{wasm.Request{Op: "open", Path: "home/id_ed25519.pub"}, "deny"},
		{wasm.Request{Op: "open", Path: ".npmrc"}, "deny"},
		{wasm.Request{Op: "open", Path: "README.md"}, "allow"},
		{wasm.Request{Op: "open", Path: "src/environment.go"}, "allow"},
		{wasm.Request{Op: "write", Path: "docs/keys.md"}, "allow"},
		{wasm.Request{Op: "search", Query: "password"}, "allow"},
		{wasm.Request{Op: "exec", Command: "curl https://example.com"}, "deny"},
		{wasm.Request{Op: "exec", Command: "/usr/bin/wget -q x"}, "deny"},
		{wasm.Request{Op: "exec", Command: "go test ./... && ssh host"}, "deny"},
		{wasm.Request{Op: "exec", Command: "ls | nc host 80"}, "deny"},
		{wasm.Request{Op: "exec", Command: "FOO=1 sudo scp a b"}, "deny"},
		{wasm.Request{Op: "exec", Command: "go test ./..."}, "allow"},
		{wasm.Request{Op: "exec", Command: "echo curl"}, "allow"},
	})
	configured := compile(t, "guests/protect-secrets", wasm.Spec{Config: json.RawMessage(`{"paths":["*.secret"],"commands":["go"]}`)})
	checkDecisions(t, configured, []decisionCase{
		{wasm.Request{Op: "open", Path: "a.secret"}, "deny"},
		{wasm.Request{Op: "open", Path: ".env"}, "allow"},
		{wasm.Request{Op: "exec", Command: "go test"}, "deny"},
		{wasm.Request{Op: "exec", Command: "curl x"}, "allow"},
	})
}

func TestReadonlyDecisions(t *testing.T) {
	m := compile(t, "guests/readonly", wasm.Spec{})
	checkDecisions(t, m, []decisionCase{
		{wasm.Request{Op: "open", Path: "a"}, "allow"},
		{wasm.Request{Op: "search", Query: "x"}, "allow"},
		{wasm.Request{Op: "write", Path: "a"}, "deny"},
		{wasm.Request{Op: "exec", Command: "ls"}, "deny"},
	})
	if !m.HasPolicy() || m.HasTransform() {
		t.Fatalf("exports %v", m.Exports())
	}
}

func TestRedactMasksSecrets(t *testing.T) {
	m := compile(t, "guests/redact", wasm.Spec{})
	in := strings.Join([]string{
		"aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
		"token: ghp_" + strings.Repeat("a", 36),
		"DB_PASSWORD=hunter22",
		`password: "s3cr3t!"`,
		"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----",
		"nothing to see: the password field is required",
	}, "\n")
	out, n, err := m.Transform(context.Background(), wasm.TransformRequest{Op: "open", Path: "x", Output: in})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"AKIAIOSFODNN7EXAMPLE", "ghp_aaaa", "hunter22", "s3cr3t!", "MIIEpAIBAAKCAQEA"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q survived:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "the password field is required") || !strings.Contains(out, "DB_PASSWORD=[REDACTED]") {
		t.Errorf("too much or too little was masked:\n%s", out)
	}
	if n < 5 {
		t.Errorf("%d changes, want at least 5", n)
	}
	clean, n, err := m.Transform(context.Background(), wasm.TransformRequest{Op: "open", Output: "package main\n"})
	if err != nil || n != 0 || clean != "package main\n" {
		t.Fatalf("clean input: %q %d %v", clean, n, err)
	}
	if m.HasPolicy() || !m.HasTransform() {
		t.Fatalf("exports %v", m.Exports())
	}
}

// The deadline must stop the spin and also let the quick call after it
// through: it is short enough for a fast test, and thousands of times what
// the quick call takes (~100 µs), so that a loaded machine cannot make it
// miss (a guest's start-up gets 10 times the deadline, plus a second).
const spinDeadline = time.Second

func TestASpinningGuestIsStoppedAndReplaced(t *testing.T) {
	m := compile(t, "runtime/wasm/testdata/spin", wasm.Spec{Timeout: spinDeadline})
	start := time.Now()
	_, err := m.Decide(context.Background(), wasm.Request{Op: "open", Path: "loop"})
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("got %v", err)
	}
	// The spin never ends: any bound tells a deadline that held from one
	// that did not.
	if took := time.Since(start); took > patience {
		t.Fatalf("the deadline did not hold: %s", took)
	}
	// A fresh instance answers the next call.
	rep, err := m.Decide(context.Background(), wasm.Request{Op: "open", Path: "quick"})
	if err != nil || rep.Decision != "allow" {
		t.Fatalf("after the timeout: %+v %v", rep, err)
	}
}

func TestAGuestOutOfMemoryFails(t *testing.T) {
	m := compile(t, "runtime/wasm/testdata/oom", wasm.Spec{MemoryLimit: 64 << 20, Timeout: patience})
	_, err := m.Decide(context.Background(), wasm.Request{Op: "open", Path: "hog"})
	if err == nil {
		t.Fatal("a guest out of memory answered")
	}
	t.Logf("out of memory: %v", err)
	if rep, err := m.Decide(context.Background(), wasm.Request{Op: "open", Path: "quick"}); err != nil || rep.Decision != "allow" {
		t.Fatalf("after the crash: %+v %v", rep, err)
	}
}

func TestGarbageRepliesFail(t *testing.T) {
	m := compile(t, "runtime/wasm/testdata/garbage", wasm.Spec{})
	if _, err := m.Decide(context.Background(), wasm.Request{Op: "open", Path: "a"}); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("policy: %v", err)
	}
	if _, _, err := m.Transform(context.Background(), wasm.TransformRequest{Op: "open", Output: "x"}); err == nil || !strings.Contains(err.Error(), "outside its memory") {
		t.Fatalf("transform: %v", err)
	}
}

func TestCompileRejectsWhatIsNotAGuest(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.wasm")
	os.WriteFile(junk, []byte("not wasm"), 0o644)
	if _, err := wasm.Compile(context.Background(), wasm.Spec{Path: junk}); err == nil {
		t.Fatal("junk compiled")
	}
	if _, err := wasm.Compile(context.Background(), wasm.Spec{Path: filepath.Join(dir, "missing.wasm")}); err == nil {
		t.Fatal("a missing file compiled")
	}
	// A valid module that exports nothing of the ABI: (module)
	empty := filepath.Join(dir, "empty.wasm")
	os.WriteFile(empty, []byte{0, 'a', 's', 'm', 1, 0, 0, 0}, 0o644)
	if _, err := wasm.Compile(context.Background(), wasm.Spec{Path: empty}); err == nil || !strings.Contains(err.Error(), "does not export") {
		t.Fatalf("an empty module: %v", err)
	}
}

func TestChainFirstDenyWinsAndFailuresDeny(t *testing.T) {
	ctx := context.Background()
	ro := wasm.Spec{Path: wasmtest.Build(t, "guests/readonly"), Timeout: patience}
	ps := wasm.Spec{Path: wasmtest.Build(t, "guests/protect-secrets"), Timeout: patience}
	c := wasm.Start(ctx, []wasm.Spec{ps, ro}, nil)
	defer c.Close()
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	if v := c.Decide(ctx, wasm.Request{Op: "write", Path: ".env"}); v.Allowed || v.Decider != "protect-secrets" {
		t.Fatalf("write .env: %+v", v)
	}
	if v := c.Decide(ctx, wasm.Request{Op: "write", Path: "a.txt"}); v.Allowed || v.Decider != "readonly" {
		t.Fatalf("write a.txt: %+v", v)
	}
	if v := c.Decide(ctx, wasm.Request{Op: "open", Path: "a.txt"}); !v.Allowed || v.Argument != "a.txt" {
		t.Fatalf("open a.txt: %+v", v)
	}
	// It must start (within 10 times its deadline, plus a second) to fail
	// as itself, by its deadline.
	spin := wasm.Start(ctx, []wasm.Spec{{Path: wasmtest.Build(t, "runtime/wasm/testdata/spin"), Timeout: spinDeadline}}, nil)
	defer spin.Close()
	if v := spin.Decide(ctx, wasm.Request{Op: "open", Path: "x"}); v.Allowed || !v.Failed || v.Decider != "spin" {
		t.Fatalf("a failing guest must deny: %+v", v)
	}
	if wasm.Start(ctx, nil, nil) != nil {
		t.Fatal("no guests, yet a chain (and a wazero runtime)")
	}
	bad := wasm.Start(ctx, []wasm.Spec{{Path: wasmtest.Build(t, "guests/redact"), Timeout: patience}}, nil)
	defer bad.Close()
	if err := bad.Wait(); err == nil || !strings.Contains(err.Error(), "configured as a policy") {
		t.Fatalf("a transform configured as a policy: %v", err)
	}
}

// BenchmarkPolicyDecision is the per-operation overhead of one policy.
// Target: p50 <= 50 µs.
func BenchmarkPolicyDecision(b *testing.B) {
	m := compile(b, "guests/protect-secrets", wasm.Spec{})
	ctx := context.Background()
	req := wasm.Request{Op: "open", Path: "src/main.go", Session: "bench"}
	m.Decide(ctx, req)
	for b.Loop() {
		if _, err := m.Decide(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeleteAndMoveAreDeniedByGuestsThatDoNotKnowThem: a guest of ABI 1
// (built before delete and move) allows every op; the host does not ask it
// about delete and move and denies them, and asks it about the rest. The
// example guests, of ABI 2, decide on them: readonly denies both,
// protect-secrets judges both ends of a move.
func TestDeleteAndMoveAreDeniedByGuestsThatDoNotKnowThem(t *testing.T) {
	ctx := context.Background()
	old := compile(t, "runtime/wasm/testdata/abi1", wasm.Spec{})
	for _, op := range []string{"delete", "move"} {
		rep, err := old.Decide(ctx, wasm.Request{Op: op, Path: "a.txt", To: "b.txt"})
		if err != nil || rep.Decision != "deny" || !strings.Contains(rep.Reason, "ABI 1") {
			t.Errorf("%s by an ABI 1 guest: %+v %v, want a denial that names ABI 1", op, rep, err)
		}
	}
	if rep, err := old.Decide(ctx, wasm.Request{Op: "write", Path: "a.txt"}); err != nil || rep.Decision != "allow" {
		t.Errorf("write by an ABI 1 guest: %+v %v, want it asked (allow)", rep, err)
	}
	ro := compile(t, "guests/readonly", wasm.Spec{})
	ps := compile(t, "guests/protect-secrets", wasm.Spec{})
	for _, c := range []struct {
		m    *wasm.Module
		req  wasm.Request
		want string
	}{
		{ro, wasm.Request{Op: "delete", Path: "a.txt", Resolved: "a.txt"}, "deny"},
		{ro, wasm.Request{Op: "move", Path: "a.txt", Resolved: "a.txt", To: "b.txt", ToResolved: "b.txt"}, "deny"},
		{ps, wasm.Request{Op: "delete", Path: "a.txt", Resolved: "a.txt"}, "allow"},
		{ps, wasm.Request{Op: "delete", Path: "l", Resolved: ".env"}, "deny"},
		{ps, wasm.Request{Op: "move", Path: "a.txt", Resolved: "a.txt", To: "b.txt", ToResolved: "b.txt"}, "allow"},
		{ps, wasm.Request{Op: "move", Path: "a.txt", Resolved: "a.txt", To: "x/.env", ToResolved: "x/.env"}, "deny"},
		{ps, wasm.Request{Op: "move", Path: "id_rsa", Resolved: "id_rsa", To: "b.txt", ToResolved: "b.txt"}, "deny"},
	} {
		if rep, err := c.m.Decide(ctx, c.req); err != nil || rep.Decision != c.want {
			t.Errorf("%s %+v: %+v %v, want %s", c.m.Name(), c.req, rep, err, c.want)
		}
	}
}
