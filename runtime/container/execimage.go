package container

// What an exec image offers a command: the programs a command can name
// (those on the image's PATH), and the exec settings the image recommends.
// The prompt lists only the whitelisted programs the image has, and the
// engine applies the recommended settings that the user did not set.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// LabelPrograms, on an exec image of ours, lists the executable files in
// the directories of its PATH, by absolute path, space-separated, as they
// were when it was built: what a command can name.
const LabelPrograms = "io.llm-runtime.programs"

// LabelRecommended, on an exec image of ours, holds the exec settings it
// needs to be of use, space-separated KEY=VALUE in the configuration's
// notation ("exec.timeout=5m exec.memory=1GiB"). They apply unless the
// user set them; only RecommendableSettings are read.
const LabelRecommended = "io.llm-runtime.exec.recommended"

// RecommendableSettings are the settings an image may recommend: limits
// of resources, never what a command may do (the whitelist, the shell,
// exec.writable), which the user alone decides.
var RecommendableSettings = []string{"exec.timeout", "exec.memory", "exec.cpus", "exec.pids", "exec.tmp_size", "exec.max_output"}

// DefaultPath is the PATH of a container whose image sets none, as Docker
// sets it (and the agent, when it finds none).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// versionVars are the environment variables in which the official
// language images say their toolchain's version, and the toolchain's name.
var versionVars = map[string]string{"GOLANG_VERSION": "go", "PYTHON_VERSION": "python", "NODE_VERSION": "node", "RUST_VERSION": "rust", "JAVA_VERSION": "java"}

// ErrNoImage is InspectExecImage's error when the image is not on this
// machine.
var ErrNoImage = errors.New("no such image")

// ExecImage is what an exec image offers a command.
type ExecImage struct {
	Ref, ID string
	// Ours says that llm-runtime built it: it carries our labels and is
	// one layer (an image built on one of ours and adding files has
	// more), so its LabelPrograms and LabelRecommended are read; another
	// image's are not.
	Ours bool
	// Path holds the directories of its PATH, where the agent looks a
	// program up.
	Path []string
	// Recommended holds the settings it recommends (LabelRecommended),
	// KEY and VALUE, in the label's order; none unless Ours.
	Recommended [][2]string
	// Source says how its programs are known: from its label, or looked
	// up in its filesystem (now, or cached by image id).
	Source string
	// Toolchains holds the versions of the toolchains it offers, such as
	// "go1.26.8": an image of ours says so in its labels (LabelGo), one of
	// the official language images in its environment (GOLANG_VERSION,
	// PYTHON_VERSION, NODE_VERSION, RUST_VERSION, JAVA_VERSION).
	Toolchains []string
	// GoSeed is the directory of its precompiled standard library
	// (LabelGoSeed: the Go image's GoSeed), which a command's go reads
	// through the agent's cache program; "" for none, and unless Ours.
	GoSeed string

	found map[string]bool // program name (or path) -> on the PATH
}

// Has reports whether a command can name program: a name found in a
// directory of the image's PATH, or an absolute path of an executable
// file of the image. A relative path (./run.sh) is the repository's, and
// a program not asked of InspectExecImage is not known: both are taken
// to be there.
func (x *ExecImage) Has(program string) bool {
	if x == nil || strings.Contains(program, "/") && !path.IsAbs(program) {
		return true
	}
	found, asked := x.found[program]
	return found || !asked
}

// Runnable splits whitelist entries (argument-vector prefixes, or "*")
// into those whose program the image has and those whose program it has
// not, each in the order given. "*" is runnable.
func (x *ExecImage) Runnable(whitelist []string) (runnable, missing []string) {
	for _, e := range whitelist {
		if p := entryProgram(e); p == "" || x.Has(p) {
			runnable = append(runnable, e)
		} else {
			missing = append(missing, e)
		}
	}
	return runnable, missing
}

// entryProgram is the program of a whitelist entry: its first word, ""
// for "*".
func entryProgram(entry string) string {
	f := strings.Fields(entry)
	if len(f) == 0 || entry == "*" {
		return ""
	}
	return f[0]
}

// Programs returns the programs of whitelist entries, and of more, once
// each: what InspectExecImage is asked about.
func Programs(whitelist []string, more ...string) []string {
	var out []string
	for _, e := range append(slices.Clone(whitelist), more...) {
		if p := entryProgram(e); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// execImages holds, by image id, what this process learnt of each exec
// image; an image id names its content and configuration, so what is
// learnt of it never goes stale.
var execImages = struct {
	sync.Mutex
	m map[string]map[string]bool
}{m: map[string]map[string]bool{}}

// InspectExecImage returns what the local image ref offers a command,
// having looked up the programs given (names, or absolute paths; see
// Programs) on its PATH. The programs of an image of ours are read from
// its LabelPrograms; those of another image (or of ours built before the
// label) are looked up in its filesystem, through a container created for
// that and never started, and kept by image id, in this process and in
// the user's cache directory (ExecImageCacheDir), so that each is looked
// up once. An image not on this machine is ErrNoImage; nothing is pulled.
func (d *Docker) InspectExecImage(ctx context.Context, ref string, programs []string) (*ExecImage, error) {
	ii, err := d.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%s: %w", ref, ErrNoImage)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	x := &ExecImage{Ref: ref, ID: ii.ID, found: map[string]bool{}}
	var labels map[string]string
	pathVar := DefaultPath
	if ii.Config != nil {
		labels = ii.Config.Labels
		for _, kv := range ii.Config.Env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok && v != "" {
				pathVar = v
			}
			k, v, _ := strings.Cut(kv, "=")
			if name, ok := versionVars[k]; ok && v != "" {
				if name != "go" {
					name += " "
				}
				x.Toolchains = append(x.Toolchains, name+v) // go1.26.8, as go version says it; python 3.13.1
			}
		}
	}
	for _, dir := range strings.Split(pathVar, ":") {
		if path.IsAbs(dir) && !slices.Contains(x.Path, path.Clean(dir)) {
			x.Path = append(x.Path, path.Clean(dir)) // a relative one would be the workspace's
		}
	}
	x.Ours = labelledOurs(labels) && ii.RootFS.Layers != nil && len(ii.RootFS.Layers) == 1
	if x.Ours {
		x.Recommended = parseRecommended(labels[LabelRecommended])
		if v := labels[LabelGo]; v != "" {
			x.Toolchains = append(x.Toolchains, v)
		}
		if v := labels[LabelGoSeed]; path.IsAbs(v) {
			x.GoSeed = path.Clean(v)
		}
	}
	if list, ok := labels[LabelPrograms]; x.Ours && ok {
		files := map[string]bool{}
		for _, f := range strings.Fields(list) {
			files[f] = true
		}
		for _, p := range programs {
			x.found[p] = lookPath(p, x.Path, func(f string) bool { return files[f] })
		}
		x.Source = "its label " + LabelPrograms
		return x, nil
	}
	// Looked up in the filesystem: what this process knows, what the cache
	// holds, and the rest now.
	execImages.Lock()
	known := maps.Clone(execImages.m[ii.ID])
	execImages.Unlock()
	x.Source = "its filesystem (looked up once per image id)"
	var missing []string
	for _, p := range programs {
		if _, ok := known[p]; !ok {
			missing = append(missing, p)
		}
	}
	if known == nil {
		known = map[string]bool{}
	}
	if len(missing) > 0 {
		for p, f := range readProbeCache(ii.ID) {
			if _, ok := known[p]; !ok {
				known[p] = f
			}
		}
		missing = slices.DeleteFunc(missing, func(p string) bool { _, ok := known[p]; return ok })
	}
	if len(missing) > 0 {
		found, err := d.probe(ctx, ii.ID, x.Path, missing)
		if err != nil {
			return nil, err
		}
		for p, f := range found {
			known[p] = f
		}
		writeProbeCache(ii.ID, known)
	}
	execImages.Lock()
	execImages.m[ii.ID] = known
	execImages.Unlock()
	for _, p := range programs {
		x.found[p] = known[p]
	}
	return x, nil
}

// lookPath reports whether program is found as the agent's exec finds
// it: an absolute path as it is, a name in the first directory of dirs
// that has it, executable says whether the file at a path is an
// executable file (following links).
func lookPath(program string, dirs []string, executable func(string) bool) bool {
	if path.IsAbs(program) {
		return executable(path.Clean(program))
	}
	for _, dir := range dirs {
		if executable(path.Join(dir, program)) {
			return true
		}
	}
	return false
}

// parseRecommended reads LabelRecommended: KEY=VALUE words, of
// RecommendableSettings only.
func parseRecommended(label string) [][2]string {
	var out [][2]string
	for _, w := range strings.Fields(label) {
		k, v, ok := strings.Cut(w, "=")
		if ok && v != "" && slices.Contains(RecommendableSettings, k) {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

// FormatRecommended writes settings as LabelRecommended holds them.
func FormatRecommended(settings [][2]string) string {
	var w []string
	for _, s := range settings {
		w = append(w, s[0]+"="+s[1])
	}
	return strings.Join(w, " ")
}

// probe looks programs up in the filesystem of the image id, through a
// container created for that, never started, and removed at once: the
// stat of each candidate path through the Engine API (links followed, in
// the container's root).
func (d *Docker) probe(ctx context.Context, id string, dirs, programs []string) (map[string]bool, error) {
	var rnd [4]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("%s%d-probe-%s", NamePrefix, os.Getpid(), hex.EncodeToString(rnd[:]))
	cfg := &container.Config{
		Image:           id,
		Entrypoint:      []string{"/.llm-runtime-never-started"}, // an image may have no command, and create wants one
		Labels:          d.Labels("probe"),
		NetworkDisabled: true,
	}
	hc := &container.HostConfig{NetworkMode: "none", LogConfig: container.LogConfig{Type: "none"}}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	cr, err := d.cli.ContainerCreate(cctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: creating a container to look in the image %s: %v", ErrUnavailable, ShortID(id), err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.cli.ContainerRemove(rctx, cr.ID, client.ContainerRemoveOptions{Force: true})
	}()
	var failed error
	stat := func(p string) (container.PathStat, bool) {
		if failed != nil {
			return container.PathStat{}, false
		}
		r, err := d.cli.ContainerStatPath(ctx, cr.ID, client.ContainerStatPathOptions{Path: p})
		if err != nil {
			if !cerrdefs.IsNotFound(err) {
				failed = err
			}
			return container.PathStat{}, false
		}
		return r.Stat, true
	}
	// follow returns the stat of what p names, links followed (Docker
	// gives a link's target resolved in the container's root).
	follow := func(p string) (container.PathStat, bool) {
		st, ok := stat(p)
		if ok && st.Mode&fs.ModeSymlink != 0 {
			if st.LinkTarget == "" {
				return container.PathStat{}, false
			}
			st, ok = stat(st.LinkTarget)
		}
		return st, ok
	}
	var present []string
	for _, dir := range dirs {
		if st, ok := follow(dir); ok && st.Mode.IsDir() {
			present = append(present, dir)
		}
	}
	executable := func(p string) bool {
		st, ok := follow(p)
		return ok && st.Mode.IsRegular() && st.Mode.Perm()&0o111 != 0
	}
	found := map[string]bool{}
	for _, p := range programs {
		found[p] = lookPath(p, present, executable)
	}
	if failed != nil {
		return nil, fmt.Errorf("%w: looking in the image %s: %v", ErrUnavailable, ShortID(id), failed)
	}
	return found, nil
}

// ExecImageCacheDir is where what was looked up in exec images is kept,
// a file per image id: $XDG_CACHE_HOME/llm-runtime/exec-images, or ""
// when there is no cache directory.
func ExecImageCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "llm-runtime", "exec-images")
}

func probeCacheFile(id string) string {
	dir := ExecImageCacheDir()
	hexID := strings.TrimPrefix(id, "sha256:")
	if dir == "" || hexID == "" || strings.Trim(hexID, "0123456789abcdef") != "" {
		return ""
	}
	return filepath.Join(dir, hexID+".json")
}

// readProbeCache returns what the cache holds of the image id: program ->
// found. A missing or unreadable file holds nothing.
func readProbeCache(id string) map[string]bool {
	f := probeCacheFile(id)
	if f == "" {
		return nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return nil
	}
	var m map[string]bool
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// writeProbeCache replaces the cache's file of the image id, atomically,
// or does nothing.
func writeProbeCache(id string, m map[string]bool) {
	f := probeCacheFile(id)
	if f == "" {
		return
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	writeCache(f, string(b))
}
