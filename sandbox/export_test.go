package sandbox

// Unwatched makes every Sync of x whole, as when inotify is unavailable.
func Unwatched(x *Mirror) {
	x.watch.mu.Lock()
	x.watch.disable()
	x.watch.mu.Unlock()
}
