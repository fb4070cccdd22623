// Package filtercli is the filter's command line as llm-runtime and its
// thin client (cmd/llm-runtime-client) both read it: the global flags, the
// flags that override settings, how the settings are layered, where the
// audit store and the journal are, the exit codes, and a run handed to
// llm-runtime serve. It imports nothing that opens a sandbox, so that the
// thin client starts in a few milliseconds and still resolves a run
// exactly as llm-runtime would.
package filtercli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/internal/paths"
	"golang.org/x/sys/unix"
)

// Exit codes of llm-runtime, and of its thin client, which must exit as
// it would.
const (
	ExitOK          = 0
	ExitUsage       = 1  // bad flags or arguments, unreadable input, unwritable output
	ExitConfig      = 2  // an invalid configuration file, flag value or environment variable
	ExitSandbox     = 3  // the sandbox cannot be started
	ExitInternal    = 70 // a run that llm-runtime serve ended for an internal error (a bug), as sysexits' EX_SOFTWARE
	ExitInterrupted = 130
)

// ExitError carries an exit code out of a command's Run.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Fail is an error that exits with code.
func Fail(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// Globals are llm-runtime's flags before the command.
type Globals struct {
	Root       string `short:"r" default:"." placeholder:"DIR" help:"Repository root: the only directory commands can reach."`
	ConfigFile string `name:"config" short:"c" placeholder:"FILE" help:"Configuration file. Default: ROOT/llm-runtime.config.yaml, else ~/.config/llm-runtime/config.yaml, else built-in defaults."`
	Verbose    int    `short:"v" type:"counter" help:"Report the root, the configuration and the sandbox on standard error; and the audit store's errors as Pebble reports them; -vv also its informational lines (WALs, flushes, compactions), for debugging it."`
	AuditDir   string `name:"audit-dir" placeholder:"DIR" help:"The audit store (audit.dir). Default: $XDG_STATE_HOME/llm-runtime/audit, else ~/.local/state/llm-runtime/audit."`
}

// Verbosely says whether -v was given; -vv is debug.
func (f *Globals) Verbosely() bool { return f.Verbose > 0 }

// Overrides are the flags that override settings, shared by the filter
// and the config command.
type Overrides struct {
	Sandbox     string   `placeholder:"NAME" help:"Where operations run: docker, kubernetes or local (only docker runs <exec>: the others refuse exec.enabled). Overrides the 'sandbox' setting."`
	Format      string   `short:"f" placeholder:"FORMAT" help:"Output format: text or jsonl. Overrides 'output.format'."`
	LineNumbers bool     `name:"line-numbers" help:"Start each line of a FILE block with its number in the file and a tab, as cat -n does (output.line_numbers: true)."`
	NoPool      bool     `name:"no-pool" help:"A fresh container per operation (container_pool.enabled: false)."`
	Exec        *bool    `name:"exec" negatable:"" help:"Allow <exec> (exec.enabled: true); --no-exec: not in this run, whatever the file or the environment say."`
	Policy      []string `placeholder:"FILE.wasm" sep:"none" help:"Add a policy guest, after those of the configuration (repeatable)."`
	Transform   []string `placeholder:"FILE.wasm" sep:"none" help:"Add a transform guest, after those of the configuration (repeatable)."`
	Server      string   `placeholder:"auto|never|SOCKET" help:"Run through llm-runtime serve: auto (when it answers), never, or a socket's path (then it must answer). Overrides 'server'."`
	Legacy
}

// Load resolves the root and layers the configuration: defaults, the
// file, LLM_RUNTIME_* variables, then flags (o may be nil; --audit-dir
// always counts): a flag given for this one run wins over the
// environment, which wins over the file, as with kubectl, docker and git.
func (f *Globals) Load(environ []string, stderr io.Writer, o *Overrides) (root, file string, cfg *config.Config, err error) {
	if o == nil {
		o = &Overrides{}
	}
	root, err = filepath.Abs(f.Root)
	if err == nil {
		// The real path: every comparison with it is between real paths,
		// and the container mounts what the link points to anyway.
		root, err = filepath.EvalSymlinks(root)
	}
	if err == nil {
		var fi os.FileInfo
		if fi, err = os.Stat(root); err == nil && !fi.IsDir() {
			err = errors.New("not a directory")
		}
	}
	if err != nil {
		return "", "", nil, Fail(ExitUsage, "--root %s: %v", f.Root, unwrapPath(err))
	}
	if file, err = config.Find(f.ConfigFile, root); err != nil {
		return "", "", nil, Fail(ExitConfig, "%v", err)
	}
	if cfg, err = config.Load(file); err != nil {
		return "", "", nil, Fail(ExitConfig, "%v", err)
	}
	if err := cfg.ApplyEnv(environ); err != nil {
		return "", "", nil, Fail(ExitConfig, "%v", err)
	}
	for _, s := range o.flagSettings(f) {
		if err := cfg.Set(s.key, s.value, s.flag); err != nil {
			return "", "", nil, Fail(ExitConfig, "%v", err)
		}
	}
	if err := o.Legacy.apply(cfg, func(w string) { fmt.Fprintln(stderr, w) }); err != nil {
		return "", "", nil, err
	}
	for _, p := range o.Policy {
		cfg.Policies = append(cfg.Policies, config.Guest{Module: p, Source: "--policy"})
	}
	for _, p := range o.Transform {
		cfg.Transforms = append(cfg.Transforms, config.Guest{Module: p, Source: "--transform"})
	}
	if err := cfg.Validate(); err != nil {
		return "", "", nil, Fail(ExitConfig, "%v", err)
	}
	return root, file, cfg, nil
}

// flagSetting is a flag given that sets a setting: its spelling, the
// setting's key, and the value in the setting's notation.
type flagSetting struct{ flag, key, value string }

// flagSettings are the settings the flags given set, in the order they
// apply: those of o, then the global --audit-dir. The old spellings
// (Legacy) apply after them.
func (o *Overrides) flagSettings(f *Globals) []flagSetting {
	var out []flagSetting
	add := func(given bool, flag, key, value string) {
		if given {
			out = append(out, flagSetting{flag, key, value})
		}
	}
	add(o.Sandbox != "", "--sandbox", "sandbox", o.Sandbox)
	add(o.Format != "", "--format", "output.format", o.Format)
	add(o.LineNumbers, "--line-numbers", "output.line_numbers", "true")
	add(o.NoPool, "--no-pool", "container_pool.enabled", "false")
	if o.Exec != nil {
		flag := "--exec"
		if !*o.Exec {
			flag = "--no-exec"
		}
		add(true, flag, "exec.enabled", strconv.FormatBool(*o.Exec))
	}
	add(o.Server != "", "--server", "server", o.Server)
	add(f.AuditDir != "", "--audit-dir", "audit.dir", f.AuditDir)
	return out
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// AuditDir returns the store's directory: --audit-dir, else audit.dir,
// else the user's state directory. It refuses a directory inside root,
// where the sandbox could write.
func AuditDir(flag string, cfg *config.Config, root string) (string, error) {
	dir := flag
	if dir == "" && cfg != nil {
		dir = cfg.Audit.Dir
	}
	if dir == "" {
		d, err := paths.DefaultAuditDir()
		if err != nil {
			return "", Fail(ExitConfig, "%v; set audit.dir or --audit-dir", err)
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", Fail(ExitConfig, "audit.dir %s: %v", dir, err)
	}
	if err := OutsideRepo("audit.dir", abs, root); err != nil {
		return "", err
	}
	return abs, nil
}

// OutsideRepo refuses the directory dir of the setting key when it lies
// inside the repository at root ("" for none), where the sandbox can reach
// it. Compared as real paths, so no link or spelling puts it inside.
func OutsideRepo(key, dir, root string) error {
	if root == "" {
		return nil
	}
	if _, inside := paths.Within(root, dir); inside {
		return Fail(ExitConfig, "%s %s is inside the repository %s, where the sandbox can reach it; choose a directory outside it", key, dir, root)
	}
	return nil
}

// JournalBase is journal.dir, or its default.
func JournalBase(cfg *config.Config) (string, error) {
	if cfg.Journal.Dir != "" {
		return filepath.Abs(cfg.Journal.Dir)
	}
	d, err := paths.DefaultJournalDir()
	if err != nil {
		return "", fmt.Errorf("%w; set journal.dir", err)
	}
	return d, nil
}

// JournalDir is the journal of the repository at root (its real path):
// a directory of journal.dir named by the root's hash. It is never inside
// the repository.
func JournalDir(cfg *config.Config, root string) (string, error) {
	base, err := JournalBase(cfg)
	if err != nil {
		return "", Fail(ExitConfig, "%v", err)
	}
	if err := OutsideRepo("journal.dir", base, root); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(base, hex.EncodeToString(sum[:8])), nil
}

// Getenv is a getenv over environ (as os.Environ returns it): the first
// value of key, "" when unset.
func Getenv(environ []string) func(string) string {
	return func(key string) string {
		for _, kv := range environ {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				return v
			}
		}
		return ""
	}
}

// IsTerminal reports whether f is a terminal: a character device that
// answers a terminal's ioctl (/dev/null is a character device too).
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
