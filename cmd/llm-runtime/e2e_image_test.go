package main

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// image prune, restricted by --filter to throwaway images of this test
// (other tests use the real ones meanwhile): it removes exactly the unused
// images of ours, a dangling one included; keeps the current one (but for
// --all), the one a container uses, the one another image is built on and
// the one tagged with a name of someone else's; and never touches an image
// that only looks like ours.
func TestE2EImagePruneRemovesExactlyTheUnusedImagesOfOurs(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	var rnd [6]byte
	rand.Read(rnd[:])
	run := hex.EncodeToString(rnd[:])
	filter := "label=io.llm-runtime.test-images=" + run

	// A binary of its own, so that its sandbox image, the current one, is
	// a throwaway too (a static binary runs with bytes after its end).
	cache := t.TempDir()
	bin := filepath.Join(t.TempDir(), "llm-runtime")
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, append(b, rnd[:]...), 0o755); err != nil {
		t.Fatal(err)
	}
	currentRef, err := container.ImageRef(bin)
	if err != nil {
		t.Fatal(err)
	}
	lr := func(args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cleanEnv(), "XDG_CACHE_HOME="+cache)
		r, err := collect(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	ourLabels := `LABEL "io.llm-runtime"="1" "io.llm-runtime.version"="test" "io.llm-runtime.test-images"="` + run + `"`
	name := func(s string) string { return container.ImageName + ":test-" + run + "-" + s }
	cur := testImage(t, currentRef, "scratch", ourLabels, "cur")
	reOld := testImage(t, name("re"), "scratch", ourLabels, "re, first") // dangling once rebuilt
	re := testImage(t, name("re"), "scratch", ourLabels, "re, second")
	used := testImage(t, name("used"), "scratch", ourLabels, "used")
	base := testImage(t, name("base"), "scratch", ourLabels, "base")
	child := testImage(t, name("child"), name("base"), "", "child") // inherits our labels
	adopted := testImage(t, name("adopted"), "scratch", ourLabels, "adopted")
	foreign := "llm-runtime-prunetest:" + run
	docker(t, "tag", adopted, foreign)
	t.Cleanup(func() { exec.Command("docker", "rmi", foreign).Run() })
	notOurs := testImage(t, name("nolabel"), "scratch", `LABEL "io.llm-runtime.test-images"="`+run+`"`, "no label")

	ctr := "llm-runtime-io-test-" + run
	args := []string{"create", "--name", ctr}
	for k, v := range env.Labels {
		args = append(args, "--label", k+"="+v)
	}
	docker(t, append(args, used, "/nothing")...)
	t.Cleanup(func() { dockertest.ForceRemove(ctr) })

	all := map[string]string{"cur": cur, "reOld": reOld, "re": re, "used": used, "base": base, "child": child, "adopted": adopted, "notOurs": notOurs}
	left := func(want ...string) {
		t.Helper()
		for what, id := range all {
			exists := exec.Command("docker", "image", "inspect", id).Run() == nil
			if exists != strings.Contains(" "+strings.Join(want, " ")+" ", " "+what+" ") {
				t.Errorf("%s (%s): exists %v, want the images left to be %q", what, short(id), exists, want)
			}
		}
	}
	has := func(what string, r result, lines ...string) {
		t.Helper()
		t.Logf("%s:\n%s", what, r.stdout)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q, stdout:\n%s", what, r.code, r.stderr, r.stdout)
		}
		for _, l := range lines {
			if !strings.Contains(r.stdout, l) {
				t.Errorf("%s: no %q in:\n%s", what, l, r.stdout)
			}
		}
	}

	r := lr("image", "status", "--filter", filter)
	has("status", r, "Images:     6 images of ours, ", "Unused:     2 images, ", "Containers: 1\n  "+short(ctrID(t, ctr))+"  "+ctr+"  ")
	for _, row := range []struct{ name, id, state string }{
		{currentRef, cur, "current"},
		{name("re"), re, "unused"},
		{"<untagged>", reOld, "unused"},
		{name("used"), used, "in use by 1 container"},
		{name("base"), base, "the base of 1 image"},
		{name("adopted") + "," + foreign, adopted, "also tagged " + foreign},
	} {
		line := lineWith(r.stdout, "  "+short(row.id)+"  ")
		if !strings.HasPrefix(line, "  "+row.name+" ") || !strings.HasSuffix(line, "  "+row.state) {
			t.Errorf("status: the line of %s is %q, want %s ... %s", short(row.id), line, row.name, row.state)
		}
	}
	for _, id := range []string{child, notOurs} {
		if strings.Contains(r.stdout, short(id)) {
			t.Errorf("status lists %s, which is not ours:\n%s", short(id), r.stdout)
		}
	}

	r = lr("image", "prune", "--dry-run", "--filter", filter)
	has("prune --dry-run", r,
		"would remove "+name("re")+" ("+short(re)+", ",
		"would remove "+short(reOld)+" (untagged, ",
		"would free ", " (2 images); kept 4 ", "nothing was removed")
	left("cur", "reOld", "re", "used", "base", "child", "adopted", "notOurs")

	r = lr("image", "prune", "--filter", filter)
	has("prune", r, "removed "+name("re")+" ("+short(re)+", ", "removed "+short(reOld)+" (untagged, ", "freed ", " (2 images); kept 4 ")
	if n := strings.Count(r.stdout, "removed "); n != 2 {
		t.Errorf("prune removed %d images:\n%s", n, r.stdout)
	}
	left("cur", "used", "base", "child", "adopted", "notOurs")

	r = lr("image", "prune", "--filter", filter)
	has("prune again", r, "nothing to remove: 4 images of ours, all current or in use")
	left("cur", "used", "base", "child", "adopted", "notOurs")

	r = lr("image", "prune", "--all", "--filter", filter)
	has("prune --all", r, "removed "+currentRef+" ("+short(cur)+", ", "freed ", " (1 image); kept 3 ")
	left("used", "base", "child", "adopted", "notOurs")

	r = lr("image", "prune", "--all", "--filter", filter)
	has("prune --all again", r, "nothing to remove: 3 images of ours, all in use")
	left("used", "base", "child", "adopted", "notOurs")

	if r := lr("image", "prune", "--filter", "dangling=true"); r.code != exitUsage || !strings.Contains(r.stderr, "label=KEY or label=KEY=VALUE") {
		t.Errorf("a filter that is not a label: exit %d, %q", r.code, r.stderr)
	}
}

// testImage builds tag FROM from with the classic builder (as llm-runtime
// does, and so that it records each image's parent), with one file of
// content and the label line given, and removes it when the test ends. It
// returns the image's id.
func testImage(t *testing.T, tag, from, label, content string) string {
	t.Helper()
	dockerfile := fmt.Sprintf("FROM %s\nCOPY f /f\n%s\n", from, label)
	var ctx bytes.Buffer
	tw := tar.NewWriter(&ctx)
	for _, f := range []struct{ name, body string }{{"Dockerfile", dockerfile}, {"f", content}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	cmd := exec.Command("docker", "build", "-q", "-t", tag, "-")
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	cmd.Stdin = &ctx
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("building %s: %v\n%s", tag, err, stderr.String())
	}
	id := strings.TrimSpace(string(out))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("building %s: no image id in %q", tag, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", id).Run() })
	return id
}

func docker(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func short(id string) string { return container.ShortID(id) }

// lineWith returns the first line of out that holds s, or "".
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// ctrID returns the id of the container named name.
func ctrID(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", "{{.Id}}", name).Output()
	if err != nil {
		t.Fatalf("docker inspect %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}
