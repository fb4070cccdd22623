package main

// End-to-end tests of the path rules and the run's boundaries under attack
// (issue 11): each reproduces an attack through the binary.

import (
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// TestE2ESignalEndsARunWaitingForInput: SIGTERM or SIGINT while the input
// is still open ends the run with exit 130, its containers gone, instead of
// waiting for the input to close.
func TestE2ESignalEndsARunWaitingForInput(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		for _, sb := range []string{"local", "docker"} {
			t.Run(sig.String()+"/"+sb, func(t *testing.T) {
				var env dockertest.Env
				if sb == "docker" {
					env = dockertest.Require(t)
				}
				dir := repo(t, map[string]string{"a.txt": "A\n"})
				s := startSession(t, dir, "--sandbox", sb)
				s.send("<open a.txt>")
				start := time.Now()
				s.cmd.Process.Signal(sig)
				done := make(chan error, 1)
				go func() { done <- s.cmd.Wait() }()
				var err error
				select {
				case err = <-done:
				case <-time.After(60 * time.Second): // a hang, not a speed check
					t.Fatal("still running 60 s after the signal")
				}
				t.Logf("exited %s after the signal", time.Since(start).Round(time.Millisecond))
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
					t.Fatalf("exit: %v, want %d", err, exitInterrupted)
				}
				var rest []string
				for l := range s.lines {
					rest = append(rest, l)
				}
				if len(rest) < 2 || rest[len(rest)-1] != "=== END ===" {
					t.Fatalf("the output was not finished: %q", rest)
				}
				if sb == "docker" {
					noContainersOf(t, env, s.cmd.Process.Pid, 60*time.Second)
				}
			})
		}
	}
}

var _ = strconv.Itoa
var _ = container.LabelOwnerPID
