package whitelist

import (
	"os"
	"testing"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
)

// The tests run in directories of their own, never the user's.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
