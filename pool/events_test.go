package pool_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/llm-runtime/llm-runtime/pool"
	"github.com/llm-runtime/llm-runtime/pool/pooltest"
)

// eventLog records a pool's events as "kind #id uses=N (idle, in use,
// total)", the counts as each event left them.
type eventLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *eventLog) on(e pool.Event[int]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf("%s #%d uses=%d (%d idle, %d in use, %d total)", e.Kind, e.ID, e.Uses, e.Stats.Idle, e.Stats.InUse, e.Stats.Total))
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *eventLog) len() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.lines) }

func TestPoolEventsCountTheResourceTheyAreAbout(t *testing.T) {
	f := pooltest.NewFake()
	var log eventLog
	p := newPool(t, f, pool.Config[int]{MaxSize: 2, OnEvent: log.on})
	ctx := context.Background()

	// Created for a waiting Acquire: ready (idle) as it is created, then
	// handed out for the first time.
	a, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Release()
	// From idle: a reuse, with the uses before it.
	a, err = p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A second one while the first is held.
	b, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A waiter served by a release: a reuse too.
	got := make(chan *pool.Resource[int])
	go func() {
		r, err := p.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	eventually(t, "a waiter", func() bool { return p.Stat().Waiting == 1 })
	b.Release()
	c := <-got
	c.Release()
	a.Release()

	want := strings.Join([]string{
		"created #1 uses=0 (1 idle, 0 in use, 1 total)",
		"first use #1 uses=0 (0 idle, 1 in use, 1 total)",
		"reused #1 uses=1 (0 idle, 1 in use, 1 total)",
		"created #2 uses=0 (1 idle, 1 in use, 2 total)",
		"first use #2 uses=0 (0 idle, 2 in use, 2 total)",
		"reused #2 uses=1 (0 idle, 2 in use, 2 total)",
	}, "\n")
	if log.String() != want {
		t.Fatalf("events:\n%s\nwant:\n%s", log.String(), want)
	}
}

func TestPoolEventsCallAWarmStartedResourcesFirstUseAFirstUse(t *testing.T) {
	f := pooltest.NewFake()
	var log eventLog
	p := newPool(t, f, pool.Config[int]{MaxSize: 2, MinSize: 1, MaxUses: 2, OnEvent: log.on})
	eventually(t, "one ready", func() bool { return p.Stat().Idle == 1 })
	for range 2 {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	// The recycled one is replaced, to keep MinSize.
	eventually(t, "the replacement ready", func() bool { return log.len() == 5 })
	want := strings.Join([]string{
		"created #1 uses=0 (1 idle, 0 in use, 1 total)",
		"first use #1 uses=0 (0 idle, 1 in use, 1 total)",
		"reused #1 uses=1 (0 idle, 1 in use, 1 total)",
		"recycled #1 uses=2 (0 idle, 0 in use, 1 total)",
		"created #2 uses=0 (1 idle, 0 in use, 2 total)",
	}, "\n")
	// The replacement may be ready before or after #1 is gone.
	alt := strings.Replace(want, "created #2 uses=0 (1 idle, 0 in use, 2 total)", "created #2 uses=0 (1 idle, 0 in use, 1 total)", 1)
	if s := log.String(); s != want && s != alt {
		t.Fatalf("events:\n%s\nwant:\n%s", s, want)
	}
}
