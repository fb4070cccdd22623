package engine

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/llm-runtime/llm-runtime/config"
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

// guardedFiles lists llm-runtime's own files and directories: the
// configuration in use, the user's configuration directory, every guest
// module, the caches (the wazero cache holds machine code the host runs)
// and the running binary (it is the agent of the sandbox image).
func guardedFiles(file string, cfg *config.Config) []guarded {
	var g []guarded
	if file != "" {
		g = append(g, guarded{"the configuration file in use", file})
	}
	if dir, err := os.UserConfigDir(); err == nil {
		g = append(g, guarded{"the user's llm-runtime configuration directory", filepath.Join(dir, "llm-runtime")})
	}
	for _, list := range [][]config.Guest{cfg.Policies, cfg.Transforms} {
		for _, m := range list {
			g = append(g, guarded{"the guest module " + filepath.Base(m.Module), m.Module})
		}
	}
	if dir, err := os.UserCacheDir(); err == nil {
		g = append(g, guarded{"llm-runtime's cache directory", filepath.Join(dir, "llm-runtime")})
	}
	if dir := wasm.CacheDir(); dir != "" {
		g = append(g, guarded{"the guests' compilation cache", dir})
	}
	if cfg.Exec.StateDir != "" {
		g = append(g, guarded{"exec's copies and build caches (exec.state_dir)", cfg.Exec.StateDir})
	}
	if exe, err := os.Executable(); err == nil {
		g = append(g, guarded{"the llm-runtime binary in use", exe})
	}
	return g
}

// protection returns what the sandbox on root must refuse to write: the
// guarded files that lie inside the repository, by their real path
// relative to it (so that a missing one cannot be created either), and
// every guarded file that exists, by identity (so that no other name of it,
// a link or another spelling, reaches it). inside lists the guarded files
// found inside the repository, for --verbose.
func protection(root, file string, cfg *config.Config) (paths []string, ids []sandbox.FileID, inside []guarded) {
	for _, g := range guardedFiles(file, cfg) {
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
