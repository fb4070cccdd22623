//go:build wasip1

// Command garbage is a guest whose replies are not JSON.
package main

import "unsafe"

func main() {}

var buf = make([]byte, 1<<16)
var reply = []byte("allow, probably")

//go:wasmexport llmrt_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport llmrt_alloc
func alloc(n int32) int32 {
	if int(n) > len(buf) {
		buf = make([]byte, n)
	}
	return int32(uintptr(unsafe.Pointer(&buf[0])))
}

//go:wasmexport llmrt_policy
func policy(p, n int32) int64 {
	return int64(uintptr(unsafe.Pointer(&reply[0])))<<32 | int64(len(reply))
}

//go:wasmexport llmrt_transform
func transform(p, n int32) int64 {
	return int64(uintptr(unsafe.Pointer(&reply[0])))<<32 | 0x7fffffff // a length past its memory
}
