//go:build wasip1

// Command oom is a policy guest that allocates until it runs out of memory.
package main

import (
	"github.com/llm-runtime/llm-runtime/guests/guest"
	"github.com/llm-runtime/llm-runtime/guests/policy"
)

func main() {}

var hoard [][]byte

func init() {
	policy.Handle(func(r guest.Request) guest.Decision {
		if r.Path == "quick" {
			return guest.Allow()
		}
		for {
			b := make([]byte, 1<<20)
			b[0] = 1
			hoard = append(hoard, b)
		}
	})
}
