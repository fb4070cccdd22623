package container_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"

	ours "github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// What prune removes, decided on what Docker lists: every rule of
// SelectImages and Keep, on one made-up daemon.
func TestSelectImagesKeepsTheCurrentTheUsedAndWhatIsNotOurs(t *testing.T) {
	labels := func(extra ...string) map[string]string {
		l := map[string]string{ours.LabelApp: "1", ours.LabelVersion: "v1"}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	type img struct {
		id, parent string
		tags       []string
		labels     map[string]string
		layers     int // 0: not inspected
		created    int64
	}
	images := []img{
		{id: "cur", tags: []string{"llm-runtime-io:aaaa"}, labels: labels(), layers: 1, created: 10},
		{id: "exec", tags: []string{ours.ExecImageName}, labels: labels(ours.LabelRole, "exec"), layers: 1, created: 9},
		{id: "oldexec", tags: []string{"<none>:<none>"}, labels: labels(ours.LabelRole, "exec"), layers: 1, created: 8},
		{id: "old", tags: []string{"llm-runtime-io:bbbb"}, labels: labels(), layers: 1, created: 7},
		{id: "used", tags: []string{"llm-runtime-io:cccc"}, labels: labels(), layers: 1, created: 6},
		{id: "base", tags: []string{"llm-runtime-io:dddd"}, labels: labels(), layers: 1, created: 5},
		// Built FROM base, so they inherit its labels; neither is ours,
		// whatever its name.
		{id: "child", parent: "base", tags: []string{"mygo:latest"}, labels: labels(), layers: 2, created: 5},
		{id: "envonly", parent: "base", tags: []string{"llm-runtime-io:eeee"}, labels: labels(), layers: 1, created: 5},
		{id: "adopted", tags: []string{"mine:v1", "llm-runtime-io:ffff"}, labels: labels(), layers: 1, created: 4},
		// Our names without our labels.
		{id: "nolabel", tags: []string{"llm-runtime-io:gggg"}, layers: 1, created: 3},
		{id: "zero", tags: []string{"llm-runtime-io:hhhh"}, labels: map[string]string{ours.LabelApp: "0", ours.LabelVersion: "v1"}, layers: 1, created: 3},
		{id: "twolayers", tags: []string{"llm-runtime-io:iiii"}, labels: labels(), layers: 2, created: 3},
		{id: "uninspected", tags: []string{"llm-runtime-io:jjjj"}, labels: labels(), created: 3},
		// A build of an earlier version: a step per label, the version
		// last. Only the image itself is ours, not its steps.
		{id: "step1", labels: nil, layers: 1, created: 2},
		{id: "step2", parent: "step1", labels: map[string]string{ours.LabelApp: "1"}, layers: 1, created: 2},
		{id: "older", parent: "step2", tags: []string{"llm-runtime-io:kkkk"}, labels: labels(), layers: 1, created: 2},
		{id: "other", tags: []string{"postgres:16"}, labels: map[string]string{"maintainer": "x"}, layers: 9, created: 1},
	}
	var summaries []image.Summary
	layers := map[string]int{}
	for _, im := range images {
		summaries = append(summaries, image.Summary{ID: im.id, ParentID: im.parent, RepoTags: im.tags, Labels: im.labels, Size: 100, Created: im.created})
		if im.layers > 0 {
			layers[im.id] = im.layers
		}
	}
	containers := []container.Summary{{ID: "c1", ImageID: "used"}, {ID: "c2", ImageID: "other"}}
	current := []string{"llm-runtime-io:aaaa", ours.ExecImageName}

	got := ours.SelectImages(summaries, layers, containers, current, nil)
	ids := func(imgs []ours.OurImage) []string {
		var out []string
		for _, i := range imgs {
			out = append(out, i.ID)
		}
		return out
	}
	if want := []string{"cur", "exec", "oldexec", "old", "used", "base", "adopted", "older"}; !slices.Equal(ids(got), want) {
		t.Fatalf("ours, newest first: %q, want %q", ids(got), want)
	}
	keep := map[string]string{}
	for _, i := range got {
		keep[i.ID] = i.Keep(false)
	}
	for id, want := range map[string]string{
		"cur":     "current",
		"exec":    "current",
		"oldexec": "",
		"old":     "",
		"used":    "in use by 1 container",
		"base":    "the base of 2 images",
		"adopted": "also tagged mine:v1",
		"older":   "",
	} {
		if keep[id] != want {
			t.Errorf("Keep(false) of %s: %q, want %q", id, keep[id], want)
		}
	}
	if want := []string{"oldexec", "old", "older"}; !slices.Equal(ids(ours.Prunable(got, false)), want) {
		t.Errorf("prune: %q, want %q", ids(ours.Prunable(got, false)), want)
	}
	if want := []string{"cur", "exec", "oldexec", "old", "older"}; !slices.Equal(ids(ours.Prunable(got, true)), want) {
		t.Errorf("prune --all: %q, want %q", ids(ours.Prunable(got, true)), want)
	}
	if got[2].Name() != "oldexec" || len(got[2].Tags) != 0 || got[5].Name() != "llm-runtime-io:dddd" {
		t.Errorf("names: %q %q, %q", got[2].Name(), got[2].Tags, got[5].Name())
	}
	if got[6].Name() != "llm-runtime-io:ffff" || !slices.Equal(got[6].Foreign, []string{"mine:v1"}) {
		t.Errorf("adopted: name %q, foreign %q", got[6].Name(), got[6].Foreign)
	}

	// A filter narrows the choice among ours; it never widens it.
	summaries[3].Labels = labels("io.llm-runtime.test", "x")            // old
	summaries[9].Labels = map[string]string{"io.llm-runtime.test": "x"} // nolabel
	summaries[6].Labels = labels("io.llm-runtime.test", "x")            // child
	summaries[4].Labels = labels("io.llm-runtime.test", "y")            // used
	if got := ids(ours.SelectImages(summaries, layers, containers, current, []string{"io.llm-runtime.test=x"})); !slices.Equal(got, []string{"old"}) {
		t.Errorf("label=io.llm-runtime.test=x: %q, want [old]", got)
	}
	if got := ids(ours.SelectImages(summaries, layers, containers, current, []string{"io.llm-runtime.test"})); !slices.Equal(got, []string{"old", "used"}) {
		t.Errorf("label=io.llm-runtime.test: %q, want [old used]", got)
	}
}

// The exec image is built when it is missing or was built from another
// busybox, and not again for the same one; an image a container uses is
// never removed; a dangling one is.
func TestDockerEnsureBusyboxImageBuildsOnlyWhenMissingOrChanged(t *testing.T) {
	env := dockertest.Require(t)
	ctx := context.Background()
	var rnd [4]byte
	rand.Read(rnd[:])
	ref := "llm-runtime-exec:test-" + hex.EncodeToString(rnd[:])
	bb := filepath.Join(t.TempDir(), "busybox")
	orig, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("the exec image needs Debian's busybox-static: %v", err)
	}
	// A busybox of its own (a static binary runs with bytes after its
	// end), so that its sum labels none of the images of other tests.
	orig = append(orig, rnd[:]...)
	if err := os.WriteFile(bb, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	built := func(img ours.Image, err error) ours.Image {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { exec.Command("docker", "rmi", "-f", img.ID).Run() })
		return img
	}
	// byBusybox returns the images of ours built from the busybox content b.
	byBusybox := func(b []byte) []ours.OurImage {
		t.Helper()
		s := sha256.Sum256(b)
		imgs, err := env.Docker.Images(ctx, []string{ref}, []string{ours.LabelBusybox + "=" + hex.EncodeToString(s[:])})
		if err != nil {
			t.Fatal(err)
		}
		return imgs
	}

	img, stale, err := env.Docker.EnsureBusyboxImage(ctx, bb, ref)
	first := built(img, err)
	if !first.Created || stale || first.Ref != ref {
		t.Fatalf("missing: %+v, stale %v", first, stale)
	}
	imgs := byBusybox(orig)
	if len(imgs) != 1 || imgs[0].ID != first.ID || !slices.Equal(imgs[0].Tags, []string{ref}) || !imgs[0].Current || imgs[0].Size < int64(len(orig)) || imgs[0].Labels[ours.LabelRole] != "exec" {
		t.Fatalf("listed: %+v", imgs)
	}

	again, stale, err := env.Docker.EnsureBusyboxImage(ctx, bb, ref)
	if err != nil || again.Created || stale || again.ID != first.ID {
		t.Fatalf("same busybox: %+v, stale %v, %v", again, stale, err)
	}

	changed := append(slices.Clone(orig), 0)
	if err := os.WriteFile(bb, changed, 0o755); err != nil {
		t.Fatal(err)
	}
	img, stale, err = env.Docker.EnsureBusyboxImage(ctx, bb, ref)
	second := built(img, err)
	if !second.Created || !stale || second.ID == first.ID {
		t.Fatalf("another busybox: %+v, stale %v (first %s)", second, stale, first.ID)
	}
	old := byBusybox(orig)
	if len(old) != 1 || len(old[0].Tags) != 0 || old[0].Current || old[0].Keep(false) != "" {
		t.Fatalf("the old image should be dangling and unused: %+v", old)
	}

	// A created container keeps the new one; Docker is never forced.
	name := "llm-runtime-io-test-" + hex.EncodeToString(rnd[:])
	args := []string{"create", "--name", name}
	for k, v := range env.Labels {
		args = append(args, "--label", k+"="+v)
	}
	if out, err := exec.Command("docker", append(args, ref, "/bin/true")...).CombinedOutput(); err != nil {
		t.Fatalf("docker create: %v\n%s", err, out)
	}
	t.Cleanup(func() { dockertest.ForceRemove(name) })
	cur := byBusybox(changed)
	if len(cur) != 1 || cur[0].Containers != 1 || cur[0].Keep(true) != "in use by 1 container" {
		t.Fatalf("in use: %+v", cur)
	}
	if _, err := env.Docker.RemoveImage(ctx, cur[0]); !errors.Is(err, ours.ErrImageInUse) {
		t.Fatalf("removing an image in use: %v", err)
	}
	if ok, err := env.Docker.HasImage(ctx, ref); !ok || err != nil {
		t.Fatalf("the image in use went: %v %v", ok, err)
	}

	if removed, err := env.Docker.RemoveImage(ctx, old[0]); !removed || err != nil {
		t.Fatalf("removing the dangling image: %v %v", removed, err)
	}
	if left := byBusybox(orig); len(left) != 0 {
		t.Fatalf("still there: %+v", left)
	}
	if removed, err := env.Docker.RemoveImage(ctx, old[0]); removed || err != nil {
		t.Fatalf("removing it again: %v %v", removed, err)
	}
}
