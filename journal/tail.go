package journal

import "sync"

// tail is the work a change's record leaves for after the change, done
// in order by one goroutine while the caller goes on: compressing the
// contents a change left (which its intent names by sum only, see
// State.Later) into its done record, appending outcomes and ends, and
// writing the objects of inline contents. None of it is needed for the
// change to be safe (the intent is durable, and recovery finds on disk
// what a lost done record would have held), so none of it is on the path
// of the operation that made the change. Every reader of the journal in
// this process waits for it first (flush), so it sees its own changes
// whole; the next intent waits only when it needs a content the tail has
// not compressed yet.
type tail struct {
	mu      sync.Mutex
	idle    *sync.Cond
	q       []func() error
	running bool
	err     error // the first error since the last flush
}

// add queues fn, starting the goroutine that runs the queue when it is
// not running.
func (t *tail) add(fn func() error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.q = append(t.q, fn)
	if !t.running {
		t.running = true
		go t.run()
	}
}

func (t *tail) run() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.q) > 0 {
		fn := t.q[0]
		t.q[0] = nil
		t.q = t.q[1:]
		t.mu.Unlock()
		err := fn()
		t.mu.Lock()
		if t.err == nil {
			t.err = err
		}
	}
	t.running = false
	if t.idle != nil {
		t.idle.Broadcast()
	}
}

// wait waits until everything queued is done. It must not be called by
// work in the tail.
func (t *tail) wait() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waitLocked()
}

func (t *tail) waitLocked() {
	if t.idle == nil {
		t.idle = sync.NewCond(&t.mu)
	}
	for t.running {
		t.idle.Wait()
	}
}

// flush is wait, returning the first error since the last flush.
func (t *tail) flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waitLocked()
	err := t.err
	t.err = nil
	return err
}

// Flush waits until the records this process left for after its changes
// (see Checkpoint.Done and End) are appended, and returns the first error
// any of them met since the last Flush. Every method that reads the
// journal flushes first, and Close does.
func (j *Journal) Flush() error { return j.tail.flush() }
