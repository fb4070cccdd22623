package serve

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/serve/wire"
)

// TestAVerboseRunOnANewPoolIsAcceptedBeforeItsLogLines: the opening of a
// new pool reports to the run that asked for it (--verbose), on another
// goroutine; none of its lines may reach the client before the run is
// accepted, or the client takes the run for a broken protocol and runs it
// itself. Each run here opens a new pool, verbose.
func TestAVerboseRunOnANewPoolIsAcceptedBeforeItsLogLines(t *testing.T) {
	d, _ := startDaemon(t, t.TempDir())
	for i := range 200 {
		root := t.TempDir()
		os.WriteFile(filepath.Join(root, "a.txt"), []byte("A\n"), 0o644)
		req := localRun(t, root, "")
		req.Verbose = true
		var log lockedBuffer
		r := &wire.Run{Socket: d.Socket(), Build: "test", Request: req, Timeout: time.Minute,
			In: strings.NewReader("<open a.txt>"), Out: io.Discard, Log: &log}
		s, err := r.Start()
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if s.Pool != "new" {
			t.Fatalf("run %d: pool %q, want new", i, s.Pool)
		}
		if _, err := s.Wait(context.Background()); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if !strings.Contains(log.String(), "Repository root: "+root) {
			t.Fatalf("run %d: the pool's opening was not reported to the run that asked for it:\n%s", i, log.String())
		}
	}
}
