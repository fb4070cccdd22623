// Command loopbench times commands as a model loop runs them: a pause
// (the model thinking), then one spawn from this process, its input from a
// file, until it exits; the commands in turn, so that each meets the same
// load. It prints each command's min, p50 and max, and the ratio of each
// p50 to the last command's (the yardstick: bwrap).
//
//	go run ./tools/loopbench -in reply.txt -n 20 \
//	    'llm-runtime-client --exec' 'llm-runtime --exec' 'bwrap --ro-bind / / --unshare-all true'
//
// A command is split on spaces (no shell: nothing else is timed); -in is
// the standard input of every command whose program is llm-runtime's, the
// others get none.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 20, "runs of each command, after one not counted")
	pause := flag.Duration("pause", time.Second, "the pause before each run")
	in := flag.String("in", "", "the input of llm-runtime's commands (a model's reply)")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: loopbench [-n N] [-pause D] [-in FILE] COMMAND... YARDSTICK")
		os.Exit(2)
	}
	var cmds [][]string
	for _, a := range flag.Args() {
		cmds = append(cmds, strings.Fields(a))
	}
	d := make([][]time.Duration, len(cmds))
	for i := range *n + 1 {
		for k, c := range cmds {
			time.Sleep(*pause)
			cmd := exec.Command(c[0], c[1:]...)
			if *in != "" && strings.HasPrefix(filepath.Base(c[0]), "llm-runtime") {
				f, err := os.Open(*in)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				cmd.Stdin = f
				defer f.Close()
			}
			start := time.Now()
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", strings.Join(c, " "), err)
				os.Exit(1)
			}
			if i > 0 {
				d[k] = append(d[k], time.Since(start))
			}
		}
	}
	for k := range d {
		slices.Sort(d[k])
	}
	p50 := func(k int) time.Duration { return d[k][len(d[k])/2] }
	last := len(d) - 1
	for k, c := range cmds {
		r := func(t time.Duration) time.Duration { return t.Round(10 * time.Microsecond) }
		fmt.Printf("%-60s min %8v  p50 %8v  max %8v", strings.Join(c, " "), r(d[k][0]), r(p50(k)), r(d[k][len(d[k])-1]))
		if k < last {
			fmt.Printf("  p50 %.2fx the last", float64(p50(k))/float64(p50(last)))
		}
		fmt.Println()
	}
}
