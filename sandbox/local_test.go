package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/sandbox"
	"github.com/llm-runtime/llm-runtime/sandbox/sandboxtest"
)

func TestLocalConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T, dir string, limits sandbox.Limits) sandbox.Sandbox {
		sb, err := sandbox.NewLocal(dir, limits)
		if err != nil {
			t.Fatal(err)
		}
		return sb
	})
}

func TestLocalCannotExec(t *testing.T) {
	sb, err := sandbox.NewLocal(t.TempDir(), sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	_, err = sb.Exec(context.Background(), "ls")
	if e := sandbox.AsError(err); e == nil || e.Code != sandbox.CodeExecDisabled {
		t.Fatalf("Exec: %v, want EXEC_DISABLED", err)
	}
}

func TestSearchStopsAtItsTimeoutAndSaysItIsPartial(t *testing.T) {
	dir := t.TempDir()
	for i := range 50 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.txt", i)), []byte("needle\n"), 0o644)
	}
	for _, c := range []struct {
		timeout time.Duration
		partial bool
	}{{time.Nanosecond, true}, {time.Hour, false}, {0, false}} {
		sb, err := sandbox.NewLocal(dir, sandbox.Limits{SearchTimeout: c.timeout})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sb.Search(context.Background(), parser.Query{Text: "needle"})
		sb.Close()
		if err != nil {
			t.Fatal(err)
		}
		if (res.Partial != "") != c.partial || (!c.partial && res.Total != 50) || (c.partial && res.Total == 50) {
			t.Errorf("timeout %s: partial %q, %d matches", c.timeout, res.Partial, res.Total)
		}
		if c.partial && !strings.Contains(res.Partial, "search.timeout (1ns)") {
			t.Errorf("the reason: %q", res.Partial)
		}
	}
}
