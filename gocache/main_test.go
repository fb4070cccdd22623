package gocache

import (
	"fmt"
	"os"
	"testing"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
)

// The environment under which the test binary is the cache program
// (TestGoBuild's GOCACHEPROG) instead of running its tests.
const (
	progEnv     = "GOCACHE_TEST_PROG"
	progBaseEnv = "GOCACHE_TEST_BASE"
	progDirEnv  = "GOCACHE_TEST_DIR"
)

func TestMain(m *testing.M) {
	if os.Getenv(progEnv) == "1" {
		c := &Cache{Base: os.Getenv(progBaseEnv), Dir: os.Getenv(progDirEnv)}
		if err := c.Serve(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(testenv.Main(m))
}
