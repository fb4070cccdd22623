package egress_test

import (
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/egress"
)

// moduleWorld is an upstream module proxy of fixed files (it counts what
// it is asked), and the egress proxy serving egress.ModulesHost from a
// cache directory of its own, filled from that upstream through the
// allowlist.
type moduleWorld struct {
	dir      string
	upstream *httptest.Server
	proxy    *httptest.Server
	conns    chan egress.Conn
	mu       sync.Mutex
	asked    map[string]int
	files    map[string]string
}

func newModuleWorld(t *testing.T, listUpstream bool) *moduleWorld {
	return newModuleWorldOf(t, listUpstream, 0, nil)
}

// newModuleWorldOf is a world whose cache holds at most maxSize, with
// the upstream's files and more.
func newModuleWorldOf(t *testing.T, listUpstream bool, maxSize int64, more map[string]string) *moduleWorld {
	w := &moduleWorld{dir: t.TempDir(), conns: make(chan egress.Conn, 64), asked: map[string]int{}, files: map[string]string{
		"/example.com/m/@v/v1.0.0.info":                      `{"Version":"v1.0.0"}`,
		"/example.com/m/@v/v1.0.0.mod":                       "module example.com/m\n",
		"/example.com/m/@v/v1.0.0.zip":                       strings.Repeat("zip bytes ", 4096),
		"/example.com/m/@v/list":                             "v1.0.0\n",
		"/github.com/!big!corp/x/@v/v2.0.0+incompatible.mod": "module github.com/BigCorp/x\n",
		"/sumdb/sum.golang.org/supported":                    "",
	}}
	for p, b := range more {
		w.files[p] = b
	}
	w.upstream = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.asked[r.URL.Path]++
		w.mu.Unlock()
		if r.URL.Path == "/example.com/cut/@v/v1.0.0.zip" {
			rw.Header().Set("Content-Length", "1000")
			io.WriteString(rw, "only part")
			return
		}
		body, ok := w.files[r.URL.Path]
		if !ok {
			http.Error(rw, "not found", http.StatusNotFound)
			return
		}
		io.WriteString(rw, body)
	}))
	t.Cleanup(w.upstream.Close)
	var rules []egress.Rule
	if listUpstream {
		var err error
		if rules, err = egress.ParseRules([]string{w.upstream.Listener.Addr().String()}); err != nil {
			t.Fatal(err)
		}
	}
	up, _ := url.Parse(w.upstream.URL)
	p := egress.Proxy{Policy: egress.Policy{Rules: rules}, OnConn: func(c egress.Conn) { w.conns <- c },
		GoModules: &egress.Modules{Dir: w.dir, Upstream: up, MaxSize: maxSize}}
	w.proxy = httptest.NewServer(p.Serve())
	t.Cleanup(w.proxy.Close)
	return w
}

// get is a GET of ModulesHost's path p through the proxy, as a command's
// go makes it (GOPROXY=http://ModulesHost, HTTP_PROXY the proxy).
func (w *moduleWorld) get(t *testing.T, p string) (int, string) {
	t.Helper()
	u, _ := url.Parse(w.proxy.URL)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
	defer c.CloseIdleConnections()
	res, err := c.Get("http://" + egress.ModulesHost + p)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (w *moduleWorld) count(p string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.asked[p]
}

// A version's files are fetched from the upstream once, kept in the
// cache directory in GOMODCACHE's layout, and served from there after;
// lists and the checksum database are asked each time; each request is
// reported, as the host's own connection to the upstream is.
func TestTheModuleCacheFetchesAVersionOnceAndKeepsIt(t *testing.T) {
	w := newModuleWorld(t, true)
	for i := range 2 {
		for _, p := range []string{"/example.com/m/@v/v1.0.0.info", "/example.com/m/@v/v1.0.0.mod", "/example.com/m/@v/v1.0.0.zip", "/github.com/!big!corp/x/@v/v2.0.0+incompatible.mod"} {
			code, body := w.get(t, p)
			if code != http.StatusOK || body != w.files[p] {
				t.Fatalf("GET %s (%d): %d %q", p, i+1, code, body)
			}
			if n := w.count(p); n != 1 {
				t.Errorf("GET %s (%d): the upstream was asked %d times; want once", p, i+1, n)
			}
			kept, err := os.ReadFile(filepath.Join(w.dir, filepath.FromSlash(p[1:])))
			if err != nil || string(kept) != w.files[p] {
				t.Errorf("%s in the cache: %q, %v", p, kept, err)
			}
		}
		for _, p := range []string{"/example.com/m/@v/list", "/sumdb/sum.golang.org/supported"} {
			if code, body := w.get(t, p); code != http.StatusOK || body != w.files[p] {
				t.Fatalf("GET %s: %d %q", p, code, body)
			}
			if n := w.count(p); n != i+1 {
				t.Errorf("GET %s: the upstream was asked %d times after %d GETs; want each time", p, n, i+1)
			}
		}
	}
	// 12 requests, 8 of them fetched (4 files once, 2 paths twice), each
	// on a connection of its own, reported when it closes.
	var local, upstream int
	for local < 12 || upstream < 8 {
		c := recv(t, w.conns)
		switch {
		case c.Host == egress.ModulesHost && c.Port == 80 && c.Allowed && c.Addr == "local":
			local++
		case c.Allowed && c.Addr == w.upstream.Listener.Addr().String() && c.Sent > 0 && c.Received > 0:
			upstream++
		default:
			t.Fatalf("reported: %+v", c)
		}
	}
}

// What is not a module version's file of the protocol is refused before
// the upstream is asked, and nothing is written: paths out of the cache,
// versions that are not canonical, files the protocol does not have; an
// upstream that sends less than it said leaves nothing; CONNECT to the
// name, or another port, is refused.
func TestTheModuleCacheTakesOnlyTheProtocolsPaths(t *testing.T) {
	w := newModuleWorld(t, true)
	for _, p := range []string{
		"/example.com/m/@v/../../../etc/passwd",
		"/example.com/m/@v/v1.0.0.info/../../x.zip",
		"/../x/@v/v1.0.0.zip",
		"/example.com/m/@v/v1.0.zip",
		"/example.com/m/@v/v1.0.0.exe",
		"/example.com/m/@v/latest.zip",
		"/Example.com/m/@v/v1.0.0.zip",
		"/example.com/m/@v/v1.0.0+incompatible.zip",
		"/sumdb/../example.com/m/@v/v1.0.0.zip",
		"/example.com/m",
		"/",
	} {
		u, _ := url.Parse(w.proxy.URL)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		// Written by hand, so that no client cleans the path first.
		io.WriteString(conn, "GET http://"+egress.ModulesHost+p+" HTTP/1.1\r\nHost: "+egress.ModulesHost+"\r\nConnection: close\r\n\r\n")
		res, _ := io.ReadAll(conn)
		conn.Close()
		if !strings.HasPrefix(string(res), "HTTP/1.1 404 ") && !strings.HasPrefix(string(res), "HTTP/1.1 400 ") && !strings.HasPrefix(string(res), "HTTP/1.1 301 ") {
			t.Errorf("GET %s: %q", p, strings.SplitN(string(res), "\r\n", 2)[0])
		}
	}
	if code, _ := w.get(t, "/example.com/cut/@v/v1.0.0.zip"); code != http.StatusBadGateway {
		t.Errorf("a zip cut short: %d", code)
	}
	w.mu.Lock()
	for p, n := range w.asked {
		if p != "/example.com/cut/@v/v1.0.0.zip" {
			t.Errorf("the upstream was asked for %s %d times", p, n)
		}
	}
	w.mu.Unlock()
	var left []string
	filepath.WalkDir(w.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("the cache holds %v", left)
	}

	u, _ := url.Parse(w.proxy.URL)
	for _, authority := range []string{egress.ModulesHost + ":443", egress.ModulesHost + ":8080"} {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodConnect, w.proxy.URL, nil)
		req.Host = authority
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("CONNECT %s: %d", authority, res.StatusCode)
		}
	}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
	res, err := c.Get("http://" + egress.ModulesHost + ":8080/example.com/m/@v/v1.0.0.mod")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("GET on port 8080: %d", res.StatusCode)
	}
}

// The host fetches for a command through the allowlist alone: an
// upstream not listed is refused, reported, and nothing is kept.
func TestTheModuleCacheFetchesOnlyFromAListedUpstream(t *testing.T) {
	w := newModuleWorld(t, false)
	code, body := w.get(t, "/example.com/m/@v/v1.0.0.mod")
	if code != http.StatusBadGateway || !strings.Contains(body, "refused") {
		t.Errorf("an upstream not listed: %d %q", code, body)
	}
	if n := w.count("/example.com/m/@v/v1.0.0.mod"); n != 0 {
		t.Errorf("the upstream was asked %d times", n)
	}
	var refused bool
	for len(w.conns) > 0 {
		if c := <-w.conns; !c.Allowed && c.Host == "127.0.0.1" && c.Port == w.upstream.Listener.Addr().(*net.TCPAddr).Port {
			refused = true
		}
	}
	if !refused {
		t.Error("the refused connection to the upstream was not reported")
	}
	if _, err := os.Stat(filepath.Join(w.dir, "example.com")); !os.IsNotExist(err) {
		t.Errorf("the cache holds a directory for it: %v", err)
	}
}

// The cache holds at most MaxSize: past it, the files served least
// recently go, never the one just fetched; a file served again is kept
// over one served before it; what goes is fetched again when asked for.
func TestTheModuleCacheHoldsAtMostItsMaxSize(t *testing.T) {
	const big = 40 << 10
	more := map[string]string{}
	for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"} {
		more["/example.com/big/@v/"+v+".zip"] = strings.Repeat(v[1:], big/5)
	}
	w := newModuleWorldOf(t, true, 100<<10, more)
	zip := func(v string) string { return "/example.com/big/@v/" + v + ".zip" }
	held := func() (n int64, names []string) {
		filepath.WalkDir(w.dir, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				fi, _ := e.Info()
				n += fi.Size()
				names = append(names, strings.TrimPrefix(p, w.dir))
			}
			return nil
		})
		return n, names
	}
	get := func(p string) {
		t.Helper()
		if code, body := w.get(t, p); code != http.StatusOK || body != w.files[p] {
			t.Fatalf("GET %s: %d, %d bytes", p, code, len(body))
		}
	}
	get(zip("v1.0.0"))
	time.Sleep(10 * time.Millisecond) // distinct modification times, which say when a file was served
	get(zip("v1.1.0"))
	time.Sleep(10 * time.Millisecond)
	get(zip("v1.0.0")) // served again: now the later of the two
	time.Sleep(10 * time.Millisecond)
	get(zip("v1.2.0")) // 3 x 40 KiB > 100 KiB: v1.1.0, served least recently, goes
	if n, names := held(); n > 100<<10 || len(names) != 2 || !slices.Contains(names, zip("v1.0.0")) || !slices.Contains(names, zip("v1.2.0")) {
		t.Fatalf("the cache holds %d bytes: %q", n, names)
	}
	get(zip("v1.1.0")) // gone, so fetched again
	if n := w.count(zip("v1.1.0")); n != 2 {
		t.Fatalf("the upstream was asked for %s %d times, want 2", zip("v1.1.0"), n)
	}
	if n, _ := held(); n > 100<<10 {
		t.Fatalf("the cache holds %d bytes", n)
	}
}

// A file larger than MaxSize is served and kept alone: everything else
// goes, it stays while it is the one just fetched.
func TestTheModuleCacheKeepsTheFileJustFetchedWhateverItsSize(t *testing.T) {
	huge := "/example.com/huge/@v/v1.0.0.zip"
	w := newModuleWorldOf(t, true, 64<<10, map[string]string{huge: strings.Repeat("x", 100<<10)})
	if code, _ := w.get(t, "/example.com/m/@v/v1.0.0.mod"); code != http.StatusOK {
		t.Fatal(code)
	}
	if code, body := w.get(t, huge); code != http.StatusOK || body != w.files[huge] {
		t.Fatalf("%d, %d bytes", code, len(body))
	}
	es, _ := os.ReadDir(filepath.Join(w.dir, "example.com", "m", "@v"))
	if len(es) != 0 {
		t.Fatalf("example.com/m is still in the cache: %v", es)
	}
	if _, err := os.Stat(filepath.Join(w.dir, filepath.FromSlash(huge[1:]))); err != nil {
		t.Fatal(err)
	}
}
