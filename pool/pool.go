// Package pool is a generic pool of expensive resources (containers, in
// llm-runtime), in the spirit of puddle and pgxpool: [Pool.Acquire] hands
// out a [Resource], which is given back with [Resource.Release] or thrown
// away with [Resource.Destroy].
//
// The pool knows nothing of what it pools. It creates resources with
// Config.Create, throws them away with Config.Destroy and checks idle ones
// with Config.Check, and it:
//
//   - starts one resource at once and the rest of Config.MinSize (the
//     spares) in parallel once it has been ready for Config.SpareDelay:
//     the first Acquire gets the first resource without waiting on the
//     others, which on a small machine would slow it down (two container
//     starts at once on two cores take ~390 ms each, one alone ~230 ms),
//     and a short-lived pool never creates, nor waits at Close for,
//     spares it would not have used;
//   - never holds more than Config.MaxSize resources (idle, in use, being
//     created and being destroyed together);
//   - recycles a resource after Config.MaxUses uses;
//   - reaps resources idle longer than Config.IdleTimeout, down to MinSize;
//   - checks idle resources every Config.HealthCheckInterval, destroying
//     those that fail; a destroyed resource is never handed out again, and
//     the pool creates replacements to stay at MinSize;
//   - fails an Acquire that waited Config.AcquireTimeout with ErrExhausted.
//
// All methods are safe for concurrent use.
package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Sentinel errors.
var (
	// ErrClosed is returned by Acquire after Close.
	ErrClosed = errors.New("pool: closed")
	// ErrExhausted is returned by Acquire when every resource stayed busy
	// for Config.AcquireTimeout. Its text is the one the pooling guide
	// tells users to look for.
	ErrExhausted = errors.New("pool exhausted: timeout waiting for available container")
)

// Config configures a Pool. Create and Destroy are required.
type Config[T any] struct {
	// Create makes a new resource. The context is cancelled when the pool
	// closes. Required.
	Create func(ctx context.Context) (T, error)
	// Destroy releases a resource for good. It runs in its own goroutine;
	// Close waits for it. Required.
	Destroy func(T)
	// Check tells whether an idle resource is still healthy; nil means
	// always. It gets a context with a deadline of CheckTimeout.
	Check func(ctx context.Context, v T) error

	// MaxSize is the most resources at once. Default 5.
	MaxSize int
	// MinSize is how many resources are created at start and kept through
	// reaping and recycling. Default 0; at most MaxSize.
	MinSize int
	// SpareDelay is how long the first resource must have been ready
	// before the rest of MinSize is created; 0 means as soon as it is
	// ready. Until then the pool keeps one resource, and creates more
	// only for waiting Acquire calls.
	SpareDelay time.Duration
	// MaxUses recycles a resource after this many Release calls; 0 means
	// never.
	MaxUses int
	// IdleTimeout destroys resources idle this long, down to MinSize; 0
	// means never.
	IdleTimeout time.Duration
	// HealthCheckInterval is how often idle resources are checked; 0 means
	// never.
	HealthCheckInterval time.Duration
	// CheckTimeout bounds one Check. Default 5s.
	CheckTimeout time.Duration
	// AcquireTimeout bounds how long Acquire waits for a resource when the
	// pool is full and busy, or a new one is being created; 0 means only
	// the caller's context bounds it.
	AcquireTimeout time.Duration
	// OnEvent, if set, is told of each event in the pool's life. It must
	// not block or call back into the pool.
	OnEvent func(Event[T])
}

// EventKind names what happened to a resource.
type EventKind string

// Events.
const (
	EventCreated      EventKind = "created"
	EventCreateFailed EventKind = "create failed"
	EventFirstUse     EventKind = "first use" // handed out for the first time
	EventReused       EventKind = "reused"    // handed out again
	EventRecycled     EventKind = "recycled"  // destroyed after MaxUses
	EventReaped       EventKind = "reaped"    // destroyed after IdleTimeout
	EventUnhealthy    EventKind = "unhealthy" // failed a check; destroyed
	EventDestroyed    EventKind = "destroyed" // by Resource.Destroy
	EventClosed       EventKind = "closed"    // destroyed by Close
)

// Event is one event; Err is set for EventCreateFailed and EventUnhealthy.
// Stats are the pool's as the event leaves it: after EventCreated the new
// resource counts as idle (it is ready), after EventFirstUse and
// EventReused as in use, and a destroyed one counts as being destroyed
// until Destroy returns.
type Event[T any] struct {
	Kind  EventKind
	Value T      // the resource (the zero value for EventCreateFailed)
	ID    uint64 // the resource's serial number, from 1
	Uses  int    // how many times it was released before
	Err   error
	Took  time.Duration // for EventCreated: how long Create took
	Stats Stat
}

// Stat is a snapshot of the pool.
type Stat struct {
	Total        int // idle + in use + being created + being destroyed
	Idle         int
	InUse        int
	Creating     int
	Destroying   int
	Waiting      int // Acquire calls waiting
	Created      uint64
	Destroyed    uint64
	Acquired     uint64
	Reused       uint64 // acquisitions served by an idle resource at once
	Recycled     uint64
	Reaped       uint64
	Unhealthy    uint64
	Exhausted    uint64        // Acquire calls that failed with ErrExhausted
	AcquireWait  time.Duration // total time Acquire calls spent waiting
	CreateFailed uint64
}

type item[T any] struct {
	id       uint64
	val      T
	uses     int
	lastUsed time.Time
}

type result[T any] struct {
	it  *item[T]
	err error
}

// Pool is a pool of resources of type T.
type Pool[T any] struct {
	cfg Config[T]

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	bg     sync.WaitGroup // creators, destroyers and the maintenance loop

	mu         sync.Mutex
	closed     bool
	idle       []*item[T] // most recently used last
	inUse      int
	creating   int
	destroying int // still count toward MaxSize until Destroy returns
	waiters    []chan result[T]
	nextID     uint64
	stat       Stat
	spares     bool        // the rest of MinSize may be created
	spareTimer *time.Timer // set when the first resource is ready
}

// New validates cfg, starts creating the MinSize resources in the
// background and returns the pool at once.
func New[T any](cfg Config[T]) (*Pool[T], error) {
	if cfg.Create == nil || cfg.Destroy == nil {
		return nil, errors.New("pool: Config.Create and Config.Destroy are required")
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 5
	}
	if cfg.MaxSize < 1 || cfg.MinSize < 0 || cfg.MinSize > cfg.MaxSize {
		return nil, fmt.Errorf("pool: want 0 <= MinSize (%d) <= MaxSize (%d), MaxSize >= 1", cfg.MinSize, cfg.MaxSize)
	}
	if cfg.MaxUses < 0 || cfg.IdleTimeout < 0 || cfg.HealthCheckInterval < 0 || cfg.AcquireTimeout < 0 || cfg.SpareDelay < 0 {
		return nil, errors.New("pool: negative MaxUses, IdleTimeout, HealthCheckInterval, AcquireTimeout or SpareDelay")
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 5 * time.Second
	}
	p := &Pool[T]{cfg: cfg}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.mu.Lock()
	p.growLocked() // one; the spares once it has been ready for SpareDelay
	p.mu.Unlock()
	if cfg.IdleTimeout > 0 || cfg.HealthCheckInterval > 0 {
		p.bg.Add(1)
		go p.maintain()
	}
	return p, nil
}

// Resource is a resource checked out of the pool. Exactly one of Release
// or Destroy must be called, once.
type Resource[T any] struct {
	p    *Pool[T]
	it   *item[T]
	once sync.Once
}

// Value returns the resource.
func (r *Resource[T]) Value() T { return r.it.val }

// ID returns the resource's serial number.
func (r *Resource[T]) ID() uint64 { return r.it.id }

// Uses returns how many times the resource was released before this use.
func (r *Resource[T]) Uses() int { return r.it.uses }

// Release gives the resource back for reuse, or recycles it if it reached
// MaxUses.
func (r *Resource[T]) Release() { r.once.Do(func() { r.p.release(r.it) }) }

// Destroy throws the resource away: it failed, or must not be reused. The
// pool creates a replacement if it needs one.
func (r *Resource[T]) Destroy() { r.once.Do(func() { r.p.destroyInUse(r.it, EventDestroyed) }) }

// Acquire returns an idle resource, or waits for one to be created or
// released. It fails with ErrClosed once the pool is closed, with
// ErrExhausted after Config.AcquireTimeout, with the error of Create when
// the resource created for it could not be made, and with ctx.Err() when
// ctx is done first; in every failure case nothing is checked out.
func (p *Pool[T]) Acquire(ctx context.Context) (*Resource[T], error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	p.stat.Acquired++
	if n := len(p.idle); n > 0 {
		it := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.inUse++
		p.stat.Reused++
		p.emitLocked(useKind(it), it, nil, 0)
		p.mu.Unlock()
		return &Resource[T]{p: p, it: it}, nil
	}
	w := make(chan result[T], 1)
	p.waiters = append(p.waiters, w)
	p.startLocked(0) // a creation for every waiter; MinSize follows creations
	p.mu.Unlock()

	start := time.Now()
	var timeout <-chan time.Time
	if p.cfg.AcquireTimeout > 0 {
		t := time.NewTimer(p.cfg.AcquireTimeout)
		defer t.Stop()
		timeout = t.C
	}
	var err error
	select {
	case res := <-w:
		p.addWait(time.Since(start))
		if res.err != nil {
			return nil, res.err
		}
		return &Resource[T]{p: p, it: res.it}, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = ErrExhausted
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stat.AcquireWait += time.Since(start)
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			if err == ErrExhausted {
				p.stat.Exhausted++
			}
			return nil, err
		}
	}
	// A resource was handed to us as we gave up: take it back.
	if res := <-w; res.it != nil {
		p.inUse--
		p.putLocked(res.it)
	}
	return nil, err
}

func (p *Pool[T]) addWait(d time.Duration) {
	p.mu.Lock()
	p.stat.AcquireWait += d
	p.mu.Unlock()
}

// Stat returns a snapshot of the pool.
func (p *Pool[T]) Stat() Stat {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.statLocked()
}

func (p *Pool[T]) statLocked() Stat {
	s := p.stat
	s.Idle, s.InUse, s.Creating, s.Destroying, s.Waiting = len(p.idle), p.inUse, p.creating, p.destroying, len(p.waiters)
	s.Total = s.Idle + s.InUse + s.Creating + s.Destroying
	return s
}

// Close fails waiting and later Acquire calls with ErrClosed, destroys idle
// resources, cancels creations, and waits until every resource not in use
// is destroyed. Resources in use are destroyed when they are released.
func (p *Pool[T]) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.bg.Wait()
		return
	}
	p.closed = true
	if p.spareTimer != nil {
		p.spareTimer.Stop()
	}
	for _, w := range p.waiters {
		w <- result[T]{err: ErrClosed}
	}
	p.waiters = nil
	idle := p.idle
	p.idle = nil
	for _, it := range idle {
		p.destroyLocked(it, EventClosed, nil)
	}
	p.mu.Unlock()
	p.cancel()
	p.bg.Wait()
}

// growLocked starts creations so that every waiter has a resource coming
// and the pool holds at least MinSize (one, until spares are allowed),
// within MaxSize.
func (p *Pool[T]) growLocked() {
	if p.spares {
		p.startLocked(p.cfg.MinSize)
	} else {
		p.startLocked(min(1, p.cfg.MinSize))
	}
}

// allowSparesLocked lets growLocked create the rest of MinSize, at once
// or after SpareDelay; it is called when a resource is ready.
func (p *Pool[T]) allowSparesLocked() {
	switch {
	case p.spares || p.spareTimer != nil:
	case p.cfg.SpareDelay == 0:
		p.spares = true
	default:
		p.spareTimer = time.AfterFunc(p.cfg.SpareDelay, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.spares = true
			p.growLocked()
		})
	}
}

// startLocked starts creations so that every waiter has a resource coming
// and the pool holds at least min, within MaxSize.
func (p *Pool[T]) startLocked(min int) {
	if p.closed {
		return
	}
	for {
		total := len(p.idle) + p.inUse + p.creating + p.destroying
		if total >= p.cfg.MaxSize || (p.creating >= len(p.waiters) && total >= min) {
			return
		}
		p.creating++
		p.nextID++
		id := p.nextID
		p.bg.Add(1)
		go p.create(id)
	}
}

func (p *Pool[T]) create(id uint64) {
	defer p.bg.Done()
	start := time.Now()
	v, err := p.cfg.Create(p.ctx)
	took := time.Since(start)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.creating--
	if err != nil && p.closed {
		return // cancelled by Close: not a failure
	}
	if err != nil {
		p.stat.CreateFailed++
		p.emitLocked(EventCreateFailed, &item[T]{id: id}, err, took)
		// The first waiter without a creation coming hears why, and one
		// new attempt is made for each waiter still short of one. Nothing
		// is retried for MinSize alone, so a broken backend cannot spin.
		if len(p.waiters) > p.creating {
			w := p.waiters[0]
			p.waiters = p.waiters[1:]
			w <- result[T]{err: fmt.Errorf("pool: creating a resource: %w", err)}
		}
		p.startLocked(0)
		return
	}
	it := &item[T]{id: id, val: v, lastUsed: time.Now()}
	p.stat.Created++
	if p.closed {
		p.destroyLocked(it, EventClosed, nil)
		return
	}
	// Ready: idle for the event, then handed to a waiter if one waits.
	p.idle = append(p.idle, it)
	p.emitLocked(EventCreated, it, nil, took)
	p.idle = p.idle[:len(p.idle)-1]
	p.putLocked(it)
	p.allowSparesLocked()
	p.growLocked()
}

// putLocked gives an available resource to the first waiter, or makes it
// idle.
func (p *Pool[T]) putLocked(it *item[T]) {
	if p.closed {
		p.destroyLocked(it, EventClosed, nil)
		return
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.inUse++
		p.emitLocked(useKind(it), it, nil, 0)
		w <- result[T]{it: it}
		return
	}
	it.lastUsed = time.Now()
	p.idle = append(p.idle, it)
}

func (p *Pool[T]) release(it *item[T]) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse--
	it.uses++
	if p.cfg.MaxUses > 0 && it.uses >= p.cfg.MaxUses {
		p.stat.Recycled++
		p.destroyLocked(it, EventRecycled, nil)
		p.growLocked()
		return
	}
	p.putLocked(it)
}

func (p *Pool[T]) destroyInUse(it *item[T], why EventKind) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse--
	p.destroyLocked(it, why, nil)
	p.growLocked()
}

// destroyLocked destroys it in the background; the caller has already
// removed it from the pool's accounting.
func (p *Pool[T]) destroyLocked(it *item[T], why EventKind, err error) {
	p.stat.Destroyed++
	p.destroying++
	p.emitLocked(why, it, err, 0)
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		p.cfg.Destroy(it.val)
		p.mu.Lock()
		p.destroying--
		p.growLocked() // room for a waiter or for MinSize
		p.mu.Unlock()
	}()
}

// useKind is the event of handing it out.
func useKind[T any](it *item[T]) EventKind {
	if it.uses == 0 {
		return EventFirstUse
	}
	return EventReused
}

func (p *Pool[T]) emitLocked(kind EventKind, it *item[T], err error, took time.Duration) {
	if p.cfg.OnEvent != nil {
		p.cfg.OnEvent(Event[T]{Kind: kind, Value: it.val, ID: it.id, Uses: it.uses, Err: err, Took: took, Stats: p.statLocked()})
	}
}

// maintain reaps idle resources and runs health checks until Close.
func (p *Pool[T]) maintain() {
	defer p.bg.Done()
	var reap, check <-chan time.Time
	if d := p.cfg.IdleTimeout; d > 0 {
		t := time.NewTicker(max(d/4, time.Millisecond))
		defer t.Stop()
		reap = t.C
	}
	if d := p.cfg.HealthCheckInterval; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		check = t.C
	}
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-reap:
			p.reapIdle()
		case <-check:
			p.checkIdle()
		}
	}
}

func (p *Pool[T]) reapIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	cutoff := time.Now().Add(-p.cfg.IdleTimeout)
	keep := p.idle[:0]
	total := len(p.idle) + p.inUse + p.creating
	// The least recently used are first.
	for _, it := range p.idle {
		if it.lastUsed.Before(cutoff) && total > p.cfg.MinSize {
			p.stat.Reaped++
			p.destroyLocked(it, EventReaped, nil)
			total--
			continue
		}
		keep = append(keep, it)
	}
	clear(p.idle[len(keep):])
	p.idle = keep
}

// checkIdle takes the idle resources out, checks them in parallel, and
// puts the healthy ones back; while checked they count as in use.
func (p *Pool[T]) checkIdle() {
	if p.cfg.Check == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	batch := p.idle
	p.idle = nil
	p.inUse += len(batch)
	p.mu.Unlock()

	var wg sync.WaitGroup
	errs := make([]error, len(batch))
	for i, it := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(p.ctx, p.cfg.CheckTimeout)
			defer cancel()
			errs[i] = p.cfg.Check(ctx, it.val)
		}()
	}
	wg.Wait()

	p.mu.Lock()
	defer p.mu.Unlock()
	for i, it := range batch {
		p.inUse--
		if errs[i] != nil {
			p.stat.Unhealthy++
			p.destroyLocked(it, EventUnhealthy, errs[i])
			continue
		}
		lastUsed := it.lastUsed // a check is not a use: keep the idle clock
		p.putLocked(it)
		it.lastUsed = lastUsed
	}
	p.growLocked()
}
