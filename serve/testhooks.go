//go:build llmruntime_testhooks

package serve

import (
	"context"
	"strings"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// A build for tests only (go build -tags llmruntime_testhooks; never
// llm-runtime's own builds): an <open> of a path that starts with
// panicPath panics in the session, after the sandbox has read it, as a bug
// would. cmd/llm-runtime's TestE2EServeAPanicEndsItsSessionAlone builds
// the binary so.
func init() { sessionHook = func(sb sandbox.Sandbox) sandbox.Sandbox { return panicking{sb} } }

// panicPath is the path whose <open> panics.
const panicPath = "lrt-test-panic"

type panicking struct{ sandbox.Sandbox }

func (p panicking) Open(ctx context.Context, path string) (*sandbox.File, error) {
	f, err := p.Sandbox.Open(ctx, path)
	if strings.HasPrefix(path, panicPath) {
		panic("a test build's session hook: <open " + path + ">")
	}
	return f, err
}
