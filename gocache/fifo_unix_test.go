//go:build unix

package gocache

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFIFOs: an entry or an output that is a FIFO is a miss; opening it
// would block the build.
func TestFIFOs(t *testing.T) {
	for _, which := range []string{"entry", "output"} {
		t.Run(which, func(t *testing.T) {
			dir := t.TempDir()
			cl := start(t, &Cache{Dir: dir})
			aid := actionID(which)
			body := []byte("body")
			mustPut(t, cl, aid, body)
			a := hexOf(aid)
			sum := sha256.Sum256(body)
			o := hexOf(sum[:])
			p := filepath.Join(dir, "a", a[:2], a)
			if which == "output" {
				p = filepath.Join(dir, "o", o[:2], o)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			mustMiss(t, cl, aid)
			mustPut(t, cl, aid, body)
			mustHit(t, cl, aid, body, dir)
		})
	}
}
