//go:build wasip1

// Command abi1 is a policy guest as they were built before delete and
// move (ABI 1): it allows every op, as a policy that does not know an op
// most likely does. The host must deny delete and move without asking it.
package main

import "unsafe"

func main() {}

var (
	in    []byte
	allow = []byte(`{"decision":"allow"}`)
)

//go:wasmexport llmrt_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport llmrt_alloc
func alloc(size int32) int32 {
	in = make([]byte, max(size, 1))
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

//go:wasmexport llmrt_policy
func policy(ptr, size int32) int64 {
	return int64(uintptr(unsafe.Pointer(&allow[0])))<<32 | int64(len(allow))
}
