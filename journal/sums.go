package journal

import (
	"bytes"
	"sync"
)

// lastContents remembers, per path, the last content a change left there
// as the journal prepared it (a copy, its sum, and its encoded form when
// it was inline), so that the next change of that path, whose content
// before is most often that one, is recognised by comparing bytes (a few
// µs for 100 KiB) instead of being hashed (60-100 µs) and compressed
// again. Only equal bytes are recognised, so a content sent by a hostile
// agent cannot get a sum that is not its own. It holds at most
// lastContentsMax bytes, forgetting everything when that is reached.
type lastContents struct {
	mu   sync.Mutex
	m    map[string]prepared
	size int
}

// prepared is a content as inline prepared it.
type prepared struct {
	data []byte
	sum  string
	body []byte // encodeObject's, or nil when it was not inline
}

const lastContentsMax = 16 << 20

// find returns what path's last content was prepared as, when content is
// the same.
func (l *lastContents) find(path string, content []byte) (prepared, bool) {
	l.mu.Lock()
	last, ok := l.m[path]
	l.mu.Unlock()
	if ok && bytes.Equal(last.data, content) {
		return last, true
	}
	return prepared{}, false
}

// keep remembers p as path's last content. Its data is kept as it is:
// the caller gives a copy no one changes.
func (l *lastContents) keep(path string, p prepared) {
	if len(p.data)+len(p.body) > lastContentsMax/4 {
		return
	}
	n := len(p.data) + len(p.body)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || l.size+n > lastContentsMax {
		l.m, l.size = map[string]prepared{}, 0
	}
	if old, ok := l.m[path]; ok {
		l.size -= len(old.data) + len(old.body)
	}
	l.m[path] = p
	l.size += n
}

// setBody gives path's last content, when it is still the one sum names,
// its encoded form (see Checkpoint.Done).
func (l *lastContents) setBody(path, sum string, body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.m[path]
	if !ok || p.sum != sum || p.body != nil {
		return
	}
	if l.size+len(body) > lastContentsMax {
		return
	}
	p.body = body
	l.m[path] = p
	l.size += len(body)
}
