package audit_test

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/llm-runtime/llm-runtime/audit"
)

// A checkpoint taken now, kept elsewhere, and checked later: records
// appended since pass it.
func ExampleReader_Checkpoint() {
	dir, _ := os.MkdirTemp("", "audit-example-")
	defer os.RemoveAll(dir)
	opts := audit.Options{Wait: time.Minute}
	appendOne := func(session, target string) {
		w, _ := audit.OpenWriter(dir, session, opts)
		w.Append(&audit.Record{Op: "open", Target: target, Outcome: audit.OK})
		w.Close()
	}
	appendOne("s1", "go.mod")

	r, _ := audit.OpenReader(dir, opts)
	cp, _ := r.Checkpoint(time.Time{})
	r.Close()
	var kept bytes.Buffer // a file on another machine, say
	cp.WriteTo(&kept)

	appendOne("s2", "main.go")
	cps, damaged, _ := audit.ReadCheckpoints(&kept)
	r, _ = audit.OpenReader(dir, opts)
	defer r.Close()
	rep, _ := r.Check(cps)
	fmt.Println(len(damaged), rep.Records, rep.Covered, rep.OK())
	// Output: 0 2 1 true
}
