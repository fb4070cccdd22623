package audit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// quiet is a Pebble logger that drops everything, for tests that open
// Pebble themselves.
type quiet struct{}

func (quiet) Infof(string, ...any)           {}
func (quiet) Errorf(string, ...any)          {}
func (quiet) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// lockedBuffer is a bytes.Buffer that Pebble's goroutines may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPebblesInformationalLinesShowOnlyWhenDebugging(t *testing.T) {
	for _, debug := range []bool{false, true} {
		var log lockedBuffer
		dir := t.TempDir()
		w, err := OpenWriter(dir, "s", Options{Debug: debug, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Append(sample(1)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := OpenReader(dir, Options{Debug: debug, Log: &log, Wait: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Each(Filter{}, func(*Record) error { return nil }); err != nil {
			t.Fatal(err)
		}
		r.Close()
		got := log.String()
		switch {
		case !debug && got != "":
			t.Errorf("without Debug, Pebble said:\n%s", got)
		case debug && !strings.Contains(got, "pebble: "):
			t.Errorf("with Debug, Pebble said nothing")
		}
		for _, line := range strings.SplitAfter(got, "\n") {
			if line != "" && (!strings.HasPrefix(line, "pebble: ") || !strings.HasSuffix(line, "\n")) {
				t.Errorf("line %q is not one prefixed line", line)
			}
		}
	}
}

// TestPebblesErrorsShowWhenVerbose: a damaged table is an error that
// names it, quiet or not; Pebble's own error lines (with its stack of
// where it found the damage) show only when Verbose (llm-runtime -v).
func TestPebblesErrorsShowWhenVerbose(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "old", sample(1), sample(2))
	read(t, dir, Filter{})
	flipByte(t, flushMain(t, dir)[0], 40)
	for _, verbose := range []bool{false, true} {
		var log lockedBuffer
		r, err := OpenReader(dir, Options{Verbose: verbose, Log: &log, Wait: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Each(Filter{}, func(*Record) error { return nil }); !errors.Is(err, ErrDamaged) {
			t.Fatalf("read of a damaged table: %v", err)
		}
		r.Close()
		got := log.String()
		switch {
		case !verbose && got != "":
			t.Errorf("quiet, Pebble said:\n%s", got)
		case verbose && (!strings.HasPrefix(got, "pebble: ") || !strings.Contains(got, "checksum")):
			t.Errorf("Pebble's error, verbose:\n%q", got)
		}
	}
}

func TestPebblesFatalErrorIsWrittenThenRaised(t *testing.T) {
	var log lockedBuffer
	l := Options{Log: &log}.pebble(false).Logger
	defer func() {
		if p := recover(); p != "pebble: it broke: 3" || log.String() != "pebble: it broke: 3\n" {
			t.Fatalf("panic %v, log %q", p, log.String())
		}
	}()
	l.Fatalf("it broke: %d", 3)
}
