package main

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

type imageCmd struct {
	Build  imageBuildCmd  `cmd:"" help:"Build the sandbox image (it is also built on first use), the busybox exec image, or the exec image with Go, unless it is already built."`
	Status imageStatusCmd `cmd:"" help:"Show Docker, this binary's sandbox image, and every image and container of ours."`
	Prune  imagePruneCmd  `cmd:"" help:"Remove our images that no container uses, except the current ones (--all: those too)."`
	Push   imagePushCmd   `cmd:"" help:"Push the sandbox image (or an exec image) to a registry, for a cluster to pull (see kubernetes manifests)."`
}

type imagePushCmd struct {
	Ref   string `arg:"" placeholder:"REGISTRY/NAME[:TAG]" help:"Where to push it: a registry and a name; the tag defaults to the image's own."`
	Which string `default:"sandbox" enum:"sandbox,exec,go" help:"Which image: sandbox (this binary's, built if missing), exec (llm-runtime-exec:busybox) or go (llm-runtime-exec:go)."`
}

func (imagePushCmd) Help() string {
	return `The Docker daemon pushes the image, with the credentials that 'docker login'
wrote to ~/.docker/config.json ($DOCKER_CONFIG) for that registry, if any (a
credential helper's are not read: use docker push then). The image is tagged
with the name only for the push, so that it stays an image of ours. It
prints the reference to give to 'llm-runtime kubernetes manifests --image'.

Examples:

  llm-runtime image push registry.example.com/llm-runtime-io
  llm-runtime image push 127.0.0.1:5000/tools/llm-runtime-io:v1`
}

func (p imagePushCmd) Run(e env) error {
	d, bin, err := dockerAndAgent(e.ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	img := map[string]string{"exec": container.ExecImageName, "go": container.GoImageName}[p.Which]
	if p.Which == "sandbox" {
		built, err := d.EnsureImage(e.ctx, bin)
		if err != nil {
			return fail(exitSandbox, "%v", err)
		}
		img = built.Ref
	}
	if _, err := container.PushRef(img, p.Ref); err != nil {
		return fail(exitUsage, "%v", err)
	}
	auth, err := registryAuth(e, p.Ref)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	res, err := d.Push(e.ctx, img, p.Ref, auth, func(line string) { fmt.Fprintln(e.stderr, line) })
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	fmt.Fprintf(e.stdout, "pushed %s as %s@%s (%s)\n", img, res.Ref, res.Digest, sandbox.FormatSize(res.Size))
	fmt.Fprintf(e.stdout, "next: llm-runtime kubernetes manifests --image %s@%s | kubectl apply -f -\n", res.Ref, res.Digest)
	return nil
}

// registryAuth returns the X-Registry-Auth for the registry of ref from the
// docker CLI's configuration file, "" when it has none.
func registryAuth(e env, ref string) (string, error) {
	host := strings.SplitN(ref, "/", 2)[0]
	dir := e.getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", nil
		}
		dir = filepath.Join(home, ".docker")
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return "", nil
	}
	var cfg struct {
		Auths       map[string]struct{ Auth string } `json:"auths"`
		CredsStore  string                           `json:"credsStore"`
		CredHelpers map[string]string                `json:"credHelpers"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("%s: %v", filepath.Join(dir, "config.json"), err)
	}
	a, ok := cfg.Auths[host]
	if !ok || a.Auth == "" {
		if cfg.CredHelpers[host] != "" || cfg.CredsStore != "" {
			return "", fmt.Errorf("the credentials for %s are in a credential helper, which llm-runtime does not run: push with docker push", host)
		}
		return "", nil
	}
	up, err := base64.StdEncoding.DecodeString(a.Auth)
	user, pass, found := strings.Cut(string(up), ":")
	if err != nil || !found {
		return "", fmt.Errorf("%s: the auth of %s is not base64 of USER:PASSWORD", filepath.Join(dir, "config.json"), host)
	}
	j, _ := json.Marshal(map[string]string{"username": user, "password": pass, "serveraddress": host})
	return base64.URLEncoding.EncodeToString(j), nil
}

func (imageCmd) Help() string {
	return `The images of ours: the sandbox image, llm-runtime-io:<first 16 hex of the
binary's SHA-256>, one per binary, the default exec image,
llm-runtime-exec:busybox, and the exec image with Go, llm-runtime-exec:go
(exec.image: llm-runtime-exec:go). Each new binary builds a new one and leaves
the old behind: 'image status' lists them with their sizes, 'image prune'
removes those no longer used.

Examples:

  llm-runtime image build && llm-runtime image build exec
  llm-runtime image build go
  llm-runtime image status
  llm-runtime image prune --dry-run`
}

type imageBuildCmd struct {
	Force   bool   `help:"Build even if the image is already built (for exec and go: from the same busybox, and Go)."`
	Which   string `arg:"" optional:"" enum:"sandbox,exec,go" default:"sandbox" help:"sandbox (the agent's image, llm-runtime-io), exec (the default exec image, llm-runtime-exec:busybox, from a static busybox) or go (an exec image with Go, llm-runtime-exec:go)."`
	Busybox string `default:"/bin/busybox" placeholder:"PATH" help:"The static busybox of the exec and go images (Debian: apt-get install busybox-static)."`
	GoRoot  string `name:"goroot" placeholder:"DIR" help:"For go: the Go installation the image holds. Default: what 'go env GOROOT' prints."`
	Tag     string `placeholder:"REF" help:"For exec and go: the image's name. Default: llm-runtime-exec:busybox, llm-runtime-exec:go."`
}

func (imageBuildCmd) Help() string {
	return `The sandbox image, llm-runtime-io:<first 16 hex of this binary's SHA-256>, is
FROM scratch plus this binary; a run builds it on first use, so this only
saves that run the few seconds. The exec image, llm-runtime-exec:busybox, is
FROM scratch plus a static busybox and a link per applet, and records the
busybox's SHA-256 in its label io.llm-runtime.busybox-sha256 and the programs
on its PATH in io.llm-runtime.programs.

The go image, llm-runtime-exec:go, is the exec image plus a Go installation
in /usr/local/go (bin, pkg, src, lib: ~220 MB; not test, api, doc, misc),
copied from --goroot (default: 'go env GOROOT'), whose go must be statically
linked, as Go's own releases are. Its go runs with GOTOOLCHAIN=local,
CGO_ENABLED=0, GOPROXY=off (a module must be in the cache already, come
from a proxy in the repository, GOPROXY=file:///..., or, with exec.network
allowlist, from a proxy it lists: env GOPROXY=https://proxy.golang.org) and
GOFLAGS=-modcacherw; its build and module caches persist per repository, so
a second 'go test' is "(cached)". The build also compiles the standard
library (go build std, through this binary's cache program) and the vet
facts go test computes of it into the image, /usr/local/go-seed (label
io.llm-runtime.go-seed): a command's go reads it, read-only, under the
repository's own cache, so a repository's first 'go test' compiles and vets
its module and dependencies only (spf13/cobra: 11-13 s on two CPUs, against
24 s with the standard library alone seeded; its second: 4 s). It records the
Go version in its label io.llm-runtime.go, the programs on its PATH in
io.llm-runtime.programs (the prompt lists only the whitelisted commands an
image can run), and the limits it needs in io.llm-runtime.exec.recommended:
exec.timeout 5m, exec.memory 1GiB and exec.cpus 2, which apply unless you
set them ('llm-runtime config' says where each value came from). The whitelist is
yours to set; the default one fits the busybox image and has no go. To run
the go command in it, configure exec with it:

  exec:
    enabled: true
    image: llm-runtime-exec:go
    whitelist: [go build, go vet, go test, ls, cat, grep]

Each is built only when it is missing (for exec and go: also when the busybox,
or the Go version, differs from the one it was built from, or a go image has
no compiled standard library), or with --force.
Nothing is pulled. A new binary, busybox or Go leaves the old image behind:
'llm-runtime image prune' removes it. --tag names the exec or go image
otherwise; only the default names count as current for prune, and a name
outside llm-runtime-exec makes the image yours: prune leaves it alone.

Examples:

  llm-runtime image build
  llm-runtime image build exec                      # from /bin/busybox
  llm-runtime image build exec --busybox ~/bin/busybox --force
  llm-runtime image build go                        # from 'go env GOROOT'
  llm-runtime image build go --goroot ~/sdk/go1.26.0 --tag llm-runtime-exec:go1.26.0`
}

func (b imageBuildCmd) Run(e env) error {
	switch {
	case b.Which != "go" && b.GoRoot != "":
		return fail(exitUsage, "--goroot is for 'image build go'")
	case b.Which == "sandbox" && b.Tag != "":
		return fail(exitUsage, "--tag is for 'image build exec' and 'image build go': the sandbox image's name is its binary's SHA-256")
	}
	goroot := b.GoRoot
	if b.Which == "go" && goroot == "" {
		var err error
		if goroot, err = defaultGoRoot(e); err != nil {
			return err
		}
	}
	d, bin, err := dockerAndAgent(e.ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	start := time.Now()
	var img container.Image
	stale := false
	switch b.Which {
	case "exec":
		ref := cmp.Or(b.Tag, container.ExecImageName)
		if b.Force {
			img, err = d.BuildBusyboxImage(e.ctx, b.Busybox, ref)
		} else {
			img, stale, err = d.EnsureBusyboxImage(e.ctx, b.Busybox, ref)
		}
		if err != nil {
			return fail(exitSandbox, "%v", err)
		}
		reportBuild(e, img, stale, start, b.Busybox, "busybox")
		return nil
	case "go":
		ref := cmp.Or(b.Tag, container.GoImageName)
		// This binary's agent compiles the image's standard library
		// through its cache program (the image's seed).
		self, err := os.Executable()
		if err != nil {
			return fail(exitSandbox, "the path of this llm-runtime: %v", err)
		}
		if b.Force {
			img, err = d.BuildGoImage(e.ctx, goroot, b.Busybox, self, ref)
		} else {
			img, stale, err = d.EnsureGoImage(e.ctx, goroot, b.Busybox, self, ref)
		}
		if err != nil {
			return fail(exitSandbox, "%v", err)
		}
		reportBuild(e, img, stale, start, goroot+" and "+b.Busybox, "Go or busybox, or by another version of llm-runtime")
		var rec []string
		for _, r := range container.GoRecommended {
			rec = append(rec, r[0]+" "+r[1])
		}
		fmt.Fprintf(e.stdout, "it recommends %s (its label %s): a first go test compiles the module and its dependencies (the standard library comes compiled, in the image), which takes tens of seconds on a loaded machine; these apply unless you set them\n",
			strings.Join(rec, ", "), container.LabelRecommended)
		fmt.Fprintf(e.stdout, "to run commands in it, set in llm-runtime.config.yaml:\n  exec:\n    enabled: true\n    image: %s\n    whitelist: [go build, go vet, go test, ls, cat, grep, find, head, tail, wc]\n", img.Ref)
		return nil
	}
	if b.Force {
		img, err = d.BuildImage(e.ctx, bin)
	} else {
		img, err = d.EnsureImage(e.ctx, bin)
	}
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	if img.Created {
		fmt.Fprintf(e.stdout, "built %s (%s) in %.1fs\n", img.Ref, container.ShortID(img.ID), time.Since(start).Seconds())
	} else {
		fmt.Fprintf(e.stdout, "%s (%s) is already built; --force builds it again\n", img.Ref, container.ShortID(img.ID))
	}
	return nil
}

// reportBuild says what building an exec image from from (its busybox,
// its Go) did: nothing, it was there; or built it, in place of one built
// from another what (stale).
func reportBuild(e env, img container.Image, stale bool, start time.Time, from, what string) {
	switch {
	case !img.Created:
		fmt.Fprintf(e.stdout, "%s (%s) is already built from %s; --force builds it again\n", img.Ref, container.ShortID(img.ID), from)
	case stale:
		fmt.Fprintf(e.stdout, "built %s (%s) from %s in %.1fs: the image there was built from another %s\n", img.Ref, container.ShortID(img.ID), from, time.Since(start).Seconds(), what)
	default:
		fmt.Fprintf(e.stdout, "built %s (%s) from %s in %.1fs\n", img.Ref, container.ShortID(img.ID), from, time.Since(start).Seconds())
	}
}

// defaultGoRoot is the Go installation of 'image build go' without
// --goroot: what 'go env GOROOT' prints, else the one this binary was
// built with, if it knows (a -trimpath build does not).
func defaultGoRoot(e env) (string, error) {
	if _, err := exec.LookPath("go"); err == nil {
		cmd := exec.CommandContext(e.ctx, "go", "env", "GOROOT")
		cmd.Env = e.environ
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && len(ee.Stderr) > 0 {
				err = fmt.Errorf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
			}
			return "", fail(exitUsage, "go env GOROOT: %v; name the Go installation with --goroot DIR", err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if root := runtime.GOROOT(); root != "" {
		return root, nil
	}
	return "", fail(exitUsage, "no Go installation to copy: go is not on PATH; name one with --goroot DIR (Go's releases unpack to /usr/local/go)")
}

// imageFilter is the --filter flag of status and prune.
type imageFilter struct {
	Filter []string `placeholder:"label=KEY[=VALUE]" sep:"none" help:"Only images (and containers) with this label; repeatable, all must match."`
}

// labels returns the filter's labels, KEY or KEY=VALUE.
func (f imageFilter) labels() ([]string, error) {
	var out []string
	for _, s := range f.Filter {
		l, ok := strings.CutPrefix(s, "label=")
		if k, _, _ := strings.Cut(l, "="); !ok || k == "" {
			return nil, fail(exitUsage, "--filter %s: the filter is label=KEY or label=KEY=VALUE", s)
		}
		out = append(out, l)
	}
	return out, nil
}

// ourImages returns the images of ours that carry every label of match,
// with this binary's sandbox image and the default exec and go images
// marked current.
func ourImages(e env, d *container.Docker, bin string, match []string) ([]container.OurImage, error) {
	ref, err := container.ImageRef(bin)
	if err != nil {
		return nil, fail(exitSandbox, "%v", err)
	}
	imgs, err := d.Images(e.ctx, []string{ref, container.ExecImageName, container.GoImageName}, match)
	if err != nil {
		return nil, fail(exitSandbox, "%v", err)
	}
	return imgs, nil
}

type imageStatusCmd struct {
	imageFilter
}

func (imageStatusCmd) Help() string {
	return `Shows the Docker version, this binary and its sandbox image, then every image
of ours (labelled io.llm-runtime=1 and built by llm-runtime) with its id, size,
creation time and state, and their total, then every container of ours.

An image's state is one or more of: current (this binary's sandbox image, or
the image tagged llm-runtime-exec:busybox or llm-runtime-exec:go), in use by N containers (in any
state), the base of N images (built FROM it), also tagged NAME (a name of
someone else's), or unused. 'llm-runtime image prune' removes the unused ones.

Examples:

  llm-runtime image status
  llm-runtime image status --filter label=io.llm-runtime.role=exec`
}

func (s imageStatusCmd) Run(e env) error {
	match, err := s.labels()
	if err != nil {
		return err
	}
	d, bin, err := dockerAndAgent(e.ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	img, ok, err := d.InspectImage(e.ctx, bin)
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	server, err := d.ServerVersion(e.ctx)
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	fmt.Fprintf(e.stdout, "Docker:     %s\n", server)
	fmt.Fprintf(e.stdout, "Agent:      %s\n", filepath.Clean(bin))
	if ok {
		fmt.Fprintf(e.stdout, "Image:      %s (%s), built\n", img.Ref, container.ShortID(img.ID))
	} else {
		fmt.Fprintf(e.stdout, "Image:      %s, not built yet (llm-runtime image build)\n", img.Ref)
	}
	imgs, err := ourImages(e, d, bin, match)
	if err != nil {
		return err
	}
	var total int64
	for _, im := range imgs {
		total += im.Size
	}
	fmt.Fprintf(e.stdout, "Images:     %s of ours, %s\n", plural(len(imgs), "image"), sandbox.FormatSize(total))
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, im := range imgs {
		name := im.Name()
		if len(im.Tags) == 0 {
			name = "<untagged>"
		} else if len(im.Tags) > 1 {
			name = strings.Join(im.Tags, ",")
		}
		state := im.Keep(false)
		if state == "" {
			state = "unused"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", name, container.ShortID(im.ID), sandbox.FormatSize(im.Size), im.Created.Local().Format("2006-01-02 15:04"), state)
	}
	tw.Flush()
	if prune := container.Prunable(imgs, false); len(prune) > 0 {
		var size int64
		for _, im := range prune {
			size += im.Size
		}
		them := "them"
		if len(prune) == 1 {
			them = "it"
		}
		fmt.Fprintf(e.stdout, "Unused:     %s, %s: llm-runtime image prune removes %s\n", plural(len(prune), "image"), sandbox.FormatSize(size), them)
	}
	items, err := d.Ours(e.ctx, "", "")
	if err != nil {
		return fail(exitSandbox, "%v", err)
	}
	var shown int
	var lines strings.Builder
	for _, it := range items {
		if !container.MatchLabels(it.Labels, match) {
			continue
		}
		shown++
		name := strings.TrimPrefix(strings.Join(it.Names, ","), "/")
		fmt.Fprintf(&lines, "  %s  %s  owner pid %s  %s\n", container.ShortID(it.ID), name, it.Labels[container.LabelOwnerPID], it.Status)
	}
	fmt.Fprintf(e.stdout, "Containers: %d\n%s", shown, lines.String())
	return nil
}

type imagePruneCmd struct {
	All    bool `help:"Remove the current images too: every image of ours that no container uses."`
	DryRun bool `name:"dry-run" short:"n" help:"Say what would be removed, and remove nothing."`
	imageFilter
}

func (imagePruneCmd) Help() string {
	return `Every new llm-runtime binary builds a new sandbox image, and every new busybox a
new exec image; the old ones stay behind. Prune removes the images of ours that
no container uses (in any state), except this binary's sandbox image and the
images tagged llm-runtime-exec:busybox and llm-runtime-exec:go; an exec image
left untagged by a rebuild is removed. With --all, the current images go too
(a later run builds its sandbox image again; 'llm-runtime image build exec'
and 'llm-runtime image build go' the exec images).

An image is ours when it carries the label io.llm-runtime=1 and is one that
llm-runtime built (a single layer, not built on another of ours): an image
you built FROM one of ours inherits the label but is never removed, nor is
one of ours that you tagged with a name of your own, nor one an image of
yours is built on. Nothing is forced: Docker refuses to remove an image a
container uses.

It prints each image it removes (its name, or its id if it has none, and
its size) and the space freed; with --dry-run, what it would remove.

Examples:

  llm-runtime image prune --dry-run
  llm-runtime image prune
  llm-runtime image prune --all
  llm-runtime image prune --filter label=io.llm-runtime.version=v0.3.0`
}

func (p imagePruneCmd) Run(e env) error {
	match, err := p.labels()
	if err != nil {
		return err
	}
	d, bin, err := dockerAndAgent(e.ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	imgs, err := ourImages(e, d, bin, match)
	if err != nil {
		return err
	}
	prune := container.Prunable(imgs, p.All)
	kept := len(imgs) - len(prune)
	if len(prune) == 0 {
		all := "all "
		if len(imgs) == 1 {
			all = ""
		}
		switch {
		case len(imgs) == 0 && len(match) > 0:
			label := "label"
			if len(match) > 1 {
				label = "labels"
			}
			fmt.Fprintf(e.stdout, "nothing to remove: no image of ours has the %s %s\n", label, strings.Join(match, " and "))
		case len(imgs) == 0:
			fmt.Fprintln(e.stdout, "nothing to remove: there is no image of ours")
		case p.All:
			fmt.Fprintf(e.stdout, "nothing to remove: %s of ours, %sin use ('llm-runtime image status' says by what)\n", plural(len(imgs), "image"), all)
		default:
			fmt.Fprintf(e.stdout, "nothing to remove: %s of ours, %scurrent or in use ('llm-runtime image status' says which; --all removes the current ones too)\n", plural(len(imgs), "image"), all)
		}
		return nil
	}
	var freed int64
	removed := 0
	for _, im := range prune {
		what := fmt.Sprintf("%s (%s, %s)", im.Name(), container.ShortID(im.ID), sandbox.FormatSize(im.Size))
		if len(im.Tags) == 0 {
			what = fmt.Sprintf("%s (untagged, %s)", container.ShortID(im.ID), sandbox.FormatSize(im.Size))
		}
		if p.DryRun {
			fmt.Fprintf(e.stdout, "would remove %s\n", what)
			freed += im.Size
			removed++
			continue
		}
		ok, err := d.RemoveImage(e.ctx, im)
		switch {
		case errors.Is(err, container.ErrImageInUse):
			fmt.Fprintf(e.stdout, "kept %s: in use since it was listed\n", what)
			kept++
		case err != nil:
			fmt.Fprintf(e.stdout, "freed %s (%s)\n", sandbox.FormatSize(freed), plural(removed, "image"))
			return fail(exitSandbox, "%v", err)
		case !ok:
			fmt.Fprintf(e.stdout, "%s was gone already\n", what)
		default:
			fmt.Fprintf(e.stdout, "removed %s\n", what)
			freed += im.Size
			removed++
			// Copy mode's exec took the agent from a volume filled from
			// this image: it goes with it.
			for _, t := range im.Tags {
				if tag, ok := strings.CutPrefix(t, container.ImageName+":"); ok {
					if ok, _ := d.RemoveVolume(e.ctx, container.AgentVolumePrefix+tag); ok {
						fmt.Fprintf(e.stdout, "removed the volume %s%s\n", container.AgentVolumePrefix, tag)
					}
				}
			}
		}
	}
	keptNote := ""
	if kept > 0 {
		keptNote = fmt.Sprintf("; kept %d ('llm-runtime image status' says why)", kept)
	}
	if p.DryRun {
		fmt.Fprintf(e.stdout, "would free %s (%s)%s; nothing was removed (--dry-run)\n", sandbox.FormatSize(freed), plural(removed, "image"), keptNote)
		return nil
	}
	fmt.Fprintf(e.stdout, "freed %s (%s)%s\n", sandbox.FormatSize(freed), plural(removed, "image"), keptNote)
	return nil
}
