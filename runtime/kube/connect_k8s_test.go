package kube_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/dynamic"

	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
	"github.com/llm-runtime/llm-runtime/runtime/kube"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// TestK8sASessionConnectsToItsPodsAgent: through the real API server (a
// WebSocket exec of the agent's relay, which the API server carries to
// the node's kubelet endpoint), a session reaches the agent of its claimed
// pod, run by the test node in Docker from the sandbox image: it
// configures the session's limits, pushes a file to the pod's workspace,
// reads it back, is refused a path out of it, and closes the agent. The
// per-operation figure over the stream is logged.
func TestK8sASessionConnectsToItsPodsAgent(t *testing.T) {
	c := agentPool(t, 1)
	c.Await(func(s string) bool { return strings.Count(s, "True") == 1 }, "-n", "agents", "get", "sandboxes", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	cfg := c.RESTConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	claims := &kube.Claims{Client: dyn, Namespace: "agents", Pool: "llm-runtime", Lease: 2 * time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := claims.Claim(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer claims.Release(context.Background(), cl)
	start := time.Now()
	conn, err := kube.Connect(ctx, cfg, "agents", cl.Pod)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping over the stream: %v\n%s", conn.Explain(err), c.Log("kube-apiserver"))
	}
	t.Logf("claim to ready %s, connect to the first reply %s", cl.Took, time.Since(start))
	if err := conn.Configure(ctx, sandbox.Limits{MaxFileSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Unpack(ctx, agent.Push{Put: []sandbox.CopyEntry{{Path: "hello.txt", Mode: unix.S_IFREG | 0o644, Size: 6, Mtime: time.Now().UnixNano()}}}, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if f, err := conn.Open(ctx, "hello.txt"); err != nil || string(f.Content) != "hello\n" {
		t.Fatalf("open: %v", err)
	}
	if _, err := conn.Open(ctx, "../etc/passwd"); sandbox.AsError(err).Code != sandbox.CodePathSecurity {
		t.Fatalf("open out of the workspace: %v", err)
	}
	var d []time.Duration
	for range 200 {
		s := time.Now()
		if _, err := conn.Open(ctx, "hello.txt"); err != nil {
			t.Fatal(err)
		}
		d = append(d, time.Since(s))
	}
	slices.Sort(d)
	t.Logf("open over the stream: p50 %s, p95 %s", d[len(d)/2], d[len(d)*95/100])
	if err := conn.CloseAgent(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Done():
		t.Logf("the stream ended: %v", conn.Ended())
	case <-time.After(time.Minute):
		t.Fatal("the stream did not end after the agent closed")
	}
}
