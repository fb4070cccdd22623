package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/llm-runtime/llm-runtime/internal/testenv"
)

// TestSocketDirFallsBackWhereItCannotWork: a Docker daemon on another
// machine cannot see a directory of ours, and a base directory others can
// write could hold their socket: both are refused, saying why, and the
// container falls back to the attach stream.
func TestSocketDirFallsBackWhereItCannotWork(t *testing.T) {
	cli, err := client.New(client.WithHost("tcp://192.0.2.1:2375"))
	if err != nil {
		t.Fatal(err)
	}
	remote := &Docker{cli: cli, host: "tcp://192.0.2.1:2375"}
	if _, err := remote.socketDir("x"); err == nil || !strings.Contains(err.Error(), "not on this machine") {
		t.Fatalf("remote: %v", err)
	}
	local, err := client.New(client.WithHost("unix:///var/run/docker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Docker{cli: local, host: "unix:///var/run/docker.sock"}
	rt := testenv.ShortDir(t) // a socket's path must be short
	t.Setenv("XDG_RUNTIME_DIR", rt)
	os.Mkdir(filepath.Join(rt, "llm-runtime"), 0o777)
	os.Chmod(filepath.Join(rt, "llm-runtime"), 0o777)
	if _, err := d.socketDir("x"); err == nil || !strings.Contains(err.Error(), "can be written by others") {
		t.Fatalf("open base: %v", err)
	}
	os.Chmod(filepath.Join(rt, "llm-runtime"), 0o700)
	dir, err := d.socketDir(NamePrefix + "1-abc")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 || filepath.Dir(dir) != SocketBase() {
		t.Fatalf("%s: %v %v", dir, fi, err)
	}
}
