package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsMatchTheirDocumentation(t *testing.T) {
	c := Default()
	for _, s := range Settings() {
		if got := c.Value(s.Key); got != s.Default {
			t.Errorf("%s: default value prints as %q, documented as %q", s.Key, got, s.Default)
		}
		if c.Origin(s.Key) != "default" {
			t.Errorf("%s: origin %q", s.Key, c.Origin(s.Key))
		}
		if s.Doc == "" {
			t.Errorf("%s: no documentation", s.Key)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	want := Pool{Enabled: true, Size: 5, MaxUsesPerContainer: 100, IdleTimeout: 5 * time.Minute, HealthCheckInterval: 30 * time.Second, StartupContainers: 2, SpareDelay: time.Second, AcquireTimeout: 30 * time.Second, Transport: "socket"}
	if c.ContainerPool != want {
		t.Fatalf("pool defaults %+v, want the pooling guide's %+v", c.ContainerPool, want)
	}
	if c.Security.MaxFileSize != 1<<20 || c.Security.MaxWriteSize != 100<<10 || strings.Join(c.Security.ExcludedPaths, " ") != ".git .env .env.* *.env *.pem *.key *.p12 *.pfx *.jks *.keystore id_rsa* id_dsa* id_ecdsa* id_ed25519* .ssh .aws .gnupg .netrc .npmrc .pypirc .htpasswd credentials credentials.json *.tfstate secrets.yaml secrets.yml" {
		t.Fatalf("security defaults: %+v", c.Security)
	}
}

func TestParseReadsEveryKey(t *testing.T) {
	c, err := Parse("f.yaml", []byte(`
sandbox: local
output:
  format: jsonl
security:
  max_file_size: 2MiB
  max_write_size: 512 KiB
  excluded_paths:
    - .git
    - "*.secret"
search:
  max_results: 7
  max_line_length: 80
container_pool:
  enabled: false
  size: 10
  max_uses_per_container: 200
  idle_timeout: 10m
  health_check_interval: 1m30s
  startup_containers: 5
  spare_delay: 250ms
  acquire_timeout: 2s
  transport: attach
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Output.Format != "jsonl" || c.Security.MaxFileSize != 2<<20 || c.Security.MaxWriteSize != 512<<10 ||
		strings.Join(c.Security.ExcludedPaths, ",") != ".git,*.secret" || c.Search.MaxResults != 7 || c.Search.MaxLineLength != 80 {
		t.Fatalf("got %+v", c)
	}
	want := Pool{Enabled: false, Size: 10, MaxUsesPerContainer: 200, IdleTimeout: 10 * time.Minute, HealthCheckInterval: 90 * time.Second, StartupContainers: 5, SpareDelay: 250 * time.Millisecond, AcquireTimeout: 2 * time.Second, Transport: "attach"}
	if c.ContainerPool != want {
		t.Fatalf("pool %+v, want %+v", c.ContainerPool, want)
	}
	if c.Origin("container_pool.size") != "f.yaml:16" {
		t.Fatalf("origin %q", c.Origin("container_pool.size"))
	}
	if c.Value("container_pool.health_check_interval") != "1m30s" || c.Value("container_pool.idle_timeout") != "10m" {
		t.Fatalf("durations print as %q and %q", c.Value("container_pool.health_check_interval"), c.Value("container_pool.idle_timeout"))
	}
}

func TestParseRejectsBadFilesWithKeyAndLine(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"sandbox: vm\n", `f.yaml:1: sandbox: "vm" is not one of docker, kubernetes, local`},
		{"container_pool:\n  acquire_timeout: 0\n", "f.yaml:2: container_pool.acquire_timeout: must be more than 0"},
		{"bogus: 1\n", "f.yaml:1: bogus: unknown key; known keys here: sandbox, sandbox_workspace, sandbox_copy_max_size, output, security, search, list, container_pool, exec, audit, journal, server, kubernetes, serve, mcp, policies, transforms"},
		{"container_pool:\n  size: 5\n  sise: 3\n", "f.yaml:3: container_pool.sise: unknown key; did you mean container_pool.size? known keys here: enabled, size, max_uses_per_container, idle_timeout, health_check_interval, startup_containers, spare_delay, acquire_timeout, transport"},
		{"container_pool:\n  size: 0\n", "f.yaml:2: container_pool.size: 0 is out of range; want 1 to 64"},
		{"container_pool:\n  size: many\n", `f.yaml:2: container_pool.size: "many" is not a whole number`},
		{"container_pool:\n  enabled: yes\n", `f.yaml:2: container_pool.enabled: "yes" is not true or false`},
		{"container_pool:\n  idle_timeout: 5\n", `f.yaml:2: container_pool.idle_timeout: "5" is not a duration; write it like 30s, 5m or 1h30m`},
		{"container_pool:\n  idle_timeout: -5m\n", "f.yaml:2: container_pool.idle_timeout: -5m is negative"},
		{"container_pool:\n  size:\n", "f.yaml:2: container_pool.size: has no value; remove the key to use the default (5)"},
		{"container_pool: 3\n", "f.yaml:1: container_pool: container_pool must be a mapping of keys to values"},
		{"container_pool:\n  size: [1]\n", "f.yaml:2: container_pool.size: must be a single value, not a list or mapping"},
		{"container_pool:\n  size: 2\n  size: 3\n", "f.yaml:3: container_pool.size: set twice"},
		{"security:\n  max_file_size: 1MB\n", `f.yaml:2: security.max_file_size: "1MB": write binary units (KiB, MiB, GiB) to say what you mean`},
		{"security:\n  max_file_size: 1TiB\n", `f.yaml:2: security.max_file_size: "1TiB" has unknown unit "TiB"; use B, KiB, MiB or GiB`},
		{"security:\n  max_write_size: 0\n", "f.yaml:2: security.max_write_size: 0 is out of range; want 1 to 64MiB"},
		{"security:\n  excluded_paths: .git\n", "f.yaml:2: security.excluded_paths: must be a list, like [.git, .env]"},
		{"security:\n  excluded_paths: [\"[x\"]\n", `f.yaml:2: security.excluded_paths: bad pattern "[x": syntax error in pattern`},
		{"output:\n  format: xml\n", `f.yaml:2: output.format: "xml" is not one of text, jsonl`},
		{"exec:\n  env: [GOPROXY]\n", `f.yaml:2: exec.env: "GOPROXY" is not NAME=VALUE (a name of letters, digits and _, not starting with a digit)`},
		{"exec:\n  env: [\"1X=a\"]\n", `f.yaml:2: exec.env: "1X=a" is not NAME=VALUE (a name of letters, digits and _, not starting with a digit)`},
		{"exec:\n  network: open\n", `f.yaml:2: exec.network: "open" is not one of none, allowlist`},
		{"exec:\n  network_allow: [\"a b\"]\n", `f.yaml:2: exec.network_allow: "a b": not a host name, *.NAME or an IP address (with :PORT if need be)`},
		{"- a\n- b\n", "f.yaml:1: the file must be a mapping of keys to values"},
		{"sandbox: local\n---\nsandbox: local\n", "f.yaml:2: a second YAML document; the file holds one"},
		{"sandbox: [\n", "f.yaml:1: did not find expected node content"},
	}
	for _, tc := range cases {
		_, err := Parse("f.yaml", []byte(tc.yaml))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.yaml, err, tc.want)
		}
	}
}

func TestEmptyFilesAreDefaults(t *testing.T) {
	for _, y := range []string{"", "# only a comment\n", "---\n", "~\n"} {
		c, err := Parse("f.yaml", []byte(y))
		if err != nil || c.ContainerPool.Size != 5 {
			t.Errorf("%q: %v", y, err)
		}
	}
}

func TestValidateCrossChecks(t *testing.T) {
	c, err := Parse("f.yaml", []byte("container_pool:\n  size: 2\n  startup_containers: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil || err.Error() != "f.yaml:3: container_pool.startup_containers: is 3, more than container_pool.size (2)" {
		t.Fatalf("got %v", err)
	}
	if c, err = Parse("f.yaml", []byte("exec:\n  network: allowlist\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "f.yaml:2: exec.network: is allowlist, but exec.network_allow lists nothing") {
		t.Fatalf("an allowlist of nothing: %v", err)
	}
	for file, want := range map[string]string{
		"exec:\n  go_proxy: https://proxy.golang.org\n":                                                            "f.yaml:2: exec.go_proxy: is set, but exec.network is none",
		"exec:\n  go_proxy: https://proxy.golang.org\n  network: allowlist\n  network_allow: [sum.golang.org]\n":   "f.yaml:2: exec.go_proxy: is https://proxy.golang.org, but exec.network_allow does not list proxy.golang.org:443",
		"exec:\n  go_proxy: http://10.0.0.5:3000/go\n  network: allowlist\n  network_allow: [10.0.0.5]\n":          "f.yaml:2: exec.go_proxy: is http://10.0.0.5:3000/go, but exec.network_allow does not list 10.0.0.5:3000",
		"exec:\n  go_proxy: https://proxy.golang.org\n  network: allowlist\n  network_allow: [proxy.golang.org]\n": "",
		"exec:\n  go_proxy: http://10.0.0.5:3000/go\n  network: allowlist\n  network_allow: [\"10.0.0.5:3000\"]\n": "",
	} {
		c, err := Parse("f.yaml", []byte(file))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); want == "" && err != nil || want != "" && (err == nil || !strings.HasPrefix(err.Error(), want)) {
			t.Errorf("%s: %v; want %q", file, err, want)
		}
	}
	for _, bad := range []string{"proxy.golang.org", "ftp://x.org", "https://u:p@x.org", "https://x.org/?a=b", "https://"} {
		if _, err := Parse("f.yaml", []byte("exec:\n  go_proxy: \""+bad+"\"\n")); err == nil {
			t.Errorf("exec.go_proxy %q was taken", bad)
		}
	}
}

func TestLayersFileThenEnvironmentThenFlags(t *testing.T) {
	c, err := Parse("f.yaml", []byte("container_pool:\n  size: 3\nsearch:\n  max_results: 9\nlist:\n  max_entries: 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=/x", "LLM_RUNTIME_CONTAINER_POOL_SIZE=6", "LLM_RUNTIME_LIST_MAX_ENTRIES=5", "LLM_RUNTIME_SECURITY_EXCLUDED_PATHS=.git, *.secret", "LLM_RUNTIME_REQUIRE_DOCKER=1"}
	if err := c.ApplyEnv(env); err != nil {
		t.Fatal(err)
	}
	// Flags come last, as the CLI sets them.
	if err := c.Set("container_pool.size", "4", "--pool-size"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("search.max_results", "8", "--max-results"); err != nil {
		t.Fatal(err)
	}
	if c.ContainerPool.Size != 4 || c.Origin("container_pool.size") != "--pool-size" {
		t.Fatalf("the flag did not beat the environment: %d from %s", c.ContainerPool.Size, c.Origin("container_pool.size"))
	}
	if c.Search.MaxResults != 8 || c.Origin("search.max_results") != "--max-results" {
		t.Fatalf("flag did not beat the file: %d", c.Search.MaxResults)
	}
	if c.List.MaxEntries != 5 || c.Origin("list.max_entries") != "$LLM_RUNTIME_LIST_MAX_ENTRIES" {
		t.Fatalf("the environment did not beat the file: %d from %s", c.List.MaxEntries, c.Origin("list.max_entries"))
	}
	if strings.Join(c.Security.ExcludedPaths, "|") != ".git|*.secret" {
		t.Fatalf("list from the environment: %q", c.Security.ExcludedPaths)
	}
	err = c.ApplyEnv([]string{"LLM_RUNTIME_CONTAINER_POOL_SIZ=3"})
	if err == nil || !strings.Contains(err.Error(), "$LLM_RUNTIME_CONTAINER_POOL_SIZ: no such setting") {
		t.Fatalf("typo in a variable: %v", err)
	}
	err = c.ApplyEnv([]string{"LLM_RUNTIME_CONTAINER_POOL_SIZE=0"})
	if err == nil || err.Error() != "$LLM_RUNTIME_CONTAINER_POOL_SIZE: container_pool.size: 0 is out of range; want 1 to 64" {
		t.Fatalf("bad value in a variable: %v", err)
	}
	if err := c.ApplyEnv([]string{"LLM_RUNTIME_SECURITY_EXCLUDED_PATHS="}); err != nil || c.Security.ExcludedPaths == nil || len(c.Security.ExcludedPaths) != 0 {
		t.Fatalf("an empty list must exclude nothing: %v %#v", err, c.Security.ExcludedPaths)
	}
}

func TestFindLooksInTheRootThenTheUserConfigDirectory(t *testing.T) {
	root, home := t.TempDir(), t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	if p, err := Find("", root); err != nil || p != "" {
		t.Fatalf("no file: %q %v", p, err)
	}
	user := filepath.Join(home, "llm-runtime", "config.yaml")
	os.MkdirAll(filepath.Dir(user), 0o755)
	os.WriteFile(user, nil, 0o644)
	if p, _ := Find("", root); p != user {
		t.Fatalf("user file: %q", p)
	}
	repo := filepath.Join(root, FileName)
	os.WriteFile(repo, nil, 0o644)
	if p, _ := Find("", root); p != repo {
		t.Fatalf("repository file: %q", p)
	}
	if p, _ := Find(user, root); p != user {
		t.Fatalf("explicit file: %q", p)
	}
	if _, err := Find(filepath.Join(root, "missing.yaml"), root); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing explicit file: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1": 1, "10B": 10, "1KiB": 1024, "1 kib": 1024, "2K": 2048, "1MiB": 1 << 20, "3M": 3 << 20, "1GiB": 1 << 30} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "99999999999999999999", "9999999999GiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestGuestLists(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.wasm"), []byte("x"), 0o644)
	file := filepath.Join(dir, "llm-runtime.config.yaml")
	c, err := Parse(file, []byte("policies:\n  - module: p.wasm\n    config: {paths: [\".env*\"], n: 2}\n    timeout: 50ms\n    memory_limit: 32MiB\ntransforms:\n  - module: p.wasm\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Policies) != 1 || c.Policies[0].Module != filepath.Join(dir, "p.wasm") || string(c.Policies[0].Config) != `{"n":2,"paths":[".env*"]}` ||
		c.Policies[0].Timeout != 50*time.Millisecond || c.Policies[0].MemoryLimit != 32<<20 || len(c.Transforms) != 1 {
		t.Fatalf("got %+v %+v", c.Policies, c.Transforms)
	}
	for y, want := range map[string]string{
		"policies: p.wasm\n":                              "policies: must be a list of modules",
		"policies:\n  - config: {}\n":                     "policies[0]: has no module:",
		"policies:\n  - module: nope.wasm\n":              "policies[0].module: cannot read",
		"policies:\n  - module: p.wasm\n    color: red\n": "policies[0].color: unknown key",
		"policies:\n  - module: p.wasm\n    timeout: 0\n": "policies[0].timeout: must be more than 0",
	} {
		if _, err := Parse(file, []byte(y)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", y, err, want)
		}
	}
}

func TestAConfigurationSentAsJSONKeepsTheOriginOfEachValue(t *testing.T) {
	c := Default()
	if err := c.Set("exec.timeout", "2m", "$LLM_RUNTIME_EXEC_TIMEOUT"); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var got Config
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Exec.Timeout != 2*time.Minute || got.Origin("exec.timeout") != "$LLM_RUNTIME_EXEC_TIMEOUT" || got.Origin("exec.memory") != "default" || got.Exec.Whitelist[0] != c.Exec.Whitelist[0] {
		t.Fatalf("decoded: timeout %s from %q, exec.memory from %q, whitelist %v", got.Exec.Timeout, got.Origin("exec.timeout"), got.Origin("exec.memory"), got.Exec.Whitelist)
	}
}
