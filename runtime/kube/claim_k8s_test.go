package kube_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/llm-runtime/llm-runtime/runtime/kube"
	"github.com/llm-runtime/llm-runtime/runtime/kube/kubetest"
)

// manifests are kubernetes manifests' output, from the binary built for
// the test.
func manifests(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "llm-runtime")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/llm-runtime/llm-runtime/cmd/llm-runtime").CombinedOutput(); err != nil {
		t.Fatalf("building llm-runtime: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, append([]string{"kubernetes", "manifests"}, args...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestK8sAClaimTakesAWarmPodAndReleasingItEndsIt: on the real control
// plane, agent-sandbox's controller and a test node that runs the pool's
// pods (marks them running with an IP), a session's claim is ready with one
// of the warm pods, renews, and on release its sandbox and pod go and the
// pool makes up its number. The claims' times to ready are logged.
func TestK8sAClaimTakesAWarmPodAndReleasingItEndsIt(t *testing.T) {
	c := kubetest.Require(t)
	c.StartController()
	c.StartNode("node-1", kubetest.NodeOptions{})
	c.Namespace("agents")
	c.MustKubectl(manifests(t, "--image", "registry.example.com/llm-runtime-io:abc", "--namespace", "agents", "--replicas", "2"), "apply", "--validate=strict", "-f", "-")
	warm := func() []string {
		out := c.Await(func(s string) bool { return strings.Count(s, " True") == 2 },
			"-n", "agents", "get", "sandboxes", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			names = append(names, strings.Fields(l)[0])
		}
		return names
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	claims := &kube.Claims{Client: dyn, Namespace: "agents", Pool: "llm-runtime", Lease: 2 * time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var took []time.Duration
	for i := range 3 {
		pool := warm()
		cl, err := claims.Claim(ctx, "test-host/1234")
		if err != nil {
			t.Fatalf("claim %d: %v\n%s", i, err, c.Log("agent-sandbox-controller"))
		}
		took = append(took, cl.Took)
		pod := c.MustKubectl("", "-n", "agents", "get", "pod", cl.Pod, "-o", "jsonpath={.status.phase} {.status.podIP}")
		if !slices.Contains(pool, cl.Sandbox) || !strings.HasPrefix(pod, "Running 10.244.") {
			t.Fatalf("claim %d got sandbox %s (the warm ones: %v), pod %s: %s", i, cl.Sandbox, pool, cl.Pod, pod)
		}
		if err := claims.Renew(ctx, cl); err != nil {
			t.Fatal(err)
		}
		if err := claims.Release(ctx, cl); err != nil {
			t.Fatal(err)
		}
		c.Await(func(s string) bool { return !strings.Contains(s, "/"+cl.Pod+"\n") }, "-n", "agents", "get", "pods", "-o", "name")
		if err := claims.Release(ctx, cl); err != nil {
			t.Fatalf("a second release: %v", err)
		}
	}
	warm()
	t.Logf("claim to ready, a warm pod each time: %v", took)

	none := &kube.Claims{Client: dyn, Namespace: "agents", Pool: "nope", Lease: time.Minute}
	if _, err := none.Claim(ctx, "x"); !errors.Is(err, kube.ErrNoPool) || !strings.Contains(err.Error(), "kubernetes manifests") {
		t.Fatalf("a claim on a missing pool: %v", err)
	}
}
