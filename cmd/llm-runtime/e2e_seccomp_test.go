package main

// The sandbox around a command (issue 25 §5), through the binary: what a
// command can ask of the kernel in its exec container, and the agent's
// containers of the same binary hardened alike.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// TestE2EExecSeccompProbe runs the probe (a static program the model
// could have written) as an <exec>, with every whitelist check off: it
// finds io_uring, sockets of AF_NETLINK, AF_VSOCK and the other families
// but unix and inet, ptrace, the i386 system call table, unshare, mount,
// keyctl, bpf, userfaultfd and perf_event_open refused, nofile ours, and
// fork, exec and loopback TCP working. The agent's container of the run
// carries the same profile and limit.
func TestE2EExecSeccompProbe(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	b, err := os.ReadFile(dockertest.SeccompProbe(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := repo(t, map[string]string{
		"llm-runtime.config.yaml": "exec:\n  enabled: true\n  whitelist: [\"*\"]\n",
		"a.txt":                   "a\n",
	})
	if err := os.WriteFile(filepath.Join(dir, "probe"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	res := runJSONL(t, dir, "<exec ./probe>\n")
	if len(res) != 1 || !res[0].OK {
		t.Fatalf("the probe failed: %+v", res)
	}
	dockertest.CheckSeccompProbe(t, res[0].Output, dockertest.ExecRuntime())

	// The agent's container (role io), as the binary makes it.
	s := startSession(t, dir)
	if got := strings.Join(s.send("<open a.txt>\n"), "\n"); !strings.Contains(got, "\na\n") {
		t.Fatalf("<open a.txt>:\n%s", got)
	}
	ctx := context.Background()
	items, err := env.Docker.Ours(ctx, container.LabelOwnerPID, strconv.Itoa(s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var want any
	json.Unmarshal(container.SeccompProfile(), &want)
	checked := 0
	for _, it := range items {
		if it.Labels[container.LabelRole] != "io" {
			continue
		}
		in, err := env.Docker.Inspect(ctx, it.ID)
		if err != nil {
			continue // recycled meanwhile
		}
		checked++
		hc := in.HostConfig
		var got any
		var profile string
		for _, o := range hc.SecurityOpt {
			if p, ok := strings.CutPrefix(o, "seccomp="); ok {
				profile = p
			}
		}
		if json.Unmarshal([]byte(profile), &got) != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s runs with %q, not llm-runtime's seccomp profile", it.Names, hc.SecurityOpt)
		}
		if !slices.Contains(hc.SecurityOpt, "no-new-privileges") {
			t.Errorf("%s: no no-new-privileges: %q", it.Names, hc.SecurityOpt)
		}
		if len(hc.Ulimits) != 1 || hc.Ulimits[0].Name != "nofile" || hc.Ulimits[0].Soft != container.NoFile || hc.Ulimits[0].Hard != container.NoFile {
			t.Errorf("%s: ulimits %+v, want nofile %d", it.Names, hc.Ulimits, container.NoFile)
		}
	}
	if checked == 0 {
		t.Fatalf("no container of the agent found among %d", len(items))
	}
}

// TestE2EExecRuntimeTheDaemonDoesNotKnowIsRefused: exec.runtime naming a
// runtime the daemon has not registered stops the run before anything
// runs (exit 3), saying which runtimes it has and how to register one;
// one it has (runc, always) runs commands.
func TestE2EExecRuntimeTheDaemonDoesNotKnowIsRefused(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": "exec:\n  enabled: true\n", "a.txt": "a\n"})
	r := runBinary(t, dir, "<open a.txt>\n<exec cat a.txt>\n", []string{"LLM_RUNTIME_EXEC_RUNTIME=lrt-no-such-runtime"})
	if r.code != 3 || r.stdout != "" {
		t.Fatalf("exit %d, want 3 and nothing run\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{`exec.runtime: the Docker daemon has no such runtime: "lrt-no-such-runtime" (it has `, "runc", `"runtimes"`, "leave exec.runtime empty"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error does not say %q:\n%s", want, r.stderr)
		}
	}
	res := runJSONLWith(t, dir, []string{"LLM_RUNTIME_EXEC_RUNTIME=runc"}, "<exec cat a.txt>\n")
	if len(res) != 1 || !res[0].OK || res[0].Output != "a\n" {
		t.Fatalf("with exec.runtime runc: %+v", res)
	}
}
