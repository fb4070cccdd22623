package main

import (
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

type kubernetesCmd struct {
	Manifests kubernetesManifestsCmd `cmd:"" help:"Print a SandboxTemplate, a SandboxWarmPool and a NetworkPolicy that keep agent pods warm for llm-runtime (kubernetes-sigs/agent-sandbox)."`
}

func (kubernetesCmd) Help() string {
	return `Kubernetes keeps sandboxes warm with kubernetes-sigs/agent-sandbox (v0.5.6
and later, its extensions enabled): a SandboxWarmPool keeps pods of a
SandboxTemplate ready, and a SandboxClaim takes one. The pods run
llm-runtime's agent, from the sandbox image, which a cluster pulls from a
registry: push it first (llm-runtime image push REGISTRY/llm-runtime-io) and
name what it prints with --image. The output applies as it is (kubectl apply
-f -).

Examples:

  llm-runtime image push registry.example.com/llm-runtime-io
  llm-runtime kubernetes manifests --image registry.example.com/llm-runtime-io:3d3acce1077f77e0 | kubectl apply -f -
  llm-runtime kubernetes manifests --image ... --namespace agents --replicas 10 --memory 512Mi`
}

type kubernetesManifestsCmd struct {
	Image         string `required:"" placeholder:"REF" help:"The sandbox image, as the cluster pulls it (REGISTRY/llm-runtime-io:TAG)."`
	Namespace     string `default:"default" help:"The namespace of the template, the pool and the policy."`
	Name          string `default:"llm-runtime" help:"The name of the template and the pool (and the prefix of the policy's)."`
	Replicas      int    `default:"3" help:"The pods the warm pool keeps ready."`
	CPU           string `default:"1" help:"The CPU limit of a pod."`
	Memory        string `default:"256Mi" help:"The memory limit of a pod."`
	WorkspaceSize string `name:"workspace-size" default:"2Gi" help:"The size limit of a pod's workspace (an emptyDir the repository is pushed to)."`
	Lease         string `default:"2m" help:"How long an agent lives after its session's last request (the agent's --lease): the backstop if llm-runtime dies without releasing its claim."`
}

// dnsLabel is what a Kubernetes name must be (RFC 1123 label).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// quantity is the rough shape of a Kubernetes resource quantity.
var quantity = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$`)

func (m kubernetesManifestsCmd) Run(e env) error {
	for flag, v := range map[string]string{"--namespace": m.Namespace, "--name": m.Name} {
		if len(v) > 52 || !dnsLabel.MatchString(v) {
			return fail(exitUsage, "%s %q: a name of lower-case letters, digits and '-', at most 52 characters", flag, v)
		}
	}
	for flag, v := range map[string]string{"--cpu": m.CPU, "--memory": m.Memory, "--workspace-size": m.WorkspaceSize} {
		if !quantity.MatchString(v) {
			return fail(exitUsage, "%s %q: not a Kubernetes quantity (1, 500m, 256Mi, 2Gi)", flag, v)
		}
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
	return manifests.Execute(e.stdout, map[string]string{
		"Image": strconv.Quote(m.Image), "Namespace": m.Namespace, "Name": m.Name, "Replicas": strconv.Itoa(m.Replicas),
		"CPU": strconv.Quote(m.CPU), "Memory": strconv.Quote(m.Memory), "WorkspaceSize": strconv.Quote(m.WorkspaceSize),
		"Lease": strconv.Quote(m.Lease), "Version": version,
	})
}

// manifests is the output of kubernetes manifests: every value it
// interpolates is checked (names, quantities) or quoted (the image).
var manifests = template.Must(template.Must(template.New("manifests").Parse(`{{define "metadata"}}metadata:
  name: {{.Name}}
  namespace: {{.Namespace}}
  labels:
    app.kubernetes.io/name: {{.Name}}
    app.kubernetes.io/managed-by: llm-runtime{{end}}`)).Parse(`# llm-runtime {{.Version}}: agent pods kept warm by kubernetes-sigs/agent-sandbox.
# The pod is hardened: not root, read-only root filesystem, no service
# account token, every capability dropped, no privilege escalation, seccomp
# RuntimeDefault, resource limits; no traffic in or out (the template's
# managed NetworkPolicy with no rule, and the policy below where that
# management is off). The agent is reached by attach, through the API
# server and the kubelet, and the repository is pushed to /workspace.
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
      terminationGracePeriodSeconds: 1
      securityContext:
        runAsNonRoot: true
        runAsUser: 65534
        runAsGroup: 65534
        fsGroup: 65534
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: agent
          image: {{.Image}}
          imagePullPolicy: IfNotPresent
          args: ["--workspace", "/workspace", "--lease", {{.Lease}}]
          stdin: true
          stdinOnce: false
          tty: false
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
            limits:
              cpu: {{.CPU}}
              memory: {{.Memory}}
          volumeMounts:
            - name: workspace
              mountPath: /workspace
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: workspace
          emptyDir:
            sizeLimit: {{.WorkspaceSize}}
        - name: tmp
          emptyDir:
            medium: Memory
            sizeLimit: 64Mi
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
  namespace: {{.Namespace}}
  labels:
    app.kubernetes.io/name: {{.Name}}
    app.kubernetes.io/managed-by: llm-runtime
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: {{.Name}}
  policyTypes: ["Ingress", "Egress"]
`))
