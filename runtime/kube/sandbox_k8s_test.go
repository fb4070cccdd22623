package kube_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/kube"
	"github.com/llm-runtime/llm-runtime/runtime/kube/kubetest"
	"github.com/llm-runtime/llm-runtime/sandbox"
	"github.com/llm-runtime/llm-runtime/sandbox/sandboxtest"
)

// agentPool is a control plane with agent-sandbox's controller, a test
// node running pods in Docker, and a warm pool of replicas agent pods of
// the sandbox image in the namespace agents.
func agentPool(t *testing.T, replicas int) *kubetest.Cluster {
	env := dockertest.Require(t)
	c := kubetest.Require(t)
	c.StartController()
	c.StartNode("node-1", kubetest.NodeOptions{Docker: true, Labels: env.Labels})
	c.Namespace("agents")
	c.MustKubectl(manifests(t, "--image", env.Image, "--namespace", "agents", "--replicas", strconv.Itoa(replicas)), "apply", "--validate=strict", "-f", "-")
	return c
}

// TestK8sConformance runs the whole sandbox suite, hostile cases and the
// racer included, on Kubernetes: each sandbox claims a warm pod of the
// pool on the real control plane, attaches to its agent through the API
// server, and works on the repository pushed to the pod.
func TestK8sConformance(t *testing.T) {
	c := agentPool(t, 2)
	cfg := c.RESTConfig()
	stateDir := t.TempDir()
	var claimed []string
	sandboxtest.RunCopy(t, func(t *testing.T, dir string, limits sandbox.Limits) sandbox.Sandbox {
		sb, err := kube.NewSandbox(kube.Options{Config: cfg, Namespace: "agents", Pool: "llm-runtime", Lease: time.Minute,
			Root: dir, Limits: limits, StateDir: stateDir, Session: "conformance"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if _, err := sb.Resolve(ctx, "."); err != nil {
			t.Fatalf("the first operation: %v", err)
		}
		cl := sb.Claim()
		claimed = append(claimed, cl.Pod)
		t.Logf("claim to ready %s, pod %s; first push %+v", cl.Took, cl.Pod, sb.LastPush())
		return sb
	})
	if len(claimed) < 9 {
		t.Fatalf("only %d sandboxes claimed pods", len(claimed))
	}
	// Every claim was released: no claim is left.
	c.Await(func(s string) bool { return strings.TrimSpace(s) == "" }, "-n", "agents", "get", "sandboxclaims", "-o", "name")
}

// TestK8sAPodKilledBetweenOperationsIsReplaced: when the session's pod is
// deleted (its container killed with it, the attach broken), the next read
// claims another pod, pushes the repository there again, and answers; the
// dead pod's claim is released.
func TestK8sAPodKilledBetweenOperationsIsReplaced(t *testing.T) {
	c := agentPool(t, 2)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("A\n"), 0o644)
	sb, err := kube.NewSandbox(kube.Options{Config: c.RESTConfig(), Namespace: "agents", Pool: "llm-runtime", Lease: time.Minute,
		Root: dir, StateDir: t.TempDir(), Session: "faults"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if f, err := sb.Open(ctx, "a.txt"); err != nil || string(f.Content) != "A\n" {
		t.Fatalf("the first read: %v", err)
	}
	first := sb.Claim()
	uid := c.MustKubectl("", "-n", "agents", "get", "pod", first.Pod, "-o", "jsonpath={.metadata.uid}")
	c.MustKubectl("", "-n", "agents", "delete", "pod", first.Pod, "--wait=false")
	// Gone (its sandbox may make a pod of the same name again).
	c.Await(func(s string) bool { return !strings.Contains(s, uid) }, "-n", "agents", "get", "pods", "-o", "jsonpath={.items[*].metadata.uid}")
	if f, err := sb.Open(ctx, "a.txt"); err != nil || string(f.Content) != "A\n" {
		t.Fatalf("the read after the pod died: %v", err)
	}
	if second := sb.Claim(); second.Name == first.Name || second.Pod == first.Pod {
		t.Fatalf("the same claim after the pod died: %+v", second)
	}
	// The dead pod's claim was released.
	c.Await(func(s string) bool { return !strings.Contains(s, first.Name) }, "-n", "agents", "get", "sandboxclaims", "-o", "name")
}
