package sandbox

import (
	"context"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Entry is one entry of a listing.
type Entry struct {
	Path   string `json:"path"` // relative to the repository root
	Kind   string `json:"kind"` // dir, file, link or other
	Size   int64  `json:"size,omitempty"`
	Target string `json:"target,omitempty"` // a link's target, as it is written
}

// ListResult is the result of List.
type ListResult struct {
	Path      string  // the directory listed, relative to the root
	Recursive bool    // everything under it, not one level
	Entries   []Entry // at most Limits.MaxListEntries, in listing order
	Total     int     // entries found, listed or not
	Excluded  int     // left out by security.excluded_paths
	Ignored   int     // left out by .gitignore (an ignored directory counts once)
}

// Truncated reports whether entries were found past those listed.
func (l *ListResult) Truncated() bool { return l.Total > len(l.Entries) }

// DefaultMaxListEntries is the default of Limits.MaxListEntries.
const DefaultMaxListEntries = 1000

// ParseList splits a list's argument into the directory and whether the
// listing is recursive: "src/**" (or "**") lists everything under src,
// "src" one level of it, "" the root.
func ParseList(arg string) (string, bool) {
	switch {
	case arg == "**":
		return ".", true
	case strings.HasSuffix(arg, "/**"):
		return strings.TrimSuffix(arg, "/**"), true
	case arg == "":
		return ".", false
	}
	return arg, false
}

// List lists the directory at p (see ParseList for its forms).
func (w *Workspace) List(ctx context.Context, arg string) (*ListResult, error) {
	return w.ListWith(ctx, arg, Options{})
}

// ListWith is List with the options o: one level of the directory, or
// everything under it, directories first and then the rest, each by name,
// a directory's contents right after it. Excluded entries are never
// listed nor looked into, and neither are those .gitignore leaves out;
// both are counted.
func (w *Workspace) ListWith(ctx context.Context, arg string, o Options) (*ListResult, error) {
	p, recursive := ParseList(arg)
	t, err := w.walk(p, walkOpen, false)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if err := expected(t, o); err != nil {
		return nil, err
	}
	if t.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, Errorf(CodeNotDirectory, "%s is not a directory; <open %s> reads it", t.rel, t.rel)
	}
	// The .gitignore files from the root down to the directory apply.
	ign := newIgnorer()
	ign.enter(".", w.readInternal(".git", "info", "exclude"), readIgnoreFile(t.fds[0], ".gitignore"))
	names := append([]string(nil), t.chain.names...)
	if t.name != "" {
		names = append(names, t.name)
	}
	for i := range t.fds[1:] {
		ign.enter(strings.Join(t.chain.names[:i+1], "/"), readIgnoreFile(t.fds[i+1], ".gitignore"))
	}
	if t.name != "" {
		ign.enter(t.rel, readIgnoreFile(t.fd, ".gitignore"))
	}
	res := &ListResult{Path: t.rel, Recursive: recursive}
	fd, err := unix.Dup(t.fd)
	if err != nil {
		return nil, osError(err, t.rel)
	}
	l := &lister{w: w, ign: ign, recursive: recursive, sem: make(chan struct{}, runtime.GOMAXPROCS(0))}
	top := &part{}
	l.list(ctx, fd, t.rel, names, top)
	l.wg.Wait()
	if l.err != nil {
		return nil, AsError(l.err)
	}
	flatten(top, res, w.limits.MaxListEntries)
	res.Excluded, res.Ignored = l.excluded, l.ignored
	return res, nil
}

// lister lists a tree: each directory on a goroutine of its own when one
// is free (a listing is a system call per entry, and 10,000 of them cost
// ~20 ms here on one core), and the parts put together in order at the end.
type lister struct {
	w         *Workspace
	ign       *ignorer
	recursive bool
	sem       chan struct{}
	wg        sync.WaitGroup
	mu        sync.Mutex // guards ign, excluded, ignored, err
	excluded  int
	ignored   int
	err       error
}

// part is one directory's listing: its entries in order, and the parts of
// the directories among them.
type part struct {
	entries []Entry
	sub     map[int]*part
}

func (l *lister) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
}

// list lists the directory dirfd, rel in the repository and dir its
// components, into p, and closes dirfd.
func (l *lister) list(ctx context.Context, dirfd int, rel string, dir []string, p *part) {
	d := os.NewFile(uintptr(dirfd), rel)
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil && len(entries) == 0 {
		l.fail(osError(err, rel))
		return
	}
	if err := ctx.Err(); err != nil {
		l.fail(err)
		return
	}
	sort.Slice(entries, func(i, j int) bool {
		if a, b := entries[i].IsDir(), entries[j].IsDir(); a != b {
			return a
		}
		return entries[i].Name() < entries[j].Name()
	})
	// This directory's .gitignore, read only if there is one.
	if rel != "." && l.recursive {
		for _, e := range entries {
			if e.Name() == ".gitignore" {
				rules := readIgnoreFile(dirfd, ".gitignore")
				l.mu.Lock()
				l.ign.enter(rel, rules)
				l.mu.Unlock()
				break
			}
		}
	}
	var excluded, ignored int
	for _, e := range entries {
		name := e.Name()
		child := name
		if rel != "." {
			child = rel + "/" + name
		}
		if _, ex := l.w.excl.matchLast(dir, name); ex {
			excluded++
			continue
		}
		l.mu.Lock()
		ig := l.ign.ignored(child, e.IsDir())
		l.mu.Unlock()
		if ig {
			ignored++
			continue
		}
		// The kind comes from the directory entry; only a file's size
		// takes a stat.
		var mode uint32
		switch t := e.Type(); {
		case t.IsDir():
			mode = unix.S_IFDIR
		case t&fs.ModeSymlink != 0:
			mode = unix.S_IFLNK
		default:
			var st unix.Stat_t
			if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue // gone meanwhile
			}
			mode = st.Mode & unix.S_IFMT
			if mode == unix.S_IFREG {
				p.entries = append(p.entries, Entry{Path: child, Kind: "file", Size: st.Size})
				continue
			}
		}
		switch mode {
		case unix.S_IFDIR:
			p.entries = append(p.entries, Entry{Path: child, Kind: "dir"})
			if !l.recursive {
				continue
			}
			cfd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				continue // swapped for a link, or unreadable
			}
			sub := &part{}
			if p.sub == nil {
				p.sub = map[int]*part{}
			}
			p.sub[len(p.entries)-1] = sub
			subDir := append(dir[:len(dir):len(dir)], name)
			select {
			case l.sem <- struct{}{}:
				l.wg.Add(1)
				go func() {
					defer func() { <-l.sem; l.wg.Done() }()
					l.list(ctx, cfd, child, subDir, sub)
				}()
			default:
				l.list(ctx, cfd, child, subDir, sub)
			}
		case unix.S_IFLNK:
			target, _ := readlinkAt(dirfd, name)
			p.entries = append(p.entries, Entry{Path: child, Kind: "link", Target: target})
		default:
			p.entries = append(p.entries, Entry{Path: child, Kind: "other"})
		}
	}
	l.mu.Lock()
	l.excluded += excluded
	l.ignored += ignored
	l.mu.Unlock()
}

// flatten puts p's entries, each directory's right after it, into res, up
// to max, counting them all.
func flatten(p *part, res *ListResult, max int) {
	for i, e := range p.entries {
		res.Total++
		if len(res.Entries) < max {
			res.Entries = append(res.Entries, e)
		}
		if sub := p.sub[i]; sub != nil {
			flatten(sub, res, max)
		}
	}
}

// List implements Sandbox.
func (l *Local) List(ctx context.Context, arg string) (*ListResult, error) {
	return l.ws.ListWith(ctx, arg, OptionsFrom(ctx))
}
