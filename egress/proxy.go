package egress

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a connection through the proxy, as OnConn reports it once it
// ended (or was refused).
type Conn struct {
	Method  string // CONNECT, or a plain request's method
	Host    string // as the request named it
	Port    int
	Allowed bool
	// Reason says why it was refused, or why it failed once allowed.
	Reason string
	// Addr is the address it was connected to, when allowed.
	Addr string
	// Sent and Received count the bytes to the destination and from it
	// (a tunnel's, or a plain request's body and its response's).
	Sent, Received int64
}

// Proxy is the HTTP proxy a command's traffic goes through. Its zero
// value refuses everything.
type Proxy struct {
	Policy Policy
	// Resolver resolves names; default net.DefaultResolver.
	Resolver Resolver
	// Dial connects to the address decided on; default a net.Dialer's,
	// with DialTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// OnConn, if set, is told of every connection.
	OnConn func(Conn)
	// GoModules, when set, is the module cache a user's repositories
	// share (its Dir and Upstream). The proxy serves it itself, as
	// ModulesHost, over plain HTTP on port 80: a request for that name is
	// never resolved or connected to, and is reported as allowed, its
	// Addr "local". What the cache fetches for a command goes through
	// Transport, decided on and reported as the command's own requests
	// are (Serve).
	GoModules *Modules
	modules   *Modules // GoModules, with Serve's client
}

// Serve is p ready to serve one command: GoModules, if set, with its
// fetches through p's Transport.
func (p Proxy) Serve() *Proxy {
	if g := p.GoModules; g != nil {
		p.modules = &Modules{Dir: g.Dir, Upstream: g.Upstream, MaxSize: g.MaxSize, Client: &http.Client{Transport: p.Transport()}}
	}
	return &p
}

// served says whether host is the name the proxy serves itself
// (ModulesHost, with GoModules).
func (p *Proxy) served(host string) bool {
	return p.modules != nil && host == ModulesHost
}

// DialTimeout bounds the connection to a destination.
const DialTimeout = 30 * time.Second

func (p *Proxy) resolver() Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

func (p *Proxy) dial(ctx context.Context, addr string) (net.Conn, error) {
	if p.Dial != nil {
		return p.Dial(ctx, "tcp", addr)
	}
	d := net.Dialer{Timeout: DialTimeout}
	return d.DialContext(ctx, "tcp", addr)
}

func (p *Proxy) report(c Conn) {
	if p.OnConn != nil {
		p.OnConn(c)
	}
}

// ServeHTTP serves CONNECT (a tunnel, for TLS) and plain HTTP requests
// written for a proxy (an absolute http:// URL).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	p.plain(w, r)
}

// destination is the host and port of authority ("name:port"), with
// port def when it names none.
func destination(authority string, def int) (string, int, bool) {
	host, ps, err := net.SplitHostPort(authority)
	if err != nil {
		return authority, def, authority != ""
	}
	port, err := strconv.Atoi(ps)
	return host, port, err == nil && host != ""
}

// refuse answers 403 with the reason, and reports the connection.
func (p *Proxy) refuse(w http.ResponseWriter, c Conn) {
	p.report(c)
	http.Error(w, "llm-runtime: "+c.Host+":"+strconv.Itoa(c.Port)+" refused: "+c.Reason, http.StatusForbidden)
}

// admit decides on the destination authority names (port def when it
// names none): refused, it answers 403 and reports it, and says false;
// allowed, c holds the address to connect to.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request, authority string, def int, c *Conn) bool {
	host, port, ok := destination(authority, def)
	c.Host, c.Port = host, port
	if !ok {
		c.Reason = "not HOST:PORT"
		p.refuse(w, *c)
		return false
	}
	d := p.Policy.Decide(r.Context(), p.resolver(), host, port)
	if !d.Allowed {
		c.Reason = d.Reason
		p.refuse(w, *c)
		return false
	}
	c.Allowed, c.Addr = true, d.Addr.String()
	return true
}

func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	c := Conn{Method: r.Method}
	if host, port, _ := destination(strings.ToLower(r.Host), 443); p.served(host) {
		c.Host, c.Port, c.Reason = host, port, "served by llm-runtime over plain http only"
		p.refuse(w, c)
		return
	}
	if !p.admit(w, r, r.Host, 443, &c) {
		return
	}
	dst, err := p.dial(r.Context(), c.Addr)
	if err != nil {
		c.Reason = err.Error()
		p.report(c)
		http.Error(w, "llm-runtime: "+c.Host+": "+err.Error(), http.StatusBadGateway)
		return
	}
	defer dst.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		c.Reason = "the proxy's connection cannot be taken over"
		p.report(c)
		http.Error(w, c.Reason, http.StatusInternalServerError)
		return
	}
	src, brw, err := hj.Hijack()
	if err != nil {
		c.Reason = err.Error()
		p.report(c)
		return
	}
	defer src.Close()
	// The request's context ends the tunnel (the command is over).
	stop := context.AfterFunc(r.Context(), func() { src.Close(); dst.Close() })
	defer stop()
	if _, err := io.WriteString(src, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		c.Reason = err.Error()
		p.report(c)
		return
	}
	c.Sent, c.Received = splice(src, brw.Reader, dst)
	p.report(c)
}

// splice copies both ways between the client (src, with what was read of
// it ahead in in) and dst until both ends are done, and returns the bytes
// sent to dst and received from it.
func splice(src net.Conn, in *bufio.Reader, dst net.Conn) (sent, received int64) {
	var wg sync.WaitGroup
	var s, rcv atomic.Int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		n, _ := io.Copy(dst, in)
		s.Store(n)
		closeWrite(dst)
	}()
	go func() {
		defer wg.Done()
		n, _ := io.Copy(src, dst)
		rcv.Store(n)
		closeWrite(src)
	}()
	wg.Wait()
	return s.Load(), rcv.Load()
}

// closeWrite says to c's peer that nothing more comes, or closes c.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// hopHeaders are a connection's own headers, not passed on.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (p *Proxy) plain(w http.ResponseWriter, r *http.Request) {
	c := Conn{Method: r.Method}
	if r.URL.Scheme != "http" || r.URL.Host == "" {
		c.Host, c.Reason = r.Host, "a request to a proxy names an http:// URL (https goes through CONNECT)"
		p.refuse(w, c)
		return
	}
	if host, port, _ := destination(strings.ToLower(r.URL.Host), 80); p.served(host) {
		p.local(w, r, p.modules, Conn{Method: r.Method, Host: host, Port: port})
		return
	}
	if !p.admit(w, r, r.URL.Host, 80, &c) {
		return
	}
	// One connection per request, to the address decided on, whatever
	// name the request carries.
	tr := &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return p.dial(ctx, c.Addr) },
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	defer tr.CloseIdleConnections()
	out := r.Clone(r.Context())
	out.RequestURI = ""
	// The Host the name was decided on, not another the request's header
	// names: the server at the address (a CDN's, say) must not be asked
	// for a site the allowlist does not name (domain fronting). Go's
	// server already takes an absolute URL's host over the header; this
	// holds whatever serves the proxy.
	out.Host = r.URL.Host
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	body := &counter{r: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		out.Body = body
	}
	res, err := tr.RoundTrip(out)
	c.Sent = body.n.Load()
	if err != nil {
		c.Reason = err.Error()
		p.report(c)
		http.Error(w, "llm-runtime: "+c.Host+": "+err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	for _, h := range hopHeaders {
		res.Header.Del(h)
	}
	for k, vs := range res.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(res.StatusCode)
	c.Received, _ = io.Copy(w, res.Body)
	c.Sent = body.n.Load()
	p.report(c)
}

// local answers r, for a name this process serves, with h, on port 80
// alone; reported with the bytes each way.
func (p *Proxy) local(w http.ResponseWriter, r *http.Request, h http.Handler, c Conn) {
	if c.Port != 80 {
		c.Reason = "served by llm-runtime on port 80 only"
		p.refuse(w, c)
		return
	}
	c.Allowed, c.Addr = true, "local"
	body := &counter{r: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	cw := &countingWriter{ResponseWriter: w}
	h.ServeHTTP(cw, r)
	c.Sent, c.Received = body.n.Load(), cw.n
	p.report(c)
}

// countingWriter counts the bytes of a response's body.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// counter counts what is read through it (by the transport's goroutine).
type counter struct {
	r io.ReadCloser
	n atomic.Int64
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *counter) Close() error { return c.r.Close() }
