// Package pooltest holds a fake pool backend whose resources are plain
// ints, and checks that tell how many are alive.
package pooltest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Fake creates ints. It counts live resources and the most ever alive at
// once, and can be told to fail creations or health checks, or to hold
// creations in flight until a test lets them finish (Hold, Let, Unhold):
// a test that must see creations overlap holds them, instead of hoping a
// Delay outlasts the scheduler.
type Fake struct {
	mu        sync.Mutex
	next      int
	live      map[int]bool
	maxLive   int
	creating  int
	maxConc   int // most creations in flight at once
	created   int
	destroyed int
	failNext  int           // creations to fail
	unhealthy map[int]bool  // resources whose Check fails
	held      bool          // creations wait for a pass
	passes    int           // held creations allowed to finish
	wake      chan struct{} // closed, and replaced, when held or passes change
	Delay     time.Duration // how long a creation takes
}

// NewFake returns an empty fake.
func NewFake() *Fake {
	return &Fake{live: map[int]bool{}, unhealthy: map[int]bool{}, wake: make(chan struct{})}
}

// ErrCreate is what a failed creation returns.
var ErrCreate = errors.New("fake: cannot create")

// Create makes a new int after Delay, once let through if creations are
// held.
func (f *Fake) Create(ctx context.Context) (int, error) {
	f.mu.Lock()
	f.creating++
	f.maxConc = max(f.maxConc, f.creating)
	fail := f.failNext > 0
	if fail {
		f.failNext--
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.creating--
		f.mu.Unlock()
	}()
	if err := f.pass(ctx); err != nil {
		return 0, err
	}
	select {
	case <-time.After(f.Delay):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if fail {
		return 0, ErrCreate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	f.live[f.next] = true
	f.created++
	f.maxLive = max(f.maxLive, len(f.live))
	return f.next, nil
}

// Destroy forgets v; destroying an unknown or dead int panics.
func (f *Fake) Destroy(v int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.live[v] {
		panic(fmt.Sprintf("fake: destroying %d, which is not alive", v))
	}
	delete(f.live, v)
	f.destroyed++
}

// Check fails for resources marked unhealthy.
func (f *Fake) Check(ctx context.Context, v int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.live[v] {
		return fmt.Errorf("fake: %d is not alive", v)
	}
	if f.unhealthy[v] {
		return fmt.Errorf("fake: %d is unhealthy", v)
	}
	return nil
}

// pass waits, while creations are held, for a pass from Let or for
// Unhold.
func (f *Fake) pass(ctx context.Context) error {
	for {
		f.mu.Lock()
		if !f.held {
			f.mu.Unlock()
			return nil
		}
		if f.passes > 0 {
			f.passes--
			f.mu.Unlock()
			return nil
		}
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// wakeLocked tells waiting creations to look again.
func (f *Fake) wakeLocked() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// Hold makes creations, from now on, stay in flight until Let or Unhold
// lets them finish (or their context ends).
func (f *Fake) Hold() { f.mu.Lock(); f.held, f.passes = true, 0; f.mu.Unlock() }

// Let lets n more held creations finish: any of those in flight, or the
// next ones to start.
func (f *Fake) Let(n int) { f.mu.Lock(); f.passes += n; f.wakeLocked(); f.mu.Unlock() }

// Unhold lets every creation finish, now and from now on.
func (f *Fake) Unhold() { f.mu.Lock(); f.held, f.passes = false, 0; f.wakeLocked(); f.mu.Unlock() }

// Creating returns how many creations are in flight (held ones included).
func (f *Fake) Creating() int { f.mu.Lock(); defer f.mu.Unlock(); return f.creating }

// FailNext makes the next n creations fail.
func (f *Fake) FailNext(n int) { f.mu.Lock(); f.failNext = n; f.mu.Unlock() }

// MarkUnhealthy makes Check fail for v.
func (f *Fake) MarkUnhealthy(v int) { f.mu.Lock(); f.unhealthy[v] = true; f.mu.Unlock() }

// Live returns how many resources are alive.
func (f *Fake) Live() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.live) }

// MaxLive returns the most resources ever alive at once.
func (f *Fake) MaxLive() int { f.mu.Lock(); defer f.mu.Unlock(); return f.maxLive }

// MaxConcurrentCreates returns the most creations ever in flight at once.
func (f *Fake) MaxConcurrentCreates() int { f.mu.Lock(); defer f.mu.Unlock(); return f.maxConc }

// Created returns how many resources were created.
func (f *Fake) Created() int { f.mu.Lock(); defer f.mu.Unlock(); return f.created }
