package egress_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-runtime/llm-runtime/egress"
	"github.com/llm-runtime/llm-runtime/internal/testenv"
)

// The tests run in directories of their own, never the user's.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestRulesReadNamesWildcardsAddressesAndPorts(t *testing.T) {
	rules, err := egress.ParseRules([]string{"proxy.golang.org", "*.PyPI.org.", "sum.golang.org:8443", "10.0.0.7", "[::1]:8080", "127.0.0.1:3000"})
	if err != nil {
		t.Fatal(err)
	}
	want := []egress.Rule{
		{Host: "proxy.golang.org"},
		{Host: "pypi.org", Wildcard: true},
		{Host: "sum.golang.org", Port: 8443},
		{Addr: netip.MustParseAddr("10.0.0.7")},
		{Addr: netip.MustParseAddr("::1"), Port: 8080},
		{Addr: netip.MustParseAddr("127.0.0.1"), Port: 3000},
	}
	if len(rules) != len(want) {
		t.Fatalf("%+v", rules)
	}
	for i := range want {
		if rules[i] != want[i] {
			t.Errorf("rule %d: %+v, want %+v", i, rules[i], want[i])
		}
	}
	for _, bad := range []string{"", "http://proxy.golang.org", "a b", "x.org:0", "x.org:99999", "x.org:http", "*", "*.", "-x.org", "proxy.golang.org/path"} {
		if _, err := egress.ParseRules([]string{bad}); err == nil {
			t.Errorf("%q was read as a rule", bad)
		}
	}
}

// names is a resolver of fixed answers, which counts its lookups; a name
// with two answers gives the first once and the second after (a name
// that rebinds).
type names struct {
	mu      sync.Mutex
	m       map[string][]string
	lookups map[string]int
}

func (n *names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	answers, ok := n.m[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	if n.lookups == nil {
		n.lookups = map[string]int{}
	}
	i := min(n.lookups[host], len(answers)-1)
	n.lookups[host]++
	return []netip.Addr{netip.MustParseAddr(answers[i])}, nil
}

func TestDecideLetsThroughListedNamesOnTheInternetOnly(t *testing.T) {
	rules, err := egress.ParseRules([]string{"proxy.golang.org", "*.pypi.org", "local.test:8080", "127.0.0.1:8080", "rebind.test"})
	if err != nil {
		t.Fatal(err)
	}
	p := egress.Policy{Rules: rules}
	res := &names{m: map[string][]string{
		"proxy.golang.org":  {"142.250.1.1"},
		"files.pypi.org":    {"151.101.1.1"},
		"pypi.org":          {"151.101.1.2"},
		"local.test":        {"127.0.0.1"},
		"other.test":        {"142.250.1.2"},
		"rebind.test":       {"142.250.1.3", "10.0.0.1"},
		"inside.pypi.org":   {"192.168.1.10"},
		"nat64.pypi.org":    {"64:ff9b::a00:1"},
		"cgnat.pypi.org":    {"100.64.0.1"},
		"metadata.pypi.org": {"169.254.169.254"},
	}}
	for _, c := range []struct {
		host string
		port int
		want string // the address connected to, or "" when refused
	}{
		{"proxy.golang.org", 443, "142.250.1.1:443"},
		{"PROXY.golang.org.", 80, "142.250.1.1:80"},
		{"proxy.golang.org", 22, ""}, // 443 and 80 only, unless a port is listed
		{"files.pypi.org", 443, "151.101.1.1:443"},
		{"pypi.org", 443, ""}, // *.pypi.org is what is under it
		{"local.test", 8080, "127.0.0.1:8080"},
		{"local.test", 443, ""},
		{"other.test", 443, ""},
		{"inside.pypi.org", 443, ""},   // private
		{"nat64.pypi.org", 443, ""},    // an IPv4 private address, in NAT64
		{"cgnat.pypi.org", 443, ""},    // carrier-grade NAT
		{"metadata.pypi.org", 443, ""}, // link-local: a cloud's metadata service
		{"127.0.0.1", 8080, "127.0.0.1:8080"},
		{"142.250.1.1", 443, ""}, // an address, even a public one, must be listed
		{"[::1]", 8080, ""},
		{"unknown.pypi.org", 443, ""},
	} {
		d := p.Decide(context.Background(), res, c.host, c.port)
		got := ""
		if d.Allowed {
			got = d.Addr.String()
		}
		if got != c.want || !d.Allowed && d.Reason == "" {
			t.Errorf("%s:%d: %+v, want %q", c.host, c.port, d, c.want)
		}
	}
	// A name is resolved once per decision, and the address checked is
	// the one given: its next answer (private) is never seen.
	d := p.Decide(context.Background(), res, "rebind.test", 443)
	if !d.Allowed || d.Addr.String() != "142.250.1.3:443" || res.count("rebind.test") != 1 {
		t.Fatalf("%+v after %d lookups", d, res.count("rebind.test"))
	}
	if d := p.Decide(context.Background(), res, "rebind.test", 443); d.Allowed {
		t.Fatalf("the second answer, private, was let through: %+v", d)
	}
}

// world is servers on loopback, under names the proxy's resolver maps:
// an HTTPS one with its own CA and a plain HTTP one, and the proxy.
type world struct {
	tlsSrv, plainSrv *httptest.Server
	tlsPort          int
	proxy            *httptest.Server
	conns            chan egress.Conn
	dialed           chan string
	res              *names
}

func newWorld(t *testing.T) *world {
	w := &world{conns: make(chan egress.Conn, 16), dialed: make(chan string, 16)}
	payload := strings.Repeat("module data\n", 1<<16/12)
	w.tlsSrv = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, payload) }))
	t.Cleanup(w.tlsSrv.Close)
	w.plainSrv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(rw, "plain "+r.Method+" "+r.Host+r.URL.Path+" "+string(b)+" proxy-header="+r.Header.Get("Proxy-Authorization"))
	}))
	t.Cleanup(w.plainSrv.Close)
	w.tlsPort = w.tlsSrv.Listener.Addr().(*net.TCPAddr).Port
	plainPort := w.plainSrv.Listener.Addr().(*net.TCPAddr).Port
	rules, err := egress.ParseRules([]string{
		"modules.test:" + strconv.Itoa(w.tlsPort), "private.test:" + strconv.Itoa(w.tlsPort), "plain.test:" + strconv.Itoa(plainPort),
		"rebind.test:" + strconv.Itoa(w.tlsPort),
		"127.0.0.1:" + strconv.Itoa(w.tlsPort), "127.0.0.1:" + strconv.Itoa(plainPort),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.res = &names{m: map[string][]string{
		"modules.test": {"127.0.0.1"}, "other.test": {"127.0.0.1"}, "private.test": {"10.1.2.3"}, "plain.test": {"127.0.0.1"},
		"rebind.test": {"127.0.0.1", "10.9.9.9"},
	}}
	p := &egress.Proxy{Policy: egress.Policy{Rules: rules}, Resolver: w.res,
		OnConn: func(c egress.Conn) { w.conns <- c },
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			w.dialed <- addr
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	w.proxy = httptest.NewServer(p)
	t.Cleanup(w.proxy.Close)
	return w
}

// client goes through the proxy, and trusts the HTTPS server's CA (its
// certificate names example.com).
func (w *world) client() *http.Client {
	u, _ := url.Parse(w.proxy.URL)
	tr := w.tlsSrv.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(u)
	tr.TLSClientConfig = &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, ServerName: "example.com"}
	return &http.Client{Transport: tr}
}

// conn is the next connection the proxy reports.
func (w *world) conn(t *testing.T) egress.Conn {
	t.Helper()
	return recv(t, w.conns)
}

// recv is the next value of ch; a test that waits two minutes for what
// comes in milliseconds fails rather than hangs.
func recv[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(2 * time.Minute):
		t.Fatal("nothing came in two minutes")
	}
	panic("unreachable")
}

// count is how many times name was resolved.
func (n *names) count(name string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lookups[name]
}

// TestTheProxyTunnelsToListedNamesAndRefusesTheRest: through the proxy, an
// HTTPS GET of a listed name reaches it (TLS end to end: the proxy never
// looks in), and is reported with its bytes; a name not listed, a listed
// one that resolves to a private address and an address written in the
// request are refused with 403 and reported, and nothing is dialed for
// them; a name that rebinds after the check is connected to at the
// address checked.
func TestTheProxyTunnelsToListedNamesAndRefusesTheRest(t *testing.T) {
	w := newWorld(t)
	c := w.client()
	port := strconv.Itoa(w.tlsPort)
	res, err := c.Get("https://modules.test:" + port + "/mod/@v/list")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || len(body) < 60000 || !strings.HasPrefix(string(body), "module data\n") {
		t.Fatalf("%s, %d bytes", res.Status, len(body))
	}
	c.CloseIdleConnections()
	got := w.conn(t)
	if !got.Allowed || got.Method != "CONNECT" || got.Host != "modules.test" || got.Addr != "127.0.0.1:"+port || got.Received < int64(len(body)) || got.Sent == 0 {
		t.Fatalf("reported %+v", got)
	}
	if d := recv(t, w.dialed); d != "127.0.0.1:"+port {
		t.Fatalf("dialed %s", d)
	}
	for host, why := range map[string]string{
		"other.test":   "not in exec.network_allow",
		"private.test": "it resolves to 10.1.2.3, which is not on the internet",
		"127.0.0.2":    "an address, not a name exec.network_allow lists",
	} {
		_, err := c.Get("https://" + host + ":" + port + "/")
		if err == nil || !strings.Contains(err.Error(), "Forbidden") {
			t.Errorf("%s: %v, want the proxy's 403", host, err)
		}
		got := w.conn(t)
		if got.Allowed || got.Host != host || !strings.Contains(got.Reason, why) {
			t.Errorf("%s reported %+v, want refused: %s", host, got, why)
		}
	}
	select {
	case d := <-w.dialed:
		t.Fatalf("dialed %s for a refused destination", d)
	default:
	}
	res, err = c.Get("https://rebind.test:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	c.CloseIdleConnections()
	if got := w.conn(t); !got.Allowed || got.Addr != "127.0.0.1:"+port {
		t.Fatalf("rebind.test reported %+v", got)
	}
	if d := recv(t, w.dialed); d != "127.0.0.1:"+port || w.res.count("rebind.test") != 1 {
		t.Fatalf("rebind.test dialed %s after %d lookups", d, w.res.count("rebind.test"))
	}
}

// TestTheProxyForwardsPlainHTTPToListedNames: a plain request through the
// proxy reaches a listed name with its body, under that name whatever
// Host header it carries, and the proxy's own headers are not passed on; an https:// URL in a plain request is refused
// (CONNECT is the way), and so is a name not listed.
func TestTheProxyForwardsPlainHTTPToListedNames(t *testing.T) {
	w := newWorld(t)
	c := w.client()
	port := w.plainSrv.Listener.Addr().(*net.TCPAddr).Port
	req, _ := http.NewRequest("POST", "http://plain.test:"+strconv.Itoa(port)+"/x", strings.NewReader("hello"))
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := "plain POST plain.test:" + strconv.Itoa(port) + "/x hello proxy-header="; res.StatusCode != 200 || string(b) != want {
		t.Fatalf("%s: %q", res.Status, b)
	}
	if got := w.conn(t); !got.Allowed || got.Method != "POST" || got.Sent != 5 || got.Received != int64(len(b)) {
		t.Fatalf("reported %+v", got)
	}
	res, err = c.Get("http://other.test:" + strconv.Itoa(port) + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("a name not listed: %s", res.Status)
	}
	if got := w.conn(t); got.Allowed || !strings.Contains(got.Reason, "not in exec.network_allow") {
		t.Fatalf("reported %+v", got)
	}
	// A request whose Host header names another site than its URL (domain
	// fronting) reaches the URL's, under the URL's name.
	raw, err := net.Dial("tcp", w.proxy.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	io.WriteString(raw, "GET http://plain.test:"+strconv.Itoa(port)+"/y HTTP/1.1\r\nHost: fronted.test\r\nConnection: close\r\n\r\n")
	reply, _ := io.ReadAll(raw)
	if want := "plain GET plain.test:" + strconv.Itoa(port) + "/y "; !strings.HasPrefix(string(reply), "HTTP/1.1 200") || !strings.Contains(string(reply), want) {
		t.Fatalf("a fronted request: %q, want it to reach %q", reply, want)
	}
	if got := w.conn(t); !got.Allowed || got.Host != "plain.test" {
		t.Fatalf("reported %+v", got)
	}
	// A client that sends an https URL to the proxy as a plain request.
	raw, err = net.Dial("tcp", w.proxy.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	io.WriteString(raw, "GET https://modules.test:"+strconv.Itoa(w.tlsPort)+"/ HTTP/1.1\r\nHost: modules.test\r\nConnection: close\r\n\r\n")
	reply, _ = io.ReadAll(raw)
	if !strings.HasPrefix(string(reply), "HTTP/1.1 403") {
		t.Fatalf("an https URL in a plain request: %q", reply)
	}
	if got := w.conn(t); got.Allowed {
		t.Fatalf("reported %+v", got)
	}
}
