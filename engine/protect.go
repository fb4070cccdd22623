package engine

import (
	"path/filepath"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// guarded is something of llm-runtime's own that the sandbox must never
// write: it would change what a later run does.
type guarded struct {
	what, path string
}

// guardedFiles lists llm-runtime's own files and directories: the
// configuration in use, the user's configuration directory, every guest
// module, the caches (the wazero cache holds machine code the host runs;
// the agent's sum names the image), exec's state and the running binary
// (it is the agent of the sandbox image); those of each of owns, in that
// order, each once.
func guardedFiles(file string, cfg *config.Config, owns []paths.Own) []guarded {
	var g []guarded
	seen := map[guarded]bool{}
	add := func(what, path string) {
		if e := (guarded{what, path}); path != "" && !seen[e] {
			seen[e] = true
			g = append(g, e)
		}
	}
	each := func(what string, path func(paths.Own) string) {
		for _, o := range owns {
			add(what, path(o))
		}
	}
	add("the configuration file in use", file)
	each("the user's llm-runtime configuration directory", func(o paths.Own) string { return o.ConfigDir })
	for _, list := range [][]config.Guest{cfg.Policies, cfg.Transforms} {
		for _, m := range list {
			add("the guest module "+filepath.Base(m.Module), m.Module)
		}
	}
	each("llm-runtime's cache directory", func(o paths.Own) string { return o.CacheDir })
	each("the guests' compilation cache", func(o paths.Own) string { return o.GuestCache })
	each("the agent binary's sum (it names the sandbox image)", func(o paths.Own) string { return o.AgentSum })
	add("exec's copies and build caches (exec.state_dir)", cfg.Exec.StateDir)
	each("the llm-runtime binary in use", func(o paths.Own) string { return o.Binary })
	each("the llm-runtime client in use", func(o paths.Own) string { return o.Client })
	return g
}

// protection returns what the sandbox on root must refuse to write: the
// guarded files that lie inside the repository, by their real path
// relative to it (so that a missing one cannot be created either), and
// every guarded file that exists, by identity (so that no other name of it,
// a link or another spelling, reaches it). inside lists the guarded files
// found inside the repository, for --verbose.
func protection(root, file string, cfg *config.Config, owns []paths.Own) (refused []string, ids []sandbox.FileID, inside []guarded) {
	for _, g := range guardedFiles(file, cfg, owns) {
		if rel, ok := paths.Within(root, g.path); ok {
			refused = append(refused, rel)
			inside = append(inside, g)
		} else if _, ok := paths.Within(g.path, root); ok {
			refused = append(refused, ".") // the whole repository is inside it
			inside = append(inside, g)
		}
		if id, err := sandbox.IDOf(g.path); err == nil {
			id.What = g.what
			ids = append(ids, id)
		}
	}
	return refused, ids, inside
}
