package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Op is a workload: the pooling guide's three examples.
type Op string

const (
	// Open reads N small files that exist (the guide's "reading multiple
	// files").
	Open Op = "open"
	// Write creates N small files (the guide's "write multiple files").
	Write Op = "write"
	// Mixed repeats the guide's open, write, open pattern until it has N
	// operations.
	Mixed Op = "mixed"
)

// Ops are the workloads, in the order --help lists them.
var Ops = []Op{Open, Write, Mixed}

// ParseOp returns the workload named s.
func ParseOp(s string) (Op, error) {
	for _, op := range Ops {
		if string(op) == s {
			return op, nil
		}
	}
	return "", fmt.Errorf("unknown workload %q: want open, write or mixed", s)
}

// MaxOps is the largest number of operations in one invocation.
const MaxOps = 10000

// seedName is the K-th file the repository holds before a run (K from 1).
func seedName(k int) string { return fmt.Sprintf("file%d.txt", k) }

// Seed fills dir, an empty or missing directory, with the files that n
// operations of any workload open: file1.txt to fileN.txt, 512 bytes of
// text each.
func Seed(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for k := 1; k <= n; k++ {
		if err := os.WriteFile(filepath.Join(dir, seedName(k)), seedContent(k), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func seedContent(k int) []byte {
	var b strings.Builder
	for i := 1; b.Len() < 512; i++ {
		fmt.Fprintf(&b, "file %d, line %d: some configuration text\n", k, i)
	}
	return []byte(b.String()[:512])
}

// Input returns the model reply that runs n operations of op, one command
// per line, on a repository filled by Seed(dir, n). Every command succeeds
// on such a repository: writes create files that do not exist yet.
func Input(op Op, n int) (string, error) {
	if n < 1 || n > MaxOps {
		return "", fmt.Errorf("%d operations: want 1 to %d", n, MaxOps)
	}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		switch op {
		case Open:
			fmt.Fprintf(&b, "<open %s>\n", seedName(i))
		case Write:
			fmt.Fprintf(&b, "<write out%d.txt>Content %d</write>\n", i, i)
		case Mixed:
			// <open go.mod> <write notes.txt>Project uses Go 1.21</write> <open README.md>
			if i%3 == 2 {
				fmt.Fprintf(&b, "<write notes%d.txt>Project uses Go 1.26 (note %d)</write>\n", (i+1)/3, (i+1)/3)
			} else {
				fmt.Fprintf(&b, "<open %s>\n", seedName(i))
			}
		default:
			return "", fmt.Errorf("unknown workload %q", op)
		}
	}
	return b.String(), nil
}

// Commands returns the command names that Input(op, n) runs, in order, as
// the "command" field of --format jsonl names them.
func Commands(op Op, n int) []string {
	cmds := make([]string, n)
	for i := range cmds {
		cmds[i] = "open"
		if op == Write || (op == Mixed && (i+1)%3 == 2) {
			cmds[i] = "write"
		}
	}
	return cmds
}
