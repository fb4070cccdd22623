package serve

import (
	"os"
	"path/filepath"
	"testing"
)

// TestALockItsHolderRemovedIsWorthNothing: a daemon removes its lock file
// when it stops. One that opened the old file just before, and locks it
// just after, holds a lock on a file no longer at the path, while another
// daemon may create and lock the new one: take says so, and lock takes
// the new file instead, so that only one of them holds the socket.
func TestALockItsHolderRemovedIsWorthNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock.lock")
	first, err := lock(path)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	if _, err := take(stale, path); err == nil {
		t.Fatal("a lock held by another was taken")
	}
	first.release()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the lock file is still there after release: %v", err)
	}
	if ok, err := take(stale, path); err != nil || ok {
		t.Fatalf("the removed file's lock: ok %v, err %v; want worth nothing", ok, err)
	}
	second, err := lock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer second.release()
	if _, err := lock(path); err == nil {
		t.Fatal("a second lock was taken while the first is held")
	}
}
