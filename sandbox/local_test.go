package sandbox_test

import (
	"context"
	"testing"

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
