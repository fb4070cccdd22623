package whitelist

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Rules: a listed program whose arguments can make it start another
// program, or write files, has a rule. The programs a rule finds it starting
// are checked in turn, against the whitelist and their own rules (env FOO=1
// go test ./... passes if env and go test are listed); what a rule cannot
// follow it refuses, and says why. A program with no rule and not refused
// is trusted as it is listed. docs/exec.md has the table.

// started is a command that another starts, with what starts it.
type started struct {
	by string // "find -exec", "env"
	Simple
}

// A rule reads the arguments of a program (argv[0] is the program; every
// word is known) and returns the commands they make it start, or why they
// are refused. writable is exec.writable.
type rule func(argv []string, writable bool) ([]started, error)

var rules = map[string]rule{
	"find": findRule, "xargs": xargsRule, "busybox": busyboxRule,
	"env": envRule, "nice": niceRule, "nohup": nohupRule, "timeout": timeoutRule, "stdbuf": stdbufRule,
	"setsid": setsidRule, "flock": flockRule, "time": timeRule,
	"awk": awkRule, "sed": sedRule, "make": makeRule, "go": goRule, "git": gitRule, "rg": rgRule, "sort": sortRule,
	"python": scriptRule, "perl": scriptRule, "ruby": scriptRule, "node": scriptRule, "php": scriptRule, "lua": scriptRule,
}

// aliases maps other names of a program to the one its rule is under.
var aliases = map[string]string{
	"gawk": "awk", "mawk": "awk", "nawk": "awk", "original-awk": "awk", "gsed": "sed", "gmake": "make",
	"pypy": "python", "nodejs": "node", "luajit": "lua",
	"bash": "sh", "dash": "sh", "ash": "sh", "zsh": "sh", "ksh": "sh", "mksh": "sh", "pdksh": "sh", "oksh": "sh",
	"yash": "sh", "hush": "sh", "csh": "sh", "tcsh": "sh", "fish": "sh", "rbash": "sh", "posh": "sh", "lksh": "sh",
}

// refused holds the programs refused whatever their arguments, and why.
var refused = func() map[string]string {
	m := map[string]string{}
	add := func(why string, names ...string) {
		for _, n := range names {
			m[n] = why
		}
	}
	add("runs any command given to it (-c STRING, a script, or commands read from its input); with exec.shell: true command lines run under /bin/sh, each command checked", "sh")
	add("runs the program of that name in the new root, which may be any file there", "chroot")
	add("runs the command given to it, and llm-runtime does not check its options: list that command instead",
		"ionice", "taskset", "chrt", "numactl", "setarch", "linux32", "linux64", "nsenter", "unshare", "setpriv",
		"sudo", "doas", "su", "runuser", "chpst", "setuidgid", "envdir", "envuidgid", "softlimit", "cttyhack",
		"openvt", "run-init", "switch_root", "start-stop-daemon", "coreutils",
		"exec", "eval", "command", "builtin", "source", ".", "trap")
	add("runs a program under its control, and has options that start others (strace -o '|cmd', gdb's shell)", "strace", "ltrace", "gdb", "valgrind", "perf")
	add("runs its command through sh -c (busybox's watch always, procps's without -x), again and again until it is killed", "watch")
	add("runs every program in a directory", "run-parts")
	add("runs a shell, or the shell command given with -c", "script")
	add("runs programs named in its options or configuration (ssh's ProxyCommand, rsync -e, nc -e, socat EXEC:)",
		"ssh", "scp", "sftp", "rsync", "nc", "netcat", "ncat", "socat", "telnetd", "httpd", "inetd", "tcpsvd", "udpsvd")
	add("runs programs named in its options (--to-command, -I, --use-compress-program, --checkpoint-action=exec)", "tar")
	add("runs the command given with -TT", "zip")
	add("runs the scripts and commands of its configuration",
		"crond", "crontab", "udhcpc", "udhcpc6", "udhcpd", "ifup", "ifdown", "acpid", "mdev", "modprobe", "init",
		"linuxrc", "getty", "login", "sulogin", "dpkg", "rpm", "mim", "inotifyd", "svlogd", "runsv", "runsvdir")
	add("is interactive and runs shell commands on request (!command)", "vi", "vim", "view", "ex", "nvim", "emacs", "less", "more", "man", "ed", "dc", "expect")
	add("runs any program or package named in its arguments", "npx", "pnpx", "bunx", "parallel")
	add("runs code given on its command line (eval, -e) and tasks through a shell", "deno", "bun")
	return m
}()

// programName is the name a program's rule is under: the last element of
// argv[0], without a version suffix (python3.12, go1.22.0) and with aliases
// resolved (gawk is awk, bash is sh).
func ProgramName(argv0 string) string {
	base := path.Base(argv0)
	for _, n := range []string{base, strings.TrimRight(base, "0123456789.")} {
		if a, ok := aliases[n]; ok {
			return a
		}
		_, r := rules[n]
		_, f := refused[n]
		if r || f {
			return n
		}
	}
	return base
}

// launch is the command a launcher starts: the rest of its arguments.
func launch(by string, argv []string) []started {
	if len(argv) == 0 {
		return nil
	}
	return []started{{by: by, Simple: Simple{Argv: argv}}}
}

// repoPath reports whether p names a file of the repository: a relative
// path with no .. in it (commands run at the repository's root).
func repoPath(p string) bool {
	if p == "" || path.IsAbs(p) {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// options describes a program's options the way getopt_long reads them,
// and lets through only those. short holds letters, each followed by ':'
// if it takes an argument (the rest of the word, or the next word) or by
// '::' if it takes an optional one (the rest of the word only); long holds
// names, ending in '=' if they take an argument (after '=', or the next
// word) or '?' if an optional one (after '=' only). Long options are
// matched whole: an abbreviation, which getopt_long would take, is refused.
// deny says why an option is refused, by its name ("-S", "--split-string").
// With permute, options may follow operands (GNU getopt's default);
// without, the first operand ends them.
type options struct {
	short   string
	long    []string
	deny    map[string]string
	permute bool
}

type option struct {
	name  string // "-x" or "--name"
	value string
	set   bool // a value was given
}

func (o options) shortKind(c byte) (byte, bool) {
	i := strings.IndexByte(o.short, c)
	if i < 0 || c == ':' {
		return 0, false
	}
	switch {
	case strings.HasPrefix(o.short[i+1:], "::"):
		return '?', true
	case strings.HasPrefix(o.short[i+1:], ":"):
		return '=', true
	}
	return 0, true
}

func (o options) longKind(name string) (byte, bool) {
	for _, l := range o.long {
		switch l {
		case name:
			return 0, true
		case name + "=":
			return '=', true
		case name + "?":
			return '?', true
		}
	}
	return 0, false
}

func unknownOption(prog, name string) error {
	return fmt.Errorf("%s %s: llm-runtime lets through only the options of %s it has checked, and not this one", prog, name, prog)
}

// parse reads args, the words after the program's name, and returns the
// options and the operands: without permute, every word from the first
// operand on.
func (o options) parse(prog string, args []string) ([]option, []string, error) {
	var opts []option
	var operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return opts, append(operands, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, value, set := strings.Cut(a, "=")
			if why, ok := o.deny[name]; ok {
				return nil, nil, fmt.Errorf("%s %s %s", prog, name, why)
			}
			kind, ok := o.longKind(name[2:])
			switch {
			case !ok:
				return nil, nil, unknownOption(prog, name)
			case kind == 0 && set:
				return nil, nil, fmt.Errorf("%s %s takes no argument", prog, name)
			case kind == '=' && !set:
				if i+1 >= len(args) {
					return nil, nil, fmt.Errorf("%s %s needs an argument", prog, name)
				}
				i++
				value, set = args[i], true
			}
			opts = append(opts, option{name, value, set})
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				name := "-" + a[j:j+1]
				if why, ok := o.deny[name]; ok {
					return nil, nil, fmt.Errorf("%s %s %s", prog, name, why)
				}
				kind, ok := o.shortKind(a[j])
				if !ok {
					return nil, nil, unknownOption(prog, name)
				}
				if kind == 0 {
					opts = append(opts, option{name: name})
					continue
				}
				value, set := a[j+1:], j+1 < len(a)
				if kind == '=' && !set {
					if i+1 >= len(args) {
						return nil, nil, fmt.Errorf("%s %s needs an argument", prog, name)
					}
					i++
					value, set = args[i], true
				}
				opts = append(opts, option{name, value, set})
				break
			}
		default:
			if !o.permute {
				return opts, append(operands, args[i:]...), nil
			}
			operands = append(operands, a)
		}
	}
	return opts, operands, nil
}

// find: -exec, -execdir, -ok and -okdir start their command, which is
// checked in turn, with the words holding {} not known (find puts file
// names there); the actions that write files are refused unless exec is
// writable; an expression word it does not know is refused.

var findNoArg = wordSet("(", ")", "!", ",", "-not", "-a", "-and", "-o", "-or", "-depth", "-d", "-mount", "-xdev",
	"-noleaf", "-follow", "-daystart", "-warn", "-nowarn", "-ignore_readdir_race", "-noignore_readdir_race",
	"-print", "-print0", "-ls", "-prune", "-quit", "-true", "-false", "-empty", "-executable", "-readable",
	"-writable", "-nouser", "-nogroup", "-help", "--help", "-version", "--version")

var findOneArg = wordSet("-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex",
	"-lname", "-ilname", "-type", "-xtype", "-perm", "-mtime", "-atime", "-ctime", "-mmin", "-amin", "-cmin",
	"-newer", "-anewer", "-cnewer", "-inum", "-samefile", "-user", "-group", "-uid", "-gid", "-size", "-links",
	"-fstype", "-used", "-context", "-maxdepth", "-mindepth", "-regextype", "-printf", "-files0-from")

// findWrites holds the actions that write files, with their argument counts.
var findWrites = map[string]int{"-delete": 0, "-fprint": 1, "-fprint0": 1, "-fls": 1, "-fprintf": 2}

var findStarts = wordSet("-exec", "-execdir", "-ok", "-okdir")

func wordSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

func findRule(argv []string, writable bool) ([]started, error) {
	args := argv[1:]
	i := 0
	for i < len(args) { // GNU find's options before the starting points
		a := args[i]
		if a == "-H" || a == "-L" || a == "-P" || (len(a) > 2 && strings.HasPrefix(a, "-O")) {
			i++
		} else if a == "-D" {
			i += 2
		} else {
			break
		}
	}
	for i < len(args) && !(strings.HasPrefix(args[i], "-") || args[i] == "(" || args[i] == ")" || args[i] == "!" || args[i] == ",") {
		i++ // starting points
	}
	var starts []started
	for i < len(args) {
		a := args[i]
		i++
		n, writes := findWrites[a]
		switch {
		case findNoArg[a]:
		case findOneArg[a] || (len(a) == 8 && strings.HasPrefix(a, "-newer") && strings.ContainsRune("aBcmt", rune(a[6])) && strings.ContainsRune("aBcmt", rune(a[7]))):
			if i >= len(args) {
				return nil, fmt.Errorf("find %s needs an argument", a)
			}
			i++
		case writes:
			if !writable {
				return nil, fmt.Errorf("find %s writes files, and exec is read-only (exec.writable: false)", a)
			}
			if i+n > len(args) {
				return nil, fmt.Errorf("find %s needs %d arguments", a, n)
			}
			i += n
		case findStarts[a]:
			j := i
			for ; j < len(args); j++ {
				if args[j] == ";" {
					break
				}
				if args[j] == "+" {
					if j > i && args[j-1] == "{}" {
						break
					}
					return nil, fmt.Errorf("find %s: a + that does not follow {} ends the command for busybox find but not for GNU find, so it is refused", a)
				}
			}
			if j == len(args) {
				return nil, fmt.Errorf("find %s has no ; or {} + at the end of its command", a)
			}
			cmd := args[i:j]
			if len(cmd) == 0 {
				return nil, fmt.Errorf("find %s has no command", a)
			}
			s := Simple{Argv: cmd, open: make([]string, len(cmd))}
			for k, w := range cmd {
				if strings.Contains(w, "{}") {
					s.open[k] = "find puts file names in place of {}"
				}
			}
			starts = append(starts, started{by: "find " + a, Simple: s})
			i = j + 1
		default:
			return nil, fmt.Errorf("find %s: llm-runtime lets through only the expressions of find it has checked, and not this one", a)
		}
	}
	return starts, nil
}

// xargs starts its command (echo if none), checked in turn, with the
// arguments it reads from its input after those it is given, and in place
// of the replacement string (-I) wherever it occurs, the command's name
// included (busybox). So its command must be one whose arguments decide
// nothing.
var xargsOptions = options{
	short: "0a:d:E:e::I:i::L:l::n:oP:prs:tx",
	long: []string{"null", "arg-file=", "delimiter=", "eof?", "replace?", "max-lines?", "max-args=", "open-tty",
		"max-procs=", "interactive", "no-run-if-empty", "max-chars=", "show-limits", "verbose", "exit", "help", "version"},
	deny: map[string]string{"--process-slot-var": "sets an environment variable of any name in the commands it starts (BASH_ENV makes a shell read a file of commands)"},
}

func xargsRule(argv []string, _ bool) ([]started, error) {
	opts, cmd, err := xargsOptions.parse("xargs", argv[1:])
	if err != nil {
		return nil, err
	}
	replace := ""
	for _, o := range opts {
		switch o.name {
		case "-I":
			if o.value == "" {
				return nil, errors.New("xargs -I with an empty replacement string")
			}
			replace = o.value
		case "-i", "--replace":
			replace = o.value
			if replace == "" {
				replace = "{}"
			}
		}
	}
	if len(cmd) == 0 {
		cmd = []string{"echo"}
	}
	s := Simple{Argv: cmd, open: make([]string, len(cmd)), more: "xargs adds arguments read from its input"}
	for i, w := range cmd {
		if replace != "" && strings.Contains(w, replace) {
			s.open[i] = fmt.Sprintf("xargs puts its input in place of %q", replace)
		}
	}
	return []started{{by: "xargs", Simple: s}}, nil
}

// busybox APPLET ARG... is APPLET ARG...
func busyboxRule(argv []string, _ bool) ([]started, error) {
	if len(argv) < 2 {
		return nil, nil
	}
	switch a := argv[1]; {
	case a == "--list" || a == "--list-full" || a == "--help":
		return nil, nil
	case a == "--install":
		return nil, errors.New("busybox --install writes links to itself")
	case strings.HasPrefix(a, "-"):
		return nil, unknownOption("busybox", a)
	}
	return launch("busybox", argv[1:]), nil
}

// The launchers below start the command that follows their options (and,
// for env, its variables), checked in turn.

const (
	envSplit = "splits a string into the command to start, which llm-runtime does not read"
	envChdir = "starts the command in another directory, where its relative paths name other files"
	envArgv0 = "starts the command under another name, and a multi-call program such as busybox runs the program of that name"
)

var envOptions = options{
	short: "i0u:v",
	long:  []string{"ignore-environment", "null", "unset=", "debug", "help", "version"},
	deny: map[string]string{"-S": envSplit, "--split-string": envSplit, "-C": envChdir, "--chdir": envChdir,
		"-a": envArgv0, "--argv0": envArgv0},
}

func envRule(argv []string, _ bool) ([]started, error) {
	_, rest, err := envOptions.parse("env", argv[1:])
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 && rest[0] == "-" {
		rest = rest[1:]
	}
	for len(rest) > 0 && strings.Contains(rest[0], "=") {
		name, value, _ := strings.Cut(rest[0], "=")
		if why := riskyAssignment(name, value); why != "" {
			return nil, fmt.Errorf("env %s=...: %s", name, why)
		}
		rest = rest[1:]
	}
	return launch("env", rest), nil
}

// riskyVariables and riskyPrefixes name the environment variables known
// to make a program load or start code other than its own.
var riskyVariables = func() map[string]string {
	m := map[string]string{"": "a variable with no name"}
	add := func(why string, names ...string) {
		for _, n := range names {
			m[n] = why
		}
	}
	add("decides which file a command name runs", "PATH")
	add("makes the dynamic loader or the C library load other code", "GCONV_PATH", "GLIBC_TUNABLES")
	add("decides which configuration files programs read (git's, for one), and those name programs to run", "HOME", "XDG_CONFIG_HOME")
	add("names a file of commands the shell runs first", "BASH_ENV", "ENV")
	add("changes how the shell reads and runs commands", "SHELL", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "IFS")
	add("names a program that build tools start", "CC", "CXX", "CPP", "FC", "AR", "LD", "AS", "PKG_CONFIG", "RUSTC", "RUSTC_WRAPPER")
	add("gives make options, variables and makefiles", "MAKEFLAGS", "MFLAGS", "GNUMAKEFLAGS", "MAKEFILES")
	add("names a program to start", "PAGER", "MANPAGER", "EDITOR", "VISUAL", "BROWSER", "LESSOPEN", "LESSCLOSE", "SSH_ASKPASS", "SUDO_ASKPASS")
	add("gives an interpreter options or code to load", "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH")
	add("names a file of options for rg (--pre)", "RIPGREP_CONFIG_PATH")
	add("gives tar options", "TAR_OPTIONS")
	return m
}()

var riskyPrefixes = []struct{ prefix, why string }{
	{"LD_", "makes the dynamic loader load other code"},
	{"DYLD_", "makes the dynamic loader load other code"},
	{"BASH_FUNC_", "defines shell functions, which bash runs in place of commands"},
	{"GO", "configures the go command (GOFLAGS=-toolexec=..., GOTOOLCHAIN)"},
	{"CGO_", "gives flags to the C compiler and linker cgo starts"},
	{"GIT_", "configures git, with programs to start (GIT_EXTERNAL_DIFF, GIT_PAGER, GIT_CONFIG_*)"},
	{"PYTHON", "gives Python options or code to load"},
	{"NPM_CONFIG_", "configures npm (script-shell, node-options)"},
	{"npm_config_", "configures npm (script-shell, node-options)"},
	{"CARGO_", "configures cargo (target runners, wrappers)"},
	{"RUSTFLAGS", "gives rustc flags (linkers, plugins)"},
	{"RUSTDOCFLAGS", "gives rustdoc flags"},
}

// riskyAssignment is riskyVariable for name=value, but for the go
// command's variables that only say where modules come from: GOSUMDB,
// GONOSUMDB, and GOPROXY when none of its proxies is "direct" (which makes
// go run git and the other version control programs). GOPROXY=file:///...
// lets go mod tidy work with no network.
func riskyAssignment(name, value string) string {
	switch name {
	case "GOSUMDB", "GONOSUMDB":
		return ""
	case "GOPROXY":
		if value == "" {
			return "an empty GOPROXY is the default, which ends in direct: go would run git and the other version control programs"
		}
		for _, p := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == '|' }) {
			if strings.TrimSpace(p) == "direct" {
				return "GOPROXY with direct makes go run git and the other version control programs"
			}
		}
		return ""
	}
	return riskyVariable(name)
}

// riskyVariable says why a program given the environment variable name may
// load or start code other than its own, or "" if llm-runtime knows no
// reason: the list cannot hold every program's variables.
func riskyVariable(name string) string {
	if why, ok := riskyVariables[name]; ok {
		return why
	}
	for _, p := range riskyPrefixes {
		if strings.HasPrefix(name, p.prefix) {
			return p.why
		}
	}
	return ""
}

var niceOptions = options{short: "n:", long: []string{"adjustment=", "help", "version"}}

func niceRule(argv []string, _ bool) ([]started, error) {
	args := argv[1:]
	if len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' { // the old form, nice -5
		n := strings.TrimLeft(args[0][1:], "+-")
		if n != "" && strings.Trim(n, "0123456789") == "" {
			args = args[1:]
		}
	}
	_, cmd, err := niceOptions.parse("nice", args)
	if err != nil {
		return nil, err
	}
	return launch("nice", cmd), nil
}

var nohupOptions = options{long: []string{"help", "version"}}

func nohupRule(argv []string, _ bool) ([]started, error) {
	_, cmd, err := nohupOptions.parse("nohup", argv[1:])
	if err != nil {
		return nil, err
	}
	return launch("nohup", cmd), nil
}

var timeoutOptions = options{short: "k:s:vp", long: []string{"kill-after=", "signal=", "preserve-status", "foreground", "verbose", "help", "version"}}

func timeoutRule(argv []string, _ bool) ([]started, error) {
	_, rest, err := timeoutOptions.parse("timeout", argv[1:])
	if err != nil || len(rest) < 2 {
		return nil, err
	}
	return launch("timeout", rest[1:]), nil // after the duration
}

var stdbufOptions = options{short: "i:o:e:", long: []string{"input=", "output=", "error=", "help", "version"}}

func stdbufRule(argv []string, _ bool) ([]started, error) {
	_, cmd, err := stdbufOptions.parse("stdbuf", argv[1:])
	if err != nil {
		return nil, err
	}
	return launch("stdbuf", cmd), nil
}

var setsidOptions = options{short: "cfw", long: []string{"ctty", "fork", "wait", "help", "version"}}

func setsidRule(argv []string, _ bool) ([]started, error) {
	_, cmd, err := setsidOptions.parse("setsid", argv[1:])
	if err != nil {
		return nil, err
	}
	return launch("setsid", cmd), nil
}

const flockShell = "runs its command through a shell"

var flockOptions = options{
	short: "sxenouFw:E:",
	long: []string{"shared", "exclusive", "unlock", "nonblock", "nb", "close", "no-fork", "timeout=", "wait=",
		"conflict-exit-code=", "verbose", "help", "version"},
	deny: map[string]string{"-c": flockShell, "--command": flockShell},
}

func flockRule(argv []string, _ bool) ([]started, error) {
	_, rest, err := flockOptions.parse("flock", argv[1:])
	if err != nil || len(rest) < 2 { // a lock file or descriptor alone
		return nil, err
	}
	if rest[1] == "-c" || rest[1] == "--command" {
		return nil, fmt.Errorf("flock %s %s", rest[1], flockShell)
	}
	return launch("flock", rest[1:]), nil
}

var timeOptions = options{short: "f:o:apvqV", long: []string{"format=", "output=", "append", "portability", "verbose", "quiet", "help", "version"}}

func timeRule(argv []string, _ bool) ([]started, error) {
	_, cmd, err := timeOptions.parse("time", argv[1:])
	if err != nil {
		return nil, err
	}
	return launch("time", cmd), nil
}

// awk: system(), a | (print | "cmd", "cmd" | getline) and gawk's @ (@f()
// calls a function by name, @load loads code) are refused anywhere in the
// program, in a string too; programs read from files are refused, and so
// is a word after the program that looks like an option.

const awkFile = "reads the program from a file, which llm-runtime does not read"

var awkOptions = options{
	short: "F:v:e:S",
	long:  []string{"field-separator=", "assign=", "source=", "sandbox", "version"},
	deny: map[string]string{"-f": awkFile, "--file": awkFile, "-E": awkFile, "--exec": awkFile,
		"-i": "includes a source file, which llm-runtime does not read", "--include": "includes a source file, which llm-runtime does not read",
		"-l": "loads an extension library", "--load": "loads an extension library",
		"-W": "takes mawk's and gawk's -W options (-W exec FILE reads the program from a file), which llm-runtime does not check"},
}

func awkRule(argv []string, _ bool) ([]started, error) {
	prog := path.Base(argv[0])
	opts, rest, err := awkOptions.parse(prog, argv[1:])
	if err != nil {
		return nil, err
	}
	var programs []string
	for _, o := range opts {
		if o.name == "-e" || o.name == "--source" {
			programs = append(programs, o.value)
		}
	}
	if len(programs) == 0 && len(rest) > 0 {
		programs, rest = rest[:1], rest[1:]
	}
	for _, p := range programs {
		if strings.Contains(p, "system") {
			return nil, fmt.Errorf("%s's system() runs a shell command (refused wherever the word system is in the program)", prog)
		}
		for i := 0; i < len(p); i++ {
			if p[i] == '|' {
				if i+1 < len(p) && p[i+1] == '|' {
					i++
					continue
				}
				return nil, fmt.Errorf(`a | in an %s program pipes to or from a shell command (print | "cmd", "cmd" | getline); it is refused wherever it is, in a string or a regular expression too (|| is let through)`, prog)
			}
		}
		if strings.Contains(p, "@") {
			return nil, fmt.Errorf("gawk's @ calls a function by name (@f() with f = \"system\") and loads code (@include, @load); it is refused wherever it is in an %s program", prog)
		}
	}
	for _, a := range rest {
		if len(a) > 1 && a[0] == '-' {
			return nil, fmt.Errorf("%s %s: a word after the program that looks like an option (-f FILE) is refused, since awks differ on whether they read it as one", prog, a)
		}
	}
	return nil, nil
}

// sed: its e command and s///e flag run shell commands; w, W and s///w
// write files (refused unless exec is writable, /dev/stdout and
// /dev/stderr aside), and so does -i; a script from a file (-f) is not
// read, so it is refused; a script GNU sed and busybox sed could read in
// different ways is refused.

const sedFile = "reads its script from a file, which llm-runtime does not read"

var sedOptions = options{
	short: "nse:f:i::l:Eruz",
	long: []string{"quiet", "silent", "debug", "expression=", "file=", "in-place?", "line-length=", "posix",
		"regexp-extended", "separate", "sandbox", "unbuffered", "null-data", "zero-terminated", "follow-symlinks", "help", "version"},
	deny:    map[string]string{"-f": sedFile, "--file": sedFile},
	permute: true,
}

func sedRule(argv []string, writable bool) ([]started, error) {
	opts, rest, err := sedOptions.parse("sed", argv[1:])
	if err != nil {
		return nil, err
	}
	var script []string
	for _, o := range opts {
		switch o.name {
		case "-e", "--expression":
			script = append(script, o.value)
		case "-i", "--in-place":
			if !writable {
				return nil, fmt.Errorf("sed %s edits files in place, and exec is read-only (exec.writable: false)", o.name)
			}
		}
	}
	if len(script) == 0 && len(rest) > 0 {
		script = rest[:1]
	}
	p := sedParser{s: strings.Join(script, "\n"), writable: writable}
	return nil, p.script()
}

// sedParser reads a sed script the way both GNU sed (4.x) and busybox sed
// do, and refuses what they would read differently.
type sedParser struct {
	s        string
	i        int
	writable bool
}

func (p *sedParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *sedParser) blanks() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sedParser) digits() {
	for p.i < len(p.s) && isDigit(p.s[p.i]) {
		p.i++
	}
}

// rest returns the rest of the line (text, file names).
func (p *sedParser) rest() string {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != '\n' {
		p.i++
	}
	return p.s[start:p.i]
}

func sedError(what string) error {
	return fmt.Errorf("sed: %s, so the script is refused", what)
}

func (p *sedParser) script() error {
	for {
		for p.i < len(p.s) && strings.IndexByte(" \t\n;", p.s[p.i]) >= 0 {
			p.i++
		}
		switch {
		case p.i >= len(p.s):
			return nil
		case p.peek() == '#':
			p.rest()
			continue
		case p.peek() == '}':
			p.i++
			if err := p.end(); err != nil {
				return err
			}
			continue
		}
		if ok, err := p.address(); err != nil {
			return err
		} else if ok {
			p.blanks()
			if p.peek() == ',' {
				p.i++
				p.blanks()
				if c := p.peek(); c == '+' || c == '~' {
					p.i++
					p.digits()
				} else if ok, err := p.address(); err != nil {
					return err
				} else if !ok {
					return sedError("an address is missing after a comma")
				}
			}
		}
		p.blanks()
		for p.peek() == '!' {
			p.i++
			p.blanks()
		}
		if p.i >= len(p.s) {
			return sedError("a command is missing")
		}
		c := p.s[p.i]
		p.i++
		switch c {
		case '{':
			continue
		case '=', 'd', 'D', 'g', 'G', 'h', 'H', 'n', 'N', 'p', 'P', 'x', 'z', 'F':
		case 'l', 'L', 'q', 'Q':
			p.blanks()
			p.digits()
		case 'a', 'i', 'c', 'r', 'R': // text or a file name, to the end of the line
			p.rest()
			continue
		case ':', 'b', 't', 'T', 'v':
			p.blanks()
			start := p.i
			for p.i < len(p.s) && strings.IndexByte(" \t\n;", p.s[p.i]) < 0 {
				p.i++
			}
			if strings.ContainsAny(p.s[start:p.i], "}#") {
				return sedError("GNU sed and busybox sed end a label holding } or # in different places")
			}
		case 'w', 'W':
			if err := p.write(string(c)); err != nil {
				return err
			}
			continue
		case 'e':
			return errors.New("sed's e command runs a shell command")
		case 's':
			if err := p.substitute(); err != nil {
				return err
			}
			continue
		case 'y':
			d, err := p.delimiter()
			if err != nil {
				return err
			}
			if err := p.part(d, sedBusybox); err != nil {
				return err
			}
			if err := p.part(d, 0); err != nil {
				return err
			}
		default:
			return sedError(fmt.Sprintf("%q is not a sed command llm-runtime knows", c))
		}
		if err := p.end(); err != nil {
			return err
		}
	}
}

// end checks that a command is followed by what ends one.
func (p *sedParser) end() error {
	p.blanks()
	if p.i < len(p.s) && strings.IndexByte(";\n}#", p.s[p.i]) < 0 {
		return sedError("characters follow a command where GNU sed wants ; or a new line")
	}
	return nil
}

func (p *sedParser) write(what string) error {
	p.blanks()
	name := p.rest()
	if !p.writable && name != "/dev/stdout" && name != "/dev/stderr" {
		return fmt.Errorf("sed's %s writes files, and exec is read-only (exec.writable: false)", what)
	}
	return nil
}

// address reads an address if there is one: a line number (GNU's
// first~step too), $, /regex/ or \cregexc, with GNU's I and M flags.
func (p *sedParser) address() (bool, error) {
	switch c := p.peek(); {
	case p.i >= len(p.s):
		return false, nil
	case isDigit(c):
		p.digits()
		if p.peek() == '~' {
			p.i++
			p.digits()
		}
		return true, nil
	case c == '$':
		p.i++
		return true, nil
	case c == '/':
		p.i++
		if err := p.part('/', sedBusybox|sedGNU); err != nil {
			return false, err
		}
	case c == '\\':
		p.i++
		d, err := p.delimiter()
		if err != nil {
			return false, err
		}
		if err := p.part(d, sedBusybox|sedGNU); err != nil {
			return false, err
		}
	default:
		return false, nil
	}
	for {
		p.blanks()
		if c := p.peek(); c != 'I' && c != 'M' {
			return true, nil
		}
		p.i++
	}
}

func (p *sedParser) delimiter() (byte, error) {
	if p.i >= len(p.s) {
		return 0, sedError("a delimiter is missing")
	}
	c := p.s[p.i]
	if c == '\n' || c == '\\' || c >= utf8.RuneSelf {
		return 0, sedError(fmt.Sprintf("%q as a delimiter", c))
	}
	p.i++
	return c, nil
}

func (p *sedParser) substitute() error {
	d, err := p.delimiter()
	if err != nil {
		return err
	}
	if err := p.part(d, sedBusybox|sedGNU); err != nil {
		return err
	}
	if err := p.part(d, 0); err != nil {
		return err
	}
	for { // flags; both seds skip blanks between them
		p.blanks()
		switch c := p.peek(); {
		case p.i < len(p.s) && strings.IndexByte("gpiImM", c) >= 0:
			p.i++
		case isDigit(c):
			p.digits()
		case c == 'e':
			return errors.New("sed's s///e flag runs the result as a shell command")
		case c == 'w':
			p.i++
			return p.write("s///w")
		default:
			return p.end()
		}
	}
}

// The ways seds find the end of a regular expression, besides the plain
// one (the first delimiter not escaped by a backslash): busybox's and GNU's
// readings of bracket expressions, in which a delimiter is literal.
const (
	sedBusybox = 1 << iota
	sedGNU
)

// part reads a regular expression or a replacement up to its delimiter d,
// and refuses it unless each reading in models ends it where the plain one
// does.
func (p *sedParser) part(d byte, models int) error {
	end := sedPlainEnd(p.s, p.i, d)
	if models&sedBusybox != 0 && sedBusyboxEnd(p.s, p.i, d) != end ||
		models&sedGNU != 0 && sedGNUEnd(p.s, p.i, d) != end {
		return sedError("GNU sed and busybox sed would end a regular expression holding [ in different places")
	}
	if end < 0 {
		return sedError(fmt.Sprintf("a %q delimiter is missing", d))
	}
	p.i = end + 1
	return nil
}

func sedPlainEnd(s string, i int, d byte) int {
	for ; i < len(s); i++ {
		switch s[i] {
		case d:
			return i
		case '\n':
			return -1
		case '\\':
			i++
		}
	}
	return -1
}

// sedBusyboxEnd is index_of_next_unescaped_regexp_delim of busybox's sed.c.
func sedBusyboxEnd(s string, i int, d byte) int {
	bracket, escaped := -1, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case bracket >= 0:
			if c == ']' && !(bracket == i-1 || (bracket == i-2 && s[i-1] == '^')) {
				bracket = -1
			}
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '[':
			bracket = i
		case c == d:
			return i
		}
	}
	return -1
}

// sedGNUEnd is match_slash of GNU sed's compile.c, for a regular expression.
func sedGNUEnd(s string, i int, d byte) int {
	for i < len(s) {
		switch c := s[i]; {
		case c == '\n':
			return -1
		case c == d:
			return i
		case c == '\\':
			i += 2
			continue
		case c == '[':
			j := sedGNUBracket(s, i)
			if j < 0 {
				return -1
			}
			i = j
		}
		i++
	}
	return -1
}

// sedGNUBracket is snarf_char_class of GNU sed's compile.c: given the [
// at s[i], it returns the index of the ] that closes the bracket
// expression, or -1.
func sedGNUBracket(s string, i int) int {
	j := i + 1
	if j < len(s) && s[j] == '^' {
		j++
	}
	if j < len(s) && s[j] == ']' {
		j++
	}
	state := 0 // 1 after [, 2 after [. [: or [=, 3 after its closing . : or =
	var delim byte
	for ; j < len(s); j++ {
		switch c := s[j]; c {
		case '\n':
			return -1
		case '.', ':', '=':
			if state == 1 {
				delim, state = c, 2
				continue
			}
			if state == 2 && c == delim {
				state = 3
				continue
			}
		case '[':
			if state == 0 {
				state = 1
			}
			continue
		case ']':
			if state == 0 || state == 1 {
				return j
			}
			if state == 3 {
				state = 0
			}
		}
		state &^= 1
	}
	return -1
}

// make runs the Makefile, code the model can write; what is refused is
// what would run code from the command line: --eval, a makefile read from
// the input, a variable set on the command line (its value goes into the
// Makefile's shell commands) and a target with characters that could
// reach them through $@; -f, -C and -I must name files of the repository.

const makeEval = "evaluates its argument as makefile text"

var makeOptions = options{
	short: "bBC:deE:f:hiI:j::kl::LmnO::o:pqrRsStvwW:",
	long: []string{"always-make", "directory=", "debug?", "environment-overrides", "file=", "makefile=", "help",
		"ignore-errors", "include-dir=", "jobs?", "keep-going", "load-average?", "max-load?", "check-symlink-times",
		"just-print", "dry-run", "recon", "old-file=", "assume-old=", "output-sync?", "print-data-base", "question",
		"no-builtin-rules", "no-builtin-variables", "silent", "quiet", "no-silent", "stop", "no-keep-going", "touch",
		"trace", "version", "print-directory", "no-print-directory", "what-if=", "new-file=", "assume-new=",
		"warn-undefined-variables", "shuffle?"},
	deny:    map[string]string{"-E": makeEval, "--eval": makeEval},
	permute: true,
}

func makeRule(argv []string, _ bool) ([]started, error) {
	opts, operands, err := makeOptions.parse("make", argv[1:])
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		switch o.name {
		case "-f", "--file", "--makefile", "-C", "--directory", "-I", "--include-dir":
			if o.value == "-" && (o.name == "-f" || o.name == "--file" || o.name == "--makefile") {
				return nil, fmt.Errorf("make %s - reads the makefile from its input", o.name)
			}
			if !repoPath(o.value) {
				return nil, fmt.Errorf("make %s %s: it must name a file or directory of the repository (a relative path without ..)", o.name, o.value)
			}
		}
	}
	for _, t := range operands {
		if strings.Contains(t, "=") {
			return nil, fmt.Errorf("make %s: a variable set on the command line goes into the Makefile's shell commands", t)
		}
		if strings.Trim(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-/") != "" {
			return nil, fmt.Errorf("make %q: a target with characters other than letters, digits and ._+-/ could reach the Makefile's shell commands through $@", t)
		}
	}
	return nil, nil
}

// go: -exec, -toolexec, -vettool and -fixtool run the program they name;
// -ldflags with -extld names the external linker; gccgo is another
// compiler; go tool, go get, go bug and go doc -http start other programs;
// go env -w and -u change what later go commands do; go run runs only a
// package of the repository, named by a relative path, since a package
// named by its import path may be any program of the toolchain
// (cmd/test2json runs its arguments). go test, go run and go generate run
// the model's code, and go build and go vet run the compiler and cgo's C
// compiler on it.

var goCommands = map[string]string{
	"build": "", "test": "", "vet": "", "run": "", "install": "", "list": "", "mod": "", "work": "", "env": "",
	"version": "", "doc": "", "fmt": "", "fix": "", "clean": "", "generate": "", "help": "", "telemetry": "",
	"tool": "runs the toolchain's tools and those go.mod declares, some of which start the program named in their arguments (test2json)",
	"get":  "starts version control programs (git, hg, svn) to fetch modules",
	"bug":  "opens a web browser",
}

// goBuildFlags are the flags of go run, true for those that take a value
// (which "-flag value" gives in the next word).
var goBuildFlags = map[string]bool{
	"a": false, "n": false, "race": false, "msan": false, "asan": false, "cover": false, "v": false, "work": false,
	"x": false, "json": false, "linkshared": false, "modcacherw": false, "trimpath": false, "buildvcs": false,
	"C": true, "p": true, "covermode": true, "coverpkg": true, "asmflags": true, "buildmode": true, "compiler": true,
	"gccgoflags": true, "gcflags": true, "installsuffix": true, "ldflags": true, "mod": true, "modfile": true,
	"overlay": true, "pgo": true, "pkgdir": true, "tags": true, "toolexec": true, "exec": true,
	"debug-actiongraph": true, "debug-runtime-trace": true, "debug-trace": true,
}

// goFlag splits a flag as Go's flag package reads it: -name, --name,
// -name=value.
func goFlag(a string) (name, value string, hasValue, ok bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", "", false, false
	}
	s := a[1:]
	if s[0] == '-' {
		s = s[1:]
	}
	if s == "" || s[0] == '-' || s[0] == '=' {
		return "", "", false, false
	}
	name, value, hasValue = strings.Cut(s, "=")
	return name, value, hasValue, true
}

func goRule(argv []string, _ bool) ([]started, error) {
	if len(argv) < 2 {
		return nil, nil
	}
	sub := argv[1]
	why, ok := goCommands[sub]
	if !ok {
		return nil, fmt.Errorf("go %s: llm-runtime lets through only the go commands it has checked, and not this one", sub)
	}
	if why != "" {
		return nil, fmt.Errorf("go %s %s", sub, why)
	}
	args := argv[2:]
	if sub == "test" { // what follows -args is for the test binary, the model's code
		for i, a := range args {
			if a == "-args" || a == "--args" {
				args = args[:i]
				break
			}
		}
	}
	for i, a := range args {
		name, value, hasValue, ok := goFlag(a)
		if !ok {
			continue
		}
		if !hasValue && i+1 < len(args) {
			value = args[i+1]
		}
		switch {
		case name == "exec":
			return nil, fmt.Errorf("go %s -exec runs the program it names with each binary go builds", sub)
		case name == "toolexec":
			return nil, fmt.Errorf("go %s -toolexec runs the program it names in place of the compiler and the other tools", sub)
		case name == "vettool" || name == "fixtool":
			return nil, fmt.Errorf("go %s -%s runs the program it names", sub, name)
		case name == "http" && sub == "doc":
			return nil, errors.New("go doc -http runs a documentation server (go run of pkgsite) and a web browser")
		case name == "gccgoflags" || name == "compiler" && value != "gc":
			return nil, fmt.Errorf("go %s -%s builds with gccgo, a compiler llm-runtime does not check", sub, name)
		case name == "ldflags" && strings.Contains(value, "extld"):
			return nil, fmt.Errorf("go %s -ldflags with -extld or -extldflags names the linker to run, and its flags", sub)
		case name == "C" && !repoPath(value):
			return nil, fmt.Errorf("go %s -C %s: it must name a directory of the repository (a relative path without ..)", sub, value)
		case (name == "w" || name == "u") && sub == "env":
			return nil, fmt.Errorf("go env -%s changes go's configuration, which later go commands obey (GOFLAGS=-toolexec=...)", name)
		}
	}
	if sub == "run" {
		return nil, goRunPackage(args)
	}
	return nil, nil
}

// goRunPackage checks that go run's package is one of the repository.
func goRunPackage(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			args = append(args[:i:i], args[i+1:]...)
		} else if name, _, hasValue, ok := goFlag(a); ok {
			takesValue, known := goBuildFlags[name]
			if !known {
				return fmt.Errorf("go run -%s: llm-runtime lets through only the flags of go run it has checked, and not this one", name)
			}
			if takesValue && !hasValue {
				i++
			}
			continue
		}
		if i >= len(args) {
			return nil
		}
		pkg := args[i]
		if !(pkg == "." || strings.HasPrefix(pkg, "./") || strings.HasSuffix(pkg, ".go")) || !repoPath(pkg) {
			return fmt.Errorf("go run %s: go run runs only a package of the repository, named by a relative path (., ./cmd/x, main.go); a package named by its import path may be any program of the toolchain", pkg)
		}
		for _, f := range args[i+1:] {
			if !strings.HasSuffix(f, ".go") {
				break
			}
			if !repoPath(f) {
				return fmt.Errorf("go run %s: the files must be files of the repository", f)
			}
		}
		return nil
	}
	return nil
}

// git: only the commands that read the repository are let through, and
// the options that name programs are refused: -c sets configuration that
// names programs, -C, --git-dir and the like use another repository's,
// --ext-diff runs diff.external, grep -O runs a pager. An alias, or a
// git-NAME program, runs for a name git does not know, so other names are
// refused.

var gitGlobal = wordSet("--no-pager", "-P", "--no-replace-objects", "--literal-pathspecs", "--glob-pathspecs",
	"--noglob-pathspecs", "--icase-pathspecs", "--no-optional-locks", "--no-advice", "--version")

var gitCommands = wordSet("status", "log", "show", "diff", "blame", "annotate", "shortlog", "ls-files", "ls-tree",
	"cat-file", "rev-parse", "rev-list", "describe", "name-rev", "merge-base", "show-ref", "for-each-ref",
	"count-objects", "whatchanged", "cherry", "range-diff", "diff-tree", "diff-files", "diff-index", "grep",
	"check-ignore", "check-attr", "version")

func gitRule(argv []string, _ bool) ([]started, error) {
	i := 1
	for ; i < len(argv) && strings.HasPrefix(argv[i], "-"); i++ {
		a := argv[i]
		if gitGlobal[a] {
			continue
		}
		switch name, _, _ := strings.Cut(a, "="); name {
		case "-c", "--config-env":
			return nil, fmt.Errorf("git %s sets configuration, which names programs for git to run (core.pager, core.fsmonitor, alias.*, diff.external)", name)
		case "-C", "--git-dir", "--work-tree", "--exec-path", "--namespace", "--super-prefix", "--attr-source":
			return nil, fmt.Errorf("git %s makes git use another repository, its configuration, or another directory of programs", name)
		case "-p", "--paginate":
			return nil, fmt.Errorf("git %s starts a pager", name)
		}
		return nil, unknownOption("git", a)
	}
	if i == len(argv) {
		return nil, nil
	}
	sub := argv[i]
	if !gitCommands[sub] {
		return nil, fmt.Errorf("git %s: llm-runtime lets through only the git commands that read the repository (status, log, show, diff, grep, ...); git runs an alias or a git-%s program for a name it does not know, and some of its commands start programs (difftool, bisect run, rebase --exec, submodule foreach, help)", sub, sub)
	}
	for _, a := range argv[i+1:] {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "--") {
			name, _, _ := strings.Cut(a[2:], "=")
			for _, o := range []string{"ext-diff", "open-files-in-pager", "output"} {
				if name != "" && strings.HasPrefix(o, name) {
					return nil, fmt.Errorf("git %s %s: --%s runs a program or writes a file (an abbreviation of it is refused too)", sub, a, o)
				}
			}
		} else if sub == "grep" && len(a) > 1 && a[0] == '-' && strings.Contains(a, "O") {
			return nil, fmt.Errorf("git grep %s: -O opens the files found in a pager", a)
		}
	}
	return nil, nil
}

// rg (ripgrep): --pre runs a program on every file searched, -z
// (--search-zip) starts decompression programs, --hostname-bin runs a
// program.

const rgValueLetters = "ABCEMTdefgjmrt" // short flags that take a value

func rgRule(argv []string, _ bool) ([]started, error) {
	for _, a := range argv[1:] {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "--") {
			switch name, _, _ := strings.Cut(a[2:], "="); name {
			case "pre", "search-zip", "hostname-bin":
				return nil, fmt.Errorf("rg --%s starts programs (--pre: on every file searched; --search-zip: decompressors; --hostname-bin)", name)
			}
			continue
		}
		if len(a) > 1 && a[0] == '-' {
			for _, c := range a[1:] {
				if c == 'z' {
					return nil, fmt.Errorf("rg %s: -z (--search-zip) starts decompression programs", a)
				}
				if strings.ContainsRune(rgValueLetters, c) {
					break
				}
			}
		}
	}
	return nil, nil
}

// sort: GNU sort --compress-program runs the program it names.
func sortRule(argv []string, _ bool) ([]started, error) {
	for _, a := range argv[1:] {
		if a == "--" {
			break
		}
		if name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "="); strings.HasPrefix(a, "--") && name != "" && strings.HasPrefix("compress-program", name) {
			return nil, fmt.Errorf("sort %s: --compress-program runs the program it names (an abbreviation of it is refused too)", a)
		}
	}
	return nil, nil
}

// Interpreters (python, perl, ruby, node, php, lua) run code given in
// their options (-c, -e, -m, -r) or read from their input; only SCRIPT
// [ARG]... is let through, SCRIPT a file of the repository: code the model
// can write, like go test's.
func scriptRule(argv []string, _ bool) ([]started, error) {
	prog := path.Base(argv[0])
	if len(argv) == 2 && argv[1] == "--version" {
		return nil, nil
	}
	if len(argv) < 2 || strings.HasPrefix(argv[1], "-") {
		return nil, fmt.Errorf("%s runs code given in its options (-c, -e, -m, -r) or read from its input, so only %s SCRIPT [ARG]... is let through", prog, prog)
	}
	if !repoPath(argv[1]) {
		return nil, fmt.Errorf("%s %s: the script must be a file of the repository, named by a relative path without .., since a program elsewhere may run its arguments as code", prog, argv[1])
	}
	return nil, nil
}
