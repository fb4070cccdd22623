package paths

import (
	"os"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestOwnFilesAreRealPaths(t *testing.T) {
	t.Parallel()
	o := OwnFiles()
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	for _, p := range o.Paths()[:5] { // all but Client, a thin client's
		if p == "" || RealPath(p) != p {
			t.Fatalf("%q is not a real path: %+v", p, o)
		}
	}
	if !strings.HasSuffix(o.GuestCache, "/llm-runtime/wazero") || !strings.HasSuffix(o.AgentSum, "/llm-runtime/agent-sum") {
		t.Fatalf("%+v", o)
	}
	for _, bad := range []Own{{ConfigDir: "relative/llm-runtime"}, {Binary: "/a/../b"}, {CacheDir: "/a/"}, {Client: "bin/llm-runtime-client"}} {
		if bad.Check() == nil {
			t.Errorf("%+v passes the check", bad)
		}
	}
}
