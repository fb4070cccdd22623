//go:build wasip1

// Command readonly is a policy guest that denies every write, edit,
// delete, move, undo and exec:
// the model may read and search, nothing more.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o readonly.wasm ./guests/readonly
package main

import (
	"github.com/llm-runtime/llm-runtime/guests/guest"
	"github.com/llm-runtime/llm-runtime/guests/policy"
)

func main() {}

func init() {
	policy.Handle(func(r guest.Request) guest.Decision {
		switch r.Op {
		case "write", "exec", "delete", "move", "undo":
			return guest.Deny("read-only session: " + r.Op + " is not allowed")
		}
		return guest.Allow()
	})
}
