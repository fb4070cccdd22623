package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/llm-runtime/llm-runtime/egress"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Setting describes one configuration key.
type Setting struct {
	Key     string // dotted key in the file: "container_pool.size"
	Default string // the default, in the file's notation
	Doc     string // one line: what it does
	List    bool   // a list of strings (comma-separated in the environment)
	set     func(c *Config, v string) error
	get     func(c *Config) string
}

// Env is the environment variable of the setting.
func (s Setting) Env() string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_").Replace(s.Key))
}

// Settings returns every setting, in the order of the documentation.
func Settings() []Setting { return append([]Setting(nil), settings...) }

// Value returns the current value of key in the file's notation.
func (c *Config) Value(key string) string {
	s, ok := lookup(key)
	if !ok {
		return ""
	}
	return s.get(c)
}

func lookup(key string) (Setting, bool) {
	for _, s := range settings {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

var settings = []Setting{
	{
		Key: "sandbox", Default: "docker",
		Doc: "where operations run: docker (hardened, pooled containers), kubernetes (a claimed pod of an agent-sandbox warm pool, in copy mode; no exec yet) or local (on the host, no container boundary, no exec)",
		set: func(c *Config, v string) error { return oneOf(&c.Sandbox, v, "docker", "kubernetes", "local") },
		get: func(c *Config) string { return c.Sandbox },
	},
	{
		Key: "sandbox_workspace", Default: "auto",
		Doc: "how a Docker sandbox sees the repository: bind (bind-mounted), copy (a replica in a Docker volume, pushed by llm-runtime; writes and edits are applied on the host; for a Docker host that is not this machine) or auto (bind on this machine's unix socket, copy on any other DOCKER_HOST)",
		set: func(c *Config, v string) error { return oneOf(&c.SandboxWorkspace, v, "auto", "bind", "copy") },
		get: func(c *Config) string { return c.SandboxWorkspace },
	},
	{
		Key: "sandbox_copy_max_size", Default: "2GiB",
		Doc: "the most content a copy of the repository may hold: in copy mode the replica (the repository's files that the rules let the sandbox see), and exec's copy (on disk: a sparse file counts what it holds); over it, operations answer RESOURCE_LIMIT",
		set: func(c *Config, v string) error { return sizeIn(&c.SandboxCopyMaxSize, v, 1, 1<<40) },
		get: func(c *Config) string { return FormatSize(c.SandboxCopyMaxSize) },
	},
	{
		Key: "output.format", Default: "text",
		Doc: "text (the === framing) or jsonl (one JSON object per command)",
		set: func(c *Config, v string) error { return oneOf(&c.Output.Format, v, "text", "jsonl") },
		get: func(c *Config) string { return c.Output.Format },
	},
	{
		Key: "output.line_numbers", Default: "false",
		Doc: "in the text format, start each line of an <open>'s FILE block with its number in the file (a range's from its first line) and a tab, as cat -n does; the number is not part of the file. JSONL is unchanged (content is the file's bytes)",
		set: func(c *Config, v string) error { return boolean(&c.Output.LineNumbers, v) },
		get: func(c *Config) string { return strconv.FormatBool(c.Output.LineNumbers) },
	},
	{
		Key: "security.max_file_size", Default: "1MiB",
		Doc: "largest file <open> reads or <search> scans",
		set: func(c *Config, v string) error { return sizeIn(&c.Security.MaxFileSize, v, 1, 256<<20) },
		get: func(c *Config) string { return FormatSize(c.Security.MaxFileSize) },
	},
	{
		Key: "security.max_write_size", Default: "100KiB",
		Doc: "largest content <write> accepts; larger writes are refused and the file is left as it was",
		set: func(c *Config, v string) error { return sizeIn(&c.Security.MaxWriteSize, v, 1, 64<<20) },
		get: func(c *Config) string { return FormatSize(c.Security.MaxWriteSize) },
	},
	{
		Key: "security.excluded_paths", Default: strings.Join(sandbox.DefaultExcluded, ","), List: true,
		Doc: "glob patterns refused for open and write and skipped by search, matched against every path component at any depth, ignoring case",
		set: func(c *Config, v string) error { return patterns(&c.Security.ExcludedPaths, splitList(v)) },
		get: func(c *Config) string { return strings.Join(c.Security.ExcludedPaths, ",") },
	},
	{
		Key: "security.host_tool_files", Default: strings.Join(sandbox.DefaultHostToolFiles, ","), List: true,
		Doc: "glob patterns (excluded_paths' language) of files tools on the host run or obey when you open, enter, commit or push the repository (editor tasks, CI workflows, hooks, git attributes); a write, edit or exec change to one is marked, or refused (host_tool_files_mode)",
		set: func(c *Config, v string) error { return patterns(&c.Security.HostToolFiles, splitList(v)) },
		get: func(c *Config) string { return strings.Join(c.Security.HostToolFiles, ",") },
	},
	{
		Key: "security.host_tool_files_mode", Default: "warn",
		Doc: "warn: a change to a host tool file lands, marked in the result, the exec change report and the audit log (audit list --host-tool-files); deny: it is refused",
		set: func(c *Config, v string) error { return oneOf(&c.Security.HostToolFilesMode, v, "warn", "deny") },
		get: func(c *Config) string { return c.Security.HostToolFilesMode },
	},
	{
		Key: "search.max_results", Default: "100",
		Doc: "matching lines <search> lists; the total count is always given",
		set: func(c *Config, v string) error { return intIn(&c.Search.MaxResults, v, 1, 100000) },
		get: func(c *Config) string { return strconv.Itoa(c.Search.MaxResults) },
	},
	{
		Key: "list.max_entries", Default: "1000",
		Doc: "entries <list> lists; the total, and those left out as excluded or ignored, are always counted",
		set: func(c *Config, v string) error { return intIn(&c.List.MaxEntries, v, 1, 1000000) },
		get: func(c *Config) string { return strconv.Itoa(c.List.MaxEntries) },
	},
	{
		Key: "search.max_line_length", Default: "200",
		Doc: "longest line <search> prints, in bytes; longer lines are cut and marked [...]",
		set: func(c *Config, v string) error { return intIn(&c.Search.MaxLineLength, v, 10, 100000) },
		get: func(c *Config) string { return strconv.Itoa(c.Search.MaxLineLength) },
	},
	{
		Key: "search.timeout", Default: "10s",
		Doc: "longest a <search> runs; then it stops and reports what it found as partial; 0 never stops",
		set: func(c *Config, v string) error { return duration(&c.Search.Timeout, v) },
		get: func(c *Config) string { return formatDuration(c.Search.Timeout) },
	},
	{
		Key: "container_pool.enabled", Default: "true",
		Doc: "reuse sandbox containers; false starts a container per operation",
		set: func(c *Config, v string) error { return boolean(&c.ContainerPool.Enabled, v) },
		get: func(c *Config) string { return strconv.FormatBool(c.ContainerPool.Enabled) },
	},
	{
		Key: "container_pool.size", Default: "5",
		Doc: "most containers in the pool at once",
		set: func(c *Config, v string) error { return intIn(&c.ContainerPool.Size, v, 1, 64) },
		get: func(c *Config) string { return strconv.Itoa(c.ContainerPool.Size) },
	},
	{
		Key: "container_pool.max_uses_per_container", Default: "100",
		Doc: "recycle a container after this many operations",
		set: func(c *Config, v string) error { return intIn(&c.ContainerPool.MaxUsesPerContainer, v, 1, 1000000) },
		get: func(c *Config) string { return strconv.Itoa(c.ContainerPool.MaxUsesPerContainer) },
	},
	{
		Key: "container_pool.idle_timeout", Default: "5m",
		Doc: "remove a container idle this long; 0 keeps idle containers",
		set: func(c *Config, v string) error { return duration(&c.ContainerPool.IdleTimeout, v) },
		get: func(c *Config) string { return formatDuration(c.ContainerPool.IdleTimeout) },
	},
	{
		Key: "container_pool.health_check_interval", Default: "30s",
		Doc: "ping each idle container this often; 0 turns health checks off",
		set: func(c *Config, v string) error { return duration(&c.ContainerPool.HealthCheckInterval, v) },
		get: func(c *Config) string { return formatDuration(c.ContainerPool.HealthCheckInterval) },
	},
	{
		Key: "container_pool.startup_containers", Default: "2",
		Doc: "containers kept ready: one created at start, the rest (spares) in parallel once it has been ready for container_pool.spare_delay; at most container_pool.size",
		set: func(c *Config, v string) error { return intIn(&c.ContainerPool.StartupContainers, v, 0, 64) },
		get: func(c *Config) string { return strconv.Itoa(c.ContainerPool.StartupContainers) },
	},
	{
		Key: "container_pool.spare_delay", Default: "1s",
		Doc: "how long the first container must have been ready before the rest of container_pool.startup_containers are created: a run that ends sooner never starts, nor waits to remove, containers it does not use; 0 creates them as soon as the first is ready",
		set: func(c *Config, v string) error { return duration(&c.ContainerPool.SpareDelay, v) },
		get: func(c *Config) string { return formatDuration(c.ContainerPool.SpareDelay) },
	},
	{
		Key: "container_pool.acquire_timeout", Default: "30s",
		Doc: "how long an operation waits for a container when all are busy, before POOL_EXHAUSTED",
		set: func(c *Config, v string) error { return positive(&c.ContainerPool.AcquireTimeout, v) },
		get: func(c *Config) string { return formatDuration(c.ContainerPool.AcquireTimeout) },
	},
	{
		Key: "container_pool.transport", Default: "socket",
		Doc: "how operations reach a container's agent: socket (a unix socket in a private directory bind-mounted into the container, past dockerd's attach proxy; the attach stream where that cannot work, such as a remote Docker host, as --verbose says) or attach (always the attach stream)",
		set: func(c *Config, v string) error { return oneOf(&c.ContainerPool.Transport, v, "socket", "attach") },
		get: func(c *Config) string { return c.ContainerPool.Transport },
	},
	{
		Key: "exec.enabled", Default: "false",
		Doc: "allow <exec>; it runs in a fresh, pre-started container of exec.image",
		set: func(c *Config, v string) error { return boolean(&c.Exec.Enabled, v) },
		get: func(c *Config) string { return strconv.FormatBool(c.Exec.Enabled) },
	},
	{
		Key: "exec.image", Default: "llm-runtime-exec:busybox",
		Doc: "the image commands run in; it must exist locally (nothing is pulled): 'llm-runtime image build exec' builds the default from busybox-static, 'llm-runtime image build go' one with Go (llm-runtime-exec:go), whose recommended limits apply where you set none",
		set: func(c *Config, v string) error {
			if strings.TrimSpace(v) == "" || strings.ContainsAny(v, " \t") {
				return fmt.Errorf("%q is not an image name", v)
			}
			c.Exec.Image = v
			return nil
		},
		get: func(c *Config) string { return c.Exec.Image },
	},
	{
		Key: "exec.whitelist", Default: strings.Join(DefaultWhitelist, ","), List: true,
		Doc: "allowed commands, as argument-vector prefixes (\"go test\" allows go test ./...); a listed program may start only listed programs (find -exec, xargs, env...); \"*\" allows anything and turns those checks off; the default fits the default image (busybox); the prompt lists only the entries whose program exec.image has",
		set: func(c *Config, v string) error { c.Exec.Whitelist = append([]string{}, splitList(v)...); return nil },
		get: func(c *Config) string { return strings.Join(c.Exec.Whitelist, ",") },
	},
	{
		Key: "exec.shell", Default: "false",
		Doc: "run commands under /bin/sh -c, allowing |, &&, || and ; between whitelisted commands",
		set: func(c *Config, v string) error { return boolean(&c.Exec.Shell, v) },
		get: func(c *Config) string { return strconv.FormatBool(c.Exec.Shell) },
	},
	{
		Key: "exec.writable", Default: "false",
		Doc: "apply what a command changes to the repository, through the rules of <write> (no links, FIFOs, devices, setuid, setgid or sticky bits; nothing at an excluded path, in .git or at a configuration file; each refusal reported); false: a command may still write, to its copy, and its changes are discarded",
		set: func(c *Config, v string) error { return boolean(&c.Exec.Writable, v) },
		get: func(c *Config) string { return strconv.FormatBool(c.Exec.Writable) },
	},
	{
		Key: "exec.timeout", Default: "30s",
		Doc: "a command still running after this is killed: exit code 124, EXEC_TIMEOUT, with its output so far; unset, an exec image of llm-runtime's may recommend another (the go image: 5m, for a cold build)",
		set: func(c *Config, v string) error { return positive(&c.Exec.Timeout, v) },
		get: func(c *Config) string { return formatDuration(c.Exec.Timeout) },
	},
	{
		Key: "exec.max_output", Default: "1MiB",
		Doc: "output kept per command; the rest is dropped and a truncation marker says how much",
		set: func(c *Config, v string) error { return sizeIn(&c.Exec.MaxOutput, v, 1, 64<<20) },
		get: func(c *Config) string { return FormatSize(c.Exec.MaxOutput) },
	},
	{
		Key: "exec.memory", Default: "512MiB",
		Doc: "memory limit of an exec container (no swap); unset, an exec image of llm-runtime's may recommend another (the go image: 1GiB)",
		set: func(c *Config, v string) error { return sizeIn(&c.Exec.Memory, v, 16<<20, 64<<30) },
		get: func(c *Config) string { return FormatSize(c.Exec.Memory) },
	},
	{
		Key: "exec.cpus", Default: "1",
		Doc: "CPUs an exec container may use (0.1 to 1024, fractions allowed), capped at what Docker has; unset, an exec image of llm-runtime's may recommend more (the go image: 2, for a build that compiles in parallel)",
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || !(f >= 0.1 && f <= 1024) {
				return fmt.Errorf("%q is not a number of CPUs from 0.1 to 1024 (1, 2, 0.5)", v)
			}
			c.Exec.CPUs = f
			return nil
		},
		get: func(c *Config) string { return strconv.FormatFloat(c.Exec.CPUs, 'f', -1, 64) },
	},
	{
		Key: "exec.pids", Default: "128",
		Doc: "most processes in an exec container (stops fork bombs)",
		set: func(c *Config, v string) error { return int64In(&c.Exec.PIDs, v, 8, 100000) },
		get: func(c *Config) string { return strconv.FormatInt(c.Exec.PIDs, 10) },
	},
	{
		Key: "exec.tmp_size", Default: "512MiB",
		Doc: "size of a command's /tmp: private to the command, executable (test binaries run from it), in memory and counted in exec.memory",
		set: func(c *Config, v string) error { return sizeIn(&c.Exec.TmpSize, v, 1<<20, 64<<30) },
		get: func(c *Config) string { return FormatSize(c.Exec.TmpSize) },
	},
	{
		Key: "exec.runtime", Default: "",
		Doc: "the Docker runtime exec containers run under: empty, the daemon's default (runc); runsc runs them in gVisor, whose own kernel answers their system calls, once registered with dockerd (see docs/sandboxes.md); a runtime the daemon does not know is refused before anything runs, with the ones it knows",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			for _, r := range v {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_", r)) {
					return fmt.Errorf("%q is not a runtime's name (letters, digits, '.', '-', '_': runsc, io.containerd.runc.v2)", v)
				}
			}
			c.Exec.Runtime = v
			return nil
		},
		get: func(c *Config) string { return c.Exec.Runtime },
	},
	{
		Key: "exec.max_changes", Default: "20000",
		Doc: "the most files and directories one command may make, change or remove for its changes to be applied (exec.writable); past it none is, and the command answers RESOURCE_LIMIT with its output",
		set: func(c *Config, v string) error { return intIn(&c.Exec.MaxChanges, v, 1, 1000000) },
		get: func(c *Config) string { return strconv.Itoa(c.Exec.MaxChanges) },
	},
	{
		Key: "exec.max_depth", Default: "64",
		Doc: "the deepest path, in directories, a command may make for its changes to be applied (exec.writable); past it none is, and the command answers RESOURCE_LIMIT with its output",
		set: func(c *Config, v string) error { return intIn(&c.Exec.MaxDepth, v, 1, 2048) },
		get: func(c *Config) string { return strconv.Itoa(c.Exec.MaxDepth) },
	},
	{
		Key: "exec.network", Default: "none",
		Doc: "a command's network: none (the container has no network interface at all) or allowlist (still none, but HTTP_PROXY and HTTPS_PROXY name a proxy the agent carries to llm-runtime, which lets through only CONNECT and plain HTTP to exec.network_allow's hosts, resolving them itself, never to a private or loopback address unless listed by address, never reading TLS; every connection audited and summed up in the result)",
		set: func(c *Config, v string) error { return oneOf(&c.Exec.Network, v, "none", "allowlist") },
		get: func(c *Config) string { return c.Exec.Network },
	},
	{
		Key: "exec.network_allow", Default: "", List: true,
		Doc: "the destinations of exec.network allowlist: host names (proxy.golang.org), \"*.\" and a domain for its subdomains (*.pypi.org, not pypi.org itself), each with :PORT for that port alone (else 443 and 80), or an IP address (127.0.0.1:8080) to allow that address even when private or loopback; see docs/exec.md for the presets of Go, PyPI, npm and crates.io",
		set: func(c *Config, v string) error {
			rules, err := egress.ParseRules(splitList(v))
			if err != nil {
				return err
			}
			c.Exec.NetworkAllow = rules
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.Exec.allowList(), ",") },
	},
	{
		Key: "exec.go_proxy", Default: "",
		Doc: "a Go module proxy (https://proxy.golang.org) whose modules your repositories share: a command's go gets GOPROXY=http://" + egress.ModulesHost + ", which llm-runtime answers itself, from a download cache of yours (go-modules in exec.state_dir) that only it writes, fetching each version once from this proxy through exec.network_allow (which must list it); needs exec.network: allowlist",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != "" {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
					return fmt.Errorf("%q is not a module proxy's URL (https://proxy.golang.org, http://10.0.0.5:3000/go)", v)
				}
			}
			c.Exec.GoProxy = v
			return nil
		},
		get: func(c *Config) string { return c.Exec.GoProxy },
	},
	{
		Key: "exec.go_proxy_max_size", Default: "4GiB",
		Doc: "the most the module cache of exec.go_proxy may hold: past it, the files served least recently go first (the one just fetched stays, whatever its size), so no command can fill your disk by asking for many large modules",
		set: func(c *Config, v string) error { return sizeIn(&c.Exec.GoProxyMaxSize, v, 64<<20, 1<<40) },
		get: func(c *Config) string { return FormatSize(c.Exec.GoProxyMaxSize) },
	},
	{
		Key: "exec.env", Default: "", List: true,
		Doc: "variables set for every command, NAME=VALUE, over the image's and exec's own (GOPROXY=https://proxy.golang.org, with the Go preset of exec.network_allow, lets a first go test fetch its modules); a value cannot hold a comma (GOPROXY also takes | between proxies); yours, never the model's: its env refuses most such names",
		set: func(c *Config, v string) error {
			vars := splitList(v)
			for _, kv := range vars {
				name, _, ok := strings.Cut(kv, "=")
				if !ok || !envName(name) {
					return fmt.Errorf("%q is not NAME=VALUE (a name of letters, digits and _, not starting with a digit)", kv)
				}
			}
			c.Exec.Env = vars
			return nil
		},
		get: func(c *Config) string { return strings.Join(c.Exec.Env, ",") },
	},
	{
		Key: "exec.state_dir", Default: "",
		Doc: "where exec keeps, per repository, the copy commands run in and the build caches that persist between commands (GOCACHE, XDG_CACHE_HOME...); empty: $XDG_CACHE_HOME/llm-runtime/exec (~/.cache/llm-runtime/exec); 'llm-runtime cache' lists and removes them",
		set: func(c *Config, v string) error { c.Exec.StateDir = strings.TrimSpace(v); return nil },
		get: func(c *Config) string { return c.Exec.StateDir },
	},
	{
		Key: "audit.enabled", Default: "true",
		Doc: "record every operation, with its latency, in the audit log",
		set: func(c *Config, v string) error { return boolean(&c.Audit.Enabled, v) },
		get: func(c *Config) string { return strconv.FormatBool(c.Audit.Enabled) },
	},
	{
		Key: "audit.dir", Default: "",
		Doc: "the audit store; empty: $XDG_STATE_HOME/llm-runtime/audit (~/.local/state/llm-runtime/audit); never inside the repository",
		set: func(c *Config, v string) error { c.Audit.Dir = strings.TrimSpace(v); return nil },
		get: func(c *Config) string { return c.Audit.Dir },
	},
	{
		Key: "journal.enabled", Default: "true",
		Doc: "record every write, edit, delete and move, and every change a writable exec applies, in the repository's journal of changes, with what each path held before and after, a checkpoint per run (per call through MCP), for llm-runtime changes to list and show, llm-runtime undo and the model's <undo> to take back, and <diff>; false records nothing, and <diff> and <undo> are refused",
		set: func(c *Config, v string) error { return boolean(&c.Journal.Enabled, v) },
		get: func(c *Config) string { return strconv.FormatBool(c.Journal.Enabled) },
	},
	{
		Key: "journal.dir", Default: "",
		Doc: "where the journals of changes are kept, one directory a repository; empty: $XDG_STATE_HOME/llm-runtime/journal (~/.local/state/llm-runtime/journal); never inside the repository",
		set: func(c *Config, v string) error { c.Journal.Dir = strings.TrimSpace(v); return nil },
		get: func(c *Config) string { return c.Journal.Dir },
	},
	{
		Key: "journal.max_age", Default: "720h",
		Doc: "a session's end (once a day) and llm-runtime changes prune drop the checkpoints begun longer ago than this, oldest first (never the last journal.keep)",
		set: func(c *Config, v string) error { return positive(&c.Journal.MaxAge, v) },
		get: func(c *Config) string { return formatDuration(c.Journal.MaxAge) },
	},
	{
		Key: "journal.max_size", Default: "1GiB",
		Doc: "a session's end (once a day) and llm-runtime changes prune drop the oldest checkpoints while a repository's journal (its log and the contents only its records name) is larger than this (never the last journal.keep)",
		set: func(c *Config, v string) error { return sizeIn(&c.Journal.MaxSize, v, 1<<20, 1<<50) },
		get: func(c *Config) string { return FormatSize(c.Journal.MaxSize) },
	},
	{
		Key: "journal.keep", Default: "20",
		Doc: "how many of the newest checkpoints pruning always keeps, whatever their age or size",
		set: func(c *Config, v string) error { return intIn(&c.Journal.Keep, v, 0, 1<<30) },
		get: func(c *Config) string { return strconv.Itoa(c.Journal.Keep) },
	},
	{
		Key: "server", Default: "auto",
		Doc: "whether the filter runs through a daemon (llm-runtime serve) that keeps the pools warm between runs: auto (its socket, when it answers; otherwise a pool of the run's own), never, or the absolute path of a daemon's socket (then it must answer)",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != "auto" && v != "never" && !filepath.IsAbs(v) {
				return fmt.Errorf("%q is not auto, never or the absolute path of a socket", v)
			}
			c.Server = v
			return nil
		},
		get: func(c *Config) string { return c.Server },
	},
	{
		Key: "kubernetes.namespace", Default: "llm-runtime",
		Doc: "sandbox: kubernetes: the namespace of the warm pool and of the session's claims",
		set: func(c *Config, v string) error { return kubeName(&c.Kubernetes.Namespace, v) },
		get: func(c *Config) string { return c.Kubernetes.Namespace },
	},
	{
		Key: "kubernetes.warm_pool", Default: "llm-runtime",
		Doc: "sandbox: kubernetes: the SandboxWarmPool a session claims a pod of (llm-runtime kubernetes manifests makes one)",
		set: func(c *Config, v string) error { return kubeName(&c.Kubernetes.WarmPool, v) },
		get: func(c *Config) string { return c.Kubernetes.WarmPool },
	},
	{
		Key: "kubernetes.lease", Default: "2m",
		Doc: "sandbox: kubernetes: how long a session's claim outlives its last renewal (renewed at a third of it): the backstop when llm-runtime dies without releasing it",
		set: func(c *Config, v string) error { return positive(&c.Kubernetes.Lease, v) },
		get: func(c *Config) string { return formatDuration(c.Kubernetes.Lease) },
	},
	{
		Key: "serve.max_pools", Default: "8",
		Doc: "the most pools llm-runtime serve keeps (one per repository and sandbox settings); past it the least recently used idle pool is closed, and a run that finds every pool busy runs on a pool of its own",
		set: func(c *Config, v string) error { return intIn(&c.Serve.MaxPools, v, 1, 1024) },
		get: func(c *Config) string { return strconv.Itoa(c.Serve.MaxPools) },
	},
	{
		Key: "serve.idle_exit", Default: "30m",
		Doc: "llm-runtime serve exits after this long with no pool and no client; 0 never",
		set: func(c *Config, v string) error { return duration(&c.Serve.IdleExit, v) },
		get: func(c *Config) string { return formatDuration(c.Serve.IdleExit) },
	},
	{
		Key: "mcp.max_result", Default: "80KiB",
		Doc: "the most text one MCP tool result holds, its structured content included (Claude Code refuses results over 25,000 tokens by default); a longer file, output or list is cut and the result says how to get the rest",
		set: func(c *Config, v string) error { return sizeIn(&c.MCP.MaxResult, v, 4<<10, 64<<20) },
		get: func(c *Config) string { return FormatSize(c.MCP.MaxResult) },
	},
}

// DefaultWhitelist is the default of exec.whitelist: what the default
// image (busybox) can run, and only programs whose arguments start no
// other program, or whose every way of starting one the whitelist follows
// (find -exec): a whitelist is only as strong as the most permissive
// program on it. The go command and make are not on it: the default image
// has neither, and both run code of the repository's (tests, recipes);
// with exec.image: llm-runtime-exec:go, list them (go build, go vet, go
// test), as 'llm-runtime image build go' says.
var DefaultWhitelist = []string{"ls", "cat", "grep", "find", "head", "tail", "wc", "echo", "pwd", "true"}

func int64In(dst *int64, v string, lo, hi int) error {
	var n int
	if err := intIn(&n, v, lo, hi); err != nil {
		return err
	}
	*dst = int64(n)
	return nil
}

func oneOf(dst *string, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			*dst = v
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

func intIn(dst *int, v string, lo, hi int) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("%q is not a whole number", v)
	}
	if n < lo || n > hi {
		return fmt.Errorf("%d is out of range; want %d to %d", n, lo, hi)
	}
	*dst = n
	return nil
}

func boolean(dst *bool, v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return fmt.Errorf("%q is not true or false", v)
	}
	return nil
}

func duration(dst *time.Duration, v string) error {
	v = strings.TrimSpace(v)
	if v == "0" {
		*dst = 0
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it like 30s, 5m or 1h30m", v)
	}
	if d < 0 {
		return fmt.Errorf("%s is negative", v)
	}
	*dst = d
	return nil
}

func positive(dst *time.Duration, v string) error {
	var d time.Duration
	if err := duration(&d, v); err != nil {
		return err
	}
	if d == 0 {
		return fmt.Errorf("must be more than 0")
	}
	*dst = d
	return nil
}

func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String() // "5m0s", "1h0m0s", "1h30m0s"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func sizeIn(dst *int64, v string, lo, hi int64) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	if n < lo || n > hi {
		return fmt.Errorf("%s is out of range; want %s to %s", FormatSize(n), FormatSize(lo), FormatSize(hi))
	}
	*dst = n
	return nil
}

// ParseSize parses a byte count: a whole number of bytes, or a number with
// a unit B, KiB, MiB or GiB (K, M and G are the same binary units; case and
// a space before the unit do not matter). Decimal units (KB, MB, GB) are
// refused as ambiguous.
func ParseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size; write it like 1048576, 512KiB or 1MiB", v)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", v)
	}
	var mult int64
	switch unit := strings.ToLower(strings.TrimSpace(s[i:])); unit {
	case "", "b":
		mult = 1
	case "k", "kib":
		mult = 1 << 10
	case "m", "mib":
		mult = 1 << 20
	case "g", "gib":
		mult = 1 << 30
	case "kb", "mb", "gb":
		return 0, fmt.Errorf("%q: write binary units (KiB, MiB, GiB) to say what you mean", v)
	default:
		return 0, fmt.Errorf("%q has unknown unit %q; use B, KiB, MiB or GiB", v, s[i:])
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n * mult, nil
}

// FormatSize prints a byte count in the notation ParseSize reads.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func patterns(dst *[]string, list []string) error {
	out := []string{} // not nil: an empty list means "exclude nothing"
	for _, p := range list {
		if err := sandbox.ValidatePattern(p); err != nil {
			return err
		}
		out = append(out, p)
	}
	*dst = out
	return nil
}

// kubeName sets a Kubernetes object name (RFC 1123 label: lower-case
// letters, digits and '-', at most 63).
func kubeName(dst *string, v string) error {
	if len(v) == 0 || len(v) > 63 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || v[0] == '-' || v[len(v)-1] == '-' {
		return fmt.Errorf("%q is not a Kubernetes name (lower-case letters, digits and '-', at most 63)", v)
	}
	*dst = v
	return nil
}

// envName says whether s is an environment variable's name: letters,
// digits and _, not starting with a digit.
func envName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
