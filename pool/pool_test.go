package pool_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/pool"
	"github.com/llm-runtime/llm-runtime/pool/pooltest"
)

func newPool(t *testing.T, f *pooltest.Fake, cfg pool.Config[int]) *pool.Pool[int] {
	t.Helper()
	cfg.Create, cfg.Destroy, cfg.Check = f.Create, f.Destroy, f.Check
	p, err := pool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		if n := f.Live(); n != 0 {
			t.Errorf("%d resources alive after Close", n)
		}
	})
	return p
}

// patience bounds every wait for the pool's background work. It only
// tells a hang from slow progress on a loaded machine, so it is long: a
// condition met early costs nothing of it.
const patience = time.Minute

// eventually polls cond for up to patience: pool work happens in the
// background.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("within %s, never: %s", patience, what)
}

// mustAcquire acquires a resource, and releases it when the test ends if
// the test has not (so that a failing test is not also reported as
// leaking what it held).
func mustAcquire(t *testing.T, p *pool.Pool[int]) *pool.Resource[int] {
	t.Helper()
	r, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Release) // ignored once released or destroyed
	return r
}

// acquireAsync starts an Acquire in the background; the function it
// returns waits (up to patience) for its result.
func acquireAsync(t *testing.T, p *pool.Pool[int]) func() (*pool.Resource[int], error) {
	t.Helper()
	type result struct {
		r   *pool.Resource[int]
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := p.Acquire(context.Background())
		done <- result{r, err}
	}()
	return func() (*pool.Resource[int], error) {
		t.Helper()
		select {
		case res := <-done:
			if res.r != nil {
				t.Cleanup(res.r.Release)
			}
			return res.r, res.err
		case <-time.After(patience):
			t.Fatalf("Acquire still waiting after %s", patience)
			return nil, nil
		}
	}
}

func TestPoolNewRejectsBadConfig(t *testing.T) {
	f := pooltest.NewFake()
	for _, cfg := range []pool.Config[int]{
		{},
		{Create: f.Create, Destroy: f.Destroy, MaxSize: 2, MinSize: 3},
		{Create: f.Create, Destroy: f.Destroy, MaxSize: -1},
		{Create: f.Create, Destroy: f.Destroy, MaxUses: -1},
		{Create: f.Create, Destroy: f.Destroy, SpareDelay: -time.Second},
	} {
		if _, err := pool.New(cfg); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
}

func TestPoolStartsOneThenTheRestOfMinSizeInParallel(t *testing.T) {
	f := pooltest.NewFake()
	// Creations stay in flight until let through, so that they overlap
	// however late the scheduler runs them.
	f.Hold()
	p := newPool(t, f, pool.Config[int]{MaxSize: 5, MinSize: 4})
	if s := p.Stat(); s.Creating != 1 {
		t.Fatalf("%d creations at start, want 1", s.Creating)
	}
	wait := acquireAsync(t, p)
	eventually(t, "the first Acquire waiting", func() bool { return p.Stat().Waiting == 1 })
	if s := p.Stat(); s.Creating != 1 {
		t.Fatalf("%d creations with the first Acquire waiting, want 1: it must not start another", s.Creating)
	}
	f.Let(1)
	r, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	r.Release()
	eventually(t, "the other 3 started together", func() bool { return f.Creating() == 3 })
	if s := p.Stat(); f.Created() != 1 || s.Creating != 3 {
		t.Fatalf("created %d, %d creating; want 1 and 3", f.Created(), s.Creating)
	}
	f.Unhold()
	eventually(t, "4 idle", func() bool { return p.Stat().Idle == 4 })
	if n := f.MaxConcurrentCreates(); n != 3 {
		t.Fatalf("at most %d creations at once, want 3", n)
	}
	if f.Created() != 4 {
		t.Fatalf("created %d, want 4: the first Acquire must not start another", f.Created())
	}
}

func TestPoolCreatesSparesOnlyAfterSpareDelay(t *testing.T) {
	f := pooltest.NewFake()
	p := newPool(t, f, pool.Config[int]{MaxSize: 5, MinSize: 3, SpareDelay: time.Hour})
	for range 20 {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	if s := p.Stat(); f.Created() != 1 || s.Total != 1 {
		t.Fatalf("created %d, %d in the pool before SpareDelay passed; want 1 and 1", f.Created(), s.Total)
	}
	// Concurrent demand still gets resources at once.
	r1, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r1.Release()
	r2.Release()
	if f.Created() != 2 {
		t.Fatalf("created %d, want 2", f.Created())
	}

	f2 := pooltest.NewFake()
	f2.Hold() // the spares stay in flight until let through: they must overlap
	p2 := newPool(t, f2, pool.Config[int]{MaxSize: 5, MinSize: 3, SpareDelay: 20 * time.Millisecond})
	f2.Let(1)
	r, err := p2.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.Release()
	eventually(t, "the 2 spares started together once SpareDelay passed", func() bool { return f2.Creating() == 2 })
	f2.Unhold()
	eventually(t, "3 idle once SpareDelay passed", func() bool { return p2.Stat().Idle == 3 })
	if n := f2.MaxConcurrentCreates(); n != 2 {
		t.Fatalf("at most %d creations at once, want the 2 spares together", n)
	}
}

func TestPoolReusesReleasedResources(t *testing.T) {
	f := pooltest.NewFake()
	p := newPool(t, f, pool.Config[int]{MaxSize: 2})
	for i := range 10 {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r.Value() != 1 || r.Uses() != i {
			t.Fatalf("use %d: got resource %d with %d uses", i, r.Value(), r.Uses())
		}
		r.Release()
	}
	if s := p.Stat(); s.Created != 1 || s.Reused != 9 || s.Acquired != 10 {
		t.Fatalf("stat %+v", s)
	}
}

func TestPoolAcquireReturnsErrExhaustedWhenFullAndBusy(t *testing.T) {
	f := pooltest.NewFake()
	// MinSize 2, and both idle before the first Acquire: no Acquire here
	// waits for a creation under the short AcquireTimeout; only the one
	// meant to time out waits at all.
	p := newPool(t, f, pool.Config[int]{MaxSize: 2, MinSize: 2, AcquireTimeout: 20 * time.Millisecond})
	eventually(t, "2 idle", func() bool { return p.Stat().Idle == 2 })
	a := mustAcquire(t, p)
	b := mustAcquire(t, p)
	_, err := p.Acquire(context.Background())
	if !errors.Is(err, pool.ErrExhausted) || err.Error() != "pool exhausted: timeout waiting for available container" {
		t.Fatalf("got %v", err)
	}
	if s := p.Stat(); s.Exhausted != 1 || s.Waiting != 0 || s.Total != 2 || f.MaxLive() != 2 {
		t.Fatalf("stat %+v, max live %d", s, f.MaxLive())
	}
	// The waiter that gave up left nothing behind: a released resource
	// goes to the next Acquire, not to it.
	a.Release()
	c := mustAcquire(t, p)
	if c.Value() != a.Value() {
		t.Fatalf("after the release got %d, want %d", c.Value(), a.Value())
	}
	c.Release()
	b.Release()

	// A waiter is served by a release. The release comes once the waiter
	// is seen waiting, so nothing races the timeout, which only bounds a
	// hang here.
	f2 := pooltest.NewFake()
	p2 := newPool(t, f2, pool.Config[int]{MaxSize: 2, MinSize: 2, AcquireTimeout: patience})
	eventually(t, "2 idle", func() bool { return p2.Stat().Idle == 2 })
	a2 := mustAcquire(t, p2)
	b2 := mustAcquire(t, p2)
	wait := acquireAsync(t, p2)
	eventually(t, "a waiter", func() bool { return p2.Stat().Waiting == 1 })
	a2.Release()
	c2, err := wait()
	if err != nil || c2.Value() != a2.Value() {
		t.Fatalf("after release: %v", err)
	}
	c2.Release()
	b2.Release()
}

func TestPoolAcquireHonoursContextCancellation(t *testing.T) {
	f := pooltest.NewFake()
	p := newPool(t, f, pool.Config[int]{MaxSize: 1})
	a, _ := p.Acquire(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	a.Release()
	if s := p.Stat(); s.InUse != 0 || s.Waiting != 0 || s.Idle != 1 {
		t.Fatalf("stat %+v", s)
	}
}

func TestPoolRecyclesAfterMaxUses(t *testing.T) {
	f := pooltest.NewFake()
	var recycled atomic.Int32
	p := newPool(t, f, pool.Config[int]{MaxSize: 1, MinSize: 1, MaxUses: 3, OnEvent: func(e pool.Event[int]) {
		if e.Kind == pool.EventRecycled {
			recycled.Add(1)
		}
	}})
	seen := map[int]int{}
	for range 9 {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		seen[r.Value()]++
		r.Release()
	}
	if len(seen) != 3 || seen[1] != 3 || seen[2] != 3 || seen[3] != 3 || recycled.Load() != 3 {
		t.Fatalf("uses per resource %v, recycled %d", seen, recycled.Load())
	}
	// The pool keeps MinSize: a fresh replacement is started.
	eventually(t, "a replacement", func() bool { return p.Stat().Idle == 1 })
}

func TestPoolReapsIdleResourcesDownToMinSize(t *testing.T) {
	f := pooltest.NewFake()
	p := newPool(t, f, pool.Config[int]{MaxSize: 4, MinSize: 1, IdleTimeout: 20 * time.Millisecond})
	var rs []*pool.Resource[int]
	for range 4 {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	for _, r := range rs {
		r.Release()
	}
	eventually(t, "reaped to 1", func() bool { s := p.Stat(); return s.Total == 1 && s.Reaped == 3 })
	if f.Live() != 1 {
		t.Fatalf("%d alive", f.Live())
	}
}

func TestPoolDestroysResourcesThatFailHealthChecks(t *testing.T) {
	f := pooltest.NewFake()
	p := newPool(t, f, pool.Config[int]{MaxSize: 2, MinSize: 2, HealthCheckInterval: 5 * time.Millisecond})
	eventually(t, "2 idle", func() bool { return p.Stat().Idle == 2 })
	f.MarkUnhealthy(1)
	eventually(t, "1 destroyed and replaced", func() bool { s := p.Stat(); return s.Unhealthy == 1 && s.Idle == 2 })
	for range 20 {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r.Value() == 1 {
			t.Fatal("an unhealthy resource was handed out")
		}
		r.Release()
	}
}

func TestPoolNeverHandsOutADestroyedResource(t *testing.T) {
	f := pooltest.NewFake()
	p := newPool(t, f, pool.Config[int]{MaxSize: 1})
	r, _ := p.Acquire(context.Background())
	first := r.Value()
	r.Destroy()
	r.Release() // a second call is ignored
	r2, err := p.Acquire(context.Background())
	if err != nil || r2.Value() == first {
		t.Fatalf("got %d, %v", r2.Value(), err)
	}
	r2.Release()
}

func TestPoolAcquireReportsCreateErrors(t *testing.T) {
	f := pooltest.NewFake()
	f.FailNext(1)
	p := newPool(t, f, pool.Config[int]{MaxSize: 2})
	if _, err := p.Acquire(context.Background()); !errors.Is(err, pooltest.ErrCreate) {
		t.Fatalf("got %v", err)
	}
	r, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatalf("after the failure: %v", err)
	}
	r.Release()
}

func TestPoolAcquireReturnsErrClosedAfterClose(t *testing.T) {
	f := pooltest.NewFake()
	p := newPool(t, f, pool.Config[int]{MaxSize: 1, MinSize: 1})
	held, _ := p.Acquire(context.Background())
	waiting := make(chan error)
	go func() { _, err := p.Acquire(context.Background()); waiting <- err }()
	eventually(t, "a waiter", func() bool { return p.Stat().Waiting == 1 })
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	if err := <-waiting; !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("waiter got %v", err)
	}
	<-done
	if _, err := p.Acquire(context.Background()); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("got %v", err)
	}
	held.Release() // destroyed, since the pool is closed
	eventually(t, "all destroyed", func() bool { return f.Live() == 0 })
}

// TestPoolHammer runs many goroutines acquiring, releasing and destroying at
// random while the pool reaps and checks, and checks that no resource is
// ever held twice and the pool never exceeds MaxSize.
func TestPoolHammer(t *testing.T) {
	f := pooltest.NewFake()
	f.Delay = 100 * time.Microsecond
	p := newPool(t, f, pool.Config[int]{MaxSize: 4, MinSize: 2, MaxUses: 7, IdleTimeout: 2 * time.Millisecond,
		HealthCheckInterval: time.Millisecond, AcquireTimeout: 50 * time.Millisecond})
	var held sync.Map
	var ops, exhausted atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			// On a loaded machine every Acquire of a short run may time
			// out: go on (up to patience) until one succeeded, so that
			// ops > 0 below tests the pool, not the scheduler.
			deadline := time.Now().Add(patience)
			for i := 0; i < 300 || (ops.Load() == 0 && time.Now().Before(deadline)); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(20))*time.Millisecond)
				r, err := p.Acquire(ctx)
				cancel()
				if err != nil {
					if errors.Is(err, pool.ErrExhausted) {
						exhausted.Add(1)
					}
					continue
				}
				if _, dup := held.LoadOrStore(r.Value(), true); dup {
					t.Errorf("resource %d held twice", r.Value())
				}
				if rng.IntN(10) == 0 {
					time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
				}
				held.Delete(r.Value())
				if rng.IntN(20) == 0 {
					r.Destroy()
				} else {
					r.Release()
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	if f.MaxLive() > 4 {
		t.Fatalf("%d resources alive at once, MaxSize 4", f.MaxLive())
	}
	// A health check in progress holds idle resources for a moment.
	eventually(t, "nothing in use", func() bool { s := p.Stat(); return s.InUse == 0 && s.Waiting == 0 })
	if ops.Load() == 0 {
		t.Fatal("no operation succeeded")
	}
	t.Logf("%d operations, %d exhausted; %+v", ops.Load(), exhausted.Load(), p.Stat())
}

func TestPoolConformanceWithTheFake(t *testing.T) {
	f := pooltest.NewFake()
	pooltest.Conformance(t, pooltest.Backend[int]{
		Create: f.Create, Destroy: f.Destroy, Check: f.Check,
		Break: f.MarkUnhealthy, Live: f.Live,
	})
}

// BenchmarkAcquireWarm measures checking out and returning an idle
// resource: the pool's own overhead per operation.
func BenchmarkAcquireWarm(b *testing.B) {
	f := pooltest.NewFake()
	p, err := pool.New(pool.Config[int]{Create: f.Create, Destroy: f.Destroy, MaxSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	r, _ := p.Acquire(ctx)
	r.Release()
	for b.Loop() {
		r, err := p.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		r.Release()
	}
}
