// Package egress is the host's side of exec's network by allowlist
// (exec.network: allowlist): an HTTP proxy that lets a command reach only
// the names exec.network_allow lists. It allows CONNECT (a TLS tunnel it
// never looks into) and plain HTTP requests, to a listed name and port;
// it resolves the name itself, refuses an address that is loopback,
// private, link-local or otherwise not on the internet unless the
// allowlist names that address, and connects to the address it checked,
// so that a name that resolves to another address a moment later (DNS
// rebinding) changes nothing. An address written in the request (an IP
// literal) is refused unless listed. Every connection, allowed or not, is
// reported (Proxy.OnConn) with the bytes it carried each way.
//
// A command in the exec container reaches it through the agent (issue 27,
// item 1): the container has no network interface of its own.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Rule is one entry of exec.network_allow.
type Rule struct {
	// Host is a host name, lower case, without a trailing dot; with
	// Wildcard, the names under it ("*.example.com": a.example.com,
	// b.a.example.com, not example.com itself).
	Host     string
	Wildcard bool
	// Addr is an address listed as such (Host is then empty): the one
	// way to let a name that resolves to a loopback or private address
	// through, and to allow an IP literal.
	Addr netip.Addr
	// Port is the one port allowed, or 0 for 443 and 80.
	Port int
}

// ParseRules reads exec.network_allow: each entry a host name, "*." and a
// host name, or an IP address, with ":PORT" for that port only (an IPv6
// address with a port is written "[::1]:8443").
func ParseRules(entries []string) ([]Rule, error) {
	var rules []Rule
	for _, e := range entries {
		r, err := parseRule(e)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", e, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parseRule(e string) (Rule, error) {
	var r Rule
	host := strings.TrimSpace(e)
	if a, err := netip.ParseAddr(host); err == nil { // an address, IPv6 included, without a port
		r.Addr = a.Unmap()
		return r, nil
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		port, perr := strconv.Atoi(p)
		if perr != nil || port < 1 || port > 65535 {
			return r, fmt.Errorf("the port %q is not a number from 1 to 65535", p)
		}
		host, r.Port = h, port
	}
	if a, err := netip.ParseAddr(host); err == nil {
		r.Addr = a.Unmap()
		return r, nil
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		host, r.Wildcard = rest, true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if !validName(host) {
		return r, errors.New("not a host name, *.NAME or an IP address (with :PORT if need be)")
	}
	r.Host = host
	return r, nil
}

// validName says whether s is a host name: dot-separated labels of
// letters, digits, hyphens and underscores, none empty or longer than 63, none
// starting or ending with a hyphen, at most 253 in all.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// String is the rule as exec.network_allow spells it.
func (r Rule) String() string {
	h := r.Host
	switch {
	case r.Addr.IsValid():
		h = r.Addr.String()
	case r.Wildcard:
		h = "*." + h
	}
	if r.Port == 0 {
		return h
	}
	return net.JoinHostPort(h, strconv.Itoa(r.Port))
}

// portOK says whether a rule allows port.
func (r Rule) portOK(port int) bool {
	if r.Port != 0 {
		return port == r.Port
	}
	return port == 443 || port == 80
}

// Policy decides by its rules.
type Policy struct{ Rules []Rule }

// AllowsName says whether the name host (lower case) may be reached on
// port: a rule names it, or a wildcard rule a domain above it.
func (p Policy) AllowsName(host string, port int) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, r := range p.Rules {
		if r.Host == "" || !r.portOK(port) {
			continue
		}
		if !r.Wildcard && host == r.Host || r.Wildcard && strings.HasSuffix(host, "."+r.Host) {
			return true
		}
	}
	return false
}

// Listed says whether a rule lists the address a, for port.
func (p Policy) Listed(a netip.Addr, port int) bool {
	a = a.Unmap()
	for _, r := range p.Rules {
		if r.Addr.IsValid() && r.Addr == a && r.portOK(port) {
			return true
		}
	}
	return false
}

// public says whether a is an address of the internet: not loopback,
// private (RFC 1918, fc00::/7), link-local, unspecified, multicast, the
// shared space of carrier-grade NAT (100.64.0.0/10), or another block
// that routes nowhere public.
func public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// reserved are blocks that are not the internet beyond what netip's
// predicates name.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64: an IPv4 address inside
	netip.MustParsePrefix("2001:db8::/32"),
}

// Resolver is how the proxy resolves names: net.DefaultResolver, or a
// test's.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Decision is what the proxy decided of a destination.
type Decision struct {
	Allowed bool
	// Addr is the address to connect to, when allowed: the one checked.
	Addr netip.AddrPort
	// Reason says why it is refused.
	Reason string
}

// literal is host as an IP address, if it is one.
func literal(host string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return a, err == nil
}

// Names says whether host:port passes the rules before anything is
// resolved, as Decide's first step: an IP address listed, or a name
// allowed.
func (p Policy) Names(host string, port int) bool {
	if a, ok := literal(host); ok {
		return p.Listed(a, port)
	}
	return p.AllowsName(host, port)
}

// Decide decides on host:port as a request names it: an IP literal must
// be listed; a name must be allowed, and is resolved once, and the first
// of its addresses that is public, or listed, is the one to connect to.
func (p Policy) Decide(ctx context.Context, res Resolver, host string, port int) Decision {
	if port < 1 || port > 65535 {
		return Decision{Reason: "no such port"}
	}
	if a, ok := literal(host); ok {
		if p.Listed(a, port) {
			return Decision{Allowed: true, Addr: netip.AddrPortFrom(a.Unmap(), uint16(port))}
		}
		return Decision{Reason: "an address, not a name exec.network_allow lists"}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if !p.AllowsName(host, port) {
		return Decision{Reason: "not in exec.network_allow"}
	}
	addrs, err := res.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return Decision{Reason: "the name does not resolve: " + err.Error()}
	}
	for _, a := range addrs {
		if public(a) || p.Listed(a, port) {
			return Decision{Allowed: true, Addr: netip.AddrPortFrom(a.Unmap(), uint16(port))}
		}
	}
	return Decision{Reason: fmt.Sprintf("it resolves to %s, which is not on the internet (list the address in exec.network_allow to allow it)", joinAddrs(addrs))}
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
