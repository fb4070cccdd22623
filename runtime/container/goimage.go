package container

// The Go exec image: the busybox exec image plus a Go installation, for
// <exec go test ./...>, built FROM scratch like every image of ours.

import (
	"archive/tar"
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// GoImageName is the default ref of the Go exec image, built by
// BuildGoImage; exec.image: llm-runtime-exec:go runs commands in it.
const GoImageName = "llm-runtime-exec:go"

// LabelGo, on the Go exec image, is the version of its Go (go1.26.8), so
// that EnsureGoImage can tell whether it is out of date.
const LabelGo = "io.llm-runtime.go"

// GoRecommended are the exec settings the Go exec image recommends
// (LabelRecommended), which apply unless the user set them: a first go
// test of a module compiles the module and its dependencies into the
// build cache (the standard library comes compiled and vetted, GoSeed:
// spf13/cobra's took 10-13 s on two CPUs, and an image without the seed
// 28 s to minutes, where the default 30 s kills it with nothing to show),
// the compiler and the linker need more than the default 512 MiB for a
// large package, and a build compiles packages in parallel (one CPU: 16-19
// s). Once the cache is warm, go test of an unchanged package takes ~1 s.
var GoRecommended = [][2]string{{"exec.timeout", "5m"}, {"exec.memory", "1GiB"}, {"exec.cpus", "2"}}

// goRoot is where the Go exec image holds the Go installation.
const goRoot = "/usr/local/go"

// GoSeed is where the Go exec image holds its seed: the standard library
// compiled, a build cache in package gocache's layout, read-only.
// A command's go reads it through the agent's cache program (GOCACHEPROG,
// see package gocache), and writes what it compiles into its repository's
// own cache: a new repository's first go test compiles its module and
// its dependencies, not the standard library. LabelGoSeed names it.
const GoSeed = "/usr/local/go-seed"

// LabelGoSeed, on an exec image, is the directory of its seed (GoSeed).
const LabelGoSeed = "io.llm-runtime.go-seed"

// LabelGoSeedHolds, on the Go exec image, says what its seed holds
// (goSeedHolds); an image whose seed holds less is built again.
const LabelGoSeedHolds = "io.llm-runtime.go-seed-holds"

// goSeedHolds is what compileSeed puts in the seed: the standard
// library compiled, and the vet facts go test computes of it.
const goSeedHolds = "build std; go test's vet facts of std"

// goParts are what the image takes of a Go installation: the go command
// and its tools, the standard library's sources, which every build
// compiles (into GOCACHE), and its data; not test/, api/, doc/ and misc/
// (~30 MB), which no build reads. The first goRequired must be there.
var goParts = []string{"bin", "pkg", "src", "lib", "go.env", "VERSION", "LICENSE", "PATENTS"}

const goRequired = 3

// goEnv is the Go exec image's ENV, which the agent passes on to each
// command (with the caches pointed at CacheMount):
//   - GOTOOLCHAIN=local: a go.mod's toolchain line cannot ask for a
//     download (there is no network);
//   - CGO_ENABLED=0: the image has no C compiler;
//   - GOPROXY=off: a module not in the cache fails at once, with "module
//     lookup disabled by GOPROXY=off", not after a network timeout; a
//     command can name a proxy of its own (file:///workspace/...);
//   - GOFLAGS=-modcacherw: the module cache is a directory of the host's
//     (under exec's state), and go makes it read-only, so that only chmod
//     -R would let its owner remove it.
//
// GOTELEMETRY is not set: go reads the telemetry mode from a file under
// $HOME/.config, never from the environment, and HOME is the command's
// own /tmp, so whatever it counts goes with the container, unsent.
const goEnv = "PATH=" + goRoot + "/bin:/bin GOTOOLCHAIN=local CGO_ENABLED=0 GOPROXY=off GOFLAGS=-modcacherw"

// goSource is what a Go exec image is built from.
type goSource struct {
	goroot  string // the Go installation, links resolved
	version string // its Go version: go1.26.8
	busybox []byte // the content of the static busybox
	applets []string
}

// readGoSource checks the Go installation at goroot and the static busybox
// at busybox, and returns what the image is built from.
func readGoSource(goroot, busybox string) (goSource, error) {
	root, err := filepath.EvalSymlinks(goroot)
	if err != nil {
		return goSource{}, fmt.Errorf("the Go installation %s: %v", goroot, err)
	}
	for _, part := range goParts[:goRequired] {
		if fi, err := os.Stat(filepath.Join(root, part)); err != nil || !fi.IsDir() {
			return goSource{}, fmt.Errorf("%s is not a Go installation: it has no %s/ (the directory that 'go env GOROOT' prints is one)", goroot, part)
		}
	}
	gobin := filepath.Join(root, "bin", "go")
	f, err := elf.Open(gobin)
	if err != nil {
		return goSource{}, fmt.Errorf("%s is not a Go installation: %v", goroot, err)
	}
	dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
	f.Close()
	if dynamic {
		return goSource{}, fmt.Errorf("%s is dynamically linked, and the image has no C library: its go must be static, as that of Go's own releases (go.dev/dl) is", gobin)
	}
	version, err := goVersion(root)
	if err != nil {
		return goSource{}, err
	}
	bin, err := readBusybox(busybox)
	if err != nil {
		return goSource{}, err
	}
	applets, err := busyboxApplets(busybox)
	if err != nil {
		return goSource{}, err
	}
	return goSource{goroot: root, version: version, busybox: bin, applets: applets}, nil
}

// goVersion returns the Go version of the installation at root: the first
// line of its VERSION file, or, for one built from a checkout (which has
// none), what its go says.
func goVersion(root string) (string, error) {
	if f, err := os.Open(filepath.Join(root, "VERSION")); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		if sc.Scan() && strings.HasPrefix(sc.Text(), "go") {
			return strings.TrimSpace(sc.Text()), nil
		}
	}
	cmd := exec.Command(filepath.Join(root, "bin", "go"), "env", "GOVERSION")
	cmd.Env = append(os.Environ(), "GOROOT="+root, "GOTOOLCHAIN=local")
	cmd.Dir = root // not a module whose go line asks for another Go
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("the Go version of %s: it has no VERSION file, and go env GOVERSION: %v", root, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// EnsureGoImage returns ref, the Go exec image built from the Go
// installation at goroot and the static busybox at busybox, building it if
// it is missing, was built from another Go version or busybox (its
// LabelGo or LabelBusybox differ), or by an llm-runtime whose image held
// another seed or recommended other limits (LabelGoSeed, LabelGoSeedHolds,
// LabelRecommended). stale says that it was there but built from another;
// img.Created, that it was built now.
func (d *Docker) EnsureGoImage(ctx context.Context, goroot, busybox, prog, ref string) (img Image, stale bool, err error) {
	src, err := readGoSource(goroot, busybox)
	if err != nil {
		return Image{}, false, err
	}
	id, labels, found, err := d.labelsOf(ctx, ref)
	if err != nil {
		return Image{}, false, err
	}
	if found && labels[LabelGo] == src.version && labels[LabelBusybox] == sum(src.busybox) && labels[LabelGoSeed] == GoSeed && labels[LabelGoSeedHolds] == goSeedHolds &&
		labels[LabelRecommended] == FormatRecommended(GoRecommended) {
		return Image{Ref: ref, ID: id}, false, nil
	}
	img, err = d.buildGo(ctx, src, prog, ref)
	return img, found, err
}

// BuildGoImage builds ref FROM scratch with what the busybox exec image
// holds (the static busybox at busybox, a link in /bin per applet, /tmp,
// /workspace, /etc) and the Go installation at goroot in /usr/local/go
// (see goParts), with goEnv for its environment. The image records the Go
// version in LabelGo and the busybox's SHA-256 in LabelBusybox. The build
// context (~250 MB) is streamed as it is read, never held in memory.
func (d *Docker) BuildGoImage(ctx context.Context, goroot, busybox, prog, ref string) (Image, error) {
	src, err := readGoSource(goroot, busybox)
	if err != nil {
		return Image{}, err
	}
	return d.buildGo(ctx, src, prog, ref)
}

func (d *Docker) buildGo(ctx context.Context, src goSource, prog, ref string) (Image, error) {
	var gobin []string
	if des, err := os.ReadDir(filepath.Join(src.goroot, "bin")); err == nil {
		for _, de := range des {
			if fi, err := os.Stat(filepath.Join(src.goroot, "bin", de.Name())); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
				gobin = append(gobin, goRoot+"/bin/"+de.Name())
			}
		}
	}
	seed, err := os.MkdirTemp("", "llm-runtime-go-seed-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(seed)
	if err := compileSeed(ctx, src.goroot, prog, seed); err != nil {
		return Image{}, fmt.Errorf("building %s: %v", ref, err)
	}
	dockerfile := "FROM scratch\nCOPY rootfs/ /\nENV " + goEnv + "\nCMD [\"/bin/sh\"]\n" +
		d.labelStep(map[string]string{LabelRole: "exec", LabelGo: src.version, LabelBusybox: sum(src.busybox),
			LabelPrograms: busyboxPrograms(src.applets, gobin...), LabelRecommended: FormatRecommended(GoRecommended), LabelGoSeed: GoSeed, LabelGoSeedHolds: goSeedHolds})
	// The context's own error, if writing it fails, says more than what
	// Docker makes of a request cut short.
	werr := make(chan error, 1)
	img, err := d.build(ctx, ref, streamTar(func(tw *tar.Writer) error {
		err := addFile(tw, "Dockerfile", 0o644, []byte(dockerfile))
		if err == nil {
			err = addBusybox(tw, src.busybox, src.applets)
		}
		if err == nil {
			err = addGoRoot(tw, src.goroot)
		}
		if err == nil {
			err = addTree(tw, "rootfs"+GoSeed, seed, readable) // read by the command's user
		}
		werr <- err
		return err
	}))
	if err != nil {
		select {
		case e := <-werr:
			if e != nil && !errors.Is(e, io.ErrClosedPipe) {
				return Image{}, fmt.Errorf("building %s: reading %s: %v", ref, src.goroot, e)
			}
		default:
		}
	}
	return img, err
}

// addGoRoot writes to tw, under rootfs/usr/local/go/, the goParts of the
// Go installation at root, with their modes, owned by root and dated 1970.
// Links are kept as links (a part that is itself a link, as some
// distributions' src/ is, is followed); anything but a regular file, a
// directory or a link is left out.
func addGoRoot(tw *tar.Writer, root string) error {
	epoch := time.Unix(0, 0)
	for _, dir := range []string{"rootfs/usr/", "rootfs/usr/local/", "rootfs" + goRoot + "/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	for i, part := range goParts {
		top, err := filepath.EvalSymlinks(filepath.Join(root, part))
		if errors.Is(err, fs.ErrNotExist) && i >= goRequired {
			continue
		}
		if err != nil {
			return err
		}
		if err := addTree(tw, "rootfs"+goRoot+"/"+part, top, nil); err != nil {
			return err
		}
	}
	return nil
}

// compileSeed compiles the standard library with the Go installation at
// goroot, as the image's go would (its environment, goEnv: the same
// GOOS, GOARCH, CGO_ENABLED=0), into dir, through the cache program of
// the llm-runtime binary prog (agent --gocacheprog: the layout package
// gocache reads). A standard library package's build is keyed by its
// sources and the compiler's own ID, never by GOROOT's path, so what
// this go compiles here the image's go, a copy of it, finds.
func compileSeed(ctx context.Context, goroot, prog, dir string) error {
	if strings.ContainsAny(prog, " \t\n'\"\\") {
		return fmt.Errorf("the path of llm-runtime, %q, has a space or a quote, which GOCACHEPROG cannot hold: run it from another directory", prog)
	}
	home, err := os.MkdirTemp("", "llm-runtime-go-home-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	env := append(strings.Fields(strings.ReplaceAll(goEnv, "PATH="+goRoot+"/bin", "PATH="+goroot+"/bin")),
		"GOROOT="+goroot, "GOCACHE="+filepath.Join(home, "cache"), "GOCACHEPROG="+prog+" agent --gocacheprog --gocache-dir="+dir, "HOME="+home, "GOPATH="+filepath.Join(home, "go"), "GOENV=off", "GOTELEMETRY=off")
	run := func(what, wd string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(goroot, "bin", "go"), args...)
		cmd.Dir, cmd.Env = wd, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("%s for the image's build cache (go %s): %v\n%s", what, strings.Join(args, " "), err, out)
		}
		return out, nil
	}
	if _, err := run("compiling the standard library", home, "build", "std"); err != nil {
		return err
	}
	// go test vets what it tests, and first computes the vet facts of
	// every package that imports, the standard library's included: a
	// third of a small module's first go test. Those facts are keyed by
	// the vet tool, the package's compiled output (the seed's) and its
	// imports' facts, never by the module that asks, so a module that
	// imports every package of the standard library, tested once here,
	// leaves them all in the seed.
	list, err := run("listing the standard library", home, "list", "std")
	if err != nil {
		return err
	}
	mod := filepath.Join(home, "seed")
	if err := os.Mkdir(mod, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module seed\n\ngo 1.21\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mod, "seed.go"), seedImports(string(list)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mod, "seed_test.go"), []byte("package seed\n\nimport \"testing\"\n\nfunc TestSeed(t *testing.T) {}\n"), 0o644); err != nil {
		return err
	}
	_, err = run("vetting the standard library", mod, "test", "-run=^$", ".")
	return err
}

// seedImports is a Go file of package seed that imports, for their side
// effects, the packages of list (go list std's output) that any module
// may import: not internal or vendored ones.
func seedImports(list string) []byte {
	var b strings.Builder
	b.WriteString("package seed\n\nimport (\n")
	for _, p := range strings.Fields(list) {
		if elems := strings.Split(p, "/"); slices.Contains(elems, "internal") || slices.Contains(elems, "vendor") {
			continue
		}
		fmt.Fprintf(&b, "\t_ %q\n", p)
	}
	b.WriteString(")\n")
	return []byte(b.String())
}

// addTree writes the directory dir to tw as name, owned by root and
// dated 1970, each file's information through info when it is not nil.
func addTree(tw *tar.Writer, name, dir string, info func(fs.FileInfo) fs.FileInfo) error {
	return filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		if info != nil {
			fi = info(fi)
		}
		return addGoFile(tw, filepath.ToSlash(filepath.Join(name, rel)), p, fi)
	})
}

// readable is fi with its permissions opened to all for reading (and
// searching, for a directory): a seed is read by the command's user.
func readable(fi fs.FileInfo) fs.FileInfo { return readableInfo{fi} }

type readableInfo struct{ fs.FileInfo }

func (r readableInfo) Mode() fs.FileMode {
	m := r.FileInfo.Mode()
	if m.IsDir() {
		return m | 0o755
	}
	return m | 0o444
}

// addGoFile writes the file at p, named name in the archive, to tw.
func addGoFile(tw *tar.Writer, name, p string, fi fs.FileInfo) error {
	link := ""
	switch mode := fi.Mode(); {
	case mode.IsRegular(), mode.IsDir():
	case mode&fs.ModeSymlink != 0:
		var err error
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	default:
		return nil // a socket, a FIFO, a device: not part of an installation
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	h.Name = name
	if fi.IsDir() {
		h.Name += "/"
	}
	h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
	h.ModTime, h.AccessTime, h.ChangeTime = time.Unix(0, 0), time.Time{}, time.Time{}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	// Exactly the size the header gives: a file that changes size while
	// it is read fails the build, rather than cutting the stream.
	if _, err := io.CopyN(tw, f, h.Size); errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: it was %d bytes, and shrank while it was read", p, h.Size)
	} else if err != nil {
		return fmt.Errorf("%s: %v", p, err)
	}
	return nil
}
