package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// snapshot is what of ours exists: Docker objects, and files in the
// temporary directory and in the user's directories, each a line that
// says what it is.
type snapshot map[string]bool

// take lists what of ours exists now.
func take() snapshot {
	s := snapshot{}
	docker := func(kind string, args ...string) {
		out, err := exec.Command("docker", args...).Output()
		if err != nil {
			return // no Docker: nothing of ours on it
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" {
				s[kind+" "+l] = true
			}
		}
	}
	docker("container", "ps", "-a", "--filter", "label=io.llm-runtime", "--format", "{{.ID}} {{.Names}} ({{.Image}})")
	docker("container", "ps", "-a", "--filter", "name=llm-runtime", "--format", "{{.ID}} {{.Names}} ({{.Image}})")
	docker("image", "images", "-a", "--filter", "label=io.llm-runtime", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
	docker("image", "images", "--filter", "reference=llm-runtime*", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
	docker("volume", "volume", "ls", "--filter", "label=io.llm-runtime", "--format", "{{.Name}}")
	docker("volume", "volume", "ls", "--filter", "name=llm-runtime", "--format", "{{.Name}}")

	// The temporary directory: what the project and go test's t.TempDir
	// name there.
	tmp := os.TempDir()
	if es, err := os.ReadDir(tmp); err == nil {
		for _, e := range es {
			n := e.Name()
			if strings.HasPrefix(n, "llm-runtime") || strings.HasPrefix(n, "lrt-") || strings.HasPrefix(n, "Test") || strings.HasPrefix(n, "Benchmark") || strings.HasPrefix(n, "Fuzz") {
				s["file "+filepath.Join(tmp, n)] = true
			}
		}
	}
	// The user's directories of llm-runtime (and anything named for it
	// beside them, as llm-runtime-test-guests was), three levels down,
	// files with their size and modification time (a test that rewrote
	// one is as bad as one that made it).
	for _, d := range userDirs() {
		es, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range es {
			if !strings.HasPrefix(e.Name(), "llm-runtime") {
				continue
			}
			root := filepath.Join(d, e.Name())
			filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				rel, _ := filepath.Rel(root, p)
				depth := strings.Count(rel, string(filepath.Separator))
				if e.IsDir() {
					s["file "+p+"/"] = true
					if depth >= 2 && rel != "." {
						return filepath.SkipDir
					}
					return nil
				}
				if fi, err := e.Info(); err == nil {
					s[fmt.Sprintf("file %s (%d bytes, modified %s)", p, fi.Size(), fi.ModTime().Format("15:04:05.000"))] = true
				}
				return nil
			})
		}
	}
	return s
}

// userDirs are the user's cache, configuration, state and runtime
// directories, as llm-runtime finds them.
func userDirs() []string {
	var ds []string
	if d, err := os.UserCacheDir(); err == nil {
		ds = append(ds, d)
	}
	if d, err := os.UserConfigDir(); err == nil {
		ds = append(ds, d)
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		ds = append(ds, d)
	} else if h, err := os.UserHomeDir(); err == nil {
		ds = append(ds, filepath.Join(h, ".local", "state"))
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		ds = append(ds, d)
	}
	return ds
}

// since lists what exists now and did not at before, sorted.
func (s snapshot) since(before snapshot) []string {
	var left []string
	for k := range s {
		if !before[k] {
			left = append(left, k)
		}
	}
	sort.Strings(left)
	return left
}
