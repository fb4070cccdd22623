//go:build wasip1

// Package transform exports llmrt_transform for a Go guest:
//
//	func init() {
//		transform.Handle(func(r guest.TransformRequest) guest.TransformResult {
//			n := strings.Count(r.Output, "secret")
//			return guest.TransformResult{Output: strings.ReplaceAll(r.Output, "secret", "******"), Changes: n}
//		})
//	}
package transform

import "github.com/llm-runtime/llm-runtime/guests/guest"

var handler func(guest.TransformRequest) guest.TransformResult

// Handle registers the guest's transform.
func Handle(fn func(guest.TransformRequest) guest.TransformResult) { handler = fn }

//go:wasmexport llmrt_transform
func transform(ptr, size int32) int64 {
	h := handler
	if h == nil {
		h = func(r guest.TransformRequest) guest.TransformResult { return guest.TransformResult{Output: r.Output} }
	}
	return guest.CallTransform(ptr, size, h)
}
