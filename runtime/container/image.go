package container

// The images: building the sandbox image and the busybox exec image, and
// finding, listing and removing the images of ours that pile up (a new
// binary builds a new sandbox image; a new busybox, a new exec image).

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// ExecImageName is the default exec image, built from busybox-static by
// BuildBusyboxImage.
const ExecImageName = "llm-runtime-exec:busybox"

// LabelBusybox, on an exec image, is the SHA-256 of the busybox it was
// built from, so that EnsureBusyboxImage can tell whether it is out of date.
const LabelBusybox = "io.llm-runtime.busybox-sha256"

// Our repositories: every image llm-runtime builds is tagged in one of them.
var ourRepos = []string{ImageName, strings.Split(ExecImageName, ":")[0]}

// ErrImageInUse wraps Docker's refusal to remove an image that a container
// uses or another image is built on.
var ErrImageInUse = errors.New("image in use")

// InspectImage returns the image for the agent binary at path, if it was
// built.
func (d *Docker) InspectImage(ctx context.Context, path string) (Image, bool, error) {
	ref, err := ImageRef(path)
	if err != nil {
		return Image{}, false, err
	}
	ii, err := d.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return Image{Ref: ref}, false, nil
	}
	if err != nil {
		return Image{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return Image{Ref: ref, ID: ii.ID}, true, nil
}

// EnsureImage returns the sandbox image for the agent binary at path,
// building it from scratch if it is not there. Nothing is pulled.
func (d *Docker) EnsureImage(ctx context.Context, path string) (Image, error) {
	if err := CheckStatic(path); err != nil {
		return Image{}, err
	}
	if img, ok, err := d.InspectImage(ctx, path); err != nil || ok {
		return img, err
	}
	return d.BuildImage(ctx, path)
}

// BuildImage builds the sandbox image for the agent binary at path.
func (d *Docker) BuildImage(ctx context.Context, path string) (Image, error) {
	ref, err := ImageRef(path)
	if err != nil {
		return Image{}, err
	}
	dockerfile := "FROM scratch\nCOPY llm-runtime /llm-runtime\nUSER 65534:65534\nENTRYPOINT [\"/llm-runtime\", \"agent\"]\n" +
		d.labelStep(map[string]string{LabelRole: "io"})
	ctxTar := streamContext(dockerfile, path)
	return d.build(ctx, ref, ctxTar)
}

// labelStep is the last line of the Dockerfile of every image of ours: one
// LABEL instruction with LabelApp, LabelVersion and the labels given. One
// step, so that only the image itself carries them, not the images of the
// build's steps (ImageBuildOptions.Labels, which earlier versions used,
// adds a step per label, in the order of their names).
func (d *Docker) labelStep(labels map[string]string) string {
	all := map[string]string{LabelApp: "1", LabelVersion: d.version}
	for k, v := range labels {
		all[k] = v
	}
	keys := slices.Sorted(maps.Keys(all))
	var b strings.Builder
	b.WriteString("LABEL")
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", dockerfileQuote(k), dockerfileQuote(all[k]))
	}
	b.WriteString("\n")
	return b.String()
}

// dockerfileQuote quotes s for a Dockerfile: in double quotes, with
// backslash, quote and dollar (variables are expanded) escaped, and line
// breaks made spaces.
func dockerfileQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "\n", " ", "\r", " ").Replace(s) + `"`
}

// build builds ref from a build context (a tar stream with a Dockerfile
// that ends with labelStep) with the classic builder, which needs no
// session and pulls nothing for FROM scratch.
//
// A buildContext that is an io.Closer is closed when the build is over,
// which stops whatever writes it.
func (d *Docker) build(ctx context.Context, ref string, buildContext io.Reader) (Image, error) {
	if c, ok := buildContext.(io.Closer); ok {
		defer c.Close()
	}
	res, err := d.cli.ImageBuild(ctx, buildContext, client.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return Image{}, fmt.Errorf("building %s: %w", ref, err)
	}
	id, err := readBuild(res.Body)
	if err != nil {
		return Image{}, fmt.Errorf("building %s: %w", ref, err)
	}
	return Image{Ref: ref, ID: id, Created: true}, nil
}

// streamContext returns a build context holding the Dockerfile and the
// binary at path as "llm-runtime", written as it is read, so the binary is
// never held in memory.
func streamContext(dockerfile, path string) *io.PipeReader {
	return streamTar(func(tw *tar.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := addFile(tw, "Dockerfile", 0o644, []byte(dockerfile)); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "llm-runtime", Mode: 0o755, Size: fi.Size(), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, f); err != nil {
			return err
		}
		return nil
	})
}

// streamTar returns a tar stream that write fills as it is read, so that
// a build context is never held in memory; the stream ends with write's
// error, if it fails, and write's next write fails once the reader is
// closed (build closes it when the build is over).
func streamTar(write func(*tar.Writer) error) *io.PipeReader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := write(tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// addFile writes a regular file with content data to tw, as the files of
// our images are: owned by root, dated 1970.
func addFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func readBuild(body io.ReadCloser) (string, error) {
	defer body.Close()
	dec := json.NewDecoder(body)
	var id string
	var log strings.Builder
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", err
		}
		if m.Error != nil {
			return "", fmt.Errorf("%s\n%s", m.Error.Message, log.String())
		}
		log.WriteString(m.Stream)
		if m.Aux != nil {
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
	if id == "" {
		return "", fmt.Errorf("no image id in the build output:\n%s", log.String())
	}
	return id, nil
}

// HasImage reports whether ref exists locally.
func (d *Docker) HasImage(ctx context.Context, ref string) (bool, error) {
	_, err := d.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return true, nil
}

// EnsureBusyboxImage returns ref, the exec image built from the static
// busybox at path, building it if it is missing or was built from another
// busybox (its LabelBusybox is not the SHA-256 of the file at path, or it
// has none: an older llm-runtime built it). stale says that it was there
// but built from another busybox; img.Created, that it was built now.
func (d *Docker) EnsureBusyboxImage(ctx context.Context, path, ref string) (img Image, stale bool, err error) {
	bin, err := readBusybox(path)
	if err != nil {
		return Image{}, false, err
	}
	id, labels, found, err := d.labelsOf(ctx, ref)
	if err != nil {
		return Image{}, false, err
	}
	if found && labels[LabelBusybox] == sum(bin) {
		return Image{Ref: ref, ID: id}, false, nil
	}
	img, err = d.buildBusybox(ctx, path, ref, bin)
	return img, found, err
}

// labelsOf returns the id and the labels of the image ref; found is false
// if there is none.
func (d *Docker) labelsOf(ctx context.Context, ref string) (id string, labels map[string]string, found bool, err error) {
	ii, err := d.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if ii.Config != nil {
		labels = ii.Config.Labels
	}
	return ii.ID, labels, true, nil
}

// BuildBusyboxImage builds ref FROM scratch with the static busybox at path
// and a link in /bin for each of its applets: a small image with a shell
// and the usual tools, made without pulling anything. The image records
// the busybox's SHA-256 in LabelBusybox.
func (d *Docker) BuildBusyboxImage(ctx context.Context, path, ref string) (Image, error) {
	bin, err := readBusybox(path)
	if err != nil {
		return Image{}, err
	}
	return d.buildBusybox(ctx, path, ref, bin)
}

// readBusybox returns the content of the static busybox at path.
func readBusybox(path string) ([]byte, error) {
	if err := CheckStatic(path); err != nil {
		return nil, fmt.Errorf("%v (on Debian: apt-get install busybox-static)", err)
	}
	return os.ReadFile(path)
}

// buildBusybox builds ref from bin, the content of the busybox at path.
func (d *Docker) buildBusybox(ctx context.Context, path, ref string, bin []byte) (Image, error) {
	applets, err := busyboxApplets(path)
	if err != nil {
		return Image{}, err
	}
	dockerfile := "FROM scratch\nCOPY rootfs/ /\nCMD [\"/bin/sh\"]\n" +
		d.labelStep(map[string]string{LabelRole: "exec", LabelBusybox: sum(bin), LabelPrograms: busyboxPrograms(applets)})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := addFile(tw, "Dockerfile", 0o644, []byte(dockerfile)); err != nil {
		return Image{}, err
	}
	if err := addBusybox(tw, bin, applets); err != nil {
		return Image{}, err
	}
	if err := tw.Close(); err != nil {
		return Image{}, err
	}
	return d.build(ctx, ref, &buf)
}

// busyboxApplets returns the applets of the busybox at path (busybox
// --list), each of which gets a link in the image's /bin.
func busyboxApplets(path string) ([]string, error) {
	list, err := exec.Command(path, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %v", path, err)
	}
	var applets []string
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" && !strings.Contains(applet, "/") {
			applets = append(applets, applet)
		}
	}
	return applets, nil
}

// busyboxPrograms is the LabelPrograms of an image that holds what
// addBusybox writes, and more: the paths of /bin (the one directory of
// Docker's default PATH that the image has).
func busyboxPrograms(applets []string, more ...string) string {
	progs := append([]string{}, more...)
	progs = append(progs, "/bin/busybox")
	for _, a := range applets {
		progs = append(progs, "/bin/"+a)
	}
	return strings.Join(progs, " ")
}

// addBusybox writes to tw, under rootfs/, what every exec image of ours
// holds: bin, the content of a static busybox, as /bin/busybox, a link to
// it in /bin for each applet, and the directories /tmp, /workspace and
// /etc.
func addBusybox(tw *tar.Writer, bin []byte, applets []string) error {
	epoch := time.Unix(0, 0)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir})
	}
	if err := dir("rootfs/bin/"); err != nil {
		return err
	}
	if err := addFile(tw, "rootfs/bin/busybox", 0o755, bin); err != nil {
		return err
	}
	for _, applet := range applets {
		if err := tw.WriteHeader(&tar.Header{Name: "rootfs/bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: epoch, Typeflag: tar.TypeSymlink}); err != nil {
			return err
		}
	}
	for _, name := range []string{"rootfs/tmp/", "rootfs/workspace/", "rootfs/etc/"} {
		if err := dir(name); err != nil {
			return err
		}
	}
	return nil
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// OurImage is an image of ours, as Images finds it.
type OurImage struct {
	ID      string
	Tags    []string // none: dangling (a rebuild moved its tag to a newer image)
	Size    int64    // bytes, all its layers
	Created time.Time
	Labels  map[string]string

	Current    bool     // tagged with one of the current refs given to Images
	Containers int      // containers, in any state, created from it
	Children   int      // images built FROM it
	Foreign    []string // its tags outside llm-runtime's repositories: someone adopted it
}

// Name is the image's first tag, or its short id when it has none.
func (i OurImage) Name() string {
	if len(i.Tags) > 0 {
		return i.Tags[0]
	}
	return ShortID(i.ID)
}

// Keep says why prune keeps the image ("" if it removes it): with all,
// only what Docker itself would refuse (a container uses it, an image is
// built on it) or what is not only ours (a tag of someone else's); without,
// also the current images.
func (i OurImage) Keep(all bool) string {
	var why []string
	if !all && i.Current {
		why = append(why, "current")
	}
	if i.Containers > 0 {
		why = append(why, "in use by "+plural(i.Containers, "container"))
	}
	if i.Children > 0 {
		why = append(why, "the base of "+plural(i.Children, "image"))
	}
	if len(i.Foreign) > 0 {
		why = append(why, "also tagged "+strings.Join(i.Foreign, ", "))
	}
	return strings.Join(why, ", ")
}

// Prunable returns the images that prune removes, in the order given:
// those that Keep(all) keeps for no reason.
func Prunable(images []OurImage, all bool) []OurImage {
	var out []OurImage
	for _, i := range images {
		if i.Keep(all) == "" {
			out = append(out, i)
		}
	}
	return out
}

// SelectImages is the pure core of Images: from every image Docker lists
// (with All, so that the images an image was built on are there too) and
// every container, it picks the images of ours that carry every label of
// match ("KEY" or "KEY=VALUE"), newest first, and says of each whether it
// is current (tagged with one of current), which containers use it and
// which images are built on it.
//
// An image is ours when all of these hold, each checked on the image
// itself, never on its name:
//   - it carries LabelApp=1 and LabelVersion, as every image llm-runtime
//     builds, in the last step of its build. (Earlier versions added a
//     step per label, in the order of their names, LabelVersion last: so
//     the images of a build's steps, which the classic builder keeps as
//     the parents of the image, are not taken for images of ours);
//   - it has exactly one layer (layers[ID]; an image missing from layers
//     is not ours), as every image llm-runtime builds: FROM scratch and
//     one COPY. An image built FROM one of ours inherits our labels, but
//     has layers of its own;
//   - no image it was built on (following ParentID, which the classic
//     builder records) carries LabelApp=1 and LabelVersion: that catches
//     an image built on one of ours that adds no layer.
func SelectImages(images []image.Summary, layers map[string]int, containers []container.Summary, current, match []string) []OurImage {
	byID := make(map[string]image.Summary, len(images))
	children := make(map[string]int)
	for _, im := range images {
		byID[im.ID] = im
		if im.ParentID != "" {
			children[im.ParentID]++
		}
	}
	used := make(map[string]int)
	for _, c := range containers {
		used[c.ImageID]++
	}
	var out []OurImage
	for _, im := range images {
		if !candidate(im, byID, match) || layers[im.ID] != 1 {
			continue
		}
		o := OurImage{
			ID:         im.ID,
			Size:       im.Size,
			Created:    time.Unix(im.Created, 0),
			Labels:     im.Labels,
			Containers: used[im.ID],
			Children:   children[im.ID],
		}
		for _, t := range im.RepoTags {
			if t == "<none>:<none>" {
				continue
			}
			o.Tags = append(o.Tags, t)
			if slices.Contains(current, t) {
				o.Current = true
			}
			if repo, _, _ := strings.Cut(t, ":"); !slices.Contains(ourRepos, repo) {
				o.Foreign = append(o.Foreign, t)
			}
		}
		sort.Strings(o.Tags)
		out = append(out, o)
	}
	sort.SliceStable(out, func(a, b int) bool {
		if !out[a].Created.Equal(out[b].Created) {
			return out[a].Created.After(out[b].Created)
		}
		return out[a].ID < out[b].ID
	})
	return out
}

// candidate reports whether im carries our labels and every label of
// match, and none of the images it was built on carries ours: all
// that SelectImages asks of an image of ours but its layers, which cost a
// round trip each.
func candidate(im image.Summary, byID map[string]image.Summary, match []string) bool {
	if !labelledOurs(im.Labels) || !MatchLabels(im.Labels, match) {
		return false
	}
	seen := map[string]bool{im.ID: true}
	for p := im.ParentID; p != "" && !seen[p]; p = byID[p].ParentID {
		seen[p] = true
		if labelledOurs(byID[p].Labels) {
			return false
		}
	}
	return true
}

// labelledOurs reports whether labels are those of an image llm-runtime
// built: LabelApp=1 and a LabelVersion.
func labelledOurs(labels map[string]string) bool {
	_, ok := labels[LabelVersion]
	return ok && labels[LabelApp] == "1"
}

// MatchLabels reports whether labels has every label of match: "KEY"
// (any value) or "KEY=VALUE".
func MatchLabels(labels map[string]string, match []string) bool {
	for _, m := range match {
		k, v, hasValue := strings.Cut(m, "=")
		got, ok := labels[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	return true
}

// Images returns the images of ours (see SelectImages) that carry every
// label of match ("KEY" or "KEY=VALUE"), newest first; those tagged with
// one of current are marked current.
func (d *Docker) Images(ctx context.Context, current, match []string) ([]OurImage, error) {
	il, err := d.cli.ImageList(ctx, client.ImageListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	cl, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	byID := make(map[string]image.Summary, len(il.Items))
	for _, im := range il.Items {
		byID[im.ID] = im
	}
	layers := make(map[string]int)
	for _, im := range il.Items {
		if !candidate(im, byID, match) {
			continue
		}
		ii, err := d.cli.ImageInspect(ctx, im.ID)
		if cerrdefs.IsNotFound(err) {
			continue // removed since the list
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		layers[im.ID] = len(ii.RootFS.Layers)
	}
	return SelectImages(il.Items, layers, cl.Items, current, match), nil
}

// RemoveImage removes an image of ours: its tags, then the image itself and
// the untagged images it was built on (the classic builder's steps). It
// never forces, so Docker refuses, with an error that wraps ErrImageInUse,
// if a container uses the image or another image is built on it. It
// removes by id, so it removes the very image that was listed, even if
// its tag has moved since. removed is false if the image was gone already.
func (d *Docker) RemoveImage(ctx context.Context, img OurImage) (removed bool, err error) {
	fail := func(err error) (bool, error) {
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		if cerrdefs.IsConflict(err) {
			return false, fmt.Errorf("removing %s: %w: %v", img.Name(), ErrImageInUse, err)
		}
		return false, fmt.Errorf("%w: removing %s: %v", ErrUnavailable, img.Name(), err)
	}
	// Docker refuses to remove by id an image with several tags; with one
	// it removes the tag and the image at once, after checking that no
	// container uses it. So the other tags go first: if a container took
	// to the image since it was listed, the image stays, without them.
	for _, t := range img.Tags[min(1, len(img.Tags)):] {
		if _, err := d.cli.ImageRemove(ctx, t, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fail(err)
		}
	}
	res, err := d.cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{PruneChildren: true})
	if err != nil {
		return fail(err)
	}
	for _, r := range res.Items {
		if r.Deleted == img.ID {
			return true, nil
		}
	}
	return false, fmt.Errorf("removing %s: Docker untagged it but did not delete it", img.Name())
}

// ShortID is the first 12 hex digits of an image or container id.
func ShortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}

// plural is "1 image", "2 images".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// PushRef is where Push pushes img when asked for ref: ref, which must
// name a registry and not a digest, with img's tag if it has none.
func PushRef(img, ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("%q: %v", ref, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return "", fmt.Errorf("%q: push to a tag, not a digest", ref)
	}
	if first := strings.SplitN(ref, "/", 2)[0]; !strings.ContainsAny(first, ".:") && first != "localhost" || !strings.Contains(ref, "/") {
		return "", fmt.Errorf("%q names no registry: write REGISTRY/NAME[:TAG] (registry.example.com/llm-runtime-io, 127.0.0.1:5000/llm-runtime-io)", ref)
	}
	if _, ok := named.(reference.Tagged); !ok {
		_, tag, _ := strings.Cut(img, ":")
		if tag == "" {
			tag = "latest"
		}
		if named, err = reference.WithTag(named, tag); err != nil {
			return "", err
		}
	}
	return reference.FamiliarString(named), nil
}

// PushResult is what Push pushed.
type PushResult struct {
	Ref    string // as pushed: REGISTRY/NAME:TAG
	Digest string // the manifest's, sha256:...
	Size   int64  // the image's
}

// Push pushes the image img (an image of ours) as ref, a reference on a
// registry (its tag defaulting to img's), through the daemon, with the
// registry credentials auth (the base64 JSON of the Engine API's X-Registry-Auth,
// "" for none): it tags img as ref, pushes, and removes that tag again, so
// that the image stays llm-runtime's alone (image prune removes images
// that carry another name of someone's). progress gets each line of the
// daemon's progress.
func (d *Docker) Push(ctx context.Context, img, ref, auth string, progress func(string)) (PushResult, error) {
	ref, err := PushRef(img, ref)
	if err != nil {
		return PushResult{}, err
	}
	ii, err := d.cli.ImageInspect(ctx, img)
	if err != nil {
		return PushResult{}, fmt.Errorf("%w: the image %s: %v", ErrUnavailable, img, err)
	}
	if _, err := d.cli.ImageTag(ctx, client.ImageTagOptions{Source: img, Target: ref}); err != nil {
		return PushResult{}, fmt.Errorf("%w: tagging %s as %s: %v", ErrUnavailable, img, ref, err)
	}
	defer d.cli.ImageRemove(context.WithoutCancel(ctx), ref, client.ImageRemoveOptions{})
	if auth == "" {
		auth = base64.URLEncoding.EncodeToString([]byte("{}")) // anonymous: the daemon wants the header all the same
	}
	res, err := d.cli.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: auth})
	if err != nil {
		return PushResult{}, fmt.Errorf("%w: pushing %s: %v", ErrUnavailable, ref, err)
	}
	defer res.Close()
	out := PushResult{Ref: ref, Size: ii.Size}
	for m, err := range res.JSONMessages(ctx) {
		if err != nil {
			return PushResult{}, fmt.Errorf("pushing %s: %v", ref, err)
		}
		if m.Error != nil {
			return PushResult{}, fmt.Errorf("pushing %s: %s", ref, m.Error.Message)
		}
		line := strings.TrimSpace(m.ID + " " + m.Status)
		if i := strings.Index(m.Status, "digest: "); i >= 0 {
			out.Digest = strings.Fields(m.Status[i+len("digest: "):])[0]
		}
		if progress != nil && line != "" && m.Progress == nil {
			progress(line)
		}
	}
	if out.Digest == "" {
		return PushResult{}, fmt.Errorf("pushing %s: the daemon reported no digest", ref)
	}
	return out, nil
}
