package main

// End-to-end tests of the CLI's conventions (issue 24): a flag wins over the
// environment, which wins over the file, on the daemon's path too; a typo
// names the nearest setting; config --yaml round-trips; audit list takes
// every operation the log records; the redact guest's markers stay whole;
// serve status and stop follow systemctl's exit codes; Pebble's own log
// waits for -vv; exec where the sandbox cannot run it is refused.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/runtime/wasm/wasmtest"
)

// The case, as typed.
func TestE2EAFormatFlagWinsOverTheEnvironment(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	r := runBinary(t, dir, "<open a.txt>", []string{"LLM_RUNTIME_OUTPUT_FORMAT=jsonl"}, "--sandbox", "local", "--format", "text")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "=== LLM TOOL START ===\n") {
		t.Fatalf("LLM_RUNTIME_OUTPUT_FORMAT=jsonl --format text: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Both manuals say so.
	if h := oneLine(runBinary(t, dir, "", nil, "--help").stdout); !strings.Contains(h, "a flag wins over the environment, which wins over the file, as with kubectl, docker and git") {
		t.Errorf("--help:\n%s", h)
	}
	if h := oneLine(runBinary(t, dir, "", nil, "config", "--help").stdout); !strings.Contains(h, "Precedence, lowest first: the defaults, the file, LLM_RUNTIME_* variables, flags.") {
		t.Errorf("config --help:\n%s", h)
	}
}

// flagCase is a flag that sets a setting, with a value for the file and
// one for the environment that it must beat.
type flagCase struct {
	args          []string // the flag as given
	key           string
	file, env     string // values set by the file and the environment
	want, wantSrc string // the value in force, and where config says it comes from
}

var flagCases = []flagCase{
	{[]string{"--sandbox", "local"}, "sandbox", "kubernetes", "docker", "local", "--sandbox"},
	{[]string{"--format", "text"}, "output.format", "jsonl", "jsonl", "text", "--format"},
	{[]string{"-f", "jsonl"}, "output.format", "text", "text", "jsonl", "--format"},
	{[]string{"--line-numbers"}, "output.line_numbers", "false", "false", "true", "--line-numbers"},
	{[]string{"--no-pool"}, "container_pool.enabled", "true", "true", "false", "--no-pool"},
	{[]string{"--exec"}, "exec.enabled", "false", "false", "true", "--exec"},
	{[]string{"--no-exec"}, "exec.enabled", "true", "true", "false", "--no-exec"},
	{[]string{"--exec=false"}, "exec.enabled", "true", "true", "false", "--no-exec"},
	{[]string{"--server", "/run/flag.sock"}, "server", "never", "/run/env.sock", "/run/flag.sock", "--server"},
	{[]string{"--audit-dir", "/tmp/llm-runtime-flag-audit"}, "audit.dir", "/tmp/file-audit", "/tmp/env-audit", "/tmp/llm-runtime-flag-audit", "--audit-dir"},
	// The original llm-runtime's spellings.
	{[]string{"--exec-enabled"}, "exec.enabled", "false", "false", "true", "--exec-enabled"},
	{[]string{"--exec-whitelist", "ls,cat"}, "exec.whitelist", "[make]", "go test", "ls,cat", "--exec-whitelist"},
	{[]string{"--exec-image", "flag:1"}, "exec.image", "file:1", "env:1", "flag:1", "--exec-image"},
	{[]string{"--exec-container", "flag:2"}, "exec.image", "file:1", "env:1", "flag:2", "--exec-container"},
	{[]string{"--exec-timeout", "5s"}, "exec.timeout", "1m", "2m", "5s", "--exec-timeout"},
	{[]string{"--exec-memory", "64MiB"}, "exec.memory", "1GiB", "2GiB", "64MiB", "--exec-memory"},
	{[]string{"--max-size", "2KiB"}, "security.max_file_size", "4KiB", "8KiB", "2KiB", "--max-size"},
	{[]string{"--max-write-size", "3KiB"}, "security.max_write_size", "4KiB", "8KiB", "3KiB", "--max-write-size"},
	{[]string{"--exclude", "a*,b*"}, "security.excluded_paths", "[c*]", "d*", "a*,b*", "--exclude"},
	{[]string{"--json"}, "output.format", "text", "text", "jsonl", "--json"},
}

// notSettings are the flags of the filter that set no setting, and why.
var notSettings = map[string]string{
	"help": "", "version": "", "root": "the repository, not a setting", "config": "the file itself",
	"verbose": "what is reported", "input": "", "output": "",
	"policy": "appends to policies, which no variable sets", "transform": "appends to transforms, which no variable sets",
	"io-image": "refused", "io-container": "refused", "io-timeout": "refused", "io-memory": "refused",
}

// Every flag that sets a setting, given with the file and the variable of
// the same setting set to other values: config shows the flag's value, and
// the flag as its source.
func TestE2EEverySettingsFlagWinsOverItsVariableAndTheFile(t *testing.T) {
	t.Parallel()
	// The table holds every flag of the filter (and config) that sets a
	// setting: a new one must join it.
	k, err := kong.New(&cli{})
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range flagCases {
		covered[strings.TrimLeft(strings.SplitN(c.args[0], "=", 2)[0], "-")] = true
	}
	covered["no-exec"], covered["f"] = true, true
	for _, cmd := range k.Model.Children {
		if cmd.Name != "run" && cmd.Name != "config" {
			continue
		}
		for _, f := range cmd.AllFlags(false) {
			for _, fl := range f {
				if _, ok := notSettings[fl.Name]; !ok && !covered[fl.Name] && fl.Name != "yaml" {
					t.Errorf("%s --%s: not in this test's table of flags that set a setting, nor among those that set none", cmd.Name, fl.Name)
				}
			}
		}
	}

	for _, c := range flagCases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			section, name, nested := strings.Cut(c.key, ".")
			yaml := c.key + ": " + c.file + "\n"
			if nested {
				yaml = section + ":\n  " + name + ": " + c.file + "\n"
			}
			dir := repo(t, map[string]string{"llm-runtime.config.yaml": yaml})
			variable := "LLM_RUNTIME_" + strings.ToUpper(strings.ReplaceAll(c.key, ".", "_"))
			// Each of the three is in force alone first, so that none of
			// the values is lost on the way.
			for _, step := range []struct {
				env          []string
				args         []string
				value, where string
			}{
				{nil, nil, strings.Trim(c.file, "[]"), filepath.Join(dir, "llm-runtime.config.yaml") + ":"},
				{[]string{variable + "=" + c.env}, nil, c.env, "$" + variable},
				{[]string{variable + "=" + c.env}, c.args, c.want, c.wantSrc},
			} {
				// Not the suite's exec image (cleanEnv): the file's.
				env := append([]string{"!LLM_RUNTIME_EXEC_IMAGE"}, step.env...)
				r := runBinary(t, dir, "", env, append([]string{"config"}, step.args...)...)
				row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(c.key) + `: (.*?) +# (.*)$`).FindStringSubmatch(r.stdout)
				if r.code != 0 || row == nil || row[1] != step.value || !strings.HasPrefix(row[2], step.where) {
					t.Fatalf("%v config %v: exit %d, row %q; want %s from %s\n%s", step.env, step.args, r.code, row, step.value, step.where, r.stderr)
				}
			}
		})
	}
}

// The MCP server and prompt take the same precedence.
func TestE2EMCPAndPromptFlagsWinOverTheEnvironment(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	// The environment asks for a cluster and for exec; the flags for the
	// local sandbox without exec: the server starts, and ends at EOF.
	env := []string{"LLM_RUNTIME_SANDBOX=kubernetes", "LLM_RUNTIME_EXEC_ENABLED=true", "KUBECONFIG=/nonexistent"}
	if r := runBinary(t, dir, "", env, "mcp", "--sandbox", "local", "--no-exec"); r.code != 0 {
		t.Fatalf("mcp --sandbox local --no-exec under %v: exit %d\n%s", env, r.code, r.stderr)
	}
	r := runBinary(t, dir, "", env, "prompt", "--sandbox", "docker", "--no-exec")
	if r.code != 0 || strings.Contains(r.stdout, "<exec") {
		t.Fatalf("prompt --no-exec under %v: exit %d\n%s%s", env, r.code, r.stdout, r.stderr)
	}
	r = runBinary(t, dir, "", []string{"LLM_RUNTIME_EXEC_ENABLED=false"}, "prompt", "--exec")
	if r.code != 0 || !strings.Contains(r.stdout, "<exec") {
		t.Fatalf("prompt --exec under LLM_RUNTIME_EXEC_ENABLED=false: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// The client sends the daemon its resolved configuration: the daemon's
// own environment and file do not change what the client's flags and
// environment said.
func TestE2EThroughTheDaemonAFlagStillWins(t *testing.T) {
	t.Parallel()
	d := startServe(t, "", []string{"LLM_RUNTIME_OUTPUT_FORMAT=jsonl", "LLM_RUNTIME_SEARCH_MAX_RESULTS=1"})
	dir := repo(t, map[string]string{"a.txt": "needle\nneedle\nneedle\n"})
	env := append([]string{"LLM_RUNTIME_OUTPUT_FORMAT=jsonl", "LLM_RUNTIME_SEARCH_MAX_RESULTS=2"}, d.env...)
	r := runBinary(t, dir, "<search needle>", env, "-v", "--sandbox", "local", "--format", "text")
	if r.code != 0 || !strings.Contains(r.stderr, "Server: llm-runtime serve (pid ") {
		t.Fatalf("not through the daemon: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "=== LLM TOOL START ===\n") || strings.Count(r.stdout, "a.txt:") != 2 {
		t.Fatalf("through the daemon, --format text and the client's max_results 2:\n%s", r.stdout)
	}
	// What the client refuses never reaches the daemon.
	x := runBinary(t, dir, "<open a.txt>", d.env, "--sandbox", "local", "--exec")
	if x.code != 2 || x.stdout != "" || !strings.Contains(x.stderr, "cannot run <exec>") {
		t.Fatalf("--sandbox local --exec through the daemon: exit %d\n%s%s", x.code, x.stdout, x.stderr)
	}
}

func TestE2EATypoInAVariableOrAKeyNamesTheNearest(t *testing.T) {
	t.Parallel()
	r := runBinary(t, t.TempDir(), "", []string{"LLM_RUNTIME_SANDOX=local"}, "config")
	if r.code != 2 || r.stderr != "llm-runtime: $LLM_RUNTIME_SANDOX: no such setting; did you mean LLM_RUNTIME_SANDBOX? see 'llm-runtime config --help' for the list\n" {
		t.Fatalf("exit %d, %q", r.code, r.stderr)
	}
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": "output:\n  fromat: jsonl\n"})
	r = runBinary(t, dir, "", nil, "config")
	if r.code != 2 || !strings.Contains(r.stderr, "llm-runtime.config.yaml:2: output.fromat: unknown key; did you mean output.format? known keys here: format, line_numbers\n") {
		t.Fatalf("exit %d, %q", r.code, r.stderr)
	}
}

func TestE2EConfigYAMLIsAFileThatLoadsBackToTheSameBytes(t *testing.T) {
	t.Parallel()
	guest := filepath.Join(t.TempDir(), "p.wasm")
	if err := os.WriteFile(guest, []byte("\x00asm"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := repo(t, map[string]string{"llm-runtime.config.yaml": "list:\n  max_entries: 9\n"})
	// From the file, the environment and flags.
	first := runBinary(t, dir, "", []string{"LLM_RUNTIME_SEARCH_MAX_RESULTS=7", "LLM_RUNTIME_EXEC_WHITELIST=go test,ls"},
		"config", "--yaml", "--format", "jsonl", "--no-pool", "--policy", guest)
	if first.code != 0 || first.stderr != "" {
		t.Fatalf("config --yaml: exit %d\n%s", first.code, first.stderr)
	}
	for _, want := range []string{"\nlist:\n  max_entries: 9\n", "\n  max_results: 7\n", "\n  format: jsonl\n", "\n  enabled: false\n", "\n  whitelist: [go test, ls]\n", "\npolicies:\n  - module: " + guest + "\n"} {
		if !strings.Contains(first.stdout, want) {
			t.Errorf("config --yaml lacks %q:\n%s", want, first.stdout)
		}
	}
	saved := filepath.Join(t.TempDir(), "saved.yaml")
	if err := os.WriteFile(saved, []byte(first.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	// Elsewhere, with nothing else: the same bytes.
	second := runBinary(t, t.TempDir(), "", nil, "--config", saved, "config", "--yaml")
	if second.code != 0 || second.stderr != "" || second.stdout != first.stdout {
		t.Fatalf("--config saved.yaml config --yaml: exit %d %s\n%s\nwas\n%s", second.code, second.stderr, second.stdout, first.stdout)
	}
	// The default view is still the one with sources.
	human := runBinary(t, t.TempDir(), "", nil, "--config", saved, "config")
	if !strings.HasPrefix(human.stdout, "# repository root: ") || !regexp.MustCompile(`(?m)^output\.format: jsonl +# `+regexp.QuoteMeta(saved)+`:\d+$`).MatchString(human.stdout) {
		t.Fatalf("config:\n%s", human.stdout)
	}
}

func TestE2EAuditListTakesEveryOperationTheLogRecords(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	in := "<open a.txt> <list> <edit a.txt>" + editBlock("A", "B") + "</edit> <write b.txt>B</write> <search B> <exec ls> <move b.txt c.txt> <delete c.txt> <diff> <undo>"
	if r := runBinary(t, dir, in, nil, "--sandbox", "local"); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, k := range parser.Kinds() {
		recs := auditOf(t, dir, "--op", string(k))
		for _, rec := range recs {
			if rec.Op != string(k) {
				t.Errorf("--op %s: %+v", k, rec)
			}
		}
		if k != parser.Exec && len(recs) != 1 { // exec: refused, as the local sandbox has none
			t.Errorf("--op %s: %d records, want 1", k, len(recs))
		}
	}
	r := runBinary(t, t.TempDir(), "", nil, "audit", "list", "--op", "remove")
	if r.code != 1 || !strings.Contains(r.stderr, `--op "remove": want one of open, write, edit, delete, move, list, search, exec, diff or undo`) {
		t.Fatalf("--op remove: exit %d %q", r.code, r.stderr)
	}
	h := oneLine(runBinary(t, t.TempDir(), "", nil, "audit", "list", "--help").stdout)
	_, op, _ := strings.Cut(h, "--op=OP ")
	op, _, _ = strings.Cut(op, " --")
	for _, k := range parser.Kinds() {
		if !regexp.MustCompile(`\b` + string(k) + `\b`).MatchString(op) {
			t.Errorf("audit list --help does not name %s under --op: %q", k, op)
		}
	}
}

func TestE2ETheRedactGuestKeepsItsMarkersWhole(t *testing.T) {
	t.Parallel()
	guest := wasmtest.Build(t, "guests/redact")
	cache := []string{"XDG_CACHE_HOME=" + t.TempDir()} // wazero's compilation cache: the test's own
	r := runBinary(t, t.TempDir(), "", cache, "policy", "test", guest, "--", `api_key=AKIAIOSFODNN7EXAMPLE secret: "AKIAIOSFODNN7EXAMPLF" password=hunter22`)
	if r.code != 0 || r.stdout != "api_key=[REDACTED aws-access-key] secret: \"[REDACTED aws-access-key]\" password=[REDACTED]\n(3 changes)\n" {
		t.Fatalf("exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	dir := repo(t, map[string]string{"app.ini": "api_key=AKIAIOSFODNN7EXAMPLE\n"})
	r = runBinary(t, dir, "<open app.ini>", cache, "--sandbox", "local", "--transform", guest)
	if r.code != 0 || !strings.Contains(r.stdout, "\napi_key=[REDACTED aws-access-key]\n") || strings.Contains(r.stdout, "AKIA") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestE2EServeStatusExitsThreeAndStopZeroWhenNoDaemonRuns(t *testing.T) {
	t.Parallel()
	socket := filepath.Join(t.TempDir(), "serve.sock")
	none := func() {
		t.Helper()
		st := runBinary(t, t.TempDir(), "", nil, "serve", "status", "--socket", socket)
		if st.code != 3 || st.stdout != "" || !strings.Contains(st.stderr, "no llm-runtime serve answers on "+socket) {
			t.Fatalf("status, no daemon: exit %d %q %q", st.code, st.stdout, st.stderr)
		}
		sp := runBinary(t, t.TempDir(), "", nil, "serve", "stop", "--socket", socket)
		if sp.code != 0 || sp.stdout != "no llm-runtime serve answers on "+socket+": nothing to stop\n" || sp.stderr != "" {
			t.Fatalf("stop, no daemon: exit %d %q %q", sp.code, sp.stdout, sp.stderr)
		}
	}
	none()
	d := startServe(t, socket, nil)
	if st := runBinary(t, t.TempDir(), "", nil, "serve", "status", "--socket", socket); st.code != 0 || !strings.HasPrefix(st.stdout, "llm-runtime serve, pid ") {
		t.Fatalf("status: exit %d %q %q", st.code, st.stdout, st.stderr)
	}
	if sp := runBinary(t, t.TempDir(), "", nil, "serve", "stop", "--socket", socket); sp.code != 0 || !strings.Contains(sp.stdout, "is stopping") {
		t.Fatalf("stop: exit %d %q %q", sp.code, sp.stdout, sp.stderr)
	}
	<-d.done
	none()
	for _, cmd := range []string{"status", "stop"} {
		h := oneLine(runBinary(t, t.TempDir(), "", nil, "serve", cmd, "--help").stdout)
		if !strings.Contains(h, "Exit codes, as systemctl "+cmd) || !strings.Contains(h, "Examples:") {
			t.Errorf("serve %s --help:\n%s", cmd, h)
		}
	}
}

func TestE2EPebblesOwnLogWaitsForDoubleVerbose(t *testing.T) {
	t.Parallel()
	dir := repo(t, map[string]string{"a.txt": "A\n"})
	for _, tc := range []struct {
		flag   string
		pebble bool
	}{{"-v", false}, {"--verbose", false}, {"-vv", true}, {"--verbose=2", true}} {
		audit := t.TempDir() // a new store: Pebble has WALs to create
		r := runBinary(t, dir, "<open a.txt>", nil, "--sandbox", "local", "--audit-dir", audit, tc.flag)
		if r.code != 0 || !strings.Contains(r.stderr, "Repository root: ") || strings.Contains(r.stderr, "pebble: ") != tc.pebble {
			t.Errorf("run %s: exit %d, Pebble's lines wanted: %v\n%s", tc.flag, r.code, tc.pebble, r.stderr)
		}
		l := runBinary(t, t.TempDir(), "", nil, "audit", "list", "--audit-dir", audit, tc.flag)
		if l.code != 0 || !strings.Contains(l.stdout, "a.txt") || strings.Contains(l.stderr, "pebble: ") != tc.pebble {
			t.Errorf("audit list %s: exit %d, Pebble's lines wanted: %v\n%s%s", tc.flag, l.code, tc.pebble, l.stdout, l.stderr)
		}
	}
}

func TestE2EExecWhereTheSandboxCannotRunItIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		env   []string
		args  []string
		want  string
	}{
		{"flags", nil, nil, []string{"--sandbox", "local", "--exec"},
			"llm-runtime: --exec: exec.enabled: is true, but sandbox local (--sandbox) cannot run <exec>: it runs on the host, with no container to confine a command in; run exec with sandbox docker, or turn it off (--no-exec, LLM_RUNTIME_EXEC_ENABLED=false, exec.enabled: false)\n"},
		{"the file", map[string]string{"llm-runtime.config.yaml": "sandbox: local\nexec:\n  enabled: true\n"}, nil, nil,
			"llm-runtime.config.yaml:3: exec.enabled: is true, but sandbox local (%s/llm-runtime.config.yaml:1) cannot run <exec>"},
		{"the environment", nil, []string{"LLM_RUNTIME_SANDBOX=local", "LLM_RUNTIME_EXEC_ENABLED=true"}, nil,
			"llm-runtime: $LLM_RUNTIME_EXEC_ENABLED: exec.enabled: is true, but sandbox local ($LLM_RUNTIME_SANDBOX) cannot run <exec>"},
		{"the legacy flag", nil, nil, []string{"--sandbox", "local", "--exec-enabled"}, "--exec-enabled: exec.enabled: is true, but sandbox local (--sandbox)"},
		{"kubernetes", nil, []string{"KUBECONFIG=/nonexistent"}, []string{"--sandbox", "kubernetes", "--exec"},
			"llm-runtime: --exec: exec.enabled: is true, but sandbox kubernetes (--sandbox) cannot run <exec>: exec does not run on Kubernetes yet; run exec with sandbox docker"},
		{"mcp", nil, nil, []string{"mcp", "--sandbox", "local", "--exec"}, "--exec: exec.enabled: is true, but sandbox local (--sandbox) cannot run <exec>"},
		{"prompt", nil, nil, []string{"prompt", "--sandbox", "local", "--exec"}, "--exec: exec.enabled: is true, but sandbox local (--sandbox) cannot run <exec>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"a.txt": "A\n"}
			for k, v := range tc.files {
				files[k] = v
			}
			dir := repo(t, files)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, dir)
			}
			r := runBinary(t, dir, "<open a.txt>", tc.env, tc.args...)
			if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, want) {
				t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant %q", r.code, r.stdout, r.stderr, want)
			}
		})
	}
	// The way out the message names; config still shows such a
	// configuration, with a warning.
	dir := repo(t, map[string]string{"a.txt": "A\n", "llm-runtime.config.yaml": "sandbox: local\nexec:\n  enabled: true\n"})
	if r := runBinary(t, dir, "<open a.txt>", nil, "--no-exec"); r.code != 0 || !strings.Contains(r.stdout, "=== FILE: a.txt ===\nA\n") {
		t.Fatalf("--no-exec: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c := runBinary(t, dir, "", nil, "config")
	if c.code != 0 || !strings.Contains(c.stdout, "exec.enabled: true") || !strings.HasPrefix(c.stderr, "llm-runtime: warning: a run with this configuration is refused: ") {
		t.Fatalf("config: exit %d\n%s%s", c.code, c.stdout, c.stderr)
	}
	// The help says so.
	h := oneLine(runBinary(t, dir, "", nil, "--help").stdout)
	if !strings.Contains(h, "only docker runs <exec>") || !strings.Contains(h, "--[no-]exec") || !strings.Contains(h, "--exec with --sandbox local, is one") {
		t.Fatalf("--help:\n%s", h)
	}
}

// oneLine is text with every run of white space one space: help as kong
// wraps it, for a phrase to be found whatever the width.
func oneLine(text string) string { return strings.Join(strings.Fields(text), " ") }
