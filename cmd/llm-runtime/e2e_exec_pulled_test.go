package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/kube/kubetest"
)

// TestE2EExecRunsInAnImagePulledFromARegistry: an image llm-runtime did
// not build, pushed to a registry (a real one, on loopback) and pulled
// back, as a user pulls golang:1.26, works as exec.image: the agent is
// mounted into it, the prompt offers only the whitelisted commands it can
// run and names the toolchain its environment says it has, a command runs
// in its filesystem, and one naming a program it has
// not is refused before a container starts, with the image named and how
// to pick another (issue 27, item 3).
func TestE2EExecRunsInAnImagePulledFromARegistry(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	base := dockertest.RequireExecImage(t, env)
	reg := kubetest.Registry(t)
	id := randomHex(6)
	built := "llm-runtime-exec:test-pushed-" + id
	// It says its toolchain's version as the official language images do.
	dockertest.BuildImage(t, env, built, "FROM "+base+"\nCOPY rootfs/ /\nENV PYTHON_VERSION=3.13.1\n", map[string]string{"rootfs/etc/pulled": "from the registry\n"})
	ref := reg + "/tests/pulled-" + id + ":v1"
	docker := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
	docker("tag", built, ref)
	docker("push", "-q", ref)
	docker("rmi", ref, built) // gone from this machine: what runs next is pulled
	docker("pull", "-q", ref)
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref).Output(); err != nil || !strings.Contains(string(out), reg+"/tests/pulled-") {
		t.Fatalf("the image was not pulled from the registry: %v %s", err, out)
	}

	dir := repo(t, map[string]string{
		"llm-runtime.config.yaml": "exec:\n  enabled: true\n  timeout: 1m\n  whitelist: [cat, ls, go test]\n",
		"a.txt":                   "alpha\n",
	})
	image := []string{"LLM_RUNTIME_EXEC_IMAGE=" + ref} // the tests' own is set for every run
	p := runBinary(t, dir, "", image, "prompt", "--format", "text")
	if p.code != 0 || !strings.Contains(p.stdout, "Allowed commands (a command must start with one of these): `cat`, `ls`.") ||
		!strings.Contains(p.stdout, "killed after 1m0s. It has python 3.13.1.\n") ||
		p.stderr != "llm-runtime: left out of the prompt: go test: the image "+ref+" has no such program\n" {
		t.Fatalf("prompt: exit %d\n%s%s", p.code, p.stdout, p.stderr)
	}
	r := runBinary(t, dir, "<exec cat /etc/pulled a.txt>\n<exec go test ./...>\n", image)
	if !strings.Contains(r.stdout, "from the registry\nalpha\n") {
		t.Fatalf("the command did not run in the pulled image: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	want := `the exec image ` + ref + ` has no program "go" on its PATH, so nothing was run; the user can name an image that has it in exec.image`
	if !strings.Contains(r.stdout, "EXEC_VALIDATION") || !strings.Contains(r.stdout, want) {
		t.Fatalf("go test, which the image has not: exit %d; want it refused saying %q\n%s%s", r.code, want, r.stdout, r.stderr)
	}
}
