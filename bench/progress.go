package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a one-line progress bar, redrawn in place, with the run
// under way and the time elapsed. Steps are weighted by how long they are
// expected to take, so the bar moves about evenly.
type progress struct {
	w     io.Writer
	mu    sync.Mutex
	total float64
	done  float64
	step  float64 // weight of the step under way
	label string
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

const barWidth = 30

// newProgress starts a bar on w of the given total weight; nil w draws
// nothing.
func newProgress(w io.Writer, total float64) *progress {
	p := &progress{w: w, total: total, start: time.Now(), stop: make(chan struct{})}
	if w == nil {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.drawLocked()
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// begin marks the start of a step of the given weight.
func (p *progress) begin(label string, weight float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label, p.step = label, weight
	p.drawLocked()
}

// end marks the end of the step begun last.
func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += p.step
	p.step = 0
	p.drawLocked()
}

// finish stops the bar and erases it.
func (p *progress) finish() {
	if p.w == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\x1b[K")
}

func (p *progress) drawLocked() {
	if p.w == nil {
		return
	}
	frac := 0.0
	if p.total > 0 {
		frac = min(1, p.done/p.total)
	}
	fill := int(frac * barWidth)
	bar := strings.Repeat("=", fill)
	if fill < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-fill-1)
	}
	el := time.Since(p.start).Truncate(time.Second)
	fmt.Fprintf(p.w, "\r[%s] %3.0f%%  %d:%02d  %s\x1b[K", bar, frac*100, int(el.Minutes()), int(el.Seconds())%60, p.label)
}
