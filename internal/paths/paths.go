// Package paths holds where llm-runtime keeps its files, and the real-path
// rules that compare them with a repository: what the CLI, its thin client
// (cmd/llm-runtime-client) and the daemon must agree on, with nothing
// beyond the standard library, so that the client starts in a few
// milliseconds.
package paths

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/llm-runtime/llm-runtime/internal/private"
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

// DefaultAuditDir is the audit store's default directory:
// $XDG_STATE_HOME/llm-runtime/audit, else ~/.local/state/llm-runtime/audit.
func DefaultAuditDir() (string, error) {
	dir, err := private.StateDir("audit")
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	return dir, nil
}

// DefaultJournalDir is where the journals are kept when journal.dir is
// empty: $XDG_STATE_HOME/llm-runtime/journal, else
// ~/.local/state/llm-runtime/journal.
func DefaultJournalDir() (string, error) {
	dir, err := private.StateDir("journal")
	if err != nil {
		return "", fmt.Errorf("journal: %w", err)
	}
	return dir, nil
}

// GuestCacheDir is the guests' compilation cache (wazero's machine code),
// "" when there is no cache directory.
func GuestCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "llm-runtime", "wazero")
	}
	return ""
}

// AgentSumPath is the file that keeps the agent binary's last sum, which
// names the sandbox image; "" when there is no cache directory.
func AgentSumPath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "llm-runtime", "agent-sum")
}

// ExecStateDir is exec.state_dir as set (dir), else its default:
// llm-runtime/exec in the user's cache directory.
func ExecStateDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for exec's copies (set XDG_CACHE_HOME or HOME): %v", err)
	}
	return filepath.Join(dir, "llm-runtime", "exec"), nil
}

// Own is where one process keeps llm-runtime's files of its own, as its
// environment (HOME, the XDG directories) and its binary place them: a
// later run of that process's environment obeys them, runs them or builds
// its sandbox from them. The daemon guards those of each client it runs
// for beside its own, which can lie elsewhere (a systemd unit, another
// shell). Paths are real paths, "" for what the process has none of.
type Own struct {
	ConfigDir  string `json:"config_dir,omitempty"`  // the user's llm-runtime configuration directory
	CacheDir   string `json:"cache_dir,omitempty"`   // llm-runtime's cache directory
	GuestCache string `json:"guest_cache,omitempty"` // the guests' compilation cache
	AgentSum   string `json:"agent_sum,omitempty"`   // the agent binary's last sum, which names the sandbox image
	Binary     string `json:"binary,omitempty"`      // the llm-runtime binary (the agent of the sandbox image)
	// Client is the thin client that ran (llm-runtime-client), which a
	// model loop starts on every reply; "" from llm-runtime itself.
	Client string `json:"client,omitempty"`
}

// OwnFiles returns this process's own files, as real paths, its binary
// as the llm-runtime binary.
func OwnFiles() Own {
	var o Own
	if dir, err := os.UserConfigDir(); err == nil {
		o.ConfigDir = RealPath(filepath.Join(dir, "llm-runtime"))
	}
	if dir, err := os.UserCacheDir(); err == nil {
		o.CacheDir = RealPath(filepath.Join(dir, "llm-runtime"))
	}
	if dir := GuestCacheDir(); dir != "" {
		o.GuestCache = RealPath(dir)
	}
	if p := AgentSumPath(); p != "" {
		o.AgentSum = RealPath(p)
	}
	if exe, err := os.Executable(); err == nil {
		o.Binary = RealPath(exe)
	}
	return o
}

// Paths are o's paths, in a fixed order, "" included.
func (o Own) Paths() []string {
	return []string{o.ConfigDir, o.CacheDir, o.GuestCache, o.AgentSum, o.Binary, o.Client}
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
