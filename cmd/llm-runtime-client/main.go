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
	"syscall"

	"github.com/alecthomas/kong"

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
	// This binary's real path: where llm-runtime is looked for first, and
	// what the daemon or llm-runtime guards as the client.
	self := ""
	if exe, err := os.Executable(); err == nil {
		self = paths.RealPath(exe)
	}
	full, err := fullBinary(self)
	if err != nil {
		fmt.Fprintf(os.Stderr, "llm-runtime-client: %v\n", err)
		os.Exit(filtercli.ExitUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code, handled := run(ctx, self, full, args, os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	if !handled {
		// The client's path, so that llm-runtime guards it as its own.
		environ := os.Environ()
		if self != "" {
			environ = append(environ, config.ClientBinaryEnv+"="+self)
		}
		err := syscall.Exec(full, append([]string{full}, args...), environ)
		fmt.Fprintf(os.Stderr, "llm-runtime-client: running %s: %v\n", full, err)
		os.Exit(filtercli.ExitUsage)
	}
	os.Exit(code)
}

// fullBinary is the llm-runtime that runs what the client does not: the
// one beside the client's real path, self, else the first on PATH.
func fullBinary(self string) (string, error) {
	if self != "" {
		p := filepath.Join(filepath.Dir(self), "llm-runtime")
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
func run(ctx context.Context, self, full string, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) (code int, handled bool) {
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
	} else if t, ok := in.(*os.File); ok && filtercli.IsTerminal(t) {
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
	own.Client, own.Binary = self, paths.RealPath(full)
	// What Load said comes first, as llm-runtime says it before the run.
	errw := &after{first: said.Bytes(), w: stderr}
	c := filtercli.Client{Globals: &f.Globals, Build: filtercli.Version(version, commit), Own: own, Getenv: filtercli.Getenv(environ), Stderr: errw, HandsOn: true}
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
