package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/llm-runtime/llm-runtime/egress"
	"github.com/llm-runtime/llm-runtime/runtime/container"
)

// cobraVersion is the spf13/cobra the acceptance test of issue 27 runs.
const cobraVersion = "v1.10.2"

// TestE2EExecFetchesARealProjectsModulesThroughTheAllowlistAndTestsIt is
// issue 27's "done when": a fresh copy of spf13/cobra (its module, as the
// module proxy serves it), with exec.network allowlist naming only a
// module proxy this test serves (on an address of this machine that is
// not the loopback, so that go, which never proxies the loopback, asks
// exec's proxy for it) and named in exec.go_proxy, passes go test ./...
// in the Go image on the first try, without vendoring: go fetches the
// modules through the module cache the user's repositories share, which
// llm-runtime fills from that proxy; a destination not listed is refused
// and audited; the repository's first go test compiles cobra and its
// dependencies, not the standard library (the image's seed); and a
// second repository's first go test finds its modules in the shared
// cache, asking the proxy nothing.
//
// The test downloads cobra and its dependencies once, with this
// machine's GOPROXY (go env GOPROXY), into a module cache of its own.
func TestE2EExecFetchesARealProjectsModulesThroughTheAllowlistAndTestsIt(t *testing.T) {
	t.Parallel()
	requireGoImage(t)
	work := t.TempDir()
	modcache := filepath.Join(work, "modcache")
	goEnv := append(os.Environ(), "GOMODCACHE="+modcache, "GOFLAGS=-modcacherw", "GOTOOLCHAIN=local", "GOWORK=off")
	download := func(dir string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command("go", append([]string{"mod", "download"}, args...)...)
		cmd.Dir, cmd.Env = dir, goEnv
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go mod download %v (GOPROXY from go env): %v\n%s", args, err, out)
		}
		return out
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(download(work, "-json", "github.com/spf13/cobra@"+cobraVersion), &mod); err != nil {
		t.Fatal(err)
	}
	clone := func() string {
		dir := repo(t, nil)
		if out, err := exec.Command("cp", "-R", mod.Dir+"/.", dir).CombinedOutput(); err != nil {
			t.Fatalf("copying cobra: %v\n%s", err, out)
		}
		exec.Command("chmod", "-R", "u+w", dir).Run()
		return dir
	}
	dir := clone()
	download(dir) // its dependencies, into the test's module cache, for the test's proxy to serve

	// The proxy: the module cache's download directory is the module
	// proxy protocol's layout. It counts what it is asked for.
	ip := hostAddress(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int64
	files := http.FileServer(http.Dir(filepath.Join(modcache, "cache", "download")))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		files.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	proxy := "http://" + ln.Addr().String()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	// The user's configuration names the proxy (exec.go_proxy), so that
	// the model's first command, go test, fetches what it needs itself,
	// through the module cache the user's repositories share.
	cfg := goConfig(false, "[go test, wget]") +
		"  network: allowlist\n  network_allow: [\"" + ip + ":" + port + "\"]\n" +
		"  go_proxy: " + proxy + "\n  env: [GOSUMDB=off]\n"
	if err := os.WriteFile(filepath.Join(dir, "llm-runtime.config.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runGo(t, dir,
		"go test ./...",
		"wget -q -O - http://proxy.golang.org/",
		"go test -count=1 ./...",
	)
	t.Logf("%s: %.0f ms\n%s", res[0].Argument, res[0].DurationMS, res[0].Output)
	t.Logf("the first go test ./... took %.0f ms, the second (-count=1: built from the cache, run again) %.0f ms: %.1fx", res[0].DurationMS, res[2].DurationMS, res[0].DurationMS/res[2].DurationMS)
	if r := res[0]; !r.OK || !strings.Contains(r.Output, "ok  \tgithub.com/spf13/cobra\t") {
		t.Fatalf("go test ./..., its modules fetched through the allowlist: %+v", r)
	}
	if r := res[2]; !r.OK || !strings.Contains(r.Output, "ok  \tgithub.com/spf13/cobra\t") {
		t.Errorf("the second go test: %+v", r)
	}
	if r := res[1]; r.OK || !strings.Contains(r.Output, "403") {
		t.Errorf("a destination not listed: %+v; want the proxy's 403", r)
	}
	// cobra's first go test puts 69 outputs in its cache: it and its
	// dependencies compiled, vetted and linked. The standard library's
	// would be two hundred more, and its vet facts seventy.
	if n := cacheOutputs(t, dir); n > 100 {
		t.Errorf("cobra's first go test put %d outputs in the repository's build cache: the standard library was compiled or vetted again", n)
	}
	var local, fetched, refused int
	for _, l := range auditNetwork(t, dir) {
		switch {
		case strings.HasPrefix(l, "allowed "+egress.ModulesHost+":80 "):
			local++
		case strings.HasPrefix(l, "allowed "+ip+":"+port+" "):
			fetched++
		case strings.HasPrefix(l, "refused proxy.golang.org:80: not in exec.network_allow"):
			refused++
		default:
			t.Errorf("audit: %q", l)
		}
	}
	if local == 0 || fetched == 0 || refused != 1 {
		t.Errorf("the audit log has %d requests to the shared module cache, %d fetches from the test's proxy and %d refused; want some, some and 1", local, fetched, refused)
	}
	mods := filepath.Join(stateDir, "exec", container.GoModulesDir)
	if _, err := os.Stat(filepath.Join(mods, "github.com", "spf13", "pflag", "@v")); err != nil {
		t.Errorf("the shared module cache has no pflag: %v", err)
	}

	// A second repository, a second clone: its first go test finds every
	// module in the cache the first filled, and the proxy is not asked.
	before := asked.Load()
	other := clone()
	if err := os.WriteFile(filepath.Join(other, "llm-runtime.config.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runGo(t, other, "go test ./...")[0]
	if !r.OK || !strings.Contains(r.Output, "ok  \tgithub.com/spf13/cobra\t") {
		t.Fatalf("the second repository's go test: %+v", r)
	}
	if n := asked.Load() - before; n != 0 {
		t.Errorf("the second repository's first go test asked the module proxy %d times; want none (the shared cache has its modules)", n)
	}
	t.Logf("the second repository's first go test: %.0f ms, its modules from the shared cache", r.DurationMS)
}

// hostAddress is an IPv4 address of this machine that is not the
// loopback (Docker's bridge has one): exec's proxy on the host reaches it,
// a container does not.
func hostAddress(t *testing.T) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	t.Fatal("this machine has no IPv4 address but the loopback")
	return ""
}
