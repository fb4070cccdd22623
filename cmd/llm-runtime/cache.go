package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/api/types/volume"

	"github.com/llm-runtime/llm-runtime/internal/paths"
	"github.com/llm-runtime/llm-runtime/runtime/container"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

type cacheCmd struct {
	List   cacheListCmd   `cmd:"" default:"withargs" help:"List exec's and copy mode's copies and exec's build caches, one line per repository (the default)."`
	Remove cacheRemoveCmd `cmd:"" help:"Remove the copies and build caches of this repository (--root), of repositories that are gone (--gone), or of every repository (--all, and the Go modules they share)."`
}

func (cacheCmd) Help() string {
	return `Exec runs each command on a copy of the repository (what the rules let it see:
no excluded path is ever in it) and keeps, per repository, the build caches
that commands share (GOCACHE, GOMODCACHE, XDG_CACHE_HOME, npm and pip caches,
CARGO_HOME, all under /.llm-runtime-cache in the container). Both live in
exec.state_dir ($XDG_CACHE_HOME/llm-runtime/exec by default), in a directory
per repository, and are kept between runs so that the next run copies only
what changed and builds warm. They are never shared between repositories.
One thing is: with exec.go_proxy, the Go modules fetched from that proxy, in
go-modules there, which only llm-runtime writes (a command's go reads them
over HTTP); 'cache' says its size and 'cache remove --all' removes it.

Copy mode (sandbox_workspace: copy, the default on a Docker host that is not
this machine) keeps a copy of the same kind there (replica-N), and pushes it
to a Docker volume on the Docker host, llm-runtime-ws-..., kept between runs
so that the next run pushes only what changed. Removing a repository's state
removes its volumes too.

Examples:

  llm-runtime cache
  llm-runtime cache remove              # this repository's (--root, default .)
  llm-runtime cache remove --gone       # of repositories no longer there
  llm-runtime cache remove --all`
}

type cacheEntry struct {
	dir, root   string
	gone        bool // the repository is no longer there
	copies      int
	copy, build int64 // bytes
}

// cacheEntries lists the repositories' directories in dir.
func cacheEntries(dir string) ([]cacheEntry, error) {
	list, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []cacheEntry
	for _, d := range list {
		if !d.IsDir() || d.Name() == container.GoModulesDir {
			continue
		}
		c := cacheEntry{dir: filepath.Join(dir, d.Name()), root: "(unknown)"}
		if b, err := os.ReadFile(filepath.Join(c.dir, "root")); err == nil {
			c.root = strings.TrimSpace(string(b))
		}
		if _, err := os.Stat(c.root); err != nil {
			c.gone = true
		}
		subs, _ := os.ReadDir(c.dir)
		for _, s := range subs {
			switch {
			case strings.HasPrefix(s.Name(), "copy-"), strings.HasPrefix(s.Name(), "replica-"):
				c.copies++
				c.copy += du(filepath.Join(c.dir, s.Name()))
			case s.Name() == "cache":
				c.build += du(filepath.Join(c.dir, s.Name()))
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// du is the size of the files under dir.
func du(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

type cacheListCmd struct{}

func (cacheListCmd) Run(e env, c *cli) error {
	_, _, cfg, err := c.load(e, nil)
	if err != nil {
		return err
	}
	dir, err := paths.ExecStateDir(cfg.Exec.StateDir)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	list, err := cacheEntries(dir)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	fmt.Fprintf(e.stdout, "Exec state: %s\n", dir)
	if mods := filepath.Join(dir, container.GoModulesDir); exists(mods) {
		fmt.Fprintf(e.stdout, "Go modules your repositories share (exec.go_proxy): %s in %s\n", sandbox.FormatSize(du(mods)), mods)
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stdout, "No repository has a copy or a build cache.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tCOPIES\tCOPY SIZE\tBUILD CACHE\tDIRECTORY")
	for _, c := range list {
		root := c.root
		if c.gone {
			root += " (gone)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", root, c.copies, sandbox.FormatSize(c.copy), sandbox.FormatSize(c.build), filepath.Base(c.dir))
	}
	return tw.Flush()
}

type cacheRemoveCmd struct {
	All  bool `help:"Every repository's, not only this one's."`
	Gone bool `help:"Those of repositories that are no longer there."`
}

func (r cacheRemoveCmd) Run(e env, c *cli) error {
	root, _, cfg, err := c.load(e, nil)
	if err != nil {
		return err
	}
	dir, err := paths.ExecStateDir(cfg.Exec.StateDir)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	var targets []string
	if r.All || r.Gone {
		list, err := cacheEntries(dir)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		for _, c := range list {
			if r.All || c.gone {
				targets = append(targets, c.dir)
			}
		}
		if mods := filepath.Join(dir, container.GoModulesDir); r.All && exists(mods) {
			if err := os.RemoveAll(mods); err != nil {
				return fail(exitUsage, "%v", err)
			}
			fmt.Fprintf(e.stdout, "Removed the Go modules your repositories shared (%s).\n", mods)
		}
	} else {
		targets = []string{container.RepoStateDir(dir, root)}
	}
	removed, failed := 0, false
	for _, t := range targets {
		if _, err := os.Lstat(t); err != nil {
			continue
		}
		if removeState(e, t) {
			removed++
		} else {
			failed = true
		}
	}
	switch {
	case removed == 0 && !r.All && !r.Gone:
		fmt.Fprintf(e.stdout, "Nothing to remove for %s.\n", root)
	default:
		n := fmt.Sprintf("%d repositories", removed)
		if removed == 1 {
			n = "1 repository"
		}
		fmt.Fprintf(e.stdout, "Removed the copies and build caches of %s.\n", n)
	}
	if failed {
		return fail(exitUsage, "some copies are in use and were left; run again when those runs end")
	}
	return nil
}

// Help of cacheRemoveCmd.
func (cacheRemoveCmd) Help() string {
	return `A copy that a running llm-runtime holds is left alone (it says so); the
next run makes a new one. Removing only costs the next run a full copy and a
cold build.`
}

// removeVolumesOf removes the volumes of copy mode whose copy is in the
// repository's state directory dir (its replicas, exec's replicas and its
// build caches), on the Docker host of the environment. Where Docker
// cannot be reached it says so if dir held a replica (a volume only costs
// space there).
func removeVolumesOf(e env, dir string, replicas bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := container.Connect(ctx, version)
	var vs []volume.Volume
	if err == nil {
		defer d.Close()
		vs, err = d.Volumes(ctx, "", "")
	}
	if err != nil {
		if replicas {
			fmt.Fprintf(e.stderr, "llm-runtime: copy mode's volumes of %s were left on the Docker host: %v\n", dir, err)
		}
		return
	}
	for _, v := range vs {
		if st := v.Labels[container.LabelState]; st == dir || strings.HasPrefix(st, dir+"/") {
			if _, err := d.RemoveVolume(ctx, v.Name); err != nil {
				fmt.Fprintf(e.stderr, "llm-runtime: %v\n", err)
			}
		}
	}
}

// removeState removes a repository's directory of exec state, but for
// the copies a running llm-runtime holds; it reports whether all went.
func removeState(e env, dir string) bool {
	subs, _ := os.ReadDir(dir)
	all, replicas := true, false
	for _, s := range subs {
		p := filepath.Join(dir, s.Name())
		if strings.HasPrefix(s.Name(), "replica-") {
			replicas = true
		}
		if strings.HasPrefix(s.Name(), "copy-") || strings.HasPrefix(s.Name(), "replica-") {
			if err := sandbox.RemoveMirror(p); err != nil {
				fmt.Fprintf(e.stderr, "llm-runtime: %s: %v; left as it is\n", p, err)
				all = false
			}
			continue
		}
		sandbox.RemoveAll(p)
	}
	if all {
		sandbox.RemoveAll(dir)
		removeVolumesOf(e, dir, replicas)
	}
	return all
}

// exists says whether there is something at path (not following a link).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
