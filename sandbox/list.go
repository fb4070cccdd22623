package sandbox

import (
	"context"
	"sort"
	"strings"

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

// List lists the directory at p: one level of it, or with recursive
// everything under it.
func (w *Workspace) List(ctx context.Context, p string, recursive bool) (*ListResult, error) {
	return w.ListWith(ctx, p, recursive, Options{})
}

// ListWith is List with the options o: one level of the directory, or
// everything under it, directories first and then the rest, each by name,
// a directory's contents right after it. Excluded entries are never
// listed nor looked into, and neither are those .gitignore leaves out;
// both are counted.
func (w *Workspace) ListWith(ctx context.Context, p string, recursive bool, o Options) (*ListResult, error) {
	if p == "" {
		p = "."
	}
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
	fd, err := dupFD(t.fd)
	if err != nil {
		return nil, osError(err, t.rel)
	}
	l := &lister{w: w, ign: ign, recursive: recursive, res: res, max: w.limits.MaxListEntries}
	if err := l.list(ctx, fd, t.rel, names); err != nil {
		return nil, AsError(err)
	}
	res.Excluded, res.Ignored = l.excluded, l.ignored
	return res, nil
}

// lister lists a tree in the order it prints it. Kinds come from the
// directory entries (a stat only where the file system does not say), so
// the only stat per entry is a file's size, and only for the entries that
// are listed: past list.max_entries an entry is counted, not looked at.
type lister struct {
	w         *Workspace
	ign       *ignorer
	recursive bool
	res       *ListResult
	max       int
	excluded  int
	ignored   int
}

func (l *lister) add(e Entry) {
	l.res.Total++
	if len(l.res.Entries) < l.max {
		l.res.Entries = append(l.res.Entries, e)
	}
}

// full says whether the listing has all the entries it prints.
func (l *lister) full() bool { return len(l.res.Entries) >= l.max }

// list lists the directory dirfd, rel in the repository and dir its
// components, and closes dirfd.
func (l *lister) list(ctx context.Context, dirfd int, rel string, dir []string) error {
	defer unix.Close(dirfd)
	entries, err := readDirents(dirfd)
	if err != nil && len(entries) == 0 {
		return osError(err, rel)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	for i := range entries {
		if entries[i].typ == unix.DT_UNKNOWN && unix.Fstatat(dirfd, entries[i].name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			entries[i].typ = dtOf(st.Mode)
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		if a, b := entries[i].typ == unix.DT_DIR, entries[j].typ == unix.DT_DIR; a != b {
			return a
		}
		return entries[i].name < entries[j].name
	})
	// This directory's .gitignore, read only if there is one.
	if rel != "." && l.recursive {
		for _, e := range entries {
			if e.name == ".gitignore" {
				l.ign.enter(rel, readIgnoreFile(dirfd, ".gitignore"))
				break
			}
		}
	}
	for _, e := range entries {
		name := e.name
		child := name
		if rel != "." {
			child = rel + "/" + name
		}
		if _, ex := l.w.excl.matchLast(dir, name); ex {
			l.excluded++
			continue
		}
		if l.ign.ignored(child, e.typ == unix.DT_DIR) {
			l.ignored++
			continue
		}
		switch e.typ {
		case unix.DT_DIR:
			l.add(Entry{Path: child, Kind: "dir"})
			if !l.recursive {
				continue
			}
			cfd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				continue // swapped for a link, or unreadable
			}
			if err := l.list(ctx, cfd, child, append(dir[:len(dir):len(dir)], name)); err != nil {
				return err
			}
		case unix.DT_LNK:
			target := ""
			if !l.full() {
				target, _ = readlinkAt(dirfd, name)
			}
			l.add(Entry{Path: child, Kind: "link", Target: target})
		case unix.DT_REG:
			if l.full() {
				l.res.Total++ // counted, not looked at
				continue
			}
			if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue // gone meanwhile
			}
			if st.Mode&unix.S_IFMT != unix.S_IFREG {
				l.add(Entry{Path: child, Kind: kindOf(st.Mode)})
				continue
			}
			l.add(Entry{Path: child, Kind: "file", Size: st.Size})
		default:
			l.add(Entry{Path: child, Kind: "other"})
		}
	}
	return nil
}

// kindOf is the Entry kind of a mode.
func kindOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "link"
	case unix.S_IFREG:
		return "file"
	}
	return "other"
}

// dtOf is the directory-entry type of a mode.
func dtOf(mode uint32) uint8 {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return unix.DT_DIR
	case unix.S_IFLNK:
		return unix.DT_LNK
	case unix.S_IFREG:
		return unix.DT_REG
	}
	return 255 // another kind: known, so never stat'ed again
}

// List implements Sandbox.
func (l *Local) List(ctx context.Context, p string, recursive bool) (*ListResult, error) {
	return l.ws.ListWith(ctx, p, recursive, OptionsFrom(ctx))
}
