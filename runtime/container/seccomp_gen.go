//go:build ignore

// seccomp_gen writes seccomp.json, llm-runtime's seccomp profile, from the
// default profile of github.com/moby/profiles/seccomp (Docker's, Apache
// 2.0), fetched with 'go mod download' from the Go module proxy:
//
//	go run seccomp_gen.go -version v0.3.0 > seccomp.json
//
// What it removes, and why, is said in seccomp.go; it fails on anything
// in moby's profile it does not expect, so that a new version is read by
// a person before it is shipped.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

type profile struct {
	DefaultAction   string  `json:"defaultAction"`
	DefaultErrnoRet *uint   `json:"defaultErrnoRet,omitempty"`
	ArchMap         []arch  `json:"archMap"`
	Syscalls        []*rule `json:"syscalls"`
}

type arch struct {
	Architecture     string   `json:"architecture"`
	SubArchitectures []string `json:"subArchitectures"`
}

type rule struct {
	Names    []string `json:"names"`
	Action   string   `json:"action"`
	ErrnoRet *uint    `json:"errnoRet,omitempty"`
	Args     []arg    `json:"args,omitempty"`
	Comment  string   `json:"comment,omitempty"`
	Includes *filter  `json:"includes,omitempty"`
	Excludes *filter  `json:"excludes,omitempty"`
}

type arg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo"`
	Op       string `json:"op"`
}

type filter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// Socket families a container may create: AF_UNSPEC, AF_UNIX and AF_INET
// (moby's first rule, "family < 3") and AF_INET6.
const afINET6 = 10

// removed are system calls of moby's unconditional list that our
// containers do not make (see seccomp.go).
var removed = []string{"socketcall", "modify_ldt", "io_uring_setup", "io_uring_enter", "io_uring_register"}

func main() {
	version := flag.String("version", "v0.3.0", "the version of github.com/moby/profiles/seccomp")
	flag.Parse()
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/moby/profiles/seccomp@"+*version).Output()
	if err != nil {
		fail(fmt.Errorf("go mod download: %v", err))
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		fail(err)
	}
	src, err := os.ReadFile(filepath.Join(mod.Dir, "default.json"))
	if err != nil {
		fail(err)
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	var p profile
	if err := dec.Decode(&p); err != nil {
		fail(fmt.Errorf("moby's default.json: %v", err))
	}
	if p.DefaultAction != "SCMP_ACT_ERRNO" || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
		fail(fmt.Errorf("moby's default action is %s (%v), not EPERM", p.DefaultAction, p.DefaultErrnoRet))
	}
	// No 32-bit system call tables: a 64-bit process can still enter them
	// (int $0x80), and their socketcall hides its arguments from seccomp.
	for i := range p.ArchMap {
		p.ArchMap[i].SubArchitectures = nil
	}
	var keep []*rule
	for _, r := range p.Syscalls {
		switch {
		case r.Includes != nil && (len(r.Includes.Caps) > 0 || r.Includes.MinKernel != ""):
			// A capability's calls (our containers have none), or
			// ptrace and process_vm_readv/writev (minKernel 4.8).
			continue
		case slices.Equal(r.Names, []string{"socket"}):
			if len(r.Args) != 1 || r.Args[0].Index != 0 {
				fail(fmt.Errorf("a socket rule on other arguments: %+v", r.Args))
			}
			a := r.Args[0]
			if !(a.Op == "SCMP_CMP_LT" && a.Value == 3) && !(a.Op == "SCMP_CMP_EQ" && a.Value == afINET6) {
				continue
			}
		}
		if r.Excludes != nil && len(r.Excludes.Caps) > 0 {
			// Rules for containers without CAP_SYS_ADMIN: ours.
			if !slices.Equal(r.Excludes.Caps, []string{"CAP_SYS_ADMIN"}) {
				fail(fmt.Errorf("a rule excluding %v", r.Excludes.Caps))
			}
			r.Excludes.Caps = nil
			if len(r.Excludes.Arches) == 0 {
				r.Excludes = nil
			}
		}
		if r.Includes != nil && len(r.Includes.Arches) == 0 {
			fail(fmt.Errorf("an unexpected condition: %+v", *r.Includes))
		}
		r.Names = slices.DeleteFunc(r.Names, func(n string) bool { return slices.Contains(removed, n) })
		if len(r.Names) > 0 {
			keep = append(keep, r)
		}
	}
	p.Syscalls = keep
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			if strings.HasPrefix(n, "io_uring") || n == "ptrace" || strings.HasPrefix(n, "process_vm_") {
				fail(fmt.Errorf("%s is still allowed", n))
			}
		}
	}
	b, err := json.MarshalIndent(p, "", "\t")
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(append(b, '\n'))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "seccomp_gen:", err)
	os.Exit(1)
}
