// Command gotest runs go test and says, while it runs, what it is doing:
// each package as it ends (with its time and its counts), every minute
// the packages and tests still running, and at the end every test that
// was skipped with its reason. With -leftovers it also proves that the
// suite left nothing behind: no container, image or volume of ours on
// Docker, no file of ours in the temporary directory or in the user's
// cache, configuration, state and runtime directories, that was not there
// before it ran.
//
//	go run ./tools/gotest [-leftovers] [-progress 1m] [-log FILE] -- [go test flags] [packages]
//
// It exits with go test's code, or 1 when something was left behind.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// event is one line of go test -json (cmd/test2json).
type event struct {
	Time       time.Time
	Action     string
	Package    string
	ImportPath string
	Test       string
	Elapsed    float64
	Output     string
}

type test struct {
	started time.Time // when it ran, or ran on after a pause
	paused  bool      // a parallel test waiting for its turn
	output  []string
}

type pkg struct {
	started                 time.Time
	passed, failed, skipped int
	tests                   map[string]*test
	output                  []string // the package's own lines
}

type skip struct{ pkg, test, reason string }

type report struct {
	mu       sync.Mutex
	out      io.Writer
	module   string
	pkgs     map[string]*pkg
	skips    []skip
	failures int
	start    time.Time
}

func main() {
	leftovers := flag.Bool("leftovers", false, "fail when the suite leaves anything of ours on Docker, in the temporary directory or in the user's directories")
	every := flag.Duration("progress", time.Minute, "how often to say what is still running (0: never)")
	logFile := flag.String("log", "", "also write go test's -json events to this file")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./tools/gotest [-leftovers] [-progress 1m] [-log FILE] -- [go test flags] [packages]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	os.Exit(run(flag.Args(), *leftovers, *every, *logFile))
}

func run(args []string, leftovers bool, every time.Duration, logFile string) int {
	var before snapshot
	if leftovers {
		before = take()
	}
	r := &report{out: os.Stdout, module: modulePath(), pkgs: map[string]*pkg{}, start: time.Now()}
	cmd := exec.Command("go", append([]string{"test", "-json"}, args...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotest:", err)
		return 1
	}
	var log io.Writer = io.Discard
	if logFile != "" {
		f, err := os.Create(logFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gotest:", err)
			return 1
		}
		defer f.Close()
		log = f
	}
	fmt.Fprintf(r.out, "go test %s\n", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "gotest:", err)
		return 1
	}
	done := make(chan struct{})
	if every > 0 {
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					r.progress()
				}
			}
		}()
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		log.Write(append(line, '\n'))
		var ev event
		if json.Unmarshal(line, &ev) != nil {
			fmt.Fprintln(r.out, string(line))
			continue
		}
		r.event(ev)
	}
	err = cmd.Wait()
	close(done)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "gotest:", err)
		code = 1
	}
	r.summary()
	if leftovers {
		if left := take().since(before); len(left) > 0 {
			fmt.Fprintf(r.out, "\nFAIL: the suite left behind %d thing(s) of ours that were not there before it ran:\n", len(left))
			for _, l := range left {
				fmt.Fprintf(r.out, "  %s\n", l)
			}
			code = max(code, 1)
		} else {
			fmt.Fprintln(r.out, "Left behind: nothing (Docker, the temporary directory and the user's directories are as they were)")
		}
	}
	return code
}

func (r *report) short(p string) string {
	if p == strings.TrimSuffix(r.module, "/") {
		return "."
	}
	return strings.TrimPrefix(p, r.module)
}

func (r *report) pkg(name string, at time.Time) *pkg {
	p := r.pkgs[name]
	if p == nil {
		p = &pkg{started: at, tests: map[string]*test{}}
		r.pkgs[name] = p
	}
	return p
}

func (r *report) event(ev event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := ev.Package
	if name == "" {
		name = ev.ImportPath
	}
	switch ev.Action {
	case "build-output":
		fmt.Fprint(r.out, ev.Output)
		return
	case "build-fail":
		fmt.Fprintf(r.out, "FAIL %s (build failed)\n", r.short(name))
		r.failures++
		return
	}
	if name == "" {
		return
	}
	p := r.pkg(name, ev.Time)
	if ev.Test == "" {
		switch ev.Action {
		case "output":
			p.output = append(p.output, ev.Output)
		case "pass", "fail", "skip":
			counts := fmt.Sprintf("%d passed", p.passed)
			if p.skipped > 0 {
				counts += fmt.Sprintf(", %d skipped", p.skipped)
			}
			if p.failed > 0 {
				counts += fmt.Sprintf(", %d failed", p.failed)
			}
			if ev.Action == "skip" { // no test files
				delete(r.pkgs, name)
				return
			}
			word := map[string]string{"pass": "ok  ", "fail": "FAIL"}[ev.Action]
			fmt.Fprintf(r.out, "%s %-32s %7.1fs  (%s)\n", word, r.short(name), ev.Elapsed, counts)
			if ev.Action == "fail" {
				r.failures++
				if p.failed == 0 { // failed outside a test: show what it printed
					for _, l := range p.output {
						fmt.Fprint(r.out, "    ", l)
					}
				}
				// Tests that never ended (a timeout's panic is in their
				// output): the end of what each printed.
				names := make([]string, 0, len(p.tests))
				for tn := range p.tests {
					names = append(names, tn)
				}
				sort.Strings(names)
				for _, tn := range names {
					out := p.tests[tn].output
					if len(out) == 0 {
						continue
					}
					fmt.Fprintf(r.out, "--- UNFINISHED: %s %s\n", r.short(name), tn)
					for _, l := range out[max(0, len(out)-60):] {
						fmt.Fprint(r.out, "    ", l)
					}
				}
			}
			delete(r.pkgs, name)
		}
		return
	}
	t := p.tests[ev.Test]
	if t == nil {
		t = &test{started: ev.Time}
		p.tests[ev.Test] = t
	}
	switch ev.Action {
	case "output":
		t.output = append(t.output, ev.Output)
	case "pause":
		t.paused = true
	case "cont":
		t.paused, t.started = false, ev.Time
	case "pass":
		if !strings.Contains(ev.Test, "/") {
			p.passed++
		}
		delete(p.tests, ev.Test)
	case "skip":
		if !strings.Contains(ev.Test, "/") || !slices.ContainsFunc(r.skips, func(s skip) bool { return s.pkg == name && strings.HasPrefix(ev.Test, s.test+"/") }) {
			r.skips = append(r.skips, skip{name, ev.Test, reason(t.output)})
		}
		if !strings.Contains(ev.Test, "/") {
			p.skipped++
		}
		delete(p.tests, ev.Test)
	case "fail":
		// A subtest's failure is shown as it ends, its parent's after.
		if !strings.Contains(ev.Test, "/") {
			p.failed++
		}
		fmt.Fprintf(r.out, "--- FAIL: %s %s (%.1fs)\n", r.short(name), ev.Test, ev.Elapsed)
		for _, l := range t.output {
			if !strings.HasPrefix(l, "=== RUN") && !strings.HasPrefix(l, "=== PAUSE") && !strings.HasPrefix(l, "=== CONT") && !strings.HasPrefix(strings.TrimSpace(l), "--- FAIL:") {
				fmt.Fprint(r.out, "    ", l)
			}
		}
		delete(p.tests, ev.Test)
	}
}

// reason is what a skipped test said: its log lines, without the
// framing go test adds.
func reason(output []string) string {
	var lines []string
	for _, l := range output {
		l = strings.TrimRight(l, "\n")
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		lines = append(lines, t)
	}
	if len(lines) == 0 {
		return "(no reason given)"
	}
	return strings.Join(lines, " / ")
}

func (r *report) progress() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	var parts []string
	names := make([]string, 0, len(r.pkgs))
	for n := range r.pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := r.pkgs[n]
		var running []string
		waiting := 0
		for tn, t := range p.tests {
			switch {
			case strings.Contains(tn, "/"):
			case t.paused:
				waiting++
			default:
				running = append(running, fmt.Sprintf("%s %s", tn, now.Sub(t.started).Round(time.Second)))
			}
		}
		sort.Strings(running)
		s := fmt.Sprintf("%s (%d done", r.short(n), p.passed+p.failed+p.skipped)
		if waiting > 0 {
			s += fmt.Sprintf(", %d waiting", waiting)
		}
		if len(running) > 0 {
			if len(running) > 3 {
				running = append(running[:3], fmt.Sprintf("%d more", len(running)-3))
			}
			s += "; running " + strings.Join(running, ", ")
		}
		parts = append(parts, s+")")
	}
	if len(parts) == 0 {
		parts = []string{"building"}
	}
	fmt.Fprintf(r.out, "... %s: %s\n", now.Sub(r.start).Round(time.Second), strings.Join(parts, "; "))
}

func (r *report) summary() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.skips) > 0 {
		fmt.Fprintf(r.out, "\nSkipped (%d):\n", len(r.skips))
		for _, s := range r.skips {
			fmt.Fprintf(r.out, "  %s %s: %s\n", r.short(s.pkg), s.test, s.reason)
		}
	}
	verdict := "ok"
	if r.failures > 0 {
		verdict = fmt.Sprintf("FAIL (%d package(s))", r.failures)
	}
	fmt.Fprintf(r.out, "\n%s in %s\n", verdict, time.Since(r.start).Round(time.Second))
}

// modulePath is the module's path with a slash, to shorten package names.
func modulePath() string {
	out, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out)) + "/"
}
