package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// manifestDocs runs kubernetes manifests with args and decodes its output.
func manifestDocs(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	var out, errb bytes.Buffer
	code := doMain(append([]string{"kubernetes", "manifests"}, args...), env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, ctx: context.Background()})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(&out)
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	return docs
}

// at walks a decoded document by keys and list indexes.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %q", path, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d", path, k)
			}
			v = l[k]
		}
	}
	return v
}

func TestKubernetesManifestsAreHardened(t *testing.T) {
	t.Parallel()
	docs := manifestDocs(t, "--image", "registry.example.com/llm-runtime-io:abc", "--namespace", "agents", "--replicas", "7", "--memory", "512Mi")
	var kinds []string
	for _, d := range docs[1:] {
		kinds = append(kinds, d["apiVersion"].(string)+" "+d["kind"].(string)+" "+at(t, d, "metadata", "namespace").(string))
	}
	if got := strings.Join(kinds, ", "); got != "extensions.agents.x-k8s.io/v1beta1 SandboxTemplate agents, extensions.agents.x-k8s.io/v1beta1 SandboxWarmPool agents, networking.k8s.io/v1 NetworkPolicy agents, rbac.authorization.k8s.io/v1 Role agents" {
		t.Fatalf("documents: %s", got)
	}
	ns, tmpl, pool, policy, role := docs[0], docs[1], docs[2], docs[3], docs[4]
	pod := at(t, tmpl, "spec", "podTemplate", "spec")
	c := at(t, pod, "containers", 0)
	for _, check := range []struct {
		got  any
		want any
	}{
		{at(t, ns, "kind"), "Namespace"},
		{at(t, ns, "metadata", "name"), "agents"},
		{at(t, ns, "metadata", "labels", "pod-security.kubernetes.io/enforce"), "restricted"},
		{at(t, ns, "metadata", "labels", "pod-security.kubernetes.io/enforce-version"), "latest"},
		{at(t, pod, "automountServiceAccountToken"), false},
		{at(t, pod, "hostUsers"), false},
		{at(t, pod, "securityContext", "runAsNonRoot"), true},
		{at(t, pod, "securityContext", "runAsUser"), 65534},
		{at(t, pod, "securityContext", "seccompProfile", "type"), "RuntimeDefault"},
		{at(t, pod, "securityContext", "appArmorProfile", "type"), "RuntimeDefault"},
		{at(t, c, "image"), "registry.example.com/llm-runtime-io:abc"},
		{at(t, c, "stdin"), nil}, // the agent reads no input: nothing to attach to
		{at(t, c, "args", 3), "2m"},
		{at(t, c, "args", 4), "--listen"},
		{at(t, c, "securityContext", "readOnlyRootFilesystem"), true},
		{at(t, c, "securityContext", "allowPrivilegeEscalation"), false},
		{at(t, c, "securityContext", "capabilities", "drop", 0), "ALL"},
		{at(t, c, "resources", "limits", "memory"), "512Mi"},
		{at(t, c, "resources", "limits", "cpu"), "1"},
		{at(t, c, "resources", "limits", "ephemeral-storage"), "2304Mi"}, // the workspace's 2Gi and 256Mi
		{at(t, c, "volumeMounts", 2, "mountPath"), "/run/llm-runtime-agent"},
		{at(t, tmpl, "spec", "networkPolicyManagement"), "Managed"},
		{at(t, pool, "spec", "replicas"), 7},
		{at(t, pool, "spec", "sandboxTemplateRef", "name"), "llm-runtime"},
		{at(t, policy, "spec", "policyTypes", 1), "Egress"},
		{at(t, role, "metadata", "name"), "llm-runtime-session"},
		{at(t, role, "rules", 3, "resources", 0), "pods/exec"},
	} {
		if check.got != check.want {
			t.Errorf("got %v (%T), want %v", check.got, check.got, check.want)
		}
	}
	if np := at(t, tmpl, "spec", "networkPolicy"); len(np.(map[string]any)) != 0 {
		t.Errorf("the template's network policy has rules: %v", np)
	}
	if at(t, policy, "spec", "egress") != nil || at(t, policy, "spec", "ingress") != nil {
		t.Error("the deny-all policy has rules")
	}
	// No rule of the role gives pods/attach, or anything on pods themselves.
	for _, r := range at(t, role, "rules").([]any) {
		for _, res := range at(t, r, "resources").([]any) {
			if res == "pods" || res == "pods/attach" || res == "*" {
				t.Errorf("the session's role gives %v", res)
			}
		}
	}
	// Where the nodes cannot: no AppArmor, no user namespace; a storage
	// limit of the user's.
	docs = manifestDocs(t, "--image", "r/x:1", "--no-apparmor", "--no-user-namespace", "--ephemeral-storage", "5Gi")
	pod = at(t, docs[1], "spec", "podTemplate", "spec")
	if at(t, pod, "hostUsers") != nil || at(t, pod, "securityContext", "appArmorProfile") != nil || at(t, pod, "containers", 0, "resources", "limits", "ephemeral-storage") != "5Gi" ||
		at(t, docs[0], "metadata", "name") != "llm-runtime" {
		t.Errorf("with --no-apparmor --no-user-namespace --ephemeral-storage 5Gi: %v", pod)
	}
}

func TestKubernetesManifestsRefuseBadValues(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--image", "r/x:1", "--namespace", "Bad_Name"},
		{"--image", "r/x:1", "--memory", "lots"},
		{"--image", "r/x:1\nkind: Secret"},
		{"--image", "r/x:1", "--lease", "1ms"},
		{"--image", "r/x:1", "--replicas", "-1"},
		{"--image", "r/x:1", "--namespace", "default"},
		{"--image", "r/x:1", "--namespace", "kube-system"},
		{"--image", "r/x:1", "--ephemeral-storage", "2Gi"}, // not more than the workspace
		{"--image", "r/x:1", "--cpu", "0"},
		{},
	} {
		var out, errb bytes.Buffer
		code := doMain(append([]string{"kubernetes", "manifests"}, args...), env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, ctx: context.Background()})
		if code == 0 || out.Len() != 0 {
			t.Errorf("%q: exit %d, printed %q", args, code, out.String())
		}
	}
}
