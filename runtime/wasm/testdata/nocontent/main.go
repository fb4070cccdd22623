//go:build wasip1

// Command nocontent is a policy guest that denies a write whose content
// holds "FORBIDDEN", and says whether the write was an edit: it shows that
// a policy sees an <edit> as the write of the file it would leave.
package main

import (
	"strings"

	"github.com/llm-runtime/llm-runtime/guests/guest"
	"github.com/llm-runtime/llm-runtime/guests/policy"
)

func main() {}

func init() {
	policy.Handle(func(r guest.Request) guest.Decision {
		if r.Op == "write" && strings.Contains(r.Content, "FORBIDDEN") {
			kind := "write"
			if r.Edit {
				kind = "edit"
			}
			return guest.Deny("the " + kind + " would leave FORBIDDEN in " + r.Resolved)
		}
		return guest.Allow()
	})
}
