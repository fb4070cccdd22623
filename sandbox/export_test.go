package sandbox

// Unwatched makes every Sync of x whole, as when inotify is unavailable.
func Unwatched(x *Mirror) {
	x.watch.mu.Lock()
	x.watch.disable()
	x.watch.mu.Unlock()
}

// SetMaxWatches bounds the watches of x at n.
func SetMaxWatches(x *Mirror, n int) {
	x.watch.mu.Lock()
	x.watch.max = n
	x.watch.mu.Unlock()
}

// NewPrefixes and Holds export prefixes.
func NewPrefixes(paths []string) prefixes { return newPrefixes(paths) }
func (p prefixes) Holds(rel string) bool  { return p.holds(rel) }
