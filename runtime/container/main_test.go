package container_test

import (
	"os"
	"testing"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// The tests run in directories of their own, never the user's, and
// remove the images they built.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m, dockertest.Teardown)) }
