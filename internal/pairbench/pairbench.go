// Package pairbench times operations without and with their journal
// record, one of each after the other, so that both meet the same load
// and the same disk: run apart, the disk's drift between runs is larger
// than what the record adds. Each journaled operation is a checkpoint of
// its own (Begin, the operation and its record, End), as a filter's reply
// or an MCP call makes it.
package pairbench

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/journal"
	"github.com/llm-runtime/llm-runtime/runner"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Pairs is a benchmark's timings, and the journal its journaled
// operations are recorded in.
type Pairs struct {
	b       *testing.B
	j       *journal.Journal
	d       [2][]time.Duration // without, with the record
	intend  time.Duration      // in the journal's Intend
	intents int
}

// New opens a journal of the benchmark's own, closed when it ends.
func New(b *testing.B) *Pairs {
	j, err := journal.Open(filepath.Join(b.TempDir(), "journal"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	return &Pairs{b: b, j: j}
}

// Time times op, given ctx as it is or, journaled, with a Recorder that
// journals each change in a checkpoint begun for it.
func (p *Pairs) Time(journaled bool, ctx context.Context, op func(context.Context) error) {
	start := time.Now()
	var cp *journal.Checkpoint
	if journaled {
		var err error
		if cp, err = p.j.Begin(journal.Meta{FrontEnd: "filter"}); err != nil {
			p.b.Fatal(err)
		}
		ctx = sandbox.WithOptions(ctx, sandbox.Options{Recorder: timed{runner.JournalRecorder{Checkpoint: cp}, p}})
	}
	if err := op(ctx); err != nil {
		p.b.Fatal(err)
	}
	if cp != nil {
		if err := cp.End(); err != nil {
			p.b.Fatal(err)
		}
	}
	k := 0
	if journaled {
		k = 1
	}
	p.d[k] = append(p.d[k], time.Since(start))
}

// Report reports each one's p50 and p95 (of those timed: a benchmark may
// time only journaled operations), the p50s' difference and ratio when
// both were, and the time the journal's Intend took on average
// (journal-µs: the record made durable).
func (p *Pairs) Report() {
	var p50 [2]float64
	for k, name := range []string{"plain", "journaled"} {
		d := p.d[k]
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		p50[k] = float64(d[len(d)/2].Microseconds())
		p.b.ReportMetric(p50[k], name+"-p50-µs")
		p.b.ReportMetric(float64(d[len(d)*95/100].Microseconds()), name+"-p95-µs")
	}
	if p50[0] > 0 && p50[1] > 0 {
		p.b.ReportMetric(p50[1]-p50[0], "added-p50-µs")
		p.b.ReportMetric(p50[1]/p50[0], "journaled/plain")
	}
	if p.intents > 0 {
		p.b.ReportMetric(float64(p.intend.Microseconds())/float64(p.intents), "journal-µs")
	}
}

// timed is a Recorder that adds the time its Intend takes to p's.
type timed struct {
	r sandbox.Recorder
	p *Pairs
}

func (t timed) Intend(c []sandbox.PathChange) (uint64, error) {
	start := time.Now()
	id, err := t.r.Intend(c)
	t.p.intend += time.Since(start)
	t.p.intents++
	return id, err
}
func (t timed) Done(id uint64) error            { return t.r.Done(id) }
func (t timed) Abort(id uint64, r string) error { return t.r.Abort(id, r) }
