package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// changed is a value other than the default for every setting.
var changed = map[string]string{
	"sandbox":                               "local",
	"sandbox_workspace":                     "copy",
	"sandbox_copy_max_size":                 "3GiB",
	"output.format":                         "jsonl",
	"output.line_numbers":                   "true",
	"security.max_file_size":                "2MiB",
	"security.max_write_size":               "1000",
	"security.excluded_paths":               ".git,*.secret,[ab]*.key",
	"security.host_tool_files":              ".envrc,.github/workflows",
	"security.host_tool_files_mode":         "deny",
	"search.max_results":                    "7",
	"list.max_entries":                      "9",
	"search.max_line_length":                "80",
	"search.timeout":                        "1m30s",
	"container_pool.enabled":                "false",
	"container_pool.size":                   "10",
	"container_pool.max_uses_per_container": "3",
	"container_pool.idle_timeout":           "0",
	"container_pool.health_check_interval":  "1h",
	"container_pool.startup_containers":     "0",
	"container_pool.spare_delay":            "250ms",
	"container_pool.acquire_timeout":        "2s",
	"container_pool.transport":              "attach",
	"exec.enabled":                          "true",
	"exec.image":                            "null",
	"exec.whitelist":                        "go test,*,ls -la",
	"exec.shell":                            "true",
	"exec.writable":                         "true",
	"exec.timeout":                          "1m",
	"exec.max_output":                       "123",
	"exec.memory":                           "1GiB",
	"exec.cpus":                             "1.5",
	"exec.pids":                             "64",
	"exec.tmp_size":                         "64MiB",
	"exec.runtime":                          "runsc",
	"exec.max_changes":                      "500",
	"exec.max_depth":                        "12",
	"exec.state_dir":                        "/tmp/a dir: with # signs",
	"exec.network":                          "allowlist",
	"exec.env":                              "GOPROXY=https://proxy.golang.org|file:///workspace/proxy,GOSUMDB=off,EMPTY=",
	"exec.network_allow":                    "proxy.golang.org,*.pypi.org:8443,127.0.0.1:9000,[::1]:8443",
	"exec.go_proxy":                         "http://127.0.0.1:9000/go",
	"exec.go_proxy_max_size":                "1GiB",
	"audit.enabled":                         "false",
	"audit.dir":                             "~",
	"journal.enabled":                       "true",
	"journal.dir":                           "~/journals",
	"journal.max_age":                       "48h",
	"journal.max_size":                      "64MiB",
	"journal.keep":                          "5",
	"server":                                "/run/x.sock",
	"kubernetes.namespace":                  "true",
	"kubernetes.warm_pool":                  "123",
	"kubernetes.lease":                      "5m",
	"serve.max_pools":                       "2",
	"serve.idle_exit":                       "0",
	"mcp.max_result":                        "64KiB",
}

func TestYAMLOfEverySettingLoadsBackToTheSameBytes(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.wasm"), []byte("x"), 0o644)
	for _, tc := range []struct {
		name string
		cfg  func() *Config
	}{
		{"the defaults", Default},
		{"every setting changed, and guests", func() *Config {
			c := Default()
			for _, s := range Settings() {
				v, ok := changed[s.Key]
				if !ok {
					t.Fatalf("no changed value for %s in this test", s.Key)
				}
				if err := c.Set(s.Key, v, "--test"); err != nil {
					t.Fatal(err)
				}
			}
			c.Policies = []Guest{{Module: filepath.Join(dir, "p.wasm"), Config: []byte(`{"n":2,"paths":[".env*"],"s":"yes"}`), Timeout: 50e6, MemoryLimit: 32 << 20}}
			c.Transforms = []Guest{{Module: filepath.Join(dir, "p.wasm")}, {Module: filepath.Join(dir, "p.wasm"), Config: []byte(`null`)}}
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg()
			first := c.YAML()
			// Saved somewhere else than the guests: their paths are absolute.
			file := filepath.Join(t.TempDir(), "saved.yaml")
			back, err := Parse(file, first)
			if err != nil {
				t.Fatalf("%v in:\n%s", err, first)
			}
			for _, s := range Settings() {
				if back.Value(s.Key) != c.Value(s.Key) {
					t.Errorf("%s: %q read back as %q", s.Key, c.Value(s.Key), back.Value(s.Key))
				}
				if !strings.HasPrefix(back.Origin(s.Key), file+":") {
					t.Errorf("%s: not in the file (origin %s)", s.Key, back.Origin(s.Key))
				}
			}
			if second := back.YAML(); string(second) != string(first) {
				t.Fatalf("not the same bytes:\n%s\nthen\n%s", first, second)
			}
			if len(back.Policies) != len(c.Policies) || len(back.Transforms) != len(c.Transforms) {
				t.Fatalf("guests %+v %+v", back.Policies, back.Transforms)
			}
		})
	}
}

func TestYAMLIsNestedByDocumentedSection(t *testing.T) {
	y := string(Default().YAML())
	for _, want := range []string{
		"# llm-runtime configuration: every setting, as in force ('llm-runtime config --yaml')\nsandbox: docker\n",
		"\noutput:\n  format: text\n",
		"\nsearch:\n  max_results: 100\n  max_line_length: 200\n  timeout: 10s\n",
		"\n  excluded_paths: [.git, .env, .env.*, '*.env', '*.pem',",
		"\n  state_dir: \"\"\n",
		"\npolicies: []\ntransforms: []\n",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("no %q in:\n%s", want, y)
		}
	}
}

func TestATypoNamesTheNearestSettingInTheEnvironmentAndTheFile(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"LLM_RUNTIME_SANDOX=local", "$LLM_RUNTIME_SANDOX: no such setting; did you mean LLM_RUNTIME_SANDBOX? see 'llm-runtime config --help' for the list"},
		{"LLM_RUNTIME_CONTAINER_POOL_SIZ=3", "$LLM_RUNTIME_CONTAINER_POOL_SIZ: no such setting; did you mean LLM_RUNTIME_CONTAINER_POOL_SIZE? see"},
		{"LLM_RUNTIME_OUTPUT_FROMAT=jsonl", "did you mean LLM_RUNTIME_OUTPUT_FORMAT?"},
		{"llm_runtime_exec_enabled=true", ""}, // not ours: the prefix is upper case
		{"LLM_RUNTIME_COLOR=1", "$LLM_RUNTIME_COLOR: no such setting; see 'llm-runtime config --help' for the list"},
	} {
		err := Default().ApplyEnv([]string{tc.env})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.env, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want) && !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s:\n got %v\nwant %s", tc.env, err, tc.want)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.wasm"), []byte("x"), 0o644)
	for y, want := range map[string]string{
		"sandbx: local\n":                                   "f.yaml:1: sandbx: unknown key; did you mean sandbox? known keys here: sandbox, ",
		"output:\n  fromat: jsonl\n":                        "f.yaml:2: output.fromat: unknown key; did you mean output.format? known keys here: format",
		"exec:\n  colour: red\n":                            "f.yaml:2: exec.colour: unknown key; known keys here: enabled,",
		"policies:\n  - module: p.wasm\n    timeot: 1s\n":   "policies[0].timeot: unknown key; did you mean policies[0].timeout? known keys here: module, config, timeout, memory_limit",
		"policies:\n  - module: p.wasm\n    colour: red\n":  "policies[0].colour: unknown key; known keys here: module,",
		"container_pool:\n  idle_timout: 1m\n":              "did you mean container_pool.idle_timeout?",
		"container_pool:\n  max_uses: 1\n":                  "container_pool.max_uses: unknown key; known keys here:",
		"search:\n  max_result: 1\n":                        "did you mean search.max_results?",
		"kubernetes:\n  warmpool: x\n":                      "did you mean kubernetes.warm_pool?",
		"serve:\n  max_pool: 3\n":                           "did you mean serve.max_pools?",
		"Sandbox: local\n":                                  "did you mean sandbox?",
		"exec:\n  whitelist: [ls]\n  white_list: [ls]\n":    "did you mean exec.whitelist?",
		"audit:\n  enabled: true\n  dri: /x\n":              "did you mean audit.dir?",
		"mcp:\n  max_results: 1KiB\n":                       "did you mean mcp.max_result?",
		"container_pool:\n  size: 1\n  startup: 1\n":        "container_pool.startup: unknown key; known keys here:",
		"security:\n  excluded_path: [.git]\n":              "did you mean security.excluded_paths?",
		"sandbox_workspace: bind\nsandbox_workspac: bind\n": "did you mean sandbox_workspace?",
	} {
		_, err := Parse(filepath.Join(dir, "f.yaml"), []byte(y))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant %s", y, err, want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"sandox", "sandbox", 1}, {"kitten", "sitting", 3}, {"fromat", "format", 1}, {"dri", "dir", 1}, {"é", "e", 1}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

func TestCheckSandboxRefusesExecWhereItCannotRun(t *testing.T) {
	for _, tc := range []struct {
		file, env string
		flags     map[string]string
		want      string
	}{
		{file: "sandbox: local\n", want: ""},
		{file: "exec:\n  enabled: true\n", want: ""},
		{file: "sandbox: local\nexec:\n  enabled: true\n",
			want: "f.yaml:3: exec.enabled: is true, but sandbox local (f.yaml:1) cannot run <exec>: it runs on the host, with no container to confine a command in; run exec with sandbox docker, or turn it off (--no-exec, LLM_RUNTIME_EXEC_ENABLED=false, exec.enabled: false)"},
		{file: "exec:\n  enabled: true\n", flags: map[string]string{"sandbox": "--sandbox"}, want: "f.yaml:2: exec.enabled: is true, but sandbox local (--sandbox) cannot run <exec>: it runs on the host"},
		{file: "sandbox: local\n", env: "LLM_RUNTIME_EXEC_ENABLED=true", want: "$LLM_RUNTIME_EXEC_ENABLED: exec.enabled: is true, but sandbox local (f.yaml:1) cannot run <exec>"},
		{file: "sandbox: kubernetes\n", env: "LLM_RUNTIME_EXEC_ENABLED=true", want: "$LLM_RUNTIME_EXEC_ENABLED: exec.enabled: is true, but sandbox kubernetes (f.yaml:1) cannot run <exec>: exec does not run on Kubernetes yet; run exec with sandbox docker"},
	} {
		c, err := Parse("f.yaml", []byte(tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyEnv([]string{tc.env}); err != nil {
			t.Fatal(err)
		}
		for key, flag := range tc.flags {
			if err := c.Set(key, "local", flag); err != nil {
				t.Fatal(err)
			}
		}
		err = c.CheckSandbox()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%q %s %v:\n got %v\nwant %s", tc.file, tc.env, tc.flags, err, tc.want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate refuses it too: %v", err)
		}
	}
}
