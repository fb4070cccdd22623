package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llm-runtime/llm-runtime/runtime/container/dockertest"
)

// TestE2EExecReachesOnlyTheListedHostsThroughTheProxy: with exec.network
// allowlist, a command's proxy-aware program reaches a listed host, by
// plain HTTP and through a CONNECT tunnel, and nothing else: an unlisted
// port of the same address and an unlisted name are refused by the
// proxy (without resolving the name), a program that ignores the proxy
// finds no network at all, and every connection is in the result and in
// the audit log, allowed or refused, with its bytes (issue 27 §1).
func TestE2EExecReachesOnlyTheListedHostsThroughTheProxy(t *testing.T) {
	t.Parallel()
	env := dockertest.Require(t)
	dockertest.RequireExecImage(t, env)
	listed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the listed host, %s\n", r.URL.Path)
	}))
	defer listed.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the unlisted server was reached: %s", r.URL)
	}))
	defer other.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(listed.URL, "http://"))
	_, otherPort, _ := net.SplitHostPort(strings.TrimPrefix(other.URL, "http://"))
	dir := repo(t, map[string]string{
		"llm-runtime.config.yaml": "exec:\n  enabled: true\n  whitelist: [\"*\"]\n  shell: true\n  network: allowlist\n  network_allow: [\"127.0.0.1:" + port + "\"]\n",
	})
	// busybox's wget takes http_proxy (and ignores no_proxy); the tunnel is
	// asked for by hand, to the proxy HTTPS_PROXY names.
	tunnel := `printf 'CONNECT 127.0.0.1:` + port + ` HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /tunnelled HTTP/1.0\r\n\r\n' | nc 127.0.0.1 ${HTTPS_PROXY##*:}`
	in := strings.Join([]string{
		"<exec wget -q -O - http://127.0.0.1:" + port + "/plain>",
		"<exec " + tunnel + ">",
		"<exec wget -q -O - http://127.0.0.1:" + otherPort + "/>",
		"<exec wget -q -O - http://registry.invalid/>",
		"<exec wget -Y off -q -O - http://127.0.0.1:" + port + "/direct>",
		"<exec wget -Y off -q -O - http://192.0.2.1/>",
	}, "\n")
	r := runBinary(t, dir, in, nil, "--format", "jsonl")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 6 {
		t.Fatalf("exit %d, %d lines\n%s\n%s", r.code, len(lines), r.stdout, r.stderr)
	}
	type conn struct {
		Host     string
		Port     int
		Allowed  bool
		Reason   string
		Sent     int64
		Received int64
	}
	var res [6]struct {
		OK      bool
		Output  string
		Network []conn
	}
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &res[i]); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
	}
	check := func(i int, ok bool, output string, conns ...string) {
		t.Helper()
		got := res[i]
		var cs []string
		for _, c := range got.Network {
			s := fmt.Sprintf("%s:%d %t", c.Host, c.Port, c.Allowed)
			if c.Allowed && c.Received == 0 {
				s += " without bytes"
			}
			cs = append(cs, s)
		}
		if got.OK != ok || !strings.Contains(got.Output, output) || strings.Join(cs, ",") != strings.Join(conns, ",") {
			t.Errorf("command %d: ok %t, connections %v, output %q; want ok %t, %v, output with %q", i+1, got.OK, cs, got.Output, ok, conns, output)
		}
	}
	check(0, true, "hello from the listed host, /plain", "127.0.0.1:"+port+" true")
	check(1, true, "hello from the listed host, /tunnelled", "127.0.0.1:"+port+" true")
	check(2, false, "403", "127.0.0.1:"+otherPort+" false")
	check(3, false, "403", "registry.invalid:80 false")
	check(4, false, "") // its own loopback: nothing listens
	check(5, false, "") // no network interface
	if !strings.Contains(res[3].Network[0].Reason, "not in exec.network_allow") {
		t.Errorf("the unlisted name's refusal: %q", res[3].Network[0].Reason)
	}
	// The same, in the text format's summary and in the audit log.
	text := runBinary(t, dir, "<exec wget -q -O - http://127.0.0.1:"+port+"/again>\n<exec wget -q -O - http://registry.invalid/>", nil)
	for _, want := range []string{"Network: 1 connection to 127.0.0.1:" + port + "\n", "Network: 1 refused: registry.invalid:80 (not in exec.network_allow"} {
		if !strings.Contains(text.stdout, want) {
			t.Errorf("no %q in\n%s", want, text.stdout)
		}
	}
	// The prompt tells the model what a command can reach.
	if pr := runBinary(t, dir, "", nil, "prompt"); pr.code != 0 || !strings.Contains(pr.stdout, "whose only network is HTTP and HTTPS to 127.0.0.1:"+port+" (through the proxy") {
		t.Errorf("prompt: exit %d, no network sentence in\n%s%s", pr.code, pr.stdout, pr.stderr)
	}
	var allowed, refused int
	for _, l := range auditNetwork(t, dir) {
		switch {
		case strings.HasPrefix(l, "allowed 127.0.0.1:"+port+" (127.0.0.1:"+port+") sent "):
			allowed++
		case strings.HasPrefix(l, "refused "):
			refused++
		default:
			t.Errorf("audit: %q", l)
		}
	}
	if allowed != 3 || refused != 3 {
		t.Errorf("the audit log has %d allowed and %d refused connections; want 3 and 3", allowed, refused)
	}
}
