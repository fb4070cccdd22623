package sandbox

import (
	"path"
	"testing"
)

func TestGitignorePatterns(t *testing.T) {
	cases := []struct {
		pattern string
		path    string
		isDir   bool
		want    bool
	}{
		{"*.log", "a.log", false, true},
		{"*.log", "deep/dir/a.log", false, true},
		{"*.log", "a.log.txt", false, false},
		{"/build", "build", true, true},
		{"/build", "src/build", true, false},
		{"build/", "src/build", true, true},
		{"build/", "build", false, false},
		{"doc/*.txt", "doc/a.txt", false, true},
		{"doc/*.txt", "doc/x/a.txt", false, false},
		{"doc/*.txt", "src/doc/a.txt", false, false},
		{"**/foo", "a/b/foo", false, true},
		{"**/foo", "foo", false, true},
		{"a/**/b", "a/b", false, true},
		{"a/**/b", "a/x/y/b", false, true},
		{"abc/**", "abc/x/y", false, true},
		{"abc/**", "abc", true, false},
		{"?.c", "x.c", false, true},
		{"?.c", "xy.c", false, false},
		{"[ab].c", "a.c", false, true},
		{"[!ab].c", "a.c", false, false},
		{"[!ab].c", "z.c", false, true},
		{`\#x`, "#x", false, true},
		{"trailing  ", "trailing", false, true},
		{"a+b(c)", "a+b(c)", false, true},
		{"[unclosed", "[unclosed", false, true},
	}
	for _, c := range cases {
		g := newIgnorer()
		g.enter(".", []byte(c.pattern+"\n"))
		if got := g.ignored(c.path, c.isDir); got != c.want {
			t.Errorf("pattern %q, path %q (dir %v): ignored = %v, want %v", c.pattern, c.path, c.isDir, got, c.want)
		}
	}
}

func TestGitignoreNestedFilesAndNegation(t *testing.T) {
	files := map[string]string{
		".gitignore":      "*.tmp\n!keep.tmp\n",
		"sub/.gitignore":  "!local.tmp\nonly-here.txt\n",
		"sub2/.gitignore": "/anchored.txt\n",
	}
	g := newIgnorer()
	for _, dir := range []string{".", "sub", "sub2", "sub2/deeper"} { // as the search enters them
		g.enter(dir, []byte(files[path.Join(dir, ".gitignore")]))
	}
	for path, want := range map[string]bool{
		"x.tmp": true, "keep.tmp": false, "sub/x.tmp": true, "sub/local.tmp": false,
		"sub/only-here.txt": true, "only-here.txt": false, "sub2/anchored.txt": true,
		"sub2/deeper/anchored.txt": false,
	} {
		if got := g.ignored(path, false); got != want {
			t.Errorf("%s: ignored = %v, want %v", path, got, want)
		}
	}
}

func TestExcluder(t *testing.T) {
	e, err := newExcluder([]string{".git", "*.key", "config/secrets", "/top/"})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		".git": true, ".git/config": true, "a/.git/HEAD": true, ".gitignore": false,
		"x.key": true, "a/B.KEY": true, "keys/x.keyboard": false,
		"config/secrets": true, "config/secrets/db": true, "app/config/secrets": true, "config/secretsx": false,
		"top/x": true, "a/top": true, ".": false,
	} {
		if _, got := e.match(path); got != want {
			t.Errorf("%s: excluded = %v, want %v", path, got, want)
		}
	}
	for _, bad := range []string{"", "/", "[x"} {
		if _, err := newExcluder([]string{bad}); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}
