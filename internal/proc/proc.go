// Package proc answers questions about other processes on this host.
package proc

import (
	"errors"
	"syscall"
)

// Alive tells whether a process with this pid exists (possibly owned by
// another user, which signal 0 reports as EPERM).
func Alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
