// Package config is llm-runtime's configuration: the schema, its defaults,
// and validation whose errors name the key and where its value came from
// (file and line, environment variable, or flag).
//
// Values are layered: defaults, then the configuration file, then
// LLM_RUNTIME_* environment variables, then flags: a value given for this
// one run wins over one set for the shell, which wins over the file (the
// convention of kubectl, docker and git). The caller applies flags, with
// Set, after ApplyEnv. The file is
// llm-runtime.config.yaml in the repository root, else config.yaml in the
// user's configuration directory ($XDG_CONFIG_HOME/llm-runtime, by default
// ~/.config/llm-runtime), unless a path is named explicitly.
//
// Every setting has one key ("container_pool.size"), one environment
// variable (LLM_RUNTIME_CONTAINER_POOL_SIZE) and a documented default;
// [Settings] lists them.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/llm-runtime/llm-runtime/egress"
)

// FileName is the name of the configuration file in a repository root.
const FileName = "llm-runtime.config.yaml"

// Config is the whole configuration. Use Default to get one; the zero value
// is not valid.
type Config struct {
	// Sandbox is where operations run: "docker" or "local" (on the host, no
	// container).
	Sandbox string
	// SandboxWorkspace is how a Docker sandbox sees the repository:
	// "auto", "bind" or "copy"; SandboxCopyMaxSize bounds copy mode's
	// replica.
	SandboxWorkspace   string
	SandboxCopyMaxSize int64
	Output             Output
	// Security bounds what operations may touch.
	Security Security
	Search   Search
	// List configures <list>.
	List List
	// ContainerPool configures the pool of sandbox containers.
	ContainerPool Pool
	// Exec configures <exec>.
	Exec Exec
	// Audit configures the audit log.
	Audit Audit
	// Journal configures the journal of changes.
	Journal Journal
	// MCP configures the MCP server (llm-runtime mcp).
	MCP MCP
	// Server says whether the filter runs through llm-runtime serve: "auto",
	// "never" or a socket's absolute path.
	Server string
	// Serve configures the daemon (llm-runtime serve).
	Serve Serve
	// Kubernetes configures sandbox: kubernetes.
	Kubernetes Kubernetes
	// Policies and Transforms are the guest modules, in the order they run.
	Policies   []Guest
	Transforms []Guest

	origin map[string]string // key -> where its value came from
}

// Output configures how results are printed.
type Output struct {
	Format      string // "text" or "jsonl"
	LineNumbers bool   // number the lines of FILE blocks in the text format
}

// Security holds the limits every sandbox enforces.
type Security struct {
	MaxFileSize   int64    // largest file read or searched, in bytes
	MaxWriteSize  int64    // largest content written, in bytes
	ExcludedPaths []string // glob patterns refused for open and write, at any depth
	// HostToolFiles are glob patterns (ExcludedPaths' language) of files
	// tools on the host run or obey; HostToolFilesMode is "warn" (a
	// change lands, marked) or "deny" (refused).
	HostToolFiles     []string
	HostToolFilesMode string
}

// List configures <list>.
type List struct {
	MaxEntries int // entries listed; the total is always counted
}

// MCP configures the MCP server.
type MCP struct {
	// MaxResult bounds the text of one tool result, the structured content
	// that repeats it included; what is cut says how to get the rest.
	MaxResult int64
}

// Kubernetes configures sandbox: kubernetes.
type Kubernetes struct {
	Namespace string
	WarmPool  string
	Lease     time.Duration
}

// Serve configures llm-runtime serve.
type Serve struct {
	MaxPools int           // pools kept at once
	IdleExit time.Duration // exit after this long with no pool and no client; 0 never
}

// Search configures <search>.
type Search struct {
	MaxResults    int           // matching lines listed; the total is always counted
	MaxLineLength int           // longest line listed, in bytes
	Timeout       time.Duration // longest a search runs before it reports a partial result; 0: no limit
}

// Guest is a policy or transform module.
type Guest struct {
	Module      string          // the .wasm file; relative paths are relative to the configuration file
	Config      json.RawMessage `json:",omitempty"` // the module's own configuration, as JSON; nil for none
	Timeout     time.Duration   // per call; 0: the default (100ms)
	MemoryLimit int64           // bytes; 0: the default (64MiB)
	Source      string          // where it was configured: "file.yaml:12" or "--policy"
}

// Audit configures the audit log.
type Audit struct {
	Enabled bool
	Dir     string // "" means the user's state directory
}

// Journal configures the journal of changes (package journal): every
// write, edit, delete and move recorded, in numbered checkpoints, with
// what each path held before and after.
type Journal struct {
	Enabled bool
	Dir     string // "" means the user's state directory
	// What changes prune keeps: checkpoints younger than MaxAge, while
	// the journal is at most MaxSize, and always the last Keep.
	MaxAge  time.Duration
	MaxSize int64
	Keep    int
}

// Exec configures <exec>.
type Exec struct {
	Enabled   bool
	Image     string
	Whitelist []string // argument-vector prefixes; "*" allows anything
	Shell     bool
	Writable  bool
	Timeout   time.Duration
	MaxOutput int64
	Memory    int64
	CPUs      float64 // an exec container's CPUs
	PIDs      int64
	TmpSize   int64  // the command's /tmp
	Runtime   string // the Docker runtime of exec containers; "": the daemon's default
	StateDir  string // the repositories' copies and build caches; "": $XDG_CACHE_HOME/llm-runtime/exec
	// MaxChanges and MaxDepth bound a command's changeset: past them, none
	// of it is applied.
	MaxChanges int
	MaxDepth   int
	// Network is "none" (no network at all) or "allowlist": connections
	// through the egress proxy to NetworkAllow's destinations only.
	Network      string
	NetworkAllow []egress.Rule
	// Env holds NAME=VALUE variables set for every command, over the
	// image's and exec's own.
	Env []string
	// GoProxy is the module proxy whose modules the user's repositories
	// share, through a cache only llm-runtime writes; "": none.
	GoProxy string
	// GoProxyMaxSize bounds GoProxy's module cache.
	GoProxyMaxSize int64
}

// Reachable is what a command can reach: exec.network_allow's entries as
// written, with exec.network allowlist; nil with none.
func (e Exec) Reachable() []string {
	if e.Network != "allowlist" {
		return nil
	}
	return e.allowList()
}

// allowList is exec.network_allow's entries as written.
func (e Exec) allowList() []string {
	var s []string
	for _, r := range e.NetworkAllow {
		s = append(s, r.String())
	}
	return s
}

// Pool holds the settings of the container pooling guide.
type Pool struct {
	Enabled             bool
	Size                int           // most containers at once
	MaxUsesPerContainer int           // recycle a container after this many operations
	IdleTimeout         time.Duration // remove containers idle this long; 0 never
	HealthCheckInterval time.Duration // ping idle containers this often; 0 never
	StartupContainers   int           // kept ready: one at start, the rest after SpareDelay
	SpareDelay          time.Duration // the first must be ready this long before the rest are created
	AcquireTimeout      time.Duration // wait for a busy pool this long
	Transport           string        // "socket" or "attach"
}

// Default returns the default configuration.
func Default() *Config {
	c := &Config{origin: map[string]string{}}
	for _, s := range settings {
		if err := s.set(c, s.Default); err != nil {
			panic(fmt.Sprintf("config: default of %s: %v", s.Key, err))
		}
		c.origin[s.Key] = "default"
	}
	return c
}

// Origin says where the value of key came from: "default", "FILE:LINE",
// "$LLM_RUNTIME_..." or "--flag".
func (c *Config) Origin(key string) string { return c.origin[key] }

// MarshalJSON encodes the configuration with the origin of each value, so
// that a configuration sent to llm-runtime serve still knows which values
// the user set.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Origins map[string]string `json:",omitempty"`
	}{plain(c), c.origin})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	v := struct {
		*plain
		Origins map[string]string
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	c.origin = v.Origins
	if c.origin == nil {
		c.origin = map[string]string{}
	}
	return nil
}

// Error is an invalid setting.
type Error struct {
	Source string // "llm-runtime.config.yaml:7", "$LLM_RUNTIME_SANDBOX", "--format"
	Key    string // "container_pool.size"; empty when the error is not about one key
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Set sets key from its text form, as a flag or environment variable would;
// source names where the value came from, for error messages.
func (c *Config) Set(key, value, source string) error {
	s, ok := lookup(key)
	if !ok {
		return &Error{Source: source, Key: key, Msg: "unknown setting"}
	}
	if err := s.set(c, value); err != nil {
		return &Error{Source: source, Key: key, Msg: err.Error()}
	}
	c.origin[key] = source
	return nil
}

// EnvPrefix starts the name of every environment variable llm-runtime reads.
const EnvPrefix = "LLM_RUNTIME_"

// otherEnv are LLM_RUNTIME_ variables that are not settings.
var otherEnv = map[string]string{
	"LLM_RUNTIME_REQUIRE_DOCKER": "tests: fail instead of skipping when Docker is unreachable",
	ClientBinaryEnv:              "set by llm-runtime-client when it runs llm-runtime: its own path, which llm-runtime guards as its own",
}

// ClientBinaryEnv is the variable by which llm-runtime-client tells the
// llm-runtime it runs where it is.
const ClientBinaryEnv = "LLM_RUNTIME_CLIENT_BINARY"

// ApplyEnv applies the LLM_RUNTIME_* variables of environ (as os.Environ
// returns it), over the file and under flags: call it before setting the
// flags' values. A variable that names no setting is an error, so a typo
// is not silently ignored; it names the nearest variable, if one is near.
func (c *Config) ApplyEnv(environ []string) error {
	byEnv := map[string]*Setting{}
	known := make([]string, 0, len(settings)+len(otherEnv))
	for i := range settings {
		byEnv[settings[i].Env()] = &settings[i]
		known = append(known, strings.TrimPrefix(settings[i].Env(), EnvPrefix))
	}
	for name := range otherEnv {
		known = append(known, strings.TrimPrefix(name, EnvPrefix))
	}
	sort.Strings(known)
	var names []string
	values := map[string]string{}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if _, ok := otherEnv[name]; ok {
			continue
		}
		names = append(names, name)
		values[name] = value
	}
	sort.Strings(names)
	for _, name := range names {
		s, ok := byEnv[name]
		if !ok {
			return &Error{Source: "$" + name, Msg: "no such setting; " + didYouMean(EnvPrefix, strings.TrimPrefix(name, EnvPrefix), known) + "see 'llm-runtime config --help' for the list"}
		}
		if err := c.Set(s.Key, values[name], "$"+name); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the settings against each other; each value alone was
// checked when it was set.
func (c *Config) Validate() error {
	p := c.ContainerPool
	if p.StartupContainers > p.Size {
		return &Error{Source: c.origin["container_pool.startup_containers"], Key: "container_pool.startup_containers",
			Msg: fmt.Sprintf("is %d, more than container_pool.size (%d)", p.StartupContainers, p.Size)}
	}
	if c.Exec.Network == "allowlist" && len(c.Exec.NetworkAllow) == 0 {
		return &Error{Source: c.origin["exec.network"], Key: "exec.network",
			Msg: "is allowlist, but exec.network_allow lists nothing: name the hosts commands may reach (proxy.golang.org, *.pypi.org:443), or set exec.network: none"}
	}
	if g := c.Exec.GoProxy; g != "" {
		if c.Exec.Network != "allowlist" {
			return &Error{Source: c.origin["exec.go_proxy"], Key: "exec.go_proxy",
				Msg: "is set, but exec.network is none: a command reaches the shared module cache through the egress proxy; set exec.network: allowlist, with the proxy's host in exec.network_allow"}
		}
		u, _ := url.Parse(g)
		port, _ := strconv.Atoi(u.Port())
		if port == 0 {
			port = map[string]int{"https": 443, "http": 80}[u.Scheme]
		}
		if !(egress.Policy{Rules: c.Exec.NetworkAllow}).Names(u.Hostname(), port) {
			return &Error{Source: c.origin["exec.go_proxy"], Key: "exec.go_proxy",
				Msg: fmt.Sprintf("is %s, but exec.network_allow does not list %s:%d: llm-runtime fetches from it through the allowlist; add it there", g, u.Hostname(), port)}
		}
	}
	return nil
}

// CheckSandbox checks that the sandbox can do what the settings ask of it:
// exec.enabled needs sandbox: docker (the local sandbox has no container
// to run a command in, and exec does not run on Kubernetes yet). It is
// apart from Validate because only what opens a sandbox needs it: a
// configuration it refuses still serves 'llm-runtime config' and 'audit'.
// The error names where each of the two values came from.
func (c *Config) CheckSandbox() error {
	if !c.Exec.Enabled || c.Sandbox == "docker" {
		return nil
	}
	why := "it runs on the host, with no container to confine a command in"
	if c.Sandbox == "kubernetes" {
		why = "exec does not run on Kubernetes yet"
	}
	return &Error{Source: c.origin["exec.enabled"], Key: "exec.enabled",
		Msg: fmt.Sprintf("is true, but sandbox %s (%s) cannot run <exec>: %s; run exec with sandbox docker, or turn it off (--no-exec, LLM_RUNTIME_EXEC_ENABLED=false, exec.enabled: false)",
			c.Sandbox, c.origin["sandbox"], why)}
}

// Find returns the configuration file to use for the repository at root:
// explicit if not empty (it must exist), else root's llm-runtime.config.yaml,
// else the user's config.yaml. It returns "" when there is none.
func Find(explicit, root string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", &Error{Source: explicit, Msg: "cannot read the configuration file: " + errText(err)}
		}
		return explicit, nil
	}
	candidates := []string{filepath.Join(root, FileName)}
	if dir, err := os.UserConfigDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "llm-runtime", "config.yaml"))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", &Error{Source: p, Msg: "cannot read the configuration file: " + errText(err)}
		}
	}
	return "", nil
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
