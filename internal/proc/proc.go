// Package proc answers questions about processes on this host, this one
// included.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Alive tells whether a process with this pid exists (possibly owned by
// another user, which signal 0 reports as EPERM).
func Alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// StartTime is when process pid started, in clock ticks since the boot
// (field 22 of /proc/PID/stat). A pid is reused once its process is gone
// (within minutes on a busy machine: pid_max is often 32768); a pid and
// its start time name one process.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command's name, in parentheses, can hold spaces and parentheses:
	// the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	return strconv.ParseUint(string(f[19]), 10, 64)
}

// Self is this process's start time (StartTime), or 0 if /proc cannot say.
var Self = func() uint64 {
	t, _ := StartTime(os.Getpid())
	return t
}()

// Same says whether process pid exists and is the one that started at
// start; with start 0 (not known), whether pid exists.
func Same(pid int, start uint64) bool {
	if !Alive(pid) {
		return false
	}
	if start == 0 {
		return true
	}
	t, err := StartTime(pid)
	return err != nil || t == start // unreadable: as alive, the safe side
}

// SelfStatus is the value of field (Threads, VmHWM...) in this process's
// /proc/self/status, trimmed; false when there is none.
func SelfStatus(field string) (string, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			return string(bytes.TrimSpace(v)), true
		}
	}
	return "", false
}
