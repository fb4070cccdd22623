// Command llm-runtime-client is llm-runtime's filter for a model loop that
// runs it once per reply with llm-runtime serve running: it hands the run
// to the daemon and prints what the daemon sends back, the very bytes and
// exit code llm-runtime would have. It links configuration loading and the
// daemon's protocol alone, so it starts in a few milliseconds, where
// llm-runtime, which links the sandboxes, the audit store and the guests'
// runtime, takes tens of them to start.
//
// Whatever it does not hand to a daemon it leaves to llm-runtime, which it
// execs with the same arguments, environment and untouched input: no
// daemon answers, or it is busy or of another build; the server setting is
// never; a command other than run, --help or --version; a flag it does not
// know, an invalid configuration, input from a terminal. llm-runtime is the
// binary of that name beside this one (its real path's directory), else
// the first on PATH.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
	"golang.org/x/sys/unix"

	"github.com/llm-runtime/llm-runtime/config"
	"github.com/llm-runtime/llm-runtime/internal/filtercli"
	"github.com/llm-runtime/llm-runtime/internal/paths"
)

// version and commit are set at build time by make build, as
// llm-runtime's: the daemon serves a client of its own build alone.
var (
	version = "dev"
	commit  = ""
)

// flags are those of llm-runtime's filter (llm-runtime [run]).
type flags struct {
	filtercli.Globals
	filtercli.Overrides
	Input  string `short:"i"`
	Output string `short:"o"`
}

func main() {
	args := os.Args[1:]
	full, err := fullBinary()
	if err != nil {
		fmt.Fprintf(os.Stderr, "llm-runtime-client: %v\n", err)
		os.Exit(filtercli.ExitUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code, handled := run(ctx, full, args, os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	if !handled {
		// The client's path, so that llm-runtime guards it as its own.
		environ := os.Environ()
		if exe, err := os.Executable(); err == nil {
			environ = append(environ, config.ClientBinaryEnv+"="+paths.RealPath(exe))
		}
		err := syscall.Exec(full, append([]string{full}, args...), environ)
		fmt.Fprintf(os.Stderr, "llm-runtime-client: running %s: %v\n", full, err)
		os.Exit(filtercli.ExitUsage)
	}
	os.Exit(code)
}

// fullBinary is the llm-runtime that runs what the client does not: the
// one beside the client's real path, else the first on PATH.
func fullBinary() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(paths.RealPath(exe)), "llm-runtime")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("llm-runtime")
	if err != nil {
		return "", errors.New("no llm-runtime beside this binary or on PATH: install both (make build makes ./llm-runtime and ./llm-runtime-client)")
	}
	return filepath.Abs(p)
}

// run hands the filter run of args to the daemon. handled is false when
// llm-runtime is to run it instead, and then nothing was read of stdin,
// written to stdout or said on stderr.
func run(ctx context.Context, full string, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) (code int, handled bool) {
	if len(args) > 0 && args[0] == "run" {
		args = args[1:]
	}
	for _, a := range args {
		if a == "--" || a == "-h" || a == "--help" || a == "--version" {
			return 0, false
		}
	}
	var f flags
	parser, err := kong.New(&f, kong.Name("llm-runtime"), kong.Exit(func(int) {}), kong.Writers(io.Discard, io.Discard))
	if err != nil {
		return 0, false
	}
	if _, err := parser.Parse(args); err != nil {
		return 0, false
	}
	// What Load says (a legacy flag's warning) is said only if the run is
	// handed over: llm-runtime says it otherwise.
	var said bytes.Buffer
	root, file, cfg, err := f.Load(environ, &said, &f.Overrides)
	if err != nil || cfg.CheckSandbox() != nil || cfg.Server == "never" {
		return 0, false
	}
	in, out := stdin, stdout
	if f.Input != "" && f.Input != "-" {
		file, err := os.Open(f.Input)
		if err != nil {
			return 0, false
		}
		defer file.Close()
		in = file
	} else if t, ok := in.(*os.File); ok && isTerminal(t) {
		return 0, false // llm-runtime says how to end the input
	}
	var outFile *os.File
	if f.Output != "" && f.Output != "-" {
		if outFile, err = os.Create(f.Output); err != nil {
			return 0, false
		}
		defer outFile.Close()
		out = outFile
	}
	own := paths.OwnFiles()
	own.Client, own.Binary = own.Binary, paths.RealPath(full)
	getenv := func(key string) string {
		for _, kv := range environ {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				return v
			}
		}
		return ""
	}
	// What Load said comes first, as llm-runtime says it before the run.
	errw := &after{first: said.Bytes(), w: stderr}
	c := filtercli.Client{Globals: &f.Globals, Build: filtercli.Version(version, commit), Own: own, Getenv: getenv, Stderr: errw, HandsOn: true}
	handled, err = filtercli.Served(ctx, c, root, file, cfg, in, out)
	if !handled {
		return 0, false
	}
	errw.Write(nil)
	if err == nil && outFile != nil {
		if cerr := outFile.Close(); cerr != nil {
			err = filtercli.Fail(filtercli.ExitUsage, "--output: %v", cerr)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "llm-runtime: %v\n", err)
		var xe *filtercli.ExitError
		if errors.As(err, &xe) {
			return xe.Code, true
		}
		return filtercli.ExitUsage, true
	}
	return filtercli.ExitOK, true
}

// after writes first before what is written to w, once.
type after struct {
	first []byte
	w     io.Writer
}

func (a *after) Write(p []byte) (int, error) {
	if a.first != nil {
		a.w.Write(a.first)
		a.first = nil
	}
	if len(p) == 0 {
		return 0, nil
	}
	return a.w.Write(p)
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
