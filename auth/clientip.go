package auth

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/lookoutfire/lookout/errs"
)

// ErrBadProxy is returned by ParseTrustedProxies for an entry that is neither
// a CIDR nor an address, or that would trust every address.
var ErrBadProxy = fmt.Errorf("trusted proxy: %w", errs.ErrInvalid)

// TrustedProxies is the set of reverse proxies (http.trusted_proxies) whose
// X-Forwarded-For (or RFC 7239 Forwarded) entries are believed. The zero
// value trusts nobody, so the client is always the TCP peer.
type TrustedProxies struct {
	nets      []netip.Prefix
	forwarded bool // read Forwarded instead of X-Forwarded-For
}

// Header names accepted by WithHeader (http.forwarded_header).
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded" // RFC 7239
)

// ErrBadForwardHeader is returned by WithHeader for a name other than
// X-Forwarded-For or Forwarded.
var ErrBadForwardHeader = fmt.Errorf("forwarded header: %w", errs.ErrInvalid)

// WithHeader returns tp reading the client chain from the named header:
// X-Forwarded-For (the default) or Forwarded (RFC 7239, its for= parameter).
// Only one is read, the one the proxies write: a header the proxies pass
// through untouched is written by the client alone, and reading it too
// would let the client pick its own address.
func (tp TrustedProxies) WithHeader(name string) (TrustedProxies, error) {
	switch {
	case name == "" || strings.EqualFold(name, HeaderXForwardedFor):
		tp.forwarded = false
	case strings.EqualFold(name, HeaderForwarded):
		tp.forwarded = true
	default:
		return tp, fmt.Errorf("%q (want %s or %s): %w", name, HeaderXForwardedFor, HeaderForwarded, ErrBadForwardHeader)
	}
	return tp, nil
}

// ParseTrustedProxies reads CIDRs ("10.0.0.0/8", "2001:db8::/32") or single
// addresses ("192.0.2.10"). A /0 is refused: trusting every peer would let
// any client choose its own address and walk past the login rate limit.
func ParseTrustedProxies(list []string) (TrustedProxies, error) {
	var tp TrustedProxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s) // refuses zones itself
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				if a.Zone() != "" {
					return TrustedProxies{}, fmt.Errorf("%q: zoned addresses are not supported: %w", s, ErrBadProxy)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		switch {
		case err != nil:
			return TrustedProxies{}, fmt.Errorf("%q is not a CIDR or IP address: %w", s, ErrBadProxy)
		case p.Bits() == 0:
			return TrustedProxies{}, fmt.Errorf("%q would trust every peer: %w", s, ErrBadProxy)
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		tp.nets = append(tp.nets, p)
	}
	return tp, nil
}

// trusted reports whether a is one of the proxies.
func (tp TrustedProxies) trusted(a netip.Addr) bool {
	for _, p := range tp.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// FromTrustedProxy reports whether r's TCP peer is one of the proxies, so the
// headers it sets about the original request (X-Forwarded-Host,
// X-Forwarded-Proto) may be believed.
func (tp TrustedProxies) FromTrustedProxy(r *http.Request) bool {
	if len(tp.nets) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	return err == nil && tp.trusted(peer.WithZone("").Unmap())
}

// Forwarded returns the value a trusted proxy set in header (its last
// comma-separated element: the one the nearest proxy wrote), or "" when r did
// not come through a trusted proxy.
func (tp TrustedProxies) Forwarded(r *http.Request, header string) string {
	if !tp.FromTrustedProxy(r) {
		return ""
	}
	vs := r.Header.Values(header)
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// ClientIP is the address every per-client decision in HTTP uses (login rate
// limit, audit entries): the TCP peer, unless the peer is a trusted proxy; then
// X-Forwarded-For (or Forwarded) is walked from the right, skipping trusted
// proxies, and the first untrusted address wins. Entries left of it were
// written by the client and are never believed. A malformed entry stops the
// walk and the last trusted hop is used; if every hop is trusted, the
// leftmost one is.
func (tp TrustedProxies) ClientIP(r *http.Request) string {
	header := HeaderXForwardedFor
	if tp.forwarded {
		header = HeaderForwarded
	}
	return tp.clientIP(r.RemoteAddr, r.Header.Values(header))
}

func (tp TrustedProxies) clientIP(remoteAddr string, xff []string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host // not an IP peer (unix socket, test harness): nothing to walk
	}
	peer = peer.WithZone("").Unmap()
	if len(tp.nets) == 0 || !tp.trusted(peer) {
		return peer.String()
	}
	hop := peer
	// Several header lines form one list in order; walk lines and entries
	// right to left without splitting the (client-sized) header up front.
	for i := len(xff) - 1; i >= 0; i-- {
		line, more := xff[i], true
		for more { // an empty line is one empty, so malformed, entry
			entry := line
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				line, entry = line[:j], line[j+1:]
			} else {
				more = false
			}
			a, ok := tp.parseEntry(entry)
			if !ok {
				return hop.String()
			}
			if !tp.trusted(a) {
				return a.String()
			}
			hop = a
		}
	}
	return hop.String()
}

// parseEntry reads one entry of the configured header.
func (tp TrustedProxies) parseEntry(entry string) (netip.Addr, bool) {
	if tp.forwarded {
		return parseForwardedElement(entry)
	}
	return parseForwarded(strings.TrimSpace(entry))
}

// parseForwarded reads one X-Forwarded-For entry: an address, optionally with a
// port ("192.0.2.1:4711", "[2001:db8::1]:443") or in brackets ("[2001:db8::1]"),
// as some proxies write them. Zones and anything else ("unknown", "") are
// malformed.
func parseForwarded(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(s); err2 == nil {
			a, err = ap.Addr(), nil
		} else if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
			a, err = netip.ParseAddr(s[1 : len(s)-1])
		}
	}
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseForwardedElement reads the for= parameter of one RFC 7239 Forwarded
// element ("for=192.0.2.60;proto=http;by=203.0.113.43",
// `for="[2001:db8:cafe::17]:4711"`). An element without for=, with it twice,
// or naming an obfuscated or "unknown" node is malformed: it identifies no
// address to walk on from.
func parseForwardedElement(el string) (netip.Addr, bool) {
	var val string
	found := false
	for _, pair := range strings.Split(el, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return netip.Addr{}, false
		}
		if !strings.EqualFold(k, "for") {
			continue
		}
		if found {
			return netip.Addr{}, false
		}
		found, val = true, v
	}
	if !found {
		return netip.Addr{}, false
	}
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		val = val[1 : len(val)-1]
	}
	if strings.ContainsAny(val, `"\`) {
		return netip.Addr{}, false // escapes never occur in node names
	}
	return parseForwarded(val)
}
