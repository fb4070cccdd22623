package main

// End-to-end tests of the path rules and the run's boundaries under attack
// (issue 11): each reproduces an attack through the binary.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

// bothSandboxes runs f once with --sandbox local and once with the default
// Docker sandbox.
func bothSandboxes(t *testing.T, f func(t *testing.T, sb string)) {
	for _, sb := range []string{"local", "docker"} {
		t.Run(sb, func(t *testing.T) {
			if sb == "docker" {
				dockertest.Require(t)
			}
			f(t, sb)
		})
	}
}

// mustRefuse runs input in dir and checks that every command was refused
// with PATH_SECURITY and that the files named in keep still hold what
// they held.
func mustRefuse(t *testing.T, dir, input string, env []string, keep []string, args ...string) result {
	t.Helper()
	before := map[string]string{}
	for _, k := range keep {
		b, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		before[k] = string(b)
	}
	r := runBinary(t, dir, input, env, args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "=== COMMAND: "); n == 0 || strings.Count(r.stdout, "=== ERROR: PATH_SECURITY ===") != n {
		t.Fatalf("not every command was refused with PATH_SECURITY:\n%s", r.stdout)
	}
	for _, k := range keep {
		if b, _ := os.ReadFile(k); string(b) != before[k] {
			t.Fatalf("%s changed: %q", k, b)
		}
	}
	return r
}

// TestE2EOwnFilesAreProtectedByIdentityNotSpelling reproduces every way
// the red team wrote llm-runtime's own configuration from the sandbox.
func TestE2EOwnFilesAreProtectedByIdentityNotSpelling(t *testing.T) {
	t.Parallel()
	const evil = "security:\n  excluded_paths: []\n"
	bothSandboxes(t, func(t *testing.T, sb string) {
		t.Run("the configuration file is a link", func(t *testing.T) {
			dir := repo(t, map[string]string{"conf/real.yaml": "search:\n  max_results: 7\n"})
			os.Symlink("conf/real.yaml", filepath.Join(dir, "llm-runtime.config.yaml"))
			mustRefuse(t, dir, "<write conf/real.yaml>"+evil+"</write> <write ./conf//real.yaml>x</write>", nil,
				[]string{filepath.Join(dir, "conf/real.yaml")}, "--sandbox", sb)
		})
		t.Run("the root through a link, the configuration by its real path", func(t *testing.T) {
			dir := repo(t, map[string]string{"cfg.yaml": "search:\n  max_results: 7\n"})
			link := filepath.Join(t.TempDir(), "link")
			os.Symlink(dir, link)
			mustRefuse(t, t.TempDir(), "<write cfg.yaml>"+evil+"</write>", nil, []string{filepath.Join(dir, "cfg.yaml")},
				"--sandbox", sb, "--root", link, "--config", filepath.Join(dir, "cfg.yaml"))
		})
		t.Run("a configuration named ..cfg.yaml", func(t *testing.T) {
			dir := repo(t, map[string]string{"..cfg.yaml": "search:\n  max_results: 7\n"})
			mustRefuse(t, dir, "<write ..cfg.yaml>"+evil+"</write>", nil, []string{filepath.Join(dir, "..cfg.yaml")},
				"--sandbox", sb, "--config", "..cfg.yaml")
		})
		t.Run("the configuration through a linked directory", func(t *testing.T) {
			dir := repo(t, map[string]string{"real/c.yaml": "search:\n  max_results: 7\n"})
			os.Symlink("real", filepath.Join(dir, "confdir"))
			mustRefuse(t, dir, "<write real/c.yaml>"+evil+"</write> <write confdir/c.yaml>"+evil+"</write>", nil,
				[]string{filepath.Join(dir, "real/c.yaml")}, "--sandbox", sb, "--config", "confdir/c.yaml")
		})
		t.Run("a hard link to the configuration", func(t *testing.T) {
			dir := repo(t, map[string]string{"llm-runtime.config.yaml": "search:\n  max_results: 7\n"})
			os.Link(filepath.Join(dir, "llm-runtime.config.yaml"), filepath.Join(dir, "other.yaml"))
			mustRefuse(t, dir, "<write other.yaml>"+evil+"</write>", nil, []string{filepath.Join(dir, "llm-runtime.config.yaml")}, "--sandbox", sb)
		})
		t.Run("a configuration for a later run in a subdirectory", func(t *testing.T) {
			dir := repo(t, map[string]string{"sub/a.txt": "a\n"})
			mustRefuse(t, dir, "<write sub/llm-runtime.config.yaml>"+evil+"</write> <write deep/er/LLM-RUNTIME.CONFIG.YAML>x</write>", nil, nil, "--sandbox", sb)
			if _, err := os.Stat(filepath.Join(dir, "sub/llm-runtime.config.yaml")); err == nil {
				t.Fatal("written")
			}
		})
		t.Run("the user's configuration directory inside the root", func(t *testing.T) {
			dir := repo(t, map[string]string{"a.txt": "a\n"})
			mustRefuse(t, dir, "<write .config/llm-runtime/config.yaml>"+evil+"</write> <write .config/llm-runtime>x</write>",
				[]string{"XDG_CONFIG_HOME=" + filepath.Join(dir, ".config")}, nil, "--sandbox", sb)
			if _, err := os.Stat(filepath.Join(dir, ".config/llm-runtime")); err == nil {
				t.Fatal("created")
			}
		})
		t.Run("a policy module inside the repository", func(t *testing.T) {
			guest := wasmtest.Build(t, "guests/redact")
			dir := repo(t, map[string]string{"a.txt": "a\n"})
			b, _ := os.ReadFile(guest)
			os.WriteFile(filepath.Join(dir, "policy.wasm"), b, 0o644)
			r := mustRefuse(t, dir, "<write policy.wasm>\x00asm</write>", nil, []string{filepath.Join(dir, "policy.wasm")},
				"--sandbox", sb, "--transform", "policy.wasm", "-v")
			if !strings.Contains(r.stderr, "Warning: the guest module policy.wasm (policy.wasm) is inside the repository") {
				t.Errorf("no warning:\n%s", r.stderr)
			}
		})
	})
}

func TestE2EAuditStoreInsideTheRepositoryIsRefusedHoweverSpelt(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "a\n"})
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(dir, link)
	for _, args := range [][]string{
		{"--root", link, "--audit-dir", filepath.Join(dir, "audit")},
		{"--root", dir, "--audit-dir", filepath.Join(link, "audit")},
		{"--root", dir, "--audit-dir", filepath.Join(dir, "x", "..", "audit")},
	} {
		r := runBinary(t, t.TempDir(), "<open a.txt>", nil, append([]string{"--sandbox", "local"}, args...)...)
		if r.code != exitConfig || !strings.Contains(r.stderr, "is inside the repository") || r.stdout != "" {
			t.Errorf("%v: exit %d %q %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestE2ESignalEndsARunWaitingForInput: SIGTERM or SIGINT while the input
// is still open ends the run with exit 130, its containers gone, instead of
// waiting for the input to close.
func TestE2ESignalEndsARunWaitingForInput(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		for _, sb := range []string{"local", "docker"} {
			t.Run(sig.String()+"/"+sb, func(t *testing.T) {
				var env dockertest.Env
				if sb == "docker" {
					env = dockertest.Require(t)
				}
				dir := repo(t, map[string]string{"a.txt": "A\n"})
				s := startSession(t, dir, "--sandbox", sb)
				s.send("<open a.txt>")
				start := time.Now()
				s.cmd.Process.Signal(sig)
				// The rest of the output, to its end, before Wait: Wait
				// closes the pipe, and what was not read yet is lost.
				var rest []string
				hang := time.After(60 * time.Second) // a hang, not a speed check
			read:
				for {
					select {
					case l, ok := <-s.lines:
						if !ok {
							break read
						}
						rest = append(rest, l)
					case <-hang:
						t.Fatalf("still running 60 s after the signal; output so far %q", rest)
					}
				}
				err := s.cmd.Wait()
				t.Logf("exited %s after the signal", time.Since(start).Round(time.Millisecond))
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
					t.Fatalf("exit: %v, want %d", err, exitInterrupted)
				}
				if len(rest) < 2 || rest[len(rest)-1] != "=== END ===" {
					t.Fatalf("the output was not finished: %q", rest)
				}
				if sb == "docker" {
					noContainersOf(t, env, s.cmd.Process.Pid, 60*time.Second)
				}
			})
		}
	}
}

// TestE2ESwapsDuringARunLeakNothing is the red team's race through the
// binary: while a run opens, searches and writes, another process swaps
// race.txt with a link to .env and exchanges the directory d with a link
// to .git. No secret may appear in the output and nothing may land in .git.
func TestE2ESwapsDuringARunLeakNothing(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{
			".env": "ENV_SECRET_VALUE\n", ".git/config": "[core]\nGIT_SECRET_VALUE\n",
			"race.txt": "public\n", "race.real": "public\n", "d/config": "public\n",
		})
		os.Symlink(".env", filepath.Join(dir, "race.link"))
		os.Symlink(".git", filepath.Join(dir, "d.link"))
		gitBefore, _ := os.ReadFile(filepath.Join(dir, ".git/config"))
		var input strings.Builder
		for range 100 {
			input.WriteString("<open race.txt> <search SECRET_VALUE> <open d/config>\n<write d/config>\n[core]\n\tfsmonitor = touch pwned\n</write>\n")
		}
		stop := make(chan struct{})
		swapped := make(chan int)
		go func() {
			n := 0
			defer func() { swapped <- n }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, pair := range [][2]string{{"race.txt", "race.link"}, {"d", "d.link"}} {
					if unix.Renameat2(unix.AT_FDCWD, filepath.Join(dir, pair[0]), unix.AT_FDCWD, filepath.Join(dir, pair[1]), unix.RENAME_EXCHANGE) == nil {
						n++
					}
				}
			}
		}()
		r := runBinary(t, dir, input.String(), nil, "--sandbox", sb)
		close(stop)
		n := <-swapped
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if strings.Contains(r.stdout, "ENV_SECRET_VALUE") || strings.Contains(r.stdout, "GIT_SECRET_VALUE") {
			t.Fatalf("a secret leaked:\n%s", r.stdout)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, ".git/config")); string(b) != string(gitBefore) {
			t.Fatalf(".git/config was written: %q", b)
		}
		t.Logf("400 commands against %d swaps: %d refused", n, strings.Count(r.stdout, "=== ERROR: "))
	})
}

// TestE2EErrorsDoNotTellWhetherAnExcludedFileExists: a path through an
// excluded name is PATH_SECURITY before the file system is asked, so the
// answer is the same whether the excluded file exists or not.
func TestE2EErrorsDoNotTellWhetherAnExcludedFileExists(t *testing.T) {
	t.Parallel()
	probes := "<open .env/x> <open .git/refs/heads/main/x> <open .git/refs/heads/nosuch/x> <write .env/x>y</write> <open sub/../.env/x> <open a/../.git/HEAD>"
	bothSandboxes(t, func(t *testing.T, sb string) {
		with := repo(t, map[string]string{".env": "X=1\n", ".git/refs/heads/main": "abc\n", ".git/HEAD": "ref\n", "sub/a": ""})
		without := repo(t, map[string]string{"sub/a": ""})
		a := runBinary(t, with, probes, nil, "--sandbox", sb)
		b := runBinary(t, without, probes, nil, "--sandbox", sb)
		if strings.Count(a.stdout, "=== ERROR: PATH_SECURITY ===") != 6 {
			t.Fatalf("not all refused:\n%s", a.stdout)
		}
		if timeLine.ReplaceAllString(a.stdout, "") != timeLine.ReplaceAllString(b.stdout, "") {
			t.Fatalf("the answers differ with and without the excluded files:\n%s\n---\n%s", a.stdout, b.stdout)
		}
	})
}

// TestE2EPoliciesDecideOnWhatIsTouched: protect-secrets sees the file a
// link leads to, a search leaves out the lines of files it would not let
// the model open, and a swap between the decision and the access is
// refused. The sandbox's own exclusions are narrowed to .git, so that only
// the policy stands between the model and the secrets.
func TestE2EPoliciesDecideOnWhatIsTouched(t *testing.T) {
	t.Parallel()
	guest := wasmtest.Build(t, "guests/protect-secrets")
	env := []string{"LLM_RUNTIME_SECURITY_EXCLUDED_PATHS=.git"}
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{
			".env.local": "MARKER env S3CR3T\n", "keys/id_rsa": "MARKER key S3CR3T\n", "credentials.json": "MARKER creds S3CR3T\n",
			"notes.txt": "MARKER public\n", "race.txt": "public\n",
		})
		os.Symlink(".env.local", filepath.Join(dir, "cfg-link"))
		os.Symlink("keys/id_rsa", filepath.Join(dir, "deploy.txt"))
		r := runBinary(t, dir, "<open cfg-link> <open deploy.txt> <open keys/../keys//id_rsa> <search MARKER> <write cfg-link>X=1</write>", env,
			append([]string{"--sandbox", sb}, withPolicy(t, guest)...)...)
		if r.code != 0 || strings.Contains(r.stdout, "S3CR3T") || strings.Count(r.stdout, "=== ERROR: POLICY_DENIED ===") != 4 ||
			!strings.Contains(r.stdout, "notes.txt:1: MARKER public\nMatches: 1 in 1 file\n") {
			t.Fatalf("exit %d:\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "Message: denied by policy protect-secrets: cfg-link (.env.local) looks like a credential file") {
			t.Errorf("the denial does not name the file:\n%s", r.stdout)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, ".env.local")); string(b) != "MARKER env S3CR3T\n" {
			t.Fatalf(".env.local was written: %q", b)
		}

		// A swap between the decision and the access.
		os.Symlink(".env.local", filepath.Join(dir, "race.link"))
		var input strings.Builder
		for range 150 {
			input.WriteString("<open race.txt>\n")
		}
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
					unix.Renameat2(unix.AT_FDCWD, filepath.Join(dir, "race.txt"), unix.AT_FDCWD, filepath.Join(dir, "race.link"), unix.RENAME_EXCHANGE)
				}
			}
		}()
		r = runBinary(t, dir, input.String(), env, append([]string{"--sandbox", sb}, withPolicy(t, guest)...)...)
		close(stop)
		<-done
		if r.code != 0 || strings.Contains(r.stdout, "S3CR3T") {
			t.Fatalf("exit %d: a swap let a secret through:\n%s", r.code, r.stdout)
		}
		t.Logf("150 opens during swaps: %d read, %d denied, %d refused as changed", strings.Count(r.stdout, "=== FILE: "),
			strings.Count(r.stdout, "POLICY_DENIED"), strings.Count(r.stdout, "changed while it was decided on"))
	})
}

func TestE2EDefaultsExcludeTheUsualSecretsAndBoundASearch(t *testing.T) {
	t.Parallel()
	bothSandboxes(t, func(t *testing.T, sb string) {
		dir := repo(t, map[string]string{
			".env.local": "S3CR3T\n", "deploy/prod.env": "S3CR3T\n", "home/.ssh/id_ed25519": "S3CR3T\n", ".aws/credentials": "S3CR3T\n",
			".npmrc": "S3CR3T\n", "infra/terraform.tfstate": "S3CR3T\n", "a.txt": "public S3CR3T-free\n",
		})
		r := runBinary(t, dir, "<open .env.local> <open deploy/prod.env> <open home/.ssh/id_ed25519> <open .aws/credentials> <open .npmrc> <open infra/terraform.tfstate> <search S3CR3T>", nil, "--sandbox", sb)
		if r.code != 0 || strings.Count(r.stdout, "=== ERROR: PATH_SECURITY ===") != 6 || !strings.Contains(r.stdout, "a.txt:1: public S3CR3T-free\nMatches: 1 in 1 file\n") {
			t.Fatalf("exit %d:\n%s", r.code, r.stdout)
		}
		r = runBinary(t, dir, "<search S3CR3T>", []string{"LLM_RUNTIME_SEARCH_TIMEOUT=1ns"}, "--sandbox", sb)
		if !strings.Contains(r.stdout, "\nPartial: stopped at search.timeout (1ns) after 0 files; ") {
			t.Fatalf("no partial result:\n%s", r.stdout)
		}
		r = runBinary(t, dir, "<search S3CR3T>", []string{"LLM_RUNTIME_SEARCH_TIMEOUT=1ns"}, "--sandbox", sb, "--format", "jsonl")
		if !strings.Contains(r.stdout, `"partial":"stopped at search.timeout (1ns) after 0 files; `) {
			t.Fatalf("no partial result:\n%s", r.stdout)
		}
	})
}

func TestE2EPolicyCheckWarnsOfAGuestInsideTheRepository(t *testing.T) {
	t.Parallel()
	guest := wasmtest.Build(t, "guests/readonly")
	dir := repo(t, nil)
	b, _ := os.ReadFile(guest)
	inside := filepath.Join(dir, "guests", "readonly.wasm")
	os.MkdirAll(filepath.Dir(inside), 0o755)
	os.WriteFile(inside, b, 0o644)
	r := runBinary(t, dir, "", nil, "policy", "check", "guests/readonly.wasm")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: guests/readonly.wasm is inside the repository "+dir) {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBinary(t, dir, "", nil, "policy", "check", guest); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Fatalf("a guest outside: exit %d, stderr %q", r.code, r.stderr)
	}
}
