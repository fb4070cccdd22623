//go:build amd64

package main

// int80 makes an i386 system call (int $0x80) and returns its result, a
// negative errno on failure. It is in assembly for amd64 only.
func int80(trap, a1, a2, a3 uintptr) uintptr
