package main

import (
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/llm-runtime/llm-runtime/runtime/container/agent"
)

type kubernetesCmd struct {
	Manifests kubernetesManifestsCmd `cmd:"" help:"Print the sandboxes' Namespace, a SandboxTemplate, a SandboxWarmPool, a NetworkPolicy and a session's Role that keep agent pods warm for llm-runtime (kubernetes-sigs/agent-sandbox)."`
}

func (kubernetesCmd) Help() string {
	return `Kubernetes keeps sandboxes warm with kubernetes-sigs/agent-sandbox (v1.0.1;
v0.5.x serves the same v1beta1 API; its extensions enabled): a SandboxWarmPool keeps pods of a
SandboxTemplate ready, and a SandboxClaim takes one. The pods run
llm-runtime's agent, from the sandbox image, which a cluster pulls from a
registry: push it first (llm-runtime image push REGISTRY/llm-runtime-io) and
name what it prints with --image. The output applies as it is (kubectl apply
-f -): the sandboxes' namespace (Pod Security restricted enforced), the
template, the pool, a deny-all NetworkPolicy and the Role a session needs,
which you bind to the identity llm-runtime runs as.

Examples:

  llm-runtime image push registry.example.com/llm-runtime-io
  llm-runtime kubernetes manifests --image registry.example.com/llm-runtime-io:3d3acce1077f77e0 | kubectl apply -f -
  kubectl -n llm-runtime create rolebinding llm-runtime-session --role llm-runtime-session --user alice
  llm-runtime kubernetes manifests --image ... --namespace agents --replicas 10 --memory 512Mi
  llm-runtime kubernetes manifests --image ... --no-apparmor   # nodes without AppArmor`
}

type kubernetesManifestsCmd struct {
	Image            string `required:"" placeholder:"REF" help:"The sandbox image, as the cluster pulls it (REGISTRY/llm-runtime-io:TAG)."`
	Namespace        string `default:"llm-runtime" help:"The namespace of the sandboxes: the output makes it, enforcing Pod Security restricted, so it must be theirs alone (not default, not kube-*)."`
	Name             string `default:"llm-runtime" help:"The name of the template and the pool (and the prefix of the policy's and the role's)."`
	Replicas         int    `default:"3" help:"The pods the warm pool keeps ready."`
	CPU              string `default:"1" help:"The CPU limit of a pod."`
	Memory           string `default:"256Mi" help:"The memory limit of a pod."`
	WorkspaceSize    string `name:"workspace-size" default:"2Gi" help:"The size limit of a pod's workspace (an emptyDir the repository is pushed to)."`
	EphemeralStorage string `name:"ephemeral-storage" placeholder:"QUANTITY" help:"The ephemeral-storage limit of a pod (its workspace, its log, its writable layer); past it the kubelet evicts the pod. Default: the workspace size and 256Mi."`
	Lease            string `default:"2m" help:"How long an agent lives after its session's last request (the agent's --lease): the backstop if llm-runtime dies without releasing its claim."`
	AppArmor         bool   `name:"apparmor" default:"true" negatable:"" help:"Run the pods under the container runtime's default AppArmor profile (appArmorProfile: RuntimeDefault). --no-apparmor for nodes without AppArmor (SELinux distributions, or none), whose kubelet refuses such a pod."`
	UserNamespace    bool   `name:"user-namespace" default:"true" negatable:"" help:"Run the pods in a user namespace of their own (hostUsers: false): the pod's uid 65534 is an unprivileged uid on the node too. --no-user-namespace for nodes that cannot (containerd before 2.0, runc before 1.2, Linux before 6.3, or the feature gate off)."`
}

// dnsLabel is what a Kubernetes name must be (RFC 1123 label).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func (m kubernetesManifestsCmd) Run(e env) error {
	for flag, v := range map[string]string{"--namespace": m.Namespace, "--name": m.Name} {
		if len(v) > 52 || !dnsLabel.MatchString(v) {
			return fail(exitUsage, "%s %q: a name of lower-case letters, digits and '-', at most 52 characters", flag, v)
		}
	}
	if m.Namespace == "default" || strings.HasPrefix(m.Namespace, "kube-") {
		return fail(exitUsage, "--namespace %s: the output makes its namespace enforce Pod Security restricted, which would apply to everything else there; name one of the sandboxes' own (the default is llm-runtime)", m.Namespace)
	}
	q := map[string]*resource.Quantity{}
	for flag, v := range map[string]string{"--cpu": m.CPU, "--memory": m.Memory, "--workspace-size": m.WorkspaceSize, "--ephemeral-storage": m.EphemeralStorage} {
		if v == "" {
			continue
		}
		n, err := resource.ParseQuantity(v)
		if err != nil || n.Sign() <= 0 {
			return fail(exitUsage, "%s %q: not a positive Kubernetes quantity (1, 500m, 256Mi, 2Gi)", flag, v)
		}
		q[flag] = &n
	}
	storage, ok := q["--ephemeral-storage"]
	if !ok {
		sum := q["--workspace-size"].DeepCopy()
		sum.Add(resource.MustParse("256Mi"))
		storage = &sum
	}
	if storage.Cmp(*q["--workspace-size"]) <= 0 {
		return fail(exitUsage, "--ephemeral-storage %s: more than the workspace (--workspace-size %s), which counts towards it, or a full workspace gets the pod evicted", m.EphemeralStorage, m.WorkspaceSize)
	}
	if d, err := time.ParseDuration(m.Lease); err != nil || d < time.Second {
		return fail(exitUsage, "--lease %q: a duration of a second or more (30s, 2m)", m.Lease)
	}
	if m.Replicas < 0 || m.Replicas > 10000 {
		return fail(exitUsage, "--replicas %d: 0 to 10000", m.Replicas)
	}
	if m.Image == "" || strings.ContainsAny(m.Image, " \t\n\"'") {
		return fail(exitUsage, "--image %q: an image reference", m.Image)
	}
	return manifests.Execute(e.stdout, map[string]any{
		"Image": strconv.Quote(m.Image), "Namespace": m.Namespace, "Name": m.Name, "Replicas": strconv.Itoa(m.Replicas),
		"CPU": strconv.Quote(q["--cpu"].String()), "Memory": strconv.Quote(q["--memory"].String()), "WorkspaceSize": strconv.Quote(q["--workspace-size"].String()),
		"EphemeralStorage": strconv.Quote(storage.String()), "Lease": strconv.Quote(m.Lease), "Version": version,
		"AppArmor": m.AppArmor, "UserNamespace": m.UserNamespace, "SocketDir": agent.SocketDir,
	})
}

// manifests is the output of kubernetes manifests: every value it
// interpolates is checked (names, quantities) or quoted (the image).
var manifests = template.Must(template.Must(template.New("manifests").Parse(`{{define "labels"}}
  labels:
    app.kubernetes.io/name: {{.Name}}
    app.kubernetes.io/managed-by: llm-runtime{{end}}{{define "metadata"}}metadata:
  name: {{.Name}}
  namespace: {{.Namespace}}{{template "labels" .}}{{end}}`)).Parse(`# llm-runtime {{.Version}}: agent pods kept warm by kubernetes-sigs/agent-sandbox.
# The namespace is the sandboxes' own and enforces Pod Security restricted.
# The pod is hardened: not root, {{if .UserNamespace}}in a user namespace of its own, {{end}}read-only root
# filesystem, no service account token, every capability dropped, no
# privilege escalation, seccomp{{if .AppArmor}} and AppArmor{{end}} RuntimeDefault, CPU, memory and
# ephemeral-storage limits; no traffic in or out (the template's managed
# NetworkPolicy with no rule, and the policy below where that management is
# off). Its agent reads no input and writes nothing of a session on its
# output (the pod's attach and log): a session reaches it by an exec of
# its relay, through the API server, and claims it with a secret of its
# own. The role below is what a session needs; bind it to the identity
# llm-runtime runs as.
apiVersion: v1
kind: Namespace
metadata:
  name: {{.Namespace}}
  labels:
    app.kubernetes.io/managed-by: llm-runtime
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
    pod-security.kubernetes.io/warn: restricted
    pod-security.kubernetes.io/audit: restricted
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
{{template "metadata" .}}
spec:
  networkPolicyManagement: Managed
  networkPolicy: {}
  podTemplate:
    metadata:
      labels:
        app.kubernetes.io/name: {{.Name}}
        app.kubernetes.io/managed-by: llm-runtime
    spec:
      automountServiceAccountToken: false
      enableServiceLinks: false
      restartPolicy: Never
      terminationGracePeriodSeconds: 1{{if .UserNamespace}}
      hostUsers: false{{end}}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65534
        runAsGroup: 65534
        fsGroup: 65534
        seccompProfile:
          type: RuntimeDefault{{if .AppArmor}}
        appArmorProfile:
          type: RuntimeDefault{{end}}
      containers:
        - name: agent
          image: {{.Image}}
          imagePullPolicy: IfNotPresent
          args: ["--workspace", "/workspace", "--lease", {{.Lease}}, "--listen"]
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            privileged: false
            capabilities:
              drop: ["ALL"]
          resources:
            requests:
              cpu: 100m
              memory: 64Mi
              ephemeral-storage: 64Mi
            limits:
              cpu: {{.CPU}}
              memory: {{.Memory}}
              ephemeral-storage: {{.EphemeralStorage}}
          volumeMounts:
            - name: workspace
              mountPath: /workspace
            - name: tmp
              mountPath: /tmp
            - name: agent-socket
              mountPath: {{.SocketDir}}
      volumes:
        - name: workspace
          emptyDir:
            sizeLimit: {{.WorkspaceSize}}
        - name: tmp
          emptyDir:
            medium: Memory
            sizeLimit: 64Mi
        - name: agent-socket
          emptyDir:
            medium: Memory
            sizeLimit: 1Mi
---
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxWarmPool
{{template "metadata" .}}
spec:
  replicas: {{.Replicas}}
  sandboxTemplateRef:
    name: {{.Name}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{.Name}}-deny-all
  namespace: {{.Namespace}}{{template "labels" .}}
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: {{.Name}}
  policyTypes: ["Ingress", "Egress"]
---
# What a session needs: claims on the pool, its sandbox, and an exec into
# its pod (create, and get for a WebSocket exec). Not pods/attach: the
# agent has no input to attach to. Bind it with a RoleBinding, e.g.
#   kubectl -n {{.Namespace}} create rolebinding {{.Name}}-session --role {{.Name}}-session --user USER
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{.Name}}-session
  namespace: {{.Namespace}}{{template "labels" .}}
rules:
  - apiGroups: ["extensions.agents.x-k8s.io"]
    resources: ["sandboxclaims"]
    verbs: ["create", "get", "patch", "delete"]
  - apiGroups: ["extensions.agents.x-k8s.io"]
    resources: ["sandboxwarmpools"]
    verbs: ["get"]
  - apiGroups: ["agents.x-k8s.io"]
    resources: ["sandboxes"]
    verbs: ["get"]
  - apiGroups: [""]
    resources: ["pods/exec"]
    verbs: ["create", "get"]
`))
