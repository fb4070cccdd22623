package main

// End-to-end tests of policy and transform guests through the binary.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

// withPolicy returns the flags that configure guest as a policy with a
// per-call deadline a loaded machine cannot make it miss (--policy takes
// the default, 100 ms), in a configuration file outside the repository.
func withPolicy(t *testing.T, guest string) []string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(cfg, []byte("policies:\n  - module: "+guest+"\n    timeout: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", cfg}
}

func TestE2EPolicyDeniesWritingDotEnv(t *testing.T) {
	t.Parallel()
	guest := wasmtest.Build(t, "guests/protect-secrets")
	dir := repo(t, map[string]string{".env": "KEEP=1\n", "a.txt": "A\n"})
	// .env is excluded by default, and the sandbox's rule answers before
	// a policy is asked: narrow the exclusions so that the policy decides.
	r := runBinary(t, dir, "<write .env>\nSTOLEN=1\n</write> <open a.txt>", []string{"LLM_RUNTIME_SECURITY_EXCLUDED_PATHS=.git"}, withPolicy(t, guest)...)
	if r.code != 0 || !strings.Contains(r.stdout, "=== ERROR: POLICY_DENIED ===\nMessage: denied by policy protect-secrets: .env looks like a credential file") ||
		!strings.Contains(r.stdout, "=== FILE: a.txt ===") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".env")); string(b) != "KEEP=1\n" {
		t.Fatalf(".env = %q", b)
	}
	recs := auditOf(t, dir)
	if len(recs) != 2 || recs[0].Outcome != "denied" || recs[0].Code != "POLICY_DENIED" {
		t.Fatalf("audit: %+v", recs)
	}
	ex := runBinary(t, t.TempDir(), "", nil, "audit", "export", "--repo", dir, "--op", "write")
	if !strings.Contains(ex.stdout, `"decider":"protect-secrets"`) || !strings.Contains(ex.stdout, `"reason":".env looks like a credential file`) || strings.Contains(ex.stdout, `"policy_ns":0,`) {
		t.Fatalf("the audit record does not name the policy and its time:\n%s", ex.stdout)
	}
}

func TestE2ERedactMasksAKeyInAnOpenedFile(t *testing.T) {
	t.Parallel()
	guest := wasmtest.Build(t, "guests/redact")
	// A generous per-call deadline: the default (100 ms) is one a loaded
	// machine can make the transform miss.
	dir := repo(t, map[string]string{
		"deploy.sh":               "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\necho deploying\n",
		"llm-runtime.config.yaml": "transforms:\n  - module: " + guest + "\n    timeout: 1m\n",
	})
	r := runBinary(t, dir, "<open deploy.sh> <search AKIA>", nil)
	if r.code != 0 || strings.Contains(r.stdout, "AKIAIOSFODNN7EXAMPLE") || !strings.Contains(r.stdout, "[REDACTED aws-access-key]") ||
		!strings.Contains(r.stdout, "echo deploying") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "deploy.sh")); !strings.Contains(string(b), "AKIAIOSFODNN7EXAMPLE") {
		t.Fatal("the file itself was changed")
	}
}

func TestE2EAFailingGuestDeniesAndABadGuestIsAConfigurationError(t *testing.T) {
	t.Parallel()
	spin := wasmtest.Build(t, "runtime/wasm/testdata/spin")
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	r := runBinary(t, dir, "<open a.txt> <open quick>", nil, "--policy", spin, "--sandbox", "local")
	if r.code != 0 || !strings.Contains(r.stdout, "=== ERROR: POLICY_ERROR ===\nMessage: policy spin failed, so the command is denied: guest spin: still running after 100ms") ||
		strings.Contains(r.stdout, "=== FILE: a.txt") {
		t.Fatalf("exit %d\n%s", r.code, r.stdout)
	}
	junk := filepath.Join(t.TempDir(), "junk.wasm")
	os.WriteFile(junk, []byte("junk"), 0o644)
	if r := runBinary(t, dir, "<open a.txt>", nil, "--policy", junk, "--sandbox", "local"); r.code != 2 || !strings.Contains(r.stderr, "not a valid WebAssembly module") {
		t.Fatalf("junk guest: exit %d %s", r.code, r.stderr)
	}
	redact := wasmtest.Build(t, "guests/redact")
	if r := runBinary(t, dir, "<open a.txt>", nil, "--policy", redact, "--sandbox", "local"); r.code != 2 || !strings.Contains(r.stderr, "configured as a policy") {
		t.Fatalf("a transform as a policy: exit %d %s", r.code, r.stderr)
	}
}

func TestE2EPolicyTestAndCheck(t *testing.T) {
	t.Parallel()
	guest := wasmtest.Build(t, "guests/protect-secrets")
	r := runBinary(t, t.TempDir(), "", nil, "policy", "test", guest, "--", "<write .env>x</write> <open README.md> <exec curl x> <move notes.txt x/.env>")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "<write .env>  deny") || !strings.HasPrefix(lines[1], "<open README.md>  allow") || !strings.HasPrefix(lines[2], "<exec curl x>  deny") ||
		!strings.HasPrefix(lines[3], "<move notes.txt x/.env>  deny") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBinary(t, t.TempDir(), "", nil, "policy", "test", guest, "--module-config", `{"paths":["*.md"]}`, "--", "<open README.md> <open .env>")
	if !strings.Contains(r.stdout, "<open README.md>  deny") || !strings.Contains(r.stdout, "<open .env>  allow") {
		t.Fatalf("--module-config:\n%s%s", r.stdout, r.stderr)
	}
	r = runBinary(t, t.TempDir(), "", nil, "policy", "check", guest)
	if r.code != 0 || !strings.Contains(r.stdout, "ABI version 2, policy") || !strings.Contains(r.stdout, "llmrt_policy") {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
