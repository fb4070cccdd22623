package journal_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/llm-runtime/llm-runtime/journal"
)

// A write journaled as the protocol asks: the contents first, then the
// intent (on disk before the change), the change, and its outcome.
func Example() {
	base, _ := os.MkdirTemp("", "journal-example")
	defer os.RemoveAll(base)
	repo := filepath.Join(base, "repo")
	os.Mkdir(repo, 0o755)
	os.WriteFile(filepath.Join(repo, "a.txt"), []byte("old\n"), 0o644)

	j, err := journal.Open(filepath.Join(base, "journal"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close()
	before, _ := j.Put([]byte("old\n"))
	after, _ := j.Put([]byte("new\n"))
	cp, _ := j.Begin(journal.Meta{Session: "s1", FrontEnd: "filter"})
	id, err := cp.Intend([]journal.Change{{Path: "a.txt",
		Before: journal.State{Kind: journal.File, Mode: 0o644, Size: 4, Sum: before},
		After:  journal.State{Kind: journal.File, Mode: 0o644, Size: 4, Sum: after}}})
	if err != nil {
		return // not recorded: the change is not made
	}
	os.WriteFile(filepath.Join(repo, "a.txt"), []byte("new\n"), 0o644)
	cp.Done(id)
	cp.End()

	changes, _ := j.Changes(cp.Number())
	old, _ := j.Get(changes[0].Before.Sum)
	fmt.Printf("checkpoint %d: %s was %q\n", cp.Number(), changes[0].Path, old)
	// Output: checkpoint 1: a.txt was "old\n"
}
