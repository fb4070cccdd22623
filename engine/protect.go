package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/wasm"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// RealPath returns p made absolute with every symbolic link resolved, as
// far as it exists: its deepest existing ancestor is resolved and the rest
// appended as written. Comparing paths of the root, the configuration and
// the state directories is only meaningful between real paths (a --root
// given through a link, a --config through a linked directory).
func RealPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	var rest []string
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}

// Within returns the path of p relative to root, slash-separated, if p is
// root or lies inside it, both taken as real paths.
func Within(root, p string) (string, bool) {
	rel, err := filepath.Rel(RealPath(root), RealPath(p))
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// guarded is something of llm-runtime's own that the sandbox must never
// write: it would change what a later run does.
type guarded struct {
	what, path string
}

// Own is where one process keeps llm-runtime's files of its own, as its
// environment (HOME, the XDG directories) and its binary place them: a
// later run of that process's environment obeys them, runs them or builds
// its sandbox from them. The daemon guards those of each client it runs
// for (Settings.Client) beside its own, which can lie elsewhere (a
// systemd unit, another shell). Paths are real paths, "" for what the
// process has none of.
type Own struct {
	ConfigDir  string `json:"config_dir,omitempty"`  // the user's llm-runtime configuration directory
	CacheDir   string `json:"cache_dir,omitempty"`   // llm-runtime's cache directory
	GuestCache string `json:"guest_cache,omitempty"` // the guests' compilation cache (machine code the host runs)
	AgentSum   string `json:"agent_sum,omitempty"`   // the agent binary's last sum, which names the sandbox image
	Binary     string `json:"binary,omitempty"`      // the running binary (the agent of the sandbox image)
}

// OwnFiles returns this process's own files, as real paths.
func OwnFiles() Own {
	var o Own
	if dir, err := os.UserConfigDir(); err == nil {
		o.ConfigDir = RealPath(filepath.Join(dir, "llm-runtime"))
	}
	if dir, err := os.UserCacheDir(); err == nil {
		o.CacheDir = RealPath(filepath.Join(dir, "llm-runtime"))
	}
	if dir := wasm.CacheDir(); dir != "" {
		o.GuestCache = RealPath(dir)
	}
	if p := container.SumCachePath(); p != "" {
		o.AgentSum = RealPath(p)
	}
	if exe, err := os.Executable(); err == nil {
		o.Binary = RealPath(exe)
	}
	return o
}

// Paths are o's paths, in a fixed order, "" included.
func (o Own) Paths() []string {
	return []string{o.ConfigDir, o.CacheDir, o.GuestCache, o.AgentSum, o.Binary}
}

// Check says whether every path of o is absolute and clean, as a real
// path is: a path relative to another process's directory means nothing.
func (o Own) Check() error {
	for _, p := range o.Paths() {
		if p != "" && (!filepath.IsAbs(p) || filepath.Clean(p) != p) {
			return fmt.Errorf("%q is not an absolute, clean path", p)
		}
	}
	return nil
}

// guardedFiles lists llm-runtime's own files and directories: the
// configuration in use, the user's configuration directory, every guest
// module, the caches (the wazero cache holds machine code the host runs;
// the agent's sum names the image), exec's state and the running binary
// (it is the agent of the sandbox image); those of each of owns, in that
// order, each once.
func guardedFiles(file string, cfg *config.Config, owns []Own) []guarded {
	var g []guarded
	seen := map[guarded]bool{}
	add := func(what, path string) {
		if e := (guarded{what, path}); path != "" && !seen[e] {
			seen[e] = true
			g = append(g, e)
		}
	}
	each := func(what string, path func(Own) string) {
		for _, o := range owns {
			add(what, path(o))
		}
	}
	add("the configuration file in use", file)
	each("the user's llm-runtime configuration directory", func(o Own) string { return o.ConfigDir })
	for _, list := range [][]config.Guest{cfg.Policies, cfg.Transforms} {
		for _, m := range list {
			add("the guest module "+filepath.Base(m.Module), m.Module)
		}
	}
	each("llm-runtime's cache directory", func(o Own) string { return o.CacheDir })
	each("the guests' compilation cache", func(o Own) string { return o.GuestCache })
	each("the agent binary's sum (it names the sandbox image)", func(o Own) string { return o.AgentSum })
	add("exec's copies and build caches (exec.state_dir)", cfg.Exec.StateDir)
	each("the llm-runtime binary in use", func(o Own) string { return o.Binary })
	return g
}

// protection returns what the sandbox on root must refuse to write: the
// guarded files that lie inside the repository, by their real path
// relative to it (so that a missing one cannot be created either), and
// every guarded file that exists, by identity (so that no other name of it,
// a link or another spelling, reaches it). inside lists the guarded files
// found inside the repository, for --verbose.
func protection(root, file string, cfg *config.Config, owns []Own) (paths []string, ids []sandbox.FileID, inside []guarded) {
	for _, g := range guardedFiles(file, cfg, owns) {
		if rel, ok := Within(root, g.path); ok {
			paths = append(paths, rel)
			inside = append(inside, g)
		} else if _, ok := Within(g.path, root); ok {
			paths = append(paths, ".") // the whole repository is inside it
			inside = append(inside, g)
		}
		if id, err := sandbox.IDOf(g.path); err == nil {
			id.What = g.what
			ids = append(ids, id)
		}
	}
	return paths, ids, inside
}
