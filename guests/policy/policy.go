//go:build wasip1

// Package policy exports llmrt_policy for a Go guest:
//
//	func init() {
//		policy.Handle(func(r guest.Request) guest.Decision {
//			if r.Op == "exec" {
//				return guest.Deny("no commands here")
//			}
//			return guest.Allow()
//		})
//	}
package policy

import "github.com/llm-runtime/llm-runtime/guests/guest"

var handler func(guest.Request) guest.Decision

// Handle registers the guest's policy.
func Handle(fn func(guest.Request) guest.Decision) { handler = fn }

//go:wasmexport llmrt_policy
func policy(ptr, size int32) int64 {
	if handler == nil {
		return guest.CallPolicy(ptr, size, func(guest.Request) guest.Decision { return guest.Deny("no policy registered") })
	}
	return guest.CallPolicy(ptr, size, handler)
}
