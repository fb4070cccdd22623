//go:build wasip1

// Command spin is a policy guest that never answers.
package main

import (
	"github.com/llm-runtime/llm-runtime/guests/guest"
	"github.com/llm-runtime/llm-runtime/guests/policy"
)

func main() {}

var n int

func init() {
	policy.Handle(func(r guest.Request) guest.Decision {
		if r.Path == "quick" {
			return guest.Allow()
		}
		for {
			n++
		}
	})
}
