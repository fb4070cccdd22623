package sandboxtest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

// testDelete: a delete removes a file, a link (not what it points to) or
// an empty directory, and refuses what a write refuses, a directory that
// is not empty, and a path that does not name an entry; a refused one
// changes nothing.
func testDelete(t *testing.T, newSandbox Factory) {
	fx := NewFixture(t)
	os.Mkdir(filepath.Join(fx.Dir, "empty"), 0o755)
	sb := newSandbox(t, fx.Dir, Limits)
	defer sb.Close()
	ctx := context.Background()
	before := TreeHash(t, fx.Dir)
	outside := TreeHash(t, fx.Outside)
	for _, c := range []struct{ path, code string }{
		{".env", sandbox.CodePathSecurity},
		{"sub/.env", sandbox.CodePathSecurity},
		{".git/config", sandbox.CodePathSecurity},
		{".git", sandbox.CodePathSecurity},
		{"keys/server.key", sandbox.CodePathSecurity},
		{"llm-runtime.config.yaml", sandbox.CodePathSecurity},
		{"../outside/secret.txt", sandbox.CodePathSecurity},
		{filepath.Join(fx.Outside, "secret.txt"), sandbox.CodePathSecurity},
		{"dirlink/secret.txt", sandbox.CodePathSecurity},
		{"sub/out/secret.txt", sandbox.CodePathSecurity},
		{"git-link/config", sandbox.CodePathSecurity},
		{"sub", sandbox.CodeIsDirectory},
		{".", sandbox.CodeInvalidPath},
		{"sub/..", sandbox.CodeInvalidPath},
		{"sub/up", ""}, // the link itself: below
		{"missing.txt", sandbox.CodeFileNotFound},
		{"", sandbox.CodeInvalidPath},
	} {
		if c.code == "" {
			continue
		}
		if r, err := sb.Delete(ctx, c.path); code(err) != c.code {
			t.Errorf("delete %q: %+v %v, want %s", c.path, r, err, c.code)
		}
	}
	if after := TreeHash(t, fx.Dir); after != before {
		t.Fatal("a refused delete changed the repository")
	}
	for _, c := range []struct {
		path string
		want sandbox.DeleteResult
		gone string // what must be gone (the path itself, unless a link was named through a link)
		kept string // what must still be there
	}{
		{"hello.txt", sandbox.DeleteResult{Path: "hello.txt", Kind: "file", Bytes: 6}, "hello.txt", "inlink"},
		{"inlink", sandbox.DeleteResult{Path: "inlink", Kind: "link"}, "inlink", "sub/inner.txt"},
		{"link-out", sandbox.DeleteResult{Path: "link-out", Kind: "link"}, "link-out", ""},
		{"sub/up", sandbox.DeleteResult{Path: "sub/up", Kind: "link"}, "sub/up", "sub/inner.txt"},
		{"./empty/", sandbox.DeleteResult{Path: "empty", Kind: "dir"}, "empty", ""},
		{"fifo", sandbox.DeleteResult{Path: "fifo", Kind: "other"}, "fifo", ""},
	} {
		r, err := sb.Delete(ctx, c.path)
		if err != nil || *r != c.want {
			t.Errorf("delete %q: %+v %v, want %+v", c.path, r, err, c.want)
			continue
		}
		if _, err := os.Lstat(filepath.Join(fx.Dir, c.gone)); !os.IsNotExist(err) {
			t.Errorf("delete %q: %s is still there (%v)", c.path, c.gone, err)
		}
		if c.kept != "" {
			if _, err := os.Lstat(filepath.Join(fx.Dir, c.kept)); err != nil {
				t.Errorf("delete %q took %s with it: %v", c.path, c.kept, err)
			}
		}
	}
	if TreeHash(t, fx.Outside) != outside {
		t.Fatal("a delete reached outside the repository")
	}
	// The next operations see it gone (in copy mode, the replica too).
	if _, err := sb.Open(ctx, "hello.txt"); code(err) != sandbox.CodeFileNotFound {
		t.Errorf("open after the delete: %v", err)
	}
	// Expect: a delete touches only what was decided on.
	if _, err := sb.Delete(sandbox.WithOptions(ctx, sandbox.Options{Expect: "sub/inner.txt"}), "edit-me.txt"); code(err) != sandbox.CodePathSecurity {
		t.Errorf("delete of something else than expected: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fx.Dir, "edit-me.txt")); err != nil {
		t.Errorf("the refused delete deleted: %v", err)
	}
	// Resolve as an entry names a link itself, as a delete touches it.
	if rel, err := sb.Resolve(sandbox.WithOptions(ctx, sandbox.Options{Entry: true}), "env-link"); err != nil || rel != "env-link" {
		t.Errorf("Resolve(env-link) as an entry: %q %v", rel, err)
	}
}

// testMove: a move renames a file, a link or a directory, making the
// directories before its destination; it replaces a file only when told,
// never a directory; it refuses what a write refuses at either end, and a
// directory holding anything that may not be written where it is or where
// it would land; a refused one changes nothing.
func testMove(t *testing.T, newSandbox Factory) {
	fx := NewFixture(t)
	writeFile(t, filepath.Join(fx.Dir, "pkg/a.go"), "package pkg\n")
	writeFile(t, filepath.Join(fx.Dir, "pkg/b/c.go"), "package b\n")
	writeFile(t, filepath.Join(fx.Dir, "stage/prod.yaml"), "password: planted\n")
	writeFile(t, filepath.Join(fx.Dir, "secrets/prod.yaml"), "password: x\n")
	writeFile(t, filepath.Join(fx.Dir, "nested/llm-runtime.config.yaml"), "sandbox: local\n")
	limits := Limits
	limits.Excluded = append(slices.Clone(sandbox.DefaultExcluded), "secrets/prod.yaml")
	sb := newSandbox(t, fx.Dir, limits)
	defer sb.Close()
	ctx := context.Background()
	overwrite := sandbox.WithOptions(ctx, sandbox.Options{Overwrite: true})
	before := TreeHash(t, fx.Dir)
	for _, c := range []struct {
		ctx      context.Context
		src, dst string
		code     string
	}{
		{ctx, ".env", "env.txt", sandbox.CodePathSecurity},
		{ctx, "hello.txt", ".env", sandbox.CodePathSecurity},
		{ctx, "hello.txt", "app/.env", sandbox.CodePathSecurity},
		{ctx, "hello.txt", ".git/hooks/pre-commit", sandbox.CodePathSecurity},
		{ctx, "hello.txt", "llm-runtime.config.yaml", sandbox.CodePathSecurity},
		{ctx, "llm-runtime.config.yaml", "x.yaml", sandbox.CodePathSecurity},
		{ctx, "hello.txt", ".mcp.json", sandbox.CodePathSecurity},
		{ctx, "hello.txt", "../outside/hello.txt", sandbox.CodePathSecurity},
		{ctx, "hello.txt", "dirlink/hello.txt", sandbox.CodePathSecurity},
		{ctx, "../outside/secret.txt", "stolen.txt", sandbox.CodePathSecurity},
		{ctx, "dirlink/secret.txt", "stolen.txt", sandbox.CodePathSecurity},
		{ctx, "hello.txt", "secrets/prod.yaml", sandbox.CodePathSecurity},
		// A directory is checked at every level, where it is and where it lands.
		{ctx, "secrets", "public", sandbox.CodePathSecurity},
		{ctx, "sub", "sub2", sandbox.CodePathSecurity},             // holds .env
		{ctx, "stage", "deploy/secrets", sandbox.CodePathSecurity}, // stage/prod.yaml would land at an excluded path
		{ctx, "nested", "nested2", sandbox.CodePathSecurity},
		{ctx, "hello.txt", "edit-me.txt", sandbox.CodeFileExists},
		{ctx, "hello.txt", "sub", sandbox.CodeIsDirectory},
		{overwrite, "hello.txt", "sub", sandbox.CodeIsDirectory},
		{overwrite, "pkg", "edit-me.txt", sandbox.CodeIsDirectory},
		{ctx, "pkg", "pkg/inside", sandbox.CodeInvalidPath},
		{ctx, "hello.txt", "./hello.txt", sandbox.CodeInvalidPath},
		{ctx, ".", "root2", sandbox.CodeInvalidPath},
		{ctx, "missing.txt", "x.txt", sandbox.CodeFileNotFound},
		{ctx, "hello.txt/x", "x.txt", sandbox.CodeFileNotFound},
		{ctx, "hello.txt", "edit-me.txt/x", sandbox.CodeFileNotFound},
		{sandbox.WithOptions(ctx, sandbox.Options{Expect: "edit-me.txt"}), "hello.txt", "h.txt", sandbox.CodePathSecurity},
		{sandbox.WithOptions(ctx, sandbox.Options{ExpectTo: "elsewhere.txt"}), "hello.txt", "h.txt", sandbox.CodePathSecurity},
	} {
		if r, err := sb.Move(c.ctx, c.src, c.dst); code(err) != c.code {
			t.Errorf("move %q %q: %+v %v, want %s", c.src, c.dst, r, err, c.code)
		}
	}
	if after := TreeHash(t, fx.Dir); after != before {
		t.Fatal("a refused move changed the repository (or made a directory on its way)")
	}
	for _, c := range []struct {
		ctx      context.Context
		src, dst string
		want     sandbox.MoveResult
		content  string // what dst holds, for a file
	}{
		{ctx, "hello.txt", "docs/new/hello.md", sandbox.MoveResult{From: "hello.txt", To: "docs/new/hello.md", Kind: "file"}, "hello\n"},
		{overwrite, "docs/new/hello.md", "edit-me.txt", sandbox.MoveResult{From: "docs/new/hello.md", To: "edit-me.txt", Kind: "file", Replaced: true}, "hello\n"},
		{ctx, "pkg", "internal/pkg", sandbox.MoveResult{From: "pkg", To: "internal/pkg", Kind: "dir", Entries: 3}, ""},
		{ctx, "link-out", "links/out", sandbox.MoveResult{From: "link-out", To: "links/out", Kind: "link"}, ""},
		{ctx, "sub/up/dup.txt", "dup2.txt", sandbox.MoveResult{From: "dup.txt", To: "dup2.txt", Kind: "file"}, "x\ny\nx\n"},
	} {
		r, err := sb.Move(c.ctx, c.src, c.dst)
		if err != nil || *r != c.want {
			t.Errorf("move %q %q: %+v %v, want %+v", c.src, c.dst, r, err, c.want)
			continue
		}
		if _, err := os.Lstat(filepath.Join(fx.Dir, c.want.From)); !os.IsNotExist(err) {
			t.Errorf("move %q: %s is still there (%v)", c.src, c.want.From, err)
		}
		if c.content != "" {
			if b, err := os.ReadFile(filepath.Join(fx.Dir, c.want.To)); string(b) != c.content {
				t.Errorf("move %q: %s holds %q (%v)", c.src, c.want.To, b, err)
			}
		}
	}
	if b, _ := os.ReadFile(filepath.Join(fx.Dir, "internal/pkg/b/c.go")); string(b) != "package b\n" {
		t.Errorf("the moved directory lost its content: %q", b)
	}
	// The next operations see the moves (in copy mode, the replica too).
	if f, err := sb.Open(ctx, "internal/pkg/b/c.go"); err != nil || string(f.Content) != "package b\n" {
		t.Errorf("open after the move: %v", err)
	}
	if _, err := sb.Open(ctx, "pkg/a.go"); code(err) != sandbox.CodeFileNotFound {
		t.Errorf("open of a moved file's old path: %v", err)
	}
	if l, _ := os.Readlink(filepath.Join(fx.Dir, "links/out")); l != "../outside/secret.txt" {
		t.Errorf("a moved link is not the link it was: %q", l)
	}
	if b, _ := os.ReadFile(filepath.Join(fx.Outside, "secret.txt")); string(b) != Secret {
		t.Errorf("the secret outside changed: %q", b)
	}
}
