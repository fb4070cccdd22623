package container_test

import (
	"context"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// BenchmarkPing is one round trip to a resident agent: the transport's
// floor, under every pooled operation.
func BenchmarkPing(b *testing.B) {
	env := dockertest.Require(b)
	c, err := env.Docker.Start(context.Background(), container.Spec{Image: env.Image, Workspace: b.TempDir(), Labels: env.Labels})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Destroy()
	var d []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := c.Ping(context.Background()); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	percentiles(b, d)
}
