package container_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

func testTag(t *testing.T, what string) string {
	var rnd [6]byte
	rand.Read(rnd[:])
	return "llm-runtime-exec:test-" + what + "-" + hex.EncodeToString(rnd[:])
}

// An image that llm-runtime did not build is looked up in its
// filesystem, as the agent's exec would find a program on its PATH: the
// first directory of the PATH that has an executable file of that name,
// links followed; the answer is kept in the cache directory by image id.
func TestInspectExecImageLooksUpProgramsInTheFilesystemOfAnImageNotOurs(t *testing.T) {
	env := dockertest.Require(t)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	tag := testTag(t, "probe")
	dockertest.BuildImage(t, env, tag, "FROM scratch\nCOPY rootfs/ /\nENV PATH=/opt/none:/bin:/usr/bin:relative\n", map[string]string{
		"rootfs/bin/tool":         "#!/bin/tool\n",
		"rootfs/bin/data":         "not executable\n",
		"rootfs/usr/bin/real":     "#!/bin/tool\n",
		"rootfs/bin/link":         "->../usr/bin/real",
		"rootfs/bin/dangling":     "->/nowhere",
		"rootfs/bin/dirprog/":     "",
		"rootfs/usr/bin/onlyhere": "#!/bin/tool\n",
	})
	ctx := context.Background()
	names := []string{"tool", "data", "link", "dangling", "dirprog", "real", "onlyhere", "missing", "/usr/bin/real", "/bin/data"}
	start := time.Now()
	x, err := env.Docker.InspectExecImage(ctx, tag, names)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("looked up %d programs in the image's filesystem in %s", len(names), time.Since(start).Round(time.Millisecond))
	if x.Ours || len(x.Recommended) != 0 || !slices.Equal(x.Path, []string{"/opt/none", "/bin", "/usr/bin"}) || !strings.Contains(x.Source, "filesystem") {
		t.Fatalf("%+v", x)
	}
	want := map[string]bool{"tool": true, "link": true, "real": true, "onlyhere": true, "/usr/bin/real": true}
	for _, n := range names {
		if x.Has(n) != want[n] {
			t.Errorf("Has(%q) = %v, want %v", n, x.Has(n), want[n])
		}
	}
	files, _ := filepath.Glob(filepath.Join(cache, "llm-runtime", "exec-images", "*.json"))
	if len(files) != 1 || !strings.HasPrefix(filepath.Base(files[0]), strings.TrimPrefix(x.ID, "sha256:")) {
		t.Fatalf("the cache holds %v, want the file of %s", files, x.ID)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), `"link":true`) || !strings.Contains(string(b), `"missing":false`) {
		t.Errorf("the cache: %s", b)
	}
	if x, err := env.Docker.InspectExecImage(ctx, tag, []string{"link", "missing"}); err != nil || !x.Has("link") || x.Has("missing") {
		t.Fatalf("asked again: %+v %v", x, err)
	}
	if _, err := env.Docker.InspectExecImage(ctx, tag+"-gone", nil); !errors.Is(err, container.ErrNoImage) {
		t.Fatalf("a missing image: %v", err)
	}
}

// The busybox exec image carries its programs in a label, which says what
// looking in its filesystem finds; an image built on it that adds a layer
// is not ours, and is looked in; one that only adds labels is still ours,
// and what it recommends is read.
func TestTheExecImagesLabelSaysWhatItsFilesystemHolds(t *testing.T) {
	env := dockertest.Require(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	ctx := context.Background()
	ref := testTag(t, "busybox")
	_, err := env.Docker.BuildBusyboxImage(ctx, "/bin/busybox", ref)
	if err != nil {
		t.Fatal(err)
	}
	// By its tag: the same busybox makes the same image in every test
	// process, and removing it by id would take the others' tags with it.
	t.Cleanup(func() { exec.Command("docker", "rmi", ref).Run() })
	names := []string{"ls", "cat", "sh", "find", "busybox", "go", "make", "gofmt", "/bin/ls", "/usr/bin/ls"}
	start := time.Now()
	labelled, err := env.Docker.InspectExecImage(ctx, ref, names)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("read %d programs from the label in %s", len(names), time.Since(start).Round(time.Millisecond))
	if !labelled.Ours || !strings.Contains(labelled.Source, container.LabelPrograms) {
		t.Fatalf("the busybox image is not read from its label: %+v", labelled)
	}
	derived := testTag(t, "derived")
	dockertest.BuildImage(t, env, derived, "FROM "+ref+"\nCOPY extra /usr/bin/extra\n", map[string]string{"extra": "x"})
	start = time.Now()
	looked, err := env.Docker.InspectExecImage(ctx, derived, names)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("looked up %d programs in the busybox image's filesystem in %s", len(names), time.Since(start).Round(time.Millisecond))
	if looked.Ours || !strings.Contains(looked.Source, "filesystem") {
		t.Fatalf("an image built on ours with a layer of its own is taken for ours: %+v", looked)
	}
	for _, n := range names {
		want := !slices.Contains([]string{"go", "make", "gofmt", "/usr/bin/ls"}, n)
		if labelled.Has(n) != want || looked.Has(n) != want {
			t.Errorf("%s: the label says %v, the filesystem %v; want %v", n, labelled.Has(n), looked.Has(n), want)
		}
	}

	recommends := testTag(t, "recommends")
	dockertest.BuildImage(t, env, recommends, "FROM "+ref+"\nLABEL "+container.LabelRecommended+"=\"exec.timeout=2m exec.whitelist=* exec.memory=768MiB\"\n", nil)
	rec, err := env.Docker.InspectExecImage(ctx, recommends, []string{"ls"})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Ours || !slices.Equal(rec.Recommended, [][2]string{{"exec.timeout", "2m"}, {"exec.memory", "768MiB"}}) {
		t.Fatalf("recommended: %+v", rec)
	}
	if looked.Recommended != nil {
		t.Fatalf("an image not ours recommends %v", looked.Recommended)
	}
}
