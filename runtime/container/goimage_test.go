package container_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

var (
	goImageOnce sync.Once
	goImage     container.Image
	goImageRoot string
	goImageErr  error
)

// requireGoImage builds the Go exec image from this machine's Go and
// /bin/busybox, once per test binary, and returns it with the GOROOT it
// was built from.
func requireGoImage(t *testing.T, env dockertest.Env) (container.Image, string) {
	t.Helper()
	goImageOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			goImageErr = err
			return
		}
		goImageRoot = strings.TrimSpace(string(out))
		start := time.Now()
		goImage, goImageErr = env.Docker.BuildGoImage(context.Background(), goImageRoot, "/bin/busybox", env.Binary, dockertest.Tag("go"))
		t.Logf("built %s (%s) from %s in %s", goImage.Ref, container.ShortID(goImage.ID), goImageRoot, time.Since(start).Round(time.Millisecond))
	})
	if goImageErr != nil {
		t.Fatalf("building the Go image: %v", goImageErr)
	}
	return goImage, goImageRoot
}

// TestGoImageHoldsBusyboxAndTheGoInstallation builds the Go exec image and
// looks in it, through exec: busybox and its links, the Go installation at
// /usr/local/go with every file of the parts it takes, with their modes,
// and none of those it leaves out, the environment go runs with, and the
// labels that make it an image of ours.
func TestGoImageHoldsBusyboxAndTheGoInstallation(t *testing.T) {
	env := dockertest.Require(t)
	img, goroot := requireGoImage(t, env)
	ctx := context.Background()

	// The labels, and the one layer: Images takes it for one of ours.
	imgs, err := env.Docker.Images(ctx, []string{img.Ref}, []string{container.LabelGo})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(imgs, func(o container.OurImage) bool { return o.ID == img.ID })
	if i < 0 {
		t.Fatalf("Images does not list %s (%s) as ours: %+v", img.Ref, img.ID, imgs)
	}
	version, err := os.ReadFile(filepath.Join(goroot, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	wantVersion, _, _ := strings.Cut(string(version), "\n")
	labels := imgs[i].Labels
	if labels[container.LabelRole] != "exec" || labels[container.LabelGo] != wantVersion || labels[container.LabelApp] != "1" || !imgs[i].Current {
		t.Errorf("labels %v (current %v); want role exec, %s=%s", labels, imgs[i].Current, container.LabelGo, wantVersion)
	}
	if imgs[i].Size > 400<<20 {
		t.Errorf("the image is %d MB; the parts of a Go installation it takes are ~250 MB", imgs[i].Size>>20)
	}
	// Its programs, its Go's version and the limits it needs are in its
	// labels.
	xi, err := env.Docker.InspectExecImage(ctx, img.Ref, []string{"go", "gofmt", "ls", "sh", "make"})
	if err != nil {
		t.Fatal(err)
	}
	if !xi.Ours || !strings.Contains(xi.Source, container.LabelPrograms) || !xi.Has("go") || !xi.Has("gofmt") || !xi.Has("ls") || xi.Has("make") ||
		!slices.Equal(xi.Recommended, container.GoRecommended) || !slices.Equal(xi.Path, []string{"/usr/local/go/bin", "/bin"}) ||
		!slices.Equal(xi.Toolchains, []string{wantVersion}) {
		t.Errorf("what the image offers: %+v", xi)
	}

	dir := t.TempDir()
	sb, err := container.NewSandbox(env.Docker, container.Options{Root: dir, Image: env.Image, Labels: env.Labels,
		Exec: &container.ExecOptions{Image: img.Ref, Agent: env.Binary, Whitelist: []string{"*"}, Shell: true,
			Timeout: 5 * time.Minute, MaxOutput: 16 << 20, Memory: 512 << 20, PIDs: 64, StateDir: t.TempDir()},
		Pool: container.PoolOptions{Enabled: true, Size: 1, MaxUsesPerContainer: 100, AcquireTimeout: loadPatience}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	run := func(line string) string {
		t.Helper()
		res, code := execute(t, sb, line)
		if code != "" || res == nil || res.ExitCode != 0 {
			t.Fatalf("%s: %s %+v", line, code, res)
		}
		return string(res.Output)
	}

	if got := run("go version"); !strings.HasPrefix(got, "go version "+wantVersion+" ") {
		t.Errorf("go version: %q, want %s", got, wantVersion)
	}
	want := "/usr/local/go\nlocal\n0\noff\n-modcacherw\n/.llm-runtime-cache/go-build\n/.llm-runtime-cache/go-mod\n"
	if got := run("go env GOROOT GOTOOLCHAIN CGO_ENABLED GOPROXY GOFLAGS GOCACHE GOMODCACHE"); got != want {
		t.Errorf("go env: %q, want %q", got, want)
	}
	if got := run(`echo "$PATH"; readlink /bin/sh; ls -d /tmp /workspace /etc`); got != "/usr/local/go/bin:/bin\nbusybox\n/etc\n/tmp\n/workspace\n" {
		t.Errorf("PATH, /bin/sh and the directories: %q", got)
	}

	// Every file, directory and link of the parts taken, with its mode;
	// nothing of test/, api/, doc/, misc/.
	var wantList []string
	root, err := filepath.EvalSymlinks(goroot)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"bin", "pkg", "src", "lib", "go.env", "VERSION", "LICENSE", "PATENTS"} {
		filepath.WalkDir(filepath.Join(root, part), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			kind := "-" // as ls and stat %A write it
			if fi.IsDir() {
				kind = "d"
			} else if fi.Mode()&fs.ModeSymlink != 0 {
				kind = "l"
			}
			wantList = append(wantList, kind+fi.Mode().Perm().String()[1:]+" "+filepath.Join("/usr/local/go", rel))
			return nil
		})
	}
	out := run(`find /usr/local/go -mindepth 1 -exec stat -c "%A %n" {} +`)
	gotList := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(wantList)
	slices.Sort(gotList)
	if !slices.Equal(gotList, wantList) {
		missing, extra := difference(wantList, gotList), difference(gotList, wantList)
		t.Errorf("/usr/local/go: %d entries, want %d; missing %q; not wanted %q", len(gotList), len(wantList), head(missing), head(extra))
	}

	// Content, byte for byte.
	h := sha256.New()
	b, err := os.ReadFile(filepath.Join(root, "bin", "go"))
	if err != nil {
		t.Fatal(err)
	}
	h.Write(b)
	if got := run("sha256sum /usr/local/go/bin/go"); !strings.HasPrefix(got, hex.EncodeToString(h.Sum(nil))+" ") {
		t.Errorf("bin/go differs: %q", got)
	}
}

// difference returns what a holds and b does not.
func difference(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, ok := slices.BinarySearch(b, s); !ok {
			out = append(out, s)
		}
	}
	return out
}

// head is the first few of list.
func head(list []string) []string {
	return list[:min(5, len(list))]
}
