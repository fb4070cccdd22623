package container

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/whitelist"
)

func TestRetryHintSaysARetryHelpsOnlyWhereTheBuildCacheKeepsTheWork(t *testing.T) {
	for _, c := range []struct {
		line    string
		shell   bool
		shorter bool
		want    string
	}{
		{"go test ./...", false, false, "will likely get further"},
		{"go vet ./...", false, false, "will likely get further"},
		{"env CGO_ENABLED=0 go build ./...", false, false, "will likely get further"},
		{"echo start && go test ./x", true, false, "will likely get further"},
		{"go version", false, false, "will likely be killed again"},
		{"sleep 100", false, false, "will likely be killed again"},
		{"make test", false, false, "will likely be killed again"},
		{"go test ./...", false, true, "with more time (up to exec.timeout, 5m0s)"},
	} {
		cmd, err := whitelist.Parse(c.line, c.shell)
		if err != nil {
			t.Fatalf("%s: %v", c.line, err)
		}
		if got := retryHint(cmd, c.shorter, 5*time.Minute); !strings.Contains(got, c.want) {
			t.Errorf("%s (shorter %v): %q, want it to say %q", c.line, c.shorter, got, c.want)
		}
	}
}

func TestLookPathFindsANameInTheFirstDirectoryOfThePathThatHasIt(t *testing.T) {
	files := map[string]bool{"/bin/ls": true, "/usr/local/go/bin/go": true}
	exe := func(p string) bool { return files[p] }
	dirs := []string{"/usr/local/go/bin", "/bin"}
	for p, want := range map[string]bool{"ls": true, "go": true, "make": false, "/bin/ls": true, "/bin/../bin/ls": true, "/usr/bin/ls": false} {
		if got := lookPath(p, dirs, exe); got != want {
			t.Errorf("lookPath(%q) = %v, want %v", p, got, want)
		}
	}
	if lookPath("go", []string{"/bin"}, exe) {
		t.Error("go was found in /bin, which does not have it")
	}
}

func TestAnImageRecommendsOnlyLimitsNeverWhatACommandMayDo(t *testing.T) {
	got := parseRecommended("exec.timeout=5m exec.whitelist=* exec.memory=1GiB exec.shell=true exec.cpus=2 exec.writable=true junk exec.pids=")
	want := [][2]string{{"exec.timeout", "5m"}, {"exec.memory", "1GiB"}, {"exec.cpus", "2"}}
	if !slices.Equal(got, want) {
		t.Fatalf("parseRecommended: %v, want %v", got, want)
	}
	if FormatRecommended(GoRecommended) != "exec.timeout=5m exec.memory=1GiB exec.cpus=2" || !slices.Equal(parseRecommended(FormatRecommended(GoRecommended)), GoRecommended) {
		t.Fatalf("GoRecommended does not survive its label: %q", FormatRecommended(GoRecommended))
	}
}

func TestRunnableKeepsTheEntriesWhoseProgramTheImageHas(t *testing.T) {
	x := &ExecImage{found: map[string]bool{"ls": true, "go": false, "make": false, "/bin/cat": true}}
	run, missing := x.Runnable([]string{"ls", "go test", "go vet", "*", "make", "/bin/cat", "./run.sh", "unasked"})
	if !slices.Equal(run, []string{"ls", "*", "/bin/cat", "./run.sh", "unasked"}) || !slices.Equal(missing, []string{"go test", "go vet", "make"}) {
		t.Fatalf("runnable %q, missing %q", run, missing)
	}
	if got := Programs([]string{"go test", "go vet", "*", "ls -la"}, "ls internal", "cat go.mod"); !slices.Equal(got, []string{"go", "ls", "cat"}) {
		t.Fatalf("Programs: %q", got)
	}
}
