package pooltest

import (
	"context"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/pool"
)

// Backend is what the conformance test needs of a pool backend.
type Backend[T comparable] struct {
	Create  func(ctx context.Context) (T, error)
	Destroy func(T)
	Check   func(ctx context.Context, v T) error
	// Break makes v fail its checks from now on (for containers: kill it).
	Break func(v T)
	// Live counts the resources that exist in the backend.
	Live func() int
	// Patience bounds every wait, and every Acquire (AcquireTimeout); a
	// real backend is slower than a fake. It only tells a hang from slow
	// progress on a loaded machine, so it is long: a wait that ends early
	// costs nothing of it. Default 1 minute.
	Patience time.Duration
}

// Conformance runs the same pool scenarios over a backend, so the fake
// used by the pool's unit tests cannot drift from the real one.
func Conformance[T comparable](t *testing.T, b Backend[T]) {
	if b.Patience == 0 {
		b.Patience = time.Minute
	}
	eventually := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(b.Patience); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("within %s, never: %s", b.Patience, what)
	}
	newPool := func(t *testing.T, cfg pool.Config[T]) *pool.Pool[T] {
		cfg.Create, cfg.Destroy, cfg.Check = b.Create, b.Destroy, b.Check
		cfg.AcquireTimeout = b.Patience
		// A healthy resource slow to answer on a loaded machine must not
		// count as unhealthy; a broken one still fails well within
		// Patience.
		cfg.CheckTimeout = b.Patience / 4
		p, err := pool.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p.Close()
			eventually(t, "no resource left after Close", func() bool { return b.Live() == 0 })
		})
		return p
	}
	ctx := context.Background()

	t.Run("WarmStartAndReuse", func(t *testing.T) {
		p := newPool(t, pool.Config[T]{MaxSize: 3, MinSize: 2})
		eventually(t, "2 resources started", func() bool { return p.Stat().Idle == 2 && b.Live() == 2 })
		r, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first := r.Value()
		r.Release()
		r, err = p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Value() != first {
			t.Fatal("a released resource was not reused")
		}
		r.Release()
		if s := p.Stat(); s.Created != 2 {
			t.Fatalf("created %d, want 2", s.Created)
		}
	})

	t.Run("RecycleAfterMaxUses", func(t *testing.T) {
		p := newPool(t, pool.Config[T]{MaxSize: 1, MaxUses: 2})
		var seen []T
		for range 4 {
			r, err := p.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, r.Value())
			r.Release()
		}
		if seen[0] != seen[1] || seen[1] == seen[2] || seen[2] != seen[3] {
			t.Fatal("resources were not recycled after 2 uses")
		}
		eventually(t, "the recycled resource gone", func() bool { return b.Live() <= 1 })
	})

	t.Run("BrokenResourceIsReplacedNeverReused", func(t *testing.T) {
		p := newPool(t, pool.Config[T]{MaxSize: 2, MinSize: 1, HealthCheckInterval: 20 * time.Millisecond})
		r, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		broken := r.Value()
		r.Release()
		b.Break(broken)
		eventually(t, "the broken resource found and replaced", func() bool {
			s := p.Stat()
			return s.Unhealthy == 1 && s.Idle == 1
		})
		r, err = p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Value() == broken {
			t.Fatal("a broken resource was handed out")
		}
		if err := b.Check(ctx, r.Value()); err != nil {
			t.Fatalf("the replacement is not healthy: %v", err)
		}
		r.Release()
	})

	t.Run("DestroyedResourceIsGone", func(t *testing.T) {
		p := newPool(t, pool.Config[T]{MaxSize: 1})
		r, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first := r.Value()
		r.Destroy()
		r, err = p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Value() == first {
			t.Fatal("a destroyed resource was handed out")
		}
		r.Release()
	})
}
