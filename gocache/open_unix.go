//go:build unix

package gocache

import "syscall"

// openNonblock keeps an open of a FIFO from blocking.
const openNonblock = syscall.O_NONBLOCK
