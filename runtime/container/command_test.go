package container

import (
	"reflect"
	"testing"

	"github.com/llm-runtime/llm-runtime/sandbox"
)

func TestParseCommandWithoutAShell(t *testing.T) {
	ok := map[string][]string{
		"go test ./...":                {"go", "test", "./..."},
		"  ls   -la  ":                 {"ls", "-la"},
		`grep -r "two words" .`:        {"grep", "-r", "two words", "."},
		`echo 'a && b' "c|d" e\ f`:     {"echo", "a && b", "c|d", "e f"},
		`echo "q\"uote" '$HOME' $HOME`: {"echo", `q"uote`, "$HOME", "$HOME"},
		`echo ""`:                      {"echo", ""},
	}
	for line, want := range ok {
		c, err := parseCommand(line, false)
		if err != nil || len(c) != 1 || !reflect.DeepEqual(c[0], want) {
			t.Errorf("%q: %q, %v; want %q", line, c, err, want)
		}
	}
	for _, line := range []string{
		"ls && rm -rf x", "ls; rm -rf x", "ls | sh", "ls || rm x", "cat x > y", "cat < x", "sleep 1 &",
		"echo $(rm -rf /)", "echo `id`", `echo "$(id)"`, "(ls)", "echo 'unterminated", `echo "unterminated`,
		"", "   ", "ls 2>/dev/null", "echo $'\\x41'", "ls\nrm -rf x", "ls\x00", "cat \xff",
	} {
		if _, err := parseCommand(line, false); sandbox.AsError(err).Code != sandbox.CodeExecValidation {
			t.Errorf("%q accepted: %v", line, err)
		}
	}
}

func TestParseCommandWithAShellChecksEverySimpleCommand(t *testing.T) {
	c, err := parseCommand("go test ./... && go vet ./... | wc -l; echo done", true)
	want := command{{"go", "test", "./..."}, {"go", "vet", "./..."}, {"wc", "-l"}, {"echo", "done"}}
	if err != nil || !reflect.DeepEqual(c, want) {
		t.Fatalf("got %q, %v", c, err)
	}
	w := newWhitelist([]string{"go test", "go vet", "wc", "echo"})
	if err := w.check(c); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"ls && rm -rf x", "go test && go run evil.go", "echo $(id)", "go test > out", "&& ls", "ls &&", "ls & rm x"} {
		c, err := parseCommand(line, true)
		if err == nil {
			err = newWhitelist([]string{"go test", "ls", "echo"}).check(c)
		}
		if sandbox.AsError(err).Code != sandbox.CodeExecValidation {
			t.Errorf("%q accepted", line)
		}
	}
}

func TestWhitelistMatchesArgumentVectorsNotPrefixes(t *testing.T) {
	w := newWhitelist([]string{"go test", "ls", " make  build "})
	for argv, want := range map[string]bool{
		"go test ./...": true, "go test": true, "go testx": false, "go": false, "go run x": false,
		"ls": true, "ls -la /": true, "lsblk": false, "make build": true, "make": false, "make install": false,
	} {
		c, err := parseCommand(argv, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.allows(c[0]); got != want {
			t.Errorf("%q: allowed %v, want %v", argv, got, want)
		}
	}
	if !newWhitelist([]string{"*"}).allows([]string{"anything", "at", "all"}) {
		t.Error("* does not allow everything")
	}
	if newWhitelist(nil).allows([]string{"ls"}) {
		t.Error("an empty whitelist allows ls")
	}
}
