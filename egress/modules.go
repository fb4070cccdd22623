package egress

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// ModulesHost is the name under which a command's go reaches the module
// cache its user's repositories share (GOPROXY=http://ModulesHost): the
// host's proxy serves it itself (Proxy.GoModules), the name is never
// resolved.
const ModulesHost = "go-modules.llm-runtime.internal"

// Most a module's files may hold (the go command's own limits: a zip of
// 500 MiB, a go.mod of 16 MiB); an info file is small.
const (
	maxZip  = 500 << 20
	maxMod  = 16 << 20
	maxInfo = 1 << 20
)

// Modules serves the Go module proxy protocol (GOPROXY) from Dir, a
// module download cache that a user's repositories share, in the layout
// of GOMODCACHE/cache/download: what a version's .info, .mod and .zip
// hold never changes, so each is fetched once, from Upstream, and kept.
// Lists of versions and @latest, which change, and the checksum database
// (/sumdb/), are fetched each time, never kept.
//
// Only this process writes Dir, with what Upstream served: a command
// cannot put a file there, only ask for a module version by its name, so
// one repository's commands cannot hand another's a module of their own
// making. A module is checked against go.sum and the checksum database by
// the go command that asked for it, as any proxy's is.
type Modules struct {
	Dir      string
	Upstream *url.URL // a module proxy: https://proxy.golang.org, say
	// Client fetches from Upstream; its transport decides where it may
	// connect (Proxy.Transport: through the allowlist).
	Client *http.Client
	// MaxSize bounds what Dir holds (0: no bound): past it, after a file
	// is kept, the files served least recently are removed until Dir
	// holds at most MaxSize, the file just kept apart (it is being
	// served). A file's modification time is when it was last served.
	MaxSize int64

	mu   sync.Mutex
	size int64 // what Dir held at the last walk, and what was kept since; 0 before the first
}

// ServeHTTP answers a GET of the module proxy protocol.
func (m *Modules) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "llm-runtime: the module cache answers GET only", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if strings.HasPrefix(p, "/sumdb/") {
		if strings.Contains(p, "..") || strings.Contains(p, "//") {
			http.Error(w, "llm-runtime: not a checksum database path", http.StatusNotFound)
			return
		}
		m.pass(w, r, p)
		return
	}
	kind, ok := moduleRequest(p)
	switch {
	case !ok:
		http.Error(w, "llm-runtime: not a module proxy path: "+p, http.StatusNotFound)
	case kind == "list" || kind == "latest":
		m.pass(w, r, p)
	default:
		m.kept(w, r, p, kind)
	}
}

// moduleRequest says which of the protocol's requests the path p is: a
// version's "info", "mod" or "zip", a "list" of versions, or "latest";
// its module path and version must be valid and canonical, escaped as
// the protocol escapes them.
func moduleRequest(p string) (kind string, ok bool) {
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	if esc, found := strings.CutSuffix(p[1:], "/@latest"); found {
		return "latest", validModule(esc)
	}
	esc, file, found := strings.Cut(p[1:], "/@v/")
	if !found || !validModule(esc) {
		return "", false
	}
	if file == "list" {
		return "list", true
	}
	ext := path.Ext(file)
	escVersion := strings.TrimSuffix(file, ext)
	kind = strings.TrimPrefix(ext, ".")
	if kind != "info" && kind != "mod" && kind != "zip" {
		return "", false
	}
	v, err := module.UnescapeVersion(escVersion)
	if err != nil || strings.ContainsAny(escVersion, "/\\") {
		return "", false
	}
	// A canonical semantic version, of the path's major version;
	// +incompatible only past v1 on a path without /vN.
	mod, _ := module.UnescapePath(esc)
	if module.Check(mod, v) != nil || v != module.CanonicalVersion(v) ||
		strings.HasSuffix(v, "+incompatible") && (semver.Major(v) == "v0" || semver.Major(v) == "v1") {
		return "", false
	}
	return kind, true
}

// validModule: esc is an escaped module path the protocol may name.
func validModule(esc string) bool {
	mod, err := module.UnescapePath(esc)
	return err == nil && module.CheckPath(mod) == nil
}

// pass fetches p from Upstream and answers with it, keeping nothing.
func (m *Modules) pass(w http.ResponseWriter, r *http.Request, p string) {
	res, err := m.fetch(r.Context(), p)
	if err != nil {
		http.Error(w, "llm-runtime: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(res.StatusCode)
	io.Copy(w, io.LimitReader(res.Body, maxZip))
}

// fetch GETs p from Upstream.
func (m *Modules) fetch(ctx context.Context, p string) (*http.Response, error) {
	u := *m.Upstream
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawPath, u.RawQuery = "", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	res, err := m.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the module proxy %s: %v", m.Upstream.Redacted(), err)
	}
	return res, nil
}

// kept answers with the file p names in Dir, fetching it from Upstream
// into Dir first when it is not there.
func (m *Modules) kept(w http.ResponseWriter, r *http.Request, p, kind string) {
	root, err := os.OpenRoot(m.Dir)
	if err != nil {
		http.Error(w, "llm-runtime: the module cache: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer root.Close()
	name := p[1:]
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		if status, err := m.keep(r.Context(), root, name, kind); err != nil {
			http.Error(w, "llm-runtime: "+err.Error(), status)
			return
		}
		f, err = root.Open(name)
	}
	if err != nil {
		http.Error(w, "llm-runtime: the module cache: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "llm-runtime: the module cache: "+name+" is not a file", http.StatusInternalServerError)
		return
	}
	if m.MaxSize > 0 {
		// Served now: the last to go when the cache is trimmed.
		now := time.Now()
		root.Chtimes(name, now, now)
	}
	w.Header().Set("Content-Type", map[string]string{"info": "application/json", "mod": "text/plain; charset=utf-8", "zip": "application/zip"}[kind])
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// keep fetches name from Upstream into root, whole or not at all (a
// file of its own, renamed into place once complete); the status and
// error say why it could not.
func (m *Modules) keep(ctx context.Context, root *os.Root, name, kind string) (int, error) {
	res, err := m.fetch(ctx, "/"+name)
	if err != nil {
		return http.StatusBadGateway, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		// 404 and 410 tell go to try the next proxy of its list, or
		// that the version does not exist: passed on as they are.
		io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
		return res.StatusCode, fmt.Errorf("the module proxy %s: %s for %s", m.Upstream.Redacted(), res.Status, name)
	}
	limit := map[string]int64{"info": maxInfo, "mod": maxMod, "zip": maxZip}[kind]
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return http.StatusInternalServerError, fmt.Errorf("the module cache: %v", err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := name + ".tmp-" + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return http.StatusInternalServerError, fmt.Errorf("the module cache: %v", err)
	}
	n, err := io.Copy(f, io.LimitReader(res.Body, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("%s is over %d bytes", name, limit)
	}
	if err == nil && res.ContentLength >= 0 && n != res.ContentLength {
		err = fmt.Errorf("%s: %d bytes of %d", name, n, res.ContentLength)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
		return http.StatusBadGateway, fmt.Errorf("fetching %s from the module proxy %s: %v", name, m.Upstream.Redacted(), err)
	}
	m.trim(root, name, n)
	return http.StatusOK, nil
}

// trim, after kept (of n bytes) was added to the cache at root, removes
// the files served least recently until the cache holds at most MaxSize,
// kept apart. What the cache holds is counted by a walk, at the first
// keep and whenever the count says it is over MaxSize (other processes
// keep files too), and otherwise by adding what this one kept.
func (m *Modules) trim(root *os.Root, kept string, n int64) {
	if m.MaxSize <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.size > 0 {
		m.size += n
		if m.size <= m.MaxSize {
			return
		}
	}
	type file struct {
		name string
		size int64
		used time.Time
	}
	var files []file
	var total int64
	fs.WalkDir(root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return nil
		}
		total += fi.Size()
		if p != kept && !strings.Contains(path.Base(p), ".tmp-") {
			files = append(files, file{p, fi.Size(), fi.ModTime()})
		}
		return nil
	})
	slices.SortFunc(files, func(a, b file) int { return a.used.Compare(b.used) })
	for _, f := range files {
		if total <= m.MaxSize {
			break
		}
		if root.Remove(f.name) == nil {
			total -= f.size
		}
	}
	m.size = total
}

// Transport is an http.Transport whose connections go where the Proxy's
// policy allows, and nowhere else: each name resolved and decided on as
// a command's request would be (Policy.Decide), each decision reported
// (OnConn). The host's own fetches on a command's behalf (Modules) go
// through it, so the allowlist bounds them too.
func (p *Proxy) Transport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, ps, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			port, _ := strconv.Atoi(ps)
			c := Conn{Method: "GET", Host: host, Port: port}
			d := p.Policy.Decide(ctx, p.resolver(), host, port)
			if !d.Allowed {
				c.Reason = d.Reason
				p.report(c)
				return nil, fmt.Errorf("%s:%d refused: %s", host, port, d.Reason)
			}
			c.Allowed, c.Addr = true, d.Addr.String()
			conn, err := p.dial(ctx, c.Addr)
			if err != nil {
				c.Reason = err.Error()
				p.report(c)
				return nil, err
			}
			return &reported{Conn: conn, p: p, c: c}, nil
		},
		TLSHandshakeTimeout:   DialTimeout,
		ResponseHeaderTimeout: 5 * time.Minute,
		// A connection per request, reported when it is done, while the
		// command that caused it still runs.
		DisableKeepAlives: true,
	}
}

// reported is a connection the Proxy's Transport made, reported with its
// bytes when it closes (the transport reads and writes it from goroutines
// of its own).
type reported struct {
	net.Conn
	p              *Proxy
	c              Conn
	sent, received atomic.Int64
	once           sync.Once
}

func (r *reported) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	r.received.Add(int64(n))
	return n, err
}

func (r *reported) Write(b []byte) (int, error) {
	n, err := r.Conn.Write(b)
	r.sent.Add(int64(n))
	return n, err
}

func (r *reported) Close() error {
	err := r.Conn.Close()
	r.once.Do(func() {
		c := r.c
		c.Sent, c.Received = r.sent.Load(), r.received.Load()
		r.p.report(c)
	})
	return err
}
