package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The rule of Owned: the process's own root, or root's in its group,
// group-writable and setgid (a real kubelet's emptyDir with fsGroup);
// nothing another user owns, and nothing root's that the group cannot
// write or that does not keep new files in the group.
func TestOwnedTakesTheUsersOwnAndAKubeletsEmptyDirOnly(t *testing.T) {
	const dir = unix.S_IFDIR
	for _, c := range []struct {
		what      string
		uid, gid  uint32
		mode      uint32
		procGroup int   // the process's gid (its uid is 1000)
		groups    []int // and its supplementary groups
		want      bool
	}{
		{"the user's own, 0755", 1000, 1000, dir | 0o755, 1000, nil, true},
		{"the user's own, in another group, 0700", 1000, 5, dir | 0o700, 1000, nil, true},
		{"a kubelet's emptyDir, 0:fsGroup 2777, fsGroup the process's gid", 0, 2000, dir | unix.S_ISGID | 0o777, 2000, nil, true},
		{"the same, fsGroup a supplementary group", 0, 2000, dir | unix.S_ISGID | 0o777, 1000, []int{2000}, true},
		{"0:fsGroup 2770", 0, 2000, dir | unix.S_ISGID | 0o770, 2000, nil, true},
		{"a new Docker volume, 0:0 0755", 0, 0, dir | 0o755, 1000, nil, false},
		{"0:0 0777, no fsGroup", 0, 0, dir | 0o777, 1000, nil, false},
		{"0:fsGroup 0777, not setgid", 0, 2000, dir | 0o777, 2000, nil, false},
		{"0:fsGroup 2755, not group-writable", 0, 2000, dir | unix.S_ISGID | 0o755, 2000, nil, false},
		{"0:another group 2777", 0, 3000, dir | unix.S_ISGID | 0o777, 2000, []int{2001}, false},
		{"another user's, in the process's group, 2777", 4242, 2000, dir | unix.S_ISGID | 0o777, 2000, nil, false},
		{"a file, 0:fsGroup 2777", 0, 2000, unix.S_IFREG | unix.S_ISGID | 0o777, 2000, nil, false},
	} {
		st := unix.Stat_t{Uid: c.uid, Gid: c.gid, Mode: c.mode}
		if got := ownedBy(st, 1000, c.procGroup, c.groups); got != c.want {
			t.Errorf("%s: %v, want %v", c.what, got, c.want)
		}
	}
}

// On the filesystem: a directory made as a kubelet makes a pod's emptyDir
// (root's, the pod's fsGroup, mode 2777) is Owned by a process of another
// user in that group, which writes a file there (in the group); the same
// directory is not when its group is not the process's, nor when another
// user owns it. The process is this test's binary, run as uid 65532.
func TestOwnedOnAKubeletsEmptyDirAsAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to give a directory to root and run a process as another user")
	}
	const uid, fsGroup = 65532, 65533
	// A directory the other user can reach (the test's own are private),
	// removed at the end.
	base, err := os.MkdirTemp("/tmp", "llm-runtime-owned-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	// The test binary, where the other user can run it (go test's own
	// directory is private).
	bin := filepath.Join(base, "sandbox.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what       string
		owner, grp int
		want       string
	}{
		{"0:fsGroup 2777", 0, fsGroup, "owned true, wrote x in group 65533"},
		{"0:another group 2777", 0, 4000, "owned false"},
		{"another user's, the group fsGroup, 2777", 4001, fsGroup, "owned false"},
	} {
		dir := filepath.Join(base, strings.NewReplacer(" ", "_", ":", "_", ",", "").Replace(c.what))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, c.owner, c.grp); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777|os.ModeSetgid); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin)
		cmd.Dir = base
		cmd.Env = append(os.Environ(), "SANDBOX_OWNED_HELPER="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: fsGroup, Groups: []uint32{}}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: the helper: %v\n%s", c.what, err, out)
		}
		if !strings.Contains(string(out), "RESULT: "+c.want+"\n") {
			t.Errorf("%s: want %q\n%s", c.what, c.want, out)
		}
	}
}

// init runs, in the test binary started by
// TestOwnedOnAKubeletsEmptyDirAsAnotherUser as another user, that
// process's part instead of the tests: it opens the directory as a
// workspace, asks Owned, and when owned writes a file in it.
func init() {
	dir := os.Getenv("SANDBOX_OWNED_HELPER")
	if dir == "" {
		return
	}
	fmt.Println("RESULT: " + ownedHelper(dir))
	os.Exit(0)
}

func ownedHelper(dir string) string {
	w, err := OpenWorkspace(dir, Limits{})
	if err != nil {
		return err.Error()
	}
	defer w.Close()
	if !w.Owned() {
		return "owned false"
	}
	if err := os.WriteFile(filepath.Join(dir, "x"), []byte("x"), 0o644); err != nil {
		return err.Error()
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "x"), &st); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("owned true, wrote x in group %d", st.Gid)
}
