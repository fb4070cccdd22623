// Package sandboxtest is the conformance suite every sandbox.Sandbox must
// pass: the same files, the same hostile inputs and the same expected
// answers, whether the operations run on the host or in a container.
package sandboxtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/llm-runtime/llm-runtime/edit"
	"github.com/llm-runtime/llm-runtime/parser"
	"github.com/llm-runtime/llm-runtime/sandbox"
)

// Factory returns a sandbox on the repository dir with the given limits. The
// sandbox is closed by the suite.
type Factory func(t *testing.T, dir string, limits sandbox.Limits) sandbox.Sandbox

// Secret is the content of the file outside the repository; no result may
// ever contain it.
const Secret = "TOP SECRET: outside the repository"

// Limits are the limits the suite runs with: small, so the limits are easy
// to cross.
var Limits = sandbox.Limits{
	MaxFileSize:      4096,
	MaxWriteSize:     2048,
	WriteProtected:   []string{"llm-runtime.config.yaml"},
	MaxSearchResults: 5,
	MaxLineLength:    40,
}

// Fixture is a repository and, beside it, a directory the sandbox must
// never reach.
type Fixture struct {
	Dir     string // the repository
	Outside string // a sibling of the repository holding Secret
}

// NewFixture lays out the repository the suite works on.
func NewFixture(t *testing.T) Fixture {
	t.Helper()
	base := t.TempDir()
	fx := Fixture{Dir: filepath.Join(base, "repo"), Outside: filepath.Join(base, "outside")}
	files := map[string]string{
		"hello.txt":               "hello\n",
		"sub/inner.txt":           "inner\n",
		"sub/.env":                "TOKEN=sub\n",
		".env":                    "TOKEN=root\n",
		".git/config":             "[core]\n",
		"keys/server.key":         "KEY\n",
		"cert.PEM":                "PEM\n",
		"bin.dat":                 "abc\x00def",
		"big.txt":                 strings.Repeat("b", int(Limits.MaxFileSize)+1),
		"llm-runtime.config.yaml": "sandbox: local\n",
		"edit-me.txt":             "one\ntwo\n",
		"dup.txt":                 "x\ny\nx\n",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(fx.Dir, name), content)
	}
	writeFile(t, filepath.Join(fx.Outside, "secret.txt"), Secret)
	links := map[string]string{
		"link-out": "../outside/secret.txt",
		"abs-link": filepath.Join(fx.Outside, "secret.txt"),
		"dirlink":  "../outside",
		"inlink":   "hello.txt",
		"env-link": ".env",
		"git-link": ".git",
		"loop":     "loop",
		"sub/up":   "..",
		"sub/out":  "../../outside",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(fx.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(fx.Dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return fx
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TreeHash hashes every name, mode and content under dir, so a test can
// prove nothing there changed.
func TreeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, p := range names {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %v %d\n", p, fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// Op is one operation of a table-driven case.
type Op struct {
	Name    string
	Kind    string // "open", "write", "edit" or "search"
	Arg     string
	Content string // for write; for edit, its blocks
	Code    string // expected error code; "" for success
	Want    string // for a successful open: the content; for write: the bytes on disk
	// CopyCode, when set, is the expected code in copy mode instead: a
	// replica holds only regular files, directories and links, so a FIFO
	// of the repository is not there.
	CopyCode string
}

// Hostile is the table of hostile and edge-case paths and contents, each
// with its expected outcome.
func Hostile(fx Fixture) []Op {
	long := strings.Repeat("a", 5000)
	return []Op{
		{Name: "dot-dot", Kind: "open", Arg: "../outside/secret.txt", Code: sandbox.CodePathSecurity},
		{Name: "dot-dot deep", Kind: "open", Arg: "../../../../../../etc/passwd", Code: sandbox.CodePathSecurity},
		{Name: "dot-dot after a directory", Kind: "open", Arg: "sub/../../outside/secret.txt", Code: sandbox.CodePathSecurity},
		{Name: "dot-dot through a missing directory", Kind: "open", Arg: "nope/../../outside/secret.txt", Code: sandbox.CodePathSecurity},
		{Name: "bare dot-dot", Kind: "open", Arg: "..", Code: sandbox.CodePathSecurity},
		{Name: "absolute system path", Kind: "open", Arg: "/etc/passwd", Code: sandbox.CodePathSecurity},
		{Name: "absolute path to the secret", Kind: "open", Arg: filepath.Join(fx.Outside, "secret.txt"), Code: sandbox.CodePathSecurity},
		{Name: "absolute path inside the repository", Kind: "open", Arg: filepath.Join(fx.Dir, "hello.txt"), Code: sandbox.CodePathSecurity},
		{Name: "symlinked file pointing outside", Kind: "open", Arg: "link-out", Code: sandbox.CodePathSecurity},
		{Name: "absolute symlink", Kind: "open", Arg: "abs-link", Code: sandbox.CodePathSecurity},
		{Name: "symlinked parent directory pointing outside", Kind: "open", Arg: "dirlink/secret.txt", Code: sandbox.CodePathSecurity},
		{Name: "nested symlinked parent pointing outside", Kind: "open", Arg: "sub/out/secret.txt", Code: sandbox.CodePathSecurity},
		{Name: "symlink to .. then out", Kind: "open", Arg: "sub/up/../outside/secret.txt", Code: sandbox.CodePathSecurity},
		{Name: "write through a symlinked parent", Kind: "write", Arg: "dirlink/evil.txt", Content: "x", Code: sandbox.CodePathSecurity},
		{Name: "write through a symlinked file", Kind: "write", Arg: "link-out", Content: "x", Code: sandbox.CodePathSecurity},
		{Name: "write with dot-dot", Kind: "write", Arg: "../outside/evil.txt", Content: "x", Code: sandbox.CodePathSecurity},
		{Name: "write to an absolute path", Kind: "write", Arg: "/tmp/llm-runtime-evil.txt", Content: "x", Code: sandbox.CodePathSecurity},
		{Name: "symlink loop", Kind: "open", Arg: "loop", Code: sandbox.CodePathSecurity},
		{Name: "excluded .env", Kind: "open", Arg: ".env", Code: sandbox.CodePathSecurity},
		{Name: "excluded .env at depth", Kind: "open", Arg: "sub/.env", Code: sandbox.CodePathSecurity},
		{Name: "excluded .git", Kind: "open", Arg: ".git/config", Code: sandbox.CodePathSecurity},
		{Name: "write into .git", Kind: "write", Arg: ".git/hooks/pre-commit", Content: "#!/bin/sh\n", Code: sandbox.CodePathSecurity},
		{Name: "write a new .env", Kind: "write", Arg: "app/.env", Content: "x", Code: sandbox.CodePathSecurity},
		{Name: "excluded *.key", Kind: "open", Arg: "keys/server.key", Code: sandbox.CodePathSecurity},
		{Name: "excluded *.pem in another case", Kind: "open", Arg: "cert.PEM", Code: sandbox.CodePathSecurity},
		{Name: "symlink to an excluded file", Kind: "open", Arg: "env-link", Code: sandbox.CodePathSecurity},
		{Name: "symlink to an excluded directory", Kind: "write", Arg: "git-link/config", Content: "x", Code: sandbox.CodePathSecurity},
		{Name: "dot-dot into an excluded file", Kind: "open", Arg: "sub/../.env", Code: sandbox.CodePathSecurity},
		{Name: "the configuration file", Kind: "write", Arg: "llm-runtime.config.yaml", Content: "sandbox: local\n", Code: sandbox.CodePathSecurity},
		{Name: "NUL in a path", Kind: "open", Arg: "hello.txt\x00.png", Code: sandbox.CodePathSecurity},
		{Name: "NUL in a write path", Kind: "write", Arg: "a\x00b", Content: "x", Code: sandbox.CodePathSecurity},
		{Name: "newline in a path", Kind: "open", Arg: "hello.txt\n=== END COMMAND ===", Code: sandbox.CodePathSecurity},
		{Name: "invalid UTF-8 in a path", Kind: "write", Arg: "bad\xff.txt", Content: "x", Code: sandbox.CodePathSecurity},
		{Name: "5000-character name", Kind: "open", Arg: long, Code: sandbox.CodeInvalidPath},
		{Name: "5000-character write", Kind: "write", Arg: long, Content: "x", Code: sandbox.CodeInvalidPath},
		{Name: "256-byte component", Kind: "write", Arg: "sub/" + strings.Repeat("n", 256), Content: "x", Code: sandbox.CodeInvalidPath},
		{Name: "empty path", Kind: "open", Arg: "", Code: sandbox.CodeInvalidPath},
		{Name: "blank path", Kind: "write", Arg: "   ", Content: "x", Code: sandbox.CodeInvalidPath},
		{Name: "the root", Kind: "open", Arg: ".", Code: sandbox.CodeIsDirectory},
		{Name: "a directory", Kind: "open", Arg: "sub", Code: sandbox.CodeIsDirectory},
		{Name: "write over a directory", Kind: "write", Arg: "sub", Content: "x", Code: sandbox.CodeIsDirectory},
		{Name: "write over the root", Kind: "write", Arg: "./", Content: "x", Code: sandbox.CodeIsDirectory},
		{Name: "a parent that is a file", Kind: "write", Arg: "hello.txt/x", Content: "x", Code: sandbox.CodeFileNotFound},
		{Name: "binary file", Kind: "open", Arg: "bin.dat", Code: sandbox.CodeBinaryFile},
		{Name: "file over the size limit", Kind: "open", Arg: "big.txt", Code: sandbox.CodeResourceLimit},
		{Name: "content over the write limit", Kind: "write", Arg: "hello.txt", Content: strings.Repeat("x", int(Limits.MaxWriteSize)+1), Code: sandbox.CodeResourceLimit},
		{Name: "a FIFO does not hang", Kind: "open", Arg: "fifo", Code: sandbox.CodeNotRegularFile, CopyCode: sandbox.CodeFileNotFound},
		{Name: "write over a FIFO", Kind: "write", Arg: "fifo", Content: "x", Code: sandbox.CodeNotRegularFile},
		{Name: "missing file", Kind: "open", Arg: "missing.txt", Code: sandbox.CodeFileNotFound},
		{Name: "backslashes are not separators", Kind: "open", Arg: `..\outside\secret.txt`, Code: sandbox.CodeFileNotFound},
		{Name: "no tilde expansion", Kind: "open", Arg: "~/.bashrc", Code: sandbox.CodeFileNotFound},
		{Name: "no variable expansion", Kind: "open", Arg: "$HOME/.bashrc", Code: sandbox.CodeFileNotFound},
		{Name: "no URL schemes", Kind: "open", Arg: "file:///etc/passwd", Code: sandbox.CodeFileNotFound},
		{Name: "shell syntax is written as it is", Kind: "write", Arg: "shell.txt", Content: "echo $(rm -rf /)\n`id`\n\tdone\n", Want: "echo $(rm -rf /)\n`id`\n\tdone\n"},
		{Name: "CRLF is kept", Kind: "write", Arg: "crlf.txt", Content: "a\r\nb\r\n", Want: "a\r\nb\r\n"},
		{Name: "invalid UTF-8 and NUL content is kept", Kind: "write", Arg: "raw.txt", Content: "\xff\xfe\x00z", Want: "\xff\xfe\x00z"},
		{Name: "quotes and backslashes are kept", Kind: "write", Arg: "q.txt", Content: `"'\n\\`, Want: `"'\n\\`},
		{Name: "a path with spaces", Kind: "write", Arg: "my notes/to do.txt", Content: "x", Want: "x"},
		{Name: "shell metacharacters in a name", Kind: "write", Arg: "$(touch pwned);`id`.txt", Content: "x", Want: "x"},
		{Name: "dot segments that stay inside", Kind: "open", Arg: "sub/./../sub//inner.txt", Want: "inner\n"},
		{Name: "symlink inside the repository", Kind: "open", Arg: "inlink", Want: "hello\n"},
		{Name: "symlink to .. that stays inside", Kind: "open", Arg: "sub/up/hello.txt", Want: "hello\n"},
		{Name: "new parent directories", Kind: "write", Arg: "new/deep/dir/file.txt", Content: "deep", Want: "deep"},
		{Name: "write through an inside symlink keeps the link", Kind: "write", Arg: "inlink", Content: "via link\n", Want: "via link\n"},
		{Name: "edit through a symlink pointing outside", Kind: "edit", Arg: "link-out", Content: block("s3cr3t", "x"), Code: sandbox.CodePathSecurity},
		{Name: "edit through a symlinked parent", Kind: "edit", Arg: "dirlink/secret.txt", Content: block("s3cr3t", "x"), Code: sandbox.CodePathSecurity},
		{Name: "edit with dot-dot", Kind: "edit", Arg: "../outside/secret.txt", Content: block("s3cr3t", "x"), Code: sandbox.CodePathSecurity},
		{Name: "edit an absolute path", Kind: "edit", Arg: "/etc/passwd", Content: block("root", "x"), Code: sandbox.CodePathSecurity},
		{Name: "edit .env", Kind: "edit", Arg: ".env", Content: block("SECRET=1", "x"), Code: sandbox.CodePathSecurity},
		{Name: "edit into .git", Kind: "edit", Arg: ".git/config", Content: block("[core]", "x"), Code: sandbox.CodePathSecurity},
		{Name: "edit the configuration file", Kind: "edit", Arg: "llm-runtime.config.yaml", Content: block("sandbox: local", "sandbox: docker"), Code: sandbox.CodePathSecurity},
		{Name: "edit a FIFO", Kind: "edit", Arg: "fifo", Content: block("a", "b"), Code: sandbox.CodeNotRegularFile},
		{Name: "edit a directory", Kind: "edit", Arg: "sub", Content: block("a", "b"), Code: sandbox.CodeIsDirectory},
		{Name: "edit a missing file", Kind: "edit", Arg: "missing.txt", Content: block("a", "b"), Code: sandbox.CodeFileNotFound},
		{Name: "edit a binary file", Kind: "edit", Arg: "bin.dat", Content: block("abc", "x"), Code: sandbox.CodeBinaryFile},
		{Name: "edit a file over the size limit", Kind: "edit", Arg: "big.txt", Content: block("b", "x"), Code: sandbox.CodeResourceLimit},
		{Name: "edit with no block", Kind: "edit", Arg: "edit-me.txt", Content: "one\n", Code: sandbox.CodeEditSyntax},
		{Name: "edit whose SEARCH is nowhere", Kind: "edit", Arg: "edit-me.txt", Content: block("three", "3"), Code: sandbox.CodeEditNoMatch},
		{Name: "edit whose SEARCH is twice", Kind: "edit", Arg: "dup.txt", Content: block("x", "z"), Code: sandbox.CodeEditAmbiguous},
		{Name: "edit", Kind: "edit", Arg: "edit-me.txt", Content: block("two", "2"), Want: "one\n2\n"},
		{Name: "edit through an inside symlink", Kind: "edit", Arg: "sub/up/edit-me.txt", Content: block("one", "1"), Want: "1\n2\n"},
	}
}

// block is an edit body of one SEARCH/REPLACE block.
func block(search, replace string) string {
	return "<<<<<<< SEARCH\n" + search + "\n=======\n" + replace + "\n>>>>>>> REPLACE\n"
}

// HostileCopy is Hostile as copy mode answers it (Op.CopyCode).
func HostileCopy(fx Fixture) []Op {
	ops := Hostile(fx)
	for i := range ops {
		if ops[i].CopyCode != "" {
			ops[i].Code = ops[i].CopyCode
		}
	}
	return ops
}

// Run runs the conformance suite against the sandboxes newSandbox makes.
func Run(t *testing.T, newSandbox Factory) { run(t, newSandbox, false) }

// RunCopy runs it against sandboxes in copy mode, whose hostile cases are
// HostileCopy.
func RunCopy(t *testing.T, newSandbox Factory) { run(t, newSandbox, true) }

func run(t *testing.T, newSandbox Factory, copyMode bool) {
	hostile := Hostile
	if copyMode {
		hostile = HostileCopy
	}
	t.Run("Hostile", func(t *testing.T) { testHostile(t, newSandbox, hostile) })
	t.Run("SymlinkSwappedBetweenCommands", func(t *testing.T) { testSwap(t, newSandbox) })
	t.Run("Write", func(t *testing.T) { testWrite(t, newSandbox) })
	t.Run("Edit", func(t *testing.T) { testEdit(t, newSandbox) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newSandbox) })
	t.Run("Move", func(t *testing.T) { testMove(t, newSandbox) })
	t.Run("Record", func(t *testing.T) { testRecord(t, newSandbox) })
	t.Run("Lines", func(t *testing.T) { testLines(t, newSandbox, copyMode) })
	t.Run("List", func(t *testing.T) { testList(t, newSandbox) })
	t.Run("Search", func(t *testing.T) { testSearch(t, newSandbox) })
	t.Run("Racer", func(t *testing.T) { testRacer(t, newSandbox) })
	t.Run("ResolveAndOptions", func(t *testing.T) { testResolve(t, newSandbox) })
}

// testResolve checks Resolve, and that an operation refuses to touch
// anything but what Options.Expect approved, and a search's Skip and
// ListFiles.
func testResolve(t *testing.T, newSandbox Factory) {
	fx := NewFixture(t)
	sb := newSandbox(t, fx.Dir, Limits)
	defer sb.Close()
	ctx := context.Background()
	for in, want := range map[string]string{
		"inlink": "hello.txt", "sub/up/hello.txt": "hello.txt", "sub/./../sub//inner.txt": "sub/inner.txt",
		"new/deep/x.txt": "new/deep/x.txt", "missing/../hello.txt": "hello.txt", "./": ".", "sub/up": ".",
		"env-link": sandbox.CodePathSecurity, "link-out": sandbox.CodePathSecurity, "sub/.env": sandbox.CodePathSecurity,
		"../x": sandbox.CodePathSecurity, "hello.txt/x": sandbox.CodeFileNotFound, "git-link/config": sandbox.CodePathSecurity,
	} {
		got, err := sb.Resolve(ctx, in)
		if err != nil {
			got = code(err)
		}
		if got != want {
			t.Errorf("Resolve(%q) = %q (%v), want %q", in, got, err, want)
		}
	}
	expect := func(rel string) context.Context { return sandbox.WithOptions(ctx, sandbox.Options{Expect: rel}) }
	if f, err := sb.Open(expect("hello.txt"), "inlink"); err != nil || string(f.Content) != "hello\n" {
		t.Errorf("open as expected: %v", err)
	}
	if _, err := sb.Open(expect("sub/inner.txt"), "inlink"); code(err) != sandbox.CodePathSecurity {
		t.Errorf("open of something else than expected: %v", err)
	}
	if _, err := sb.Write(expect("sub/inner.txt"), "inlink", []byte("x")); code(err) != sandbox.CodePathSecurity {
		t.Errorf("write of something else than expected: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(fx.Dir, "hello.txt")); string(b) != "hello\n" {
		t.Errorf("the refused write wrote: %q", b)
	}
	if w, err := sb.Write(expect("made/here.txt"), "made/./here.txt", []byte("x")); err != nil || w.Path != "made/here.txt" {
		t.Errorf("write as expected: %+v %v", w, err)
	}
	writeFile(t, filepath.Join(fx.Dir, "s1.txt"), "needle 1\n")
	writeFile(t, filepath.Join(fx.Dir, "s2.txt"), "needle 2\nneedle 3\n")
	res, err := sb.Search(sandbox.WithOptions(ctx, sandbox.Options{ListFiles: true}), parser.Query{Text: "needle"})
	if err != nil || strings.Join(res.MatchedFiles, ",") != "s1.txt,s2.txt" || res.Total != 3 {
		t.Errorf("search listing files: %+v %v", res, err)
	}
	res, err = sb.Search(sandbox.WithOptions(ctx, sandbox.Options{Skip: []string{"s2.txt"}}), parser.Query{Text: "needle"})
	if err != nil || res.Total != 1 || res.Files != 1 || len(res.Matches) != 1 || res.Matches[0].Path != "s1.txt" || res.MatchedFiles != nil {
		t.Errorf("search skipping a file: %+v %v", res, err)
	}
}

func code(err error) string {
	if err == nil {
		return ""
	}
	return sandbox.AsError(err).Code
}

// Do runs op on sb and checks its outcome; it returns what a successful
// open read.
func Do(t *testing.T, sb sandbox.Sandbox, fx Fixture, op Op) {
	t.Helper()
	ctx := context.Background()
	var got string
	var err error
	switch op.Kind {
	case "open":
		var f *sandbox.File
		if f, err = sb.Open(ctx, op.Arg); err == nil {
			got = string(f.Content)
		}
	case "write":
		var w *sandbox.WriteResult
		if w, err = sb.Write(ctx, op.Arg, []byte(op.Content)); err == nil {
			if w.Bytes != int64(len(op.Content)) {
				t.Errorf("%s: Bytes = %d, want %d", op.Name, w.Bytes, len(op.Content))
			}
			b, rerr := os.ReadFile(filepath.Join(fx.Dir, w.Path))
			if rerr != nil {
				t.Fatalf("%s: reading back %s: %v", op.Name, w.Path, rerr)
			}
			got = string(b)
		}
	case "edit":
		var e *sandbox.EditResult
		if e, err = sb.Edit(ctx, op.Arg, []byte(op.Content)); err == nil {
			b, rerr := os.ReadFile(filepath.Join(fx.Dir, e.Path))
			if rerr != nil {
				t.Fatalf("%s: reading back %s: %v", op.Name, e.Path, rerr)
			}
			if e.Bytes != int64(len(b)) {
				t.Errorf("%s: Bytes = %d, the file has %d", op.Name, e.Bytes, len(b))
			}
			got = string(b)
		}
	default:
		t.Fatalf("unknown op kind %q", op.Kind)
	}
	if c := code(err); c != op.Code {
		t.Fatalf("%s: %s %q: code %q (%v), want %q", op.Name, op.Kind, op.Arg, c, err, op.Code)
	}
	if err == nil && got != op.Want {
		t.Fatalf("%s: got %q, want %q", op.Name, got, op.Want)
	}
	if err != nil && strings.Contains(err.Error(), Secret) || strings.Contains(got, Secret) {
		t.Fatalf("%s: the secret outside the repository leaked", op.Name)
	}
}

func testHostile(t *testing.T, newSandbox Factory, hostile func(Fixture) []Op) {
	fx := NewFixture(t)
	before := TreeHash(t, fx.Outside)
	hello, _ := os.ReadFile(filepath.Join(fx.Dir, "hello.txt"))
	sb := newSandbox(t, fx.Dir, Limits)
	defer sb.Close()
	ops := hostile(fx)
	if len(ops) < 30 {
		t.Fatalf("only %d hostile cases", len(ops))
	}
	for _, op := range ops {
		t.Run(op.Name, func(t *testing.T) { Do(t, sb, fx, op) })
	}
	if after := TreeHash(t, fx.Outside); after != before {
		t.Fatal("something outside the repository changed")
	}
	if _, err := os.Lstat("/tmp/llm-runtime-evil.txt"); err == nil {
		t.Fatal("an absolute path was written")
	}
	// The refused oversized write left the old content in place; the
	// write through inlink changed hello.txt itself, and inlink is still a
	// link.
	if fi, err := os.Lstat(filepath.Join(fx.Dir, "inlink")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("inlink is no longer a symlink: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(fx.Dir, "hello.txt")); string(b) != "via link\n" || string(hello) != "hello\n" {
		t.Fatalf("hello.txt = %q", b)
	}
	if _, err := os.Stat(filepath.Join(fx.Dir, "pwned")); err == nil {
		t.Fatal("a file name was run by a shell")
	}
	if b, _ := os.ReadFile(filepath.Join(fx.Dir, "llm-runtime.config.yaml")); string(b) != "sandbox: local\n" {
		t.Fatalf("the configuration file changed: %q", b)
	}
}

// testSwap replaces a directory with a symlink to the outside between two
// commands: the second must be refused.
func testSwap(t *testing.T, newSandbox Factory) {
	fx := NewFixture(t)
	sb := newSandbox(t, fx.Dir, Limits)
	defer sb.Close()
	Do(t, sb, fx, Op{Name: "before the swap", Kind: "write", Arg: "swap/x.txt", Content: "one", Want: "one"})
	before := TreeHash(t, fx.Outside)
	if err := os.RemoveAll(filepath.Join(fx.Dir, "swap")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fx.Outside, filepath.Join(fx.Dir, "swap")); err != nil {
		t.Fatal(err)
	}
	Do(t, sb, fx, Op{Name: "write after the swap", Kind: "write", Arg: "swap/x.txt", Content: "two", Code: sandbox.CodePathSecurity})
	Do(t, sb, fx, Op{Name: "open after the swap", Kind: "open", Arg: "swap/secret.txt", Code: sandbox.CodePathSecurity})
	if err := os.Remove(filepath.Join(fx.Dir, "swap")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside", filepath.Join(fx.Dir, "swap")); err != nil {
		t.Fatal(err)
	}
	Do(t, sb, fx, Op{Name: "write after a relative swap", Kind: "write", Arg: "swap/x.txt", Content: "two", Code: sandbox.CodePathSecurity})
	if TreeHash(t, fx.Outside) != before {
		t.Fatal("the swapped symlink let a write out")
	}
}

func testWrite(t *testing.T, newSandbox Factory) {
	fx := NewFixture(t)
	sb := newSandbox(t, fx.Dir, Limits)
	defer sb.Close()
	ctx := context.Background()
	w, err := sb.Write(ctx, "fresh.txt", []byte("a"))
	if err != nil || !w.Created || w.Action() != "CREATED" || w.Path != "fresh.txt" {
		t.Fatalf("first write: %+v, %v", w, err)
	}
	w, err = sb.Write(ctx, "./fresh.txt", []byte("bb"))
	if err != nil || w.Created || w.Action() != "UPDATED" || w.Bytes != 2 || w.Path != "fresh.txt" {
		t.Fatalf("second write: %+v, %v", w, err)
	}
	if fi, err := os.Stat(filepath.Join(fx.Dir, "fresh.txt")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("new file mode: %v, %v", fi.Mode(), err)
	}
	// An existing file's mode is kept.
	script := filepath.Join(fx.Dir, "run.sh")
	writeFile(t, script, "#!/bin/sh\n")
	if err := os.Chmod(script, 0o751); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Write(ctx, "run.sh", []byte("#!/bin/sh\necho hi\n")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(script); fi.Mode().Perm() != 0o751 {
		t.Fatalf("mode changed to %v", fi.Mode().Perm())
	}
	// A refused write leaves the old file untouched.
	if _, err := sb.Write(ctx, "run.sh", bytes.Repeat([]byte("x"), int(Limits.MaxWriteSize)+1)); code(err) != sandbox.CodeResourceLimit {
		t.Fatalf("oversized write: %v", err)
	}
	if b, _ := os.ReadFile(script); string(b) != "#!/bin/sh\necho hi\n" {
		t.Fatalf("refused write changed the file: %q", b)
	}
	// Exactly the limit is fine, and an empty file is a file.
	if _, err := sb.Write(ctx, "limit.txt", bytes.Repeat([]byte("x"), int(Limits.MaxWriteSize))); err != nil {
		t.Fatalf("write of exactly the limit: %v", err)
	}
	if w, err := sb.Write(ctx, "empty.txt", nil); err != nil || w.Bytes != 0 {
		t.Fatalf("empty write: %+v %v", w, err)
	}
	// No temporary files are left behind.
	filepath.WalkDir(fx.Dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
	// What is written is what is read.
	f, err := sb.Open(ctx, "fresh.txt")
	if err != nil || string(f.Content) != "bb" || f.Path != "fresh.txt" {
		t.Fatalf("read back: %+v, %v", f, err)
	}
	// A file of exactly the read limit is read.
	writeFile(t, filepath.Join(fx.Dir, "edge.txt"), strings.Repeat("e", int(Limits.MaxFileSize)))
	if f, err := sb.Open(ctx, "edge.txt"); err != nil || len(f.Content) != int(Limits.MaxFileSize) {
		t.Fatalf("file of exactly the limit: %v", err)
	}
}

// testEdit checks what an edit leaves: the result, the mode, the limits on
// the file and not on the edit, a dry run and its base, and nothing left
// behind by a refused one.
func testEdit(t *testing.T, newSandbox Factory) {
	fx := NewFixture(t)
	sb := newSandbox(t, fx.Dir, Limits)
	defer sb.Close()
	ctx := context.Background()
	// A file larger than the write limit takes a small edit.
	large := strings.Repeat("line\n", int(Limits.MaxWriteSize)/5) + "last\n"
	writeFile(t, filepath.Join(fx.Dir, "large.txt"), large)
	os.Chmod(filepath.Join(fx.Dir, "large.txt"), 0o751)
	e, err := sb.Edit(ctx, "large.txt", []byte(block("last", "LAST")+block("  line  ", "first")))
	if code(err) != sandbox.CodeEditAmbiguous {
		t.Fatalf("an ambiguous second block: %+v %v", e, err)
	}
	if b, _ := os.ReadFile(filepath.Join(fx.Dir, "large.txt")); string(b) != large {
		t.Fatal("a refused edit changed the file: all blocks apply or none")
	}
	e, err = sb.Edit(ctx, "./large.txt", []byte(block("last", "LAST")))
	if err != nil || e.Path != "large.txt" || e.Applied != 1 || e.Bytes != int64(len(large)) || !strings.Contains(e.Diff, "-last\n+LAST\n") || len(e.Content) != 0 {
		t.Fatalf("edit of a large file: %+v %v", e, err)
	}
	if fi, _ := os.Stat(filepath.Join(fx.Dir, "large.txt")); fi.Mode().Perm() != 0o751 {
		t.Fatalf("mode changed to %v", fi.Mode().Perm())
	}
	// Loose matches are said.
	writeFile(t, filepath.Join(fx.Dir, "loose.go"), "func f() {\n\treturn nil\n}\n")
	e, err = sb.Edit(ctx, "loose.go", []byte(block("return nil  ", "return err")))
	if err != nil || len(e.Loose) != 1 || e.Loose[0] != 1 {
		t.Fatalf("loose edit: %+v %v", e, err)
	}
	if b, _ := os.ReadFile(filepath.Join(fx.Dir, "loose.go")); string(b) != "func f() {\n\treturn err\n}\n" {
		t.Fatalf("loose edit wrote %q", b)
	}
	// A block opened with SEARCH ALL replaces every exact match, and says
	// where; the same blocks given as such (MCP) do the same.
	writeFile(t, filepath.Join(fx.Dir, "all.go"), "f(1)\nx\nf(1)\n\tf(1)\n")
	e, err = sb.Edit(ctx, "all.go", []byte(strings.Replace(block("f(1)", "f(2)"), "SEARCH\n", "SEARCH ALL\n", 1)))
	if err != nil || len(e.Replaced) != 1 || fmt.Sprint(e.Replaced[0].Lines) != "[1 3]" {
		t.Fatalf("SEARCH ALL: %+v %v", e, err)
	}
	e, err = sb.Edit(sandbox.WithOptions(ctx, sandbox.Options{Blocks: []edit.Block{{Search: []string{"x"}, Replace: []string{"y"}, All: true}}}), "all.go", nil)
	if err != nil || len(e.Replaced) != 1 || fmt.Sprint(e.Replaced[0].Lines) != "[2]" {
		t.Fatalf("blocks with All: %+v %v", e, err)
	}
	if b, _ := os.ReadFile(filepath.Join(fx.Dir, "all.go")); string(b) != "f(2)\ny\nf(2)\n\tf(1)\n" {
		t.Fatalf("SEARCH ALL wrote %q", b)
	}
	// The closest lines come with a miss.
	if _, err := sb.Edit(ctx, "loose.go", []byte(block("func g() {", "x"))); code(err) != sandbox.CodeEditNoMatch || !strings.Contains(sandbox.AsError(err).Detail, "1  func f() {") {
		t.Fatalf("a miss: %v, detail %q", err, sandbox.AsError(err).Detail)
	}
	// The limit is on the result.
	writeFile(t, filepath.Join(fx.Dir, "grow.txt"), strings.Repeat("g", int(Limits.MaxFileSize)-10)+"\nend\n")
	if _, err := sb.Edit(ctx, "grow.txt", []byte(block("end", strings.Repeat("e", 100)))); code(err) != sandbox.CodeResourceLimit {
		t.Fatalf("an edit past max_file_size: %v", err)
	}
	// A dry run writes nothing and gives the content and the base; an
	// edit with that base applies, one with another is refused.
	d, err := sb.Edit(sandbox.WithOptions(ctx, sandbox.Options{DryRun: true}), "edit-me.txt", []byte(block("one", "uno")))
	if err != nil || string(d.Content) != "uno\ntwo\n" || len(d.Base) != 64 {
		t.Fatalf("dry run: %+v %v", d, err)
	}
	if b, _ := os.ReadFile(filepath.Join(fx.Dir, "edit-me.txt")); string(b) != "one\ntwo\n" {
		t.Fatalf("a dry run wrote %q", b)
	}
	if _, err := sb.Edit(sandbox.WithOptions(ctx, sandbox.Options{Base: strings.Repeat("0", 64)}), "edit-me.txt", []byte(block("one", "uno"))); code(err) != sandbox.CodePathSecurity {
		t.Fatalf("an edit with another base: %v", err)
	}
	if _, err := sb.Edit(sandbox.WithOptions(ctx, sandbox.Options{Base: d.Base, Expect: "edit-me.txt"}), "edit-me.txt", []byte(block("one", "uno"))); err != nil {
		t.Fatalf("an edit with its base: %v", err)
	}
	filepath.WalkDir(fx.Dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// testLines reads ranges of lines: of a file over the size limit too (the
// limit is on what is returned), with the line count, and with every rule
// of open.
func testLines(t *testing.T, newSandbox Factory, copyMode bool) {
	fx := NewFixture(t)
	sb := newSandbox(t, fx.Dir, Limits)
	defer sb.Close()
	var big strings.Builder
	for i := 1; big.Len() <= int(Limits.MaxFileSize); i++ {
		fmt.Fprintf(&big, "line %d\n", i)
	}
	writeFile(t, filepath.Join(fx.Dir, "huge.log"), big.String())
	total := strings.Count(big.String(), "\n")
	writeFile(t, filepath.Join(fx.Dir, "crlf.txt"), "a\r\nb\r\nc")
	read := func(path string, l sandbox.Lines) (*sandbox.File, error) {
		return sb.Open(sandbox.WithOptions(context.Background(), sandbox.Options{Lines: &l}), path)
	}
	f, err := read("huge.log", sandbox.Lines{Start: 100, End: 102})
	if err != nil || string(f.Content) != "line 100\nline 101\nline 102\n" || f.Lines == nil || *f.Lines != (sandbox.Lines{Start: 100, End: 102, Total: total}) {
		t.Fatalf("lines 100-102 of a file over the limit: %+v %v", f, err)
	}
	if f, err := read("huge.log", sandbox.Lines{Start: total}); err != nil || string(f.Content) != fmt.Sprintf("line %d\n", total) || f.Lines.End != total {
		t.Fatalf("the last line, N-: %+v %v", f, err)
	}
	if f, err := read("crlf.txt", sandbox.Lines{Start: 2, End: 9}); err != nil || string(f.Content) != "b\r\nc" || *f.Lines != (sandbox.Lines{Start: 2, End: 3, Total: 3}) {
		t.Fatalf("CRLF and a last line without a newline, an end past the last line: %+v %v", f, err)
	}
	if _, err := read("crlf.txt", sandbox.Lines{Start: 4}); code(err) != sandbox.CodeInvalidRange {
		t.Fatalf("a start past the end: %v", err)
	}
	if _, err := read("huge.log", sandbox.Lines{Start: 1}); code(err) != sandbox.CodeResourceLimit {
		t.Fatalf("a range over the limit: %v", err)
	}
	fifo := sandbox.CodeNotRegularFile
	if copyMode {
		fifo = sandbox.CodeFileNotFound // a replica holds no FIFO (Op.CopyCode)
	}
	for p, want := range map[string]string{".env": sandbox.CodePathSecurity, "link-out": sandbox.CodePathSecurity, "bin.dat": sandbox.CodeBinaryFile, "sub": sandbox.CodeIsDirectory, "fifo": fifo, "missing": sandbox.CodeFileNotFound} {
		if _, err := read(p, sandbox.Lines{Start: 1, End: 1}); code(err) != want {
			t.Errorf("lines of %s: %v, want %s", p, err, want)
		}
	}
}

// testList lists one level and everything under a directory: directories
// first, by name, excluded and .gitignored entries left out and counted,
// with the rules of open for the directory itself.
func testList(t *testing.T, newSandbox Factory) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"b.txt": "bb", "a.go": "a", "z/y.txt": "y", "z/deep/x.txt": "x", "m/.env": "S=1", "m/k.key": "k", "m/ok.txt": "ok",
		".gitignore": "build/\n*.log\n", "build/out.bin": "o", "run.log": "l", "z/keep.log": "k", "z/.gitignore": "!keep.log\n",
		".git/config": "[core]\n",
	} {
		writeFile(t, filepath.Join(dir, name), content)
	}
	os.Symlink("a.go", filepath.Join(dir, "link"))
	os.Symlink("../outside", filepath.Join(dir, "out"))
	sb := newSandbox(t, dir, Limits)
	defer sb.Close()
	ctx := context.Background()
	entries := func(l *sandbox.ListResult) string {
		var b strings.Builder
		for _, e := range l.Entries {
			fmt.Fprintf(&b, "%s %s %d %s\n", e.Kind, e.Path, e.Size, e.Target)
		}
		return b.String()
	}
	l, err := sb.List(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	want := "dir m 0 \ndir z 0 \nfile .gitignore 13 \nfile a.go 1 \nfile b.txt 2 \nlink link 0 a.go\nlink out 0 ../outside\n"
	if got := entries(l); got != want || l.Path != "." || l.Total != 7 || l.Excluded != 1 || l.Ignored != 2 || l.Recursive {
		t.Fatalf("list of the root:\n%s(total %d, excluded %d, ignored %d)\nwant\n%s", got, l.Total, l.Excluded, l.Ignored, want)
	}
	l, err = sb.List(ctx, "z", true)
	if err != nil {
		t.Fatal(err)
	}
	want = "dir z/deep 0 \nfile z/deep/x.txt 1 \nfile z/.gitignore 10 \nfile z/keep.log 1 \nfile z/y.txt 1 \n"
	if got := entries(l); got != want || l.Path != "z" || !l.Recursive {
		t.Fatalf("list of z/**:\n%s\nwant\n%s", got, want)
	}
	l, err = sb.List(ctx, ".", true)
	if err != nil || l.Total != 13 || l.Excluded != 3 || l.Ignored != 2 || strings.Contains(entries(l), ".env") || strings.Contains(entries(l), "k.key") {
		t.Fatalf("list of **: %v, total %d, excluded %d, ignored %d\n%s", err, l.Total, l.Excluded, l.Ignored, entries(l))
	}
	for arg, want := range map[string]string{".git": sandbox.CodePathSecurity, "out": sandbox.CodePathSecurity, "../": sandbox.CodePathSecurity, "a.go": sandbox.CodeNotDirectory, "nope": sandbox.CodeFileNotFound, "m/.env": sandbox.CodePathSecurity} {
		if _, err := sb.List(ctx, arg, false); code(err) != want {
			t.Errorf("list %s: %v, want %s", arg, err, want)
		}
	}
}

func testSearch(t *testing.T, newSandbox Factory) {
	fx := NewFixture(t)
	files := map[string]string{
		"a.go":                 "package a\n// TODO: one\nfunc A() {}\n",
		"b/b.go":               "// TODO: two\r\n// todo lower\n",
		"b/deep/c.txt":         "TODO three\n",
		"ignored.log":          "TODO ignored by .gitignore\n",
		"build/out.txt":        "TODO in an ignored directory\n",
		"b/.gitignore":         "local.txt\n",
		"b/local.txt":          "TODO ignored by a nested .gitignore\n",
		"b/keep.log":           "TODO re-included\n",
		".gitignore":           "*.log\n!keep.log\n/build/\n",
		"secret.pem":           "TODO in an excluded file\n",
		"bin2.dat":             "TODO\x00 binary\n",
		"long.txt":             "TODO " + strings.Repeat("é", 60) + "\n",
		"many/m.txt":           strings.Repeat("needle\n", 12),
		"unicode/ü.txt":        "naïve TODO\n",
		"huge/over-limit.txt":  "TODO " + strings.Repeat("x", int(Limits.MaxFileSize)),
		"sub/.env":             "TODO excluded\n",
		"b/deep/.gitignore":    "# comment\n\n",
		"b/deep/ok.txt":        "nothing here\n",
		"regexp/r.txt":         "foo123\nfoo\nbar456\n",
		"outside-link-target/": "",
	}
	for name, content := range files {
		if strings.HasSuffix(name, "/") {
			continue
		}
		writeFile(t, filepath.Join(fx.Dir, name), content)
	}
	sb := newSandbox(t, fx.Dir, Limits)
	defer sb.Close()
	ctx := context.Background()
	res, err := sb.Search(ctx, parser.Query{Text: "TODO"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range res.Matches {
		got = append(got, fmt.Sprintf("%s:%d: %s", m.Path, m.Line, m.Text))
	}
	want := []string{
		"a.go:2: // TODO: one",
		"b/b.go:1: // TODO: two",
		"b/deep/c.txt:1: TODO three",
		"b/keep.log:1: TODO re-included",
		"long.txt:1: TODO " + strings.Repeat("é", 17) + " [...]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("matches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// unicode/ü.txt is the sixth match: counted but not listed.
	if res.Total != 6 || res.Files != 6 || !res.Truncated() {
		t.Fatalf("total %d in %d files (truncated %v), want 6 in 6", res.Total, res.Files, res.Truncated())
	}
	if strings.Contains(strings.Join(got, ""), Secret) {
		t.Fatal("search followed a symlink out of the repository")
	}
	// What was left out is counted: the fixture's big.txt and this test's
	// over-limit.txt, its bin.dat and bin2.dat, and ignored.log, build/
	// and b/local.txt.
	if res.SkippedLarge != 2 || res.SkippedBinary != 2 || res.Ignored != 3 {
		t.Fatalf("skipped: %d too large, %d binary, %d ignored; want 2, 2, 3", res.SkippedLarge, res.SkippedBinary, res.Ignored)
	}
	// Context lines: at the start and end of a file, with CRLF, with a
	// regular expression too.
	writeFile(t, filepath.Join(fx.Dir, "ctx/c.txt"), "hit one\r\ntwo\r\nthree\r\nhit four")
	for _, q := range []string{"hit in ctx/ -C 2", "re:^hit in ctx/ -C 2"} {
		r, err := sb.Search(ctx, mustQuery(t, q))
		if err != nil || len(r.Matches) != 2 {
			t.Fatalf("%s: %+v %v", q, r, err)
		}
		a, b := r.Matches[0], r.Matches[1]
		if len(a.Before) != 0 || strings.Join(a.After, "|") != "two|three" || strings.Join(b.Before, "|") != "two|three" || len(b.After) != 0 || a.Text != "hit one" || b.Text != "hit four" {
			t.Fatalf("%s: context %+v", q, r.Matches)
		}
		// The result gives the query's parts.
		if r.Text != strings.TrimSuffix(q, " in ctx/ -C 2") || r.Scope != "ctx/" || r.Context != 2 {
			t.Fatalf("%s: query %q, text %q, scope %q, context %d", q, r.Query, r.Text, r.Scope, r.Context)
		}
	}
	// A scope restricts the search, and a quoted query keeps its spaces.
	for q, want := range map[string]string{
		"TODO in b/":            "b/b.go:1 b/deep/c.txt:1 b/keep.log:1",
		"TODO in b/deep/*.txt":  "b/deep/c.txt:1",
		"TODO in *.go":          "a.go:2 b/b.go:1",
		"TODO in a.go":          "a.go:2",
		`"TODO three" in b/**`:  "b/deep/c.txt:1",
		`" todo"`:               "b/b.go:2",
		"TODO in nowhere/":      "",
		"TODO in ../outside/**": "",
	} {
		r, err := sb.Search(ctx, mustQuery(t, q))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var at []string
		for _, m := range r.Matches {
			at = append(at, fmt.Sprintf("%s:%d", m.Path, m.Line))
		}
		if got := strings.Join(at, " "); got != want {
			t.Errorf("<search %s>: %s, want %s", q, got, want)
		}
	}

	res, err = sb.Search(ctx, parser.Query{Text: "^foo[0-9]+$|^bar", Regex: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 2 || res.Matches[0].Text != "foo123" || res.Matches[1].Line != 3 {
		t.Fatalf("regexp search: %+v", res)
	}
	res, err = sb.Search(ctx, parser.Query{Text: "needle"})
	if err != nil || res.Total != 12 || len(res.Matches) != Limits.MaxSearchResults || res.Files != 1 {
		t.Fatalf("capped search: %+v, %v", res, err)
	}
	res, err = sb.Search(ctx, parser.Query{Text: "no such text anywhere"})
	if err != nil || res.Total != 0 || len(res.Matches) != 0 {
		t.Fatalf("empty search: %+v, %v", res, err)
	}
	// (A query the command language cannot read is the parser's error.)
	for _, q := range []parser.Query{{}, {Regex: true}, {Text: "(unclosed", Regex: true}, {Text: "TODO", Context: parser.MaxContext + 1}, {Text: "TODO", Context: -1}} {
		if _, err := sb.Search(ctx, q); code(err) != sandbox.CodeInvalidQuery {
			t.Errorf("Search(%+v): %v, want INVALID_QUERY", q, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sb.Search(cctx, parser.Query{Text: "TODO"}); !errors.Is(err, context.Canceled) && code(err) != sandbox.CodeCanceled {
		t.Errorf("cancelled search: %v", err)
	}
}

// mustQuery is a search's argument, written in the command language, in
// its parts.
func mustQuery(t *testing.T, arg string) parser.Query {
	t.Helper()
	q, err := parser.ParseSearch(arg)
	if err != nil {
		t.Fatalf("<search %s>: %v", arg, err)
	}
	return q
}
