package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/kube/kubetest"
)

// TestK8sManifestsApplyToARealAPIServer: what kubernetes manifests prints
// applies, with strict validation (no field the CRDs' schemas or the
// built-in types do not know, none pruned), to a real kube-apiserver with
// agent-sandbox's CRDs, and reads back as printed.
func TestK8sManifestsApplyToARealAPIServer(t *testing.T) {
	t.Parallel()
	c := kubetest.Require(t)
	c.Namespace("agents")
	out, err := exec.Command(binary, "kubernetes", "manifests", "--image", "registry.example.com/llm-runtime-io:abc", "--namespace", "agents", "--replicas", "2").Output()
	if err != nil {
		t.Fatal(err)
	}
	applied := c.MustKubectl(string(out), "apply", "--validate=strict", "-f", "-")
	for _, want := range []string{"namespace/agents configured", "sandboxtemplate.extensions.agents.x-k8s.io/llm-runtime created", "sandboxwarmpool.extensions.agents.x-k8s.io/llm-runtime created",
		"networkpolicy.networking.k8s.io/llm-runtime-deny-all created", "role.rbac.authorization.k8s.io/llm-runtime-session created"} {
		if !strings.Contains(applied, want) {
			t.Fatalf("kubectl apply:\n%s", applied)
		}
	}
	var tmpl struct {
		Spec struct {
			NetworkPolicyManagement string          `json:"networkPolicyManagement"`
			NetworkPolicy           json.RawMessage `json:"networkPolicy"`
			PodTemplate             struct {
				Spec struct {
					AutomountServiceAccountToken *bool `json:"automountServiceAccountToken"`
					HostUsers                    *bool `json:"hostUsers"`
					SecurityContext              struct {
						RunAsNonRoot    *bool `json:"runAsNonRoot"`
						SeccompProfile  struct{ Type string }
						AppArmorProfile struct{ Type string } `json:"appArmorProfile"`
					} `json:"securityContext"`
					Containers []struct {
						Image           string
						Stdin           bool
						SecurityContext struct {
							ReadOnlyRootFilesystem *bool `json:"readOnlyRootFilesystem"`
							Capabilities           struct{ Drop []string }
						} `json:"securityContext"`
						Resources struct{ Limits map[string]string }
					}
				}
			} `json:"podTemplate"`
		}
	}
	if err := json.Unmarshal([]byte(c.MustKubectl("", "-n", "agents", "get", "sandboxtemplate", "llm-runtime", "-o", "json")), &tmpl); err != nil {
		t.Fatal(err)
	}
	pod := tmpl.Spec.PodTemplate.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("containers: %+v", pod.Containers)
	}
	ct := pod.Containers[0]
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.HostUsers == nil || *pod.HostUsers || pod.SecurityContext.AppArmorProfile.Type != "RuntimeDefault" || ct.Resources.Limits["ephemeral-storage"] != "2304Mi" ||
		pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" || ct.Image != "registry.example.com/llm-runtime-io:abc" || ct.Stdin ||
		ct.SecurityContext.ReadOnlyRootFilesystem == nil || !*ct.SecurityContext.ReadOnlyRootFilesystem || strings.Join(ct.SecurityContext.Capabilities.Drop, ",") != "ALL" ||
		ct.Resources.Limits["memory"] != "256Mi" || tmpl.Spec.NetworkPolicyManagement != "Managed" || string(tmpl.Spec.NetworkPolicy) != "{}" {
		t.Fatalf("the template as stored: %+v", tmpl.Spec)
	}
	if r := c.MustKubectl("", "-n", "agents", "get", "sandboxwarmpool", "llm-runtime", "-o", "jsonpath={.spec.replicas} {.spec.sandboxTemplateRef.name}"); r != "2 llm-runtime" {
		t.Fatalf("the pool as stored: %q", r)
	}
	if r := c.MustKubectl("", "get", "namespace", "agents", "-o", "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}"); r != "restricted" {
		t.Fatalf("the namespace enforces %q", r)
	}
	// Applied again, nothing changes.
	if again := c.MustKubectl(string(out), "apply", "--validate=strict", "-f", "-"); strings.Count(again, "unchanged") != 5 {
		t.Fatalf("a second apply:\n%s", again)
	}
}

// warmPool is a control plane with agent-sandbox's controller and the
// manifests of kubernetes manifests applied in the namespace agents, with
// a pool of 2.
func warmPool(t *testing.T) *kubetest.Cluster {
	c := kubetest.Require(t)
	c.StartController()
	c.Namespace("agents")
	out, err := exec.Command(binary, "kubernetes", "manifests", "--image", "registry.example.com/llm-runtime-io:abc", "--namespace", "agents", "--replicas", "2").Output()
	if err != nil {
		t.Fatal(err)
	}
	c.MustKubectl(string(out), "apply", "--validate=strict", "-f", "-")
	return c
}

// TestK8sTheWarmPoolMakesHardenedPods: with agent-sandbox's controller
// running, the warm pool of the manifests makes its pods, as the template
// says, in a namespace that enforces Pod Security restricted (the API
// server's admission would refuse a pod that does not meet it); no node
// runs them here: they stay pending.
func TestK8sTheWarmPoolMakesHardenedPods(t *testing.T) {
	t.Parallel()
	c := warmPool(t)
	pods := c.Await(func(s string) bool { return strings.Count(s, "registry.example.com/llm-runtime-io:abc") == 2 },
		"-n", "agents", "get", "pods", "-o", `jsonpath={range .items[*]}{.spec.containers[0].image} {.spec.containers[0].args} {.spec.automountServiceAccountToken} {.spec.containers[0].securityContext.readOnlyRootFilesystem} {.spec.hostUsers} {.spec.securityContext.appArmorProfile.type} stdin={.spec.containers[0].stdin}{"\n"}{end}`)
	for _, line := range strings.Split(strings.TrimSpace(pods), "\n") {
		if line != `registry.example.com/llm-runtime-io:abc ["--workspace","/workspace","--lease","2m","--listen"] false true false RuntimeDefault stdin=` {
			t.Errorf("a pod of the pool: %s", line)
		}
	}
	if n := strings.Fields(c.MustKubectl("", "-n", "agents", "get", "sandboxes", "-o", "name")); len(n) != 2 {
		t.Fatalf("sandboxes: %v", n)
	}
}

// TestK8sAnAbandonedClaimEndsAtItsShutdownTime is the leak backstop of the
// Kubernetes backend, on the real controller: a claim on the warm pool,
// with the lifecycle llm-runtime will give each session's claim (a
// shutdownTime, policy Delete), gets a sandbox (a new one: the warm pods
// have no IP without a node, and the controller takes only those that do),
// and when nobody releases it, the controller deletes the claim at that
// time, and the garbage collector its sandbox and pod.
func TestK8sAnAbandonedClaimEndsAtItsShutdownTime(t *testing.T) {
	t.Parallel()
	c := warmPool(t)
	c.Await(func(s string) bool { return len(strings.Fields(s)) == 2 }, "-n", "agents", "get", "sandboxes", "-o", "name")
	shutdown := time.Now().Add(15 * time.Second).UTC().Format(time.RFC3339)
	claim := `apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata:
  name: session-1
  namespace: agents
spec:
  warmPoolRef:
    name: llm-runtime
  lifecycle:
    shutdownTime: "` + shutdown + `"
    shutdownPolicy: Delete
`
	c.MustKubectl(claim, "apply", "--validate=strict", "-f", "-")
	sandbox := c.Await(func(s string) bool { return s != "" }, "-n", "agents", "get", "sandboxclaim", "session-1", "-o", "jsonpath={.status.sandbox.name}")
	t.Logf("the claim got sandbox %s", sandbox)
	c.Await(func(s string) bool { return !strings.Contains(s, "session-1") }, "-n", "agents", "get", "sandboxclaims", "-o", "name")
	c.Await(func(s string) bool { return !strings.Contains(s, "/"+sandbox+"\n") }, "-n", "agents", "get", "sandboxes", "-o", "name")
	c.Await(func(s string) bool { return !strings.Contains(s, "/"+sandbox+"\n") }, "-n", "agents", "get", "pods", "-o", "name")
}

// TestK8sImagePushToARegistry: image push puts the sandbox image on a
// registry (a real one, on loopback) under the name given and the image's
// own tag, says its digest, which the registry serves, and leaves no tag of
// that name behind; kubernetes manifests takes the reference it prints.
func TestK8sImagePushToARegistry(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	reg := kubetest.Registry(t)
	r := runBinary(t, t.TempDir(), "", nil, "image", "push", reg+"/tools/llm-runtime-io")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`pushed (llm-runtime-io:[0-9a-f]{16}) as (\S+)@(sha256:[0-9a-f]{64})`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no pushed line:\n%s", r.stdout)
	}
	tag := strings.TrimPrefix(m[1], "llm-runtime-io:")
	if m[2] != reg+"/tools/llm-runtime-io:"+tag {
		t.Fatalf("pushed as %s", m[2])
	}
	req, _ := http.NewRequest("GET", "http://"+reg+"/v2/tools/llm-runtime-io/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Docker-Content-Digest") != m[3] {
		t.Fatalf("the registry: %s, digest %s, want %s", res.Status, res.Header.Get("Docker-Content-Digest"), m[3])
	}
	if err := exec.Command("docker", "image", "inspect", m[2]).Run(); err == nil {
		t.Fatalf("the tag %s was left behind", m[2])
	}
	if out, err := exec.Command(binary, "kubernetes", "manifests", "--image", m[2]+"@"+m[3]).Output(); err != nil || !strings.Contains(string(out), `image: "`+m[2]+"@"+m[3]+`"`) {
		t.Fatalf("manifests with the pushed reference: %v\n%s", err, out)
	}
	if r := runBinary(t, t.TempDir(), "", nil, "image", "push", "llm-runtime-io"); r.code != 1 || !strings.Contains(r.stderr, "names no registry") {
		t.Fatalf("a push without a registry: exit %d\n%s", r.code, r.stderr)
	}
}

// agentPods is a control plane with agent-sandbox's controller, a test
// node running pods in Docker, and the manifests of kubernetes manifests
// for the sandbox image applied in the namespace agents, with a pool of 2.
func agentPods(t *testing.T) (*kubetest.Cluster, *kubetest.Node) {
	t.Helper()
	env := dockertest.Require(t)
	c := kubetest.Require(t)
	c.StartController()
	node := c.StartNode("node-1", kubetest.NodeOptions{Docker: true, Labels: env.Labels})
	c.Namespace("agents")
	ref, err := exec.Command(binary, "image", "build").CombinedOutput()
	if err != nil {
		t.Fatalf("image build: %v\n%s", err, ref)
	}
	tag := regexp.MustCompile(`llm-runtime-io:[0-9a-f]{16}`).FindString(string(ref))
	if tag == "" {
		t.Fatalf("no image in:\n%s", ref)
	}
	out, err := exec.Command(binary, "kubernetes", "manifests", "--image", tag, "--namespace", "agents", "--replicas", "2").Output()
	if err != nil {
		t.Fatal(err)
	}
	c.MustKubectl(string(out), "apply", "--validate=strict", "-f", "-")
	return c, node
}

// kubernetesEnv is the environment of a run on the pool of agentPods, as
// the identity of kubeconfig.
func kubernetesEnv(kubeconfig string) []string {
	return []string{"LLM_RUNTIME_SERVER=never", "KUBECONFIG=" + kubeconfig, "LLM_RUNTIME_SANDBOX=kubernetes", "LLM_RUNTIME_KUBERNETES_NAMESPACE=agents"}
}

// TestK8sTheFilterOnKubernetesPrintsTheSameBytes runs the filter's cases
// through the binary with sandbox: kubernetes on the real control plane
// (its controller, and a test node running the pool's pods in Docker from
// the sandbox image and serving their attach), against bind mode on the
// local daemon: the same output, exit code, standard error and repository.
// Each run claims a warm pod, and releases it.
func TestK8sTheFilterOnKubernetesPrintsTheSameBytes(t *testing.T) {
	t.Parallel()
	c, _ := agentPods(t)
	kenv := kubernetesEnv(c.Kubeconfig)
	for _, cs := range copyCases(t) {
		t.Run(cs.name, func(t *testing.T) {
			dirs := twoRepos(t, cs)
			bind := runBinary(t, dirs[0], cs.in, append(append([]string{}, cs.env...), "LLM_RUNTIME_SERVER=never"), cs.args...)
			k := runBinary(t, dirs[1], cs.in, append(append([]string{}, cs.env...), kenv...), cs.args...)
			if bind.code != k.code || normalized(bind.stdout, dirs[0]) != normalized(k.stdout, dirs[1]) || bind.stderr != k.stderr {
				t.Fatalf("bind mode: exit %d\n%s%s\nkubernetes: exit %d\n%s%s", bind.code, bind.stdout, bind.stderr, k.code, k.stdout, k.stderr)
			}
			if a, b := tree(t, dirs[0]), tree(t, dirs[1]); a != b {
				t.Fatalf("the repositories differ afterwards:\n%s\n%s", a, b)
			}
		})
	}
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	r := runBinary(t, dir, "<open a.txt>", kenv, "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\n") || !strings.Contains(r.stderr, "Sandbox: kubernetes ("+c.Server+", a pod of the warm pool agents/llm-runtime") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runBinary(t, dir, "<exec ls>", kenv, "--exec"); r.code != 2 || !strings.Contains(r.stderr, "exec does not run on Kubernetes yet") {
		t.Fatalf("exec on kubernetes: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.Await(func(s string) bool { return strings.TrimSpace(s) == "" }, "-n", "agents", "get", "sandboxclaims", "-o", "name")
}

// TestK8sASessionIsNeitherInThePodsLogNorOnItsAttach is the red team's
// Kubernetes break: the agent answered on its pod's main output, so what a
// session read reached the node's container log (and every log shipper),
// and anyone with pods/attach in the namespace could read and drive a
// session. Here a spy attaches to every warm pod of the pool (input,
// output and error) and sends a request of the protocol; then a session
// through the binary reads and searches a file. The spy of the claimed pod
// was there before the session (its error shows the agent's line that a
// session claimed it), yet no spy gets a byte of output, no answer to its
// request, nor the file's content; no pod's log holds the content either.
// Then, as a service account bound to the manifests' role alone, a session
// runs: that role is enough, and it cannot attach.
func TestK8sASessionIsNeitherInThePodsLogNorOnItsAttach(t *testing.T) {
	t.Parallel()
	c, node := agentPods(t)
	c.Await(func(s string) bool { return strings.Count(s, "True") == 2 }, "-n", "agents", "get", "sandboxes", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	pods := strings.Fields(c.MustKubectl("", "-n", "agents", "get", "pods", "-o", "jsonpath={.items[*].metadata.name}"))
	if len(pods) != 2 {
		t.Fatalf("pods: %v", pods)
	}
	var ping bytes.Buffer
	if err := agent.WriteFrame(&ping, agent.Request{ID: 1, Op: agent.OpPing}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type spy struct {
		out, errb syncBuffer
		done      <-chan error
	}
	spies := map[string]*spy{}
	for _, pod := range pods {
		s := &spy{}
		in := io.MultiReader(bytes.NewReader(ping.Bytes()), ctxReader{ctx})
		s.done = c.Attach(ctx, "agents", pod, "agent", in, &s.out, &s.errb)
		spies[pod] = s
	}
	deadline := time.Now().Add(3 * time.Minute)
	for _, pod := range pods {
		for node.Attached("agents", pod) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the spy never attached to %s", pod)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	marker := "MARKER-" + randomHex(8)
	dir := repo(t, map[string]string{"secret.txt": marker + "\n"})
	r := runBinary(t, dir, "<open secret.txt>\n<search MARKER->", kubernetesEnv(c.Kubeconfig))
	if r.code != 0 || strings.Count(r.stdout, marker) != 2 {
		t.Fatalf("the session: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.Await(func(s string) bool { return strings.TrimSpace(s) == "" }, "-n", "agents", "get", "sandboxclaims", "-o", "name")
	// The claimed pod went with its claim, and its attach with it.
	claimed := ""
	for pod, s := range spies {
		if strings.Contains(s.errb.String(), "a session claimed this agent") {
			if claimed != "" {
				t.Fatalf("two pods were claimed: %s and %s", claimed, pod)
			}
			claimed = pod
		}
	}
	if claimed == "" {
		t.Error("no spy saw its pod claimed: the agent says nothing of a session's connection, or the session took a pod no spy watched")
	} else {
		select {
		case err := <-spies[claimed].done:
			t.Logf("the claimed pod's attach ended with it: %v", err)
		case <-time.After(3 * time.Minute):
			t.Fatal("the claimed pod's attach did not end with the pod")
		}
	}
	cancel()
	for pod, s := range spies {
		if pod != claimed {
			<-s.done
		}
		if s.out.Len() != 0 {
			t.Errorf("the spy of %s read %d bytes of the agent's output: %q", pod, s.out.Len(), s.out.String())
		}
		if strings.Contains(s.errb.String(), marker) {
			t.Errorf("the spy of %s read the content on the agent's error: %q", pod, s.errb.String())
		}
	}
	logs := node.Logs()
	for pod, log := range logs {
		if strings.Contains(log, marker) || strings.Contains(log, "LLM1") {
			t.Errorf("the log of %s holds the session: %q", pod, log)
		}
	}
	if claimed != "" && !strings.Contains(logs["agents/"+claimed], "a session claimed this agent") {
		t.Errorf("the claimed pod's log: %q", logs["agents/"+claimed])
	}
	if t.Failed() {
		t.FailNow()
	}

	// The role of the manifests, and nothing else: a session runs, and
	// cannot attach.
	sa := c.ServiceAccountKubeconfig("agents", "session")
	c.MustKubectl("", "-n", "agents", "create", "rolebinding", "session", "--role", "llm-runtime-session", "--serviceaccount", "agents:session")
	r = runBinary(t, dir, "<open secret.txt>", kubernetesEnv(sa))
	if r.code != 0 || !strings.Contains(r.stdout, marker) {
		t.Fatalf("a session with the role alone: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, verb := range []string{"pods/attach", "pods", "pods/log"} {
		out, _ := c.Kubectl("", "--kubeconfig", sa, "-n", "agents", "auth", "can-i", "get", verb)
		if strings.TrimSpace(out) != "no" {
			t.Errorf("the session's role can get %s: %q", verb, out)
		}
	}
	nobody := c.ServiceAccountKubeconfig("agents", "nobody")
	r = runBinary(t, dir, "<open secret.txt>", kubernetesEnv(nobody))
	if strings.Contains(r.stdout, marker) || !strings.Contains(r.stdout, `User "system:serviceaccount:agents:nobody" cannot get resource "sandboxwarmpools"`) {
		t.Fatalf("a session without the role: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// ctxReader blocks until ctx is done, then ends: an input that stays open.
type ctxReader struct{ ctx context.Context }

func (r ctxReader) Read([]byte) (int, error) { <-r.ctx.Done(); return 0, io.EOF }

// syncBuffer is a bytes.Buffer that a stream's goroutine writes while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
