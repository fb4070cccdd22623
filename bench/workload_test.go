package bench

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestBenchInput(t *testing.T) {
	for _, c := range []struct {
		op   Op
		n    int
		want string
	}{
		{Open, 3, "<open file1.txt>\n<open file2.txt>\n<open file3.txt>\n"},
		{Write, 2, "<write out1.txt>Content 1</write>\n<write out2.txt>Content 2</write>\n"},
		{Mixed, 4, "<open file1.txt>\n<write notes1.txt>Project uses Go 1.26 (note 1)</write>\n<open file3.txt>\n<open file4.txt>\n"},
	} {
		got, err := Input(c.op, c.n)
		if err != nil || got != c.want {
			t.Errorf("Input(%s, %d) = %q, %v; want %q", c.op, c.n, got, err, c.want)
		}
	}
	if _, err := Input(Open, 0); err == nil {
		t.Error("Input(open, 0): no error")
	}
	if _, err := Input(Open, MaxOps+1); err == nil {
		t.Error("Input(open, MaxOps+1): no error")
	}
	if _, err := Input("exec", 1); err == nil {
		t.Error("Input(exec, 1): no error")
	}
}

func TestBenchCommandsMatchInput(t *testing.T) {
	for _, op := range Ops {
		in, err := Input(op, 50)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(in, "\n"), "\n")
		cmds := Commands(op, 50)
		if len(lines) != 50 || len(cmds) != 50 {
			t.Fatalf("%s: %d lines, %d commands", op, len(lines), len(cmds))
		}
		for i, l := range lines {
			if !strings.HasPrefix(l, "<"+cmds[i]+" ") {
				t.Errorf("%s: command %d is %q, Commands says %s", op, i+1, l, cmds[i])
			}
		}
	}
	if got := Commands(Mixed, 6); !reflect.DeepEqual(got, []string{"open", "write", "open", "open", "write", "open"}) {
		t.Errorf("Commands(mixed, 6) = %v", got)
	}
}

// Every file an input opens is seeded, and no file it writes exists.
func TestBenchSeedHoldsWhatInputOpens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if err := Seed(dir, 10); err != nil {
		t.Fatal(err)
	}
	for _, op := range Ops {
		in, _ := Input(op, 10)
		for _, l := range strings.Split(strings.TrimSpace(in), "\n") {
			name := l[strings.Index(l, " ")+1 : strings.Index(l, ">")]
			_, err := os.Stat(filepath.Join(dir, name))
			if strings.HasPrefix(l, "<open ") && err != nil {
				t.Errorf("%s opens %s: %v", op, name, err)
			}
			if strings.HasPrefix(l, "<write ") && err == nil {
				t.Errorf("%s writes %s, which exists", op, name)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "file7.txt"))
	if err != nil || len(b) != 512 || !strings.HasPrefix(string(b), "file 7, line 1:") {
		t.Errorf("file7.txt: %d bytes %q, %v", len(b), b[:min(len(b), 20)], err)
	}
}

func TestBenchParseModes(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []Mode
		err  string
	}{
		{[]string{"unpooled,pooled"}, []Mode{Unpooled, Pooled}, ""},
		{[]string{"local, pooled", "unpooled"}, []Mode{Unpooled, Pooled, Local}, ""},
		{[]string{"pooled"}, []Mode{Pooled}, ""},
		{[]string{"pooled,pooled"}, nil, "twice"},
		{[]string{"docker"}, nil, "unknown mode"},
		{nil, nil, "no mode"},
	} {
		got, err := ParseModes(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseModes(%q) = %v, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseModes(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestBenchEnviron(t *testing.T) {
	got := Environ([]string{"HOME=/home/u", "LLM_RUNTIME_SANDBOX=local", "XDG_CONFIG_HOME=/home/u/.config", "DOCKER_HOST=unix:///x", "LLM_RUNTIME_CONTAINER_POOL_SIZE=1"}, "/tmp/b/config")
	want := []string{"HOME=/home/u", "DOCKER_HOST=unix:///x", "XDG_CONFIG_HOME=/tmp/b/config"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Environ = %q, want %q", got, want)
	}
}
