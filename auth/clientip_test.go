package auth

import (
	"errors"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/lookoutfire/lookout/errs"
)

func mustProxies(t testing.TB, list ...string) TrustedProxies {
	t.Helper()
	tp, err := ParseTrustedProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestClientIP(t *testing.T) {
	// Two proxy tiers: an edge load balancer in 10.1.0.0/16 in front of an
	// nginx on 192.0.2.10, which is the gateway's TCP peer.
	tiers := []string{"10.1.0.0/16", "192.0.2.10", "2001:db8:aa::/48"}
	cases := []struct {
		name    string
		proxies []string
		peer    string
		xff     []string // header lines, in order
		want    string
	}{
		{"no proxies: peer", nil, "198.51.100.7:5555", nil, "198.51.100.7"},
		{"no proxies: XFF ignored", nil, "198.51.100.7:5555", []string{"203.0.113.1"}, "198.51.100.7"},
		{"untrusted peer: XFF ignored", tiers, "198.51.100.7:5555", []string{"203.0.113.1, 10.1.0.5"}, "198.51.100.7"},
		{"trusted peer, no XFF: the proxy itself", tiers, "192.0.2.10:40000", nil, "192.0.2.10"},
		{"one hop", tiers, "192.0.2.10:40000", []string{"203.0.113.1"}, "203.0.113.1"},
		{"two hops", tiers, "192.0.2.10:40000", []string{"203.0.113.1, 10.1.4.4"}, "203.0.113.1"},
		{"two hops over two header lines", tiers, "192.0.2.10:40000", []string{"203.0.113.1", "10.1.4.4"}, "203.0.113.1"},
		{"spoofed leftmost entries are not believed", tiers, "192.0.2.10:40000",
			[]string{"127.0.0.1, 1.2.3.4, 203.0.113.1, 10.1.4.4"}, "203.0.113.1"},
		{"spoofed leftmost in an earlier header line", tiers, "192.0.2.10:40000",
			[]string{"6.6.6.6", "203.0.113.1, 10.1.4.4"}, "203.0.113.1"},
		{"client claims a trusted address: walk continues past it", tiers, "192.0.2.10:40000",
			[]string{"198.51.100.99, 10.1.9.9, 203.0.113.1"}, "203.0.113.1"},
		{"all hops trusted: leftmost trusted hop", tiers, "192.0.2.10:40000", []string{"10.1.0.1, 10.1.0.2"}, "10.1.0.1"},
		{"whitespace and empty lines tolerated", tiers, "192.0.2.10:40000", []string{"  203.0.113.1 ,10.1.4.4  "}, "203.0.113.1"},
		{"entry with port", tiers, "192.0.2.10:40000", []string{"203.0.113.1:61000"}, "203.0.113.1"},
		{"IPv6 peer and client", tiers, "[2001:db8:aa::1]:443", []string{"2001:db8:ff::7"}, "2001:db8:ff::7"},
		{"IPv6 bracketed with port", tiers, "[2001:db8:aa::1]:443", []string{"[2001:db8:ff::7]:5000"}, "2001:db8:ff::7"},
		{"IPv6 bracketed", tiers, "[2001:db8:aa::1]:443", []string{"[2001:db8:ff::7]"}, "2001:db8:ff::7"},
		{"IPv6 untrusted peer", tiers, "[2001:db8:ff::1]:443", []string{"2001:db8:ff::7"}, "2001:db8:ff::1"},
		{"IPv4-mapped peer matches the IPv4 CIDR", tiers, "[::ffff:192.0.2.10]:40000", []string{"203.0.113.1"}, "203.0.113.1"},
		{"IPv4-mapped entry is reported as IPv4", tiers, "192.0.2.10:40000", []string{"::ffff:203.0.113.1"}, "203.0.113.1"},
		{"malformed rightmost: the peer", tiers, "192.0.2.10:40000", []string{"203.0.113.1, unknown"}, "192.0.2.10"},
		{"malformed after a trusted hop: that hop", tiers, "192.0.2.10:40000", []string{"203.0.113.1, garbage, 10.1.4.4"}, "10.1.4.4"},
		{"empty entry is malformed", tiers, "192.0.2.10:40000", []string{"203.0.113.1,,10.1.4.4"}, "10.1.4.4"},
		{"empty header line is malformed", tiers, "192.0.2.10:40000", []string{"203.0.113.1", ""}, "192.0.2.10"},
		{"zoned entry is malformed", tiers, "[2001:db8:aa::1]:443", []string{"fe80::1%eth0"}, "2001:db8:aa::1"},
		{"hostname entry is malformed", tiers, "192.0.2.10:40000", []string{"client.example"}, "192.0.2.10"},
		{"peer without port", nil, "198.51.100.7", nil, "198.51.100.7"},
		{"non-IP peer passes through", tiers, "@", []string{"203.0.113.1"}, "@"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tp := mustProxies(t, tc.proxies...)
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tp.ClientIP(r); got != tc.want {
				t.Fatalf("ClientIP(peer %s, XFF %q) = %s, want %s", tc.peer, tc.xff, got, tc.want)
			}
		})
	}
}

// With http.forwarded_header: Forwarded, the RFC 7239 for= parameters are
// walked the same way, and X-Forwarded-For is ignored (and vice versa).
func TestClientIPForwarded(t *testing.T) {
	tiers := []string{"10.1.0.0/16", "192.0.2.10", "2001:db8:aa::/48"}
	const peer = "192.0.2.10:40000"
	cases := []struct {
		name     string
		fwd, xff []string // header lines
		want     string
		wantXFF  string // the same request read in X-Forwarded-For mode
	}{
		{"one hop", []string{"for=203.0.113.1;proto=https;by=192.0.2.10"}, nil, "203.0.113.1", "192.0.2.10"},
		{"two hops", []string{"for=203.0.113.1, for=10.1.4.4"}, nil, "203.0.113.1", "192.0.2.10"},
		{"two header lines", []string{"for=203.0.113.1", "for=10.1.4.4;proto=http"}, nil, "203.0.113.1", "192.0.2.10"},
		{"parameter names are case-insensitive", []string{"For=203.0.113.1;PROTO=http"}, nil, "203.0.113.1", "192.0.2.10"},
		{"for= not first", []string{"proto=https; for=203.0.113.1 ;by=192.0.2.10"}, nil, "203.0.113.1", "192.0.2.10"},
		{"quoted IPv4 with port", []string{`for="203.0.113.1:4711"`}, nil, "203.0.113.1", "192.0.2.10"},
		{"quoted IPv6 with port", []string{`for="[2001:db8:cafe::17]:4711"`}, nil, "2001:db8:cafe::17", "192.0.2.10"},
		{"quoted IPv6", []string{`for="[2001:db8:cafe::17]"`}, nil, "2001:db8:cafe::17", "192.0.2.10"},
		{"spoofed leftmost elements are not believed", []string{"for=127.0.0.1, for=203.0.113.1, for=10.1.4.4"}, nil, "203.0.113.1", "192.0.2.10"},
		{"unknown node: the last trusted hop", []string{"for=203.0.113.1, for=unknown, for=10.1.4.4"}, nil, "10.1.4.4", "192.0.2.10"},
		{"obfuscated node is malformed", []string{"for=_hidden"}, nil, "192.0.2.10", "192.0.2.10"},
		{"element without for=", []string{"for=203.0.113.1, proto=https"}, nil, "192.0.2.10", "192.0.2.10"},
		{"for= twice in one element", []string{"for=203.0.113.1;for=198.51.100.1"}, nil, "192.0.2.10", "192.0.2.10"},
		{"pair without =", []string{"for=203.0.113.1;secure"}, nil, "192.0.2.10", "192.0.2.10"},
		{"escapes are malformed", []string{`for="203.0.113.\1"`}, nil, "192.0.2.10", "192.0.2.10"},
		{"unbalanced quote", []string{`for="203.0.113.1`}, nil, "192.0.2.10", "192.0.2.10"},
		{"X-Forwarded-For ignored in Forwarded mode", nil, []string{"203.0.113.9"}, "192.0.2.10", "203.0.113.9"},
		{"each mode reads its own header", []string{"for=203.0.113.1"}, []string{"198.51.100.9"}, "203.0.113.1", "198.51.100.9"},
	}
	xffMode := mustProxies(t, tiers...)
	fwdMode, err := xffMode.WithHeader("forwarded")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = peer
			for _, v := range tc.fwd {
				r.Header.Add("Forwarded", v)
			}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := fwdMode.ClientIP(r); got != tc.want {
				t.Errorf("Forwarded mode: %q / XFF %q = %s, want %s", tc.fwd, tc.xff, got, tc.want)
			}
			if got := xffMode.ClientIP(r); got != tc.wantXFF {
				t.Errorf("X-Forwarded-For mode: %q / XFF %q = %s, want %s", tc.fwd, tc.xff, got, tc.wantXFF)
			}
		})
	}
}

func TestWithHeader(t *testing.T) {
	tp := mustProxies(t, "192.0.2.10")
	for _, name := range []string{"", "X-Forwarded-For", "x-forwarded-for", "Forwarded", "FORWARDED"} {
		got, err := tp.WithHeader(name)
		if err != nil {
			t.Errorf("%q: %v", name, err)
		}
		if want := strings.EqualFold(name, "forwarded"); got.forwarded != want {
			t.Errorf("%q: reads Forwarded = %v, want %v", name, got.forwarded, want)
		}
	}
	for _, name := range []string{"X-Real-IP", "Forwarded-For", " forwarded"} {
		if _, err := tp.WithHeader(name); !errors.Is(err, ErrBadForwardHeader) || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), name) {
			t.Errorf("%q: err = %v, want ErrBadForwardHeader naming it", name, err)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		in      string
		ok      bool
		trusted string // an address the result must trust (when ok)
	}{
		{"10.0.0.0/8", true, "10.200.1.1"},
		{" 192.0.2.10 ", true, "192.0.2.10"},
		{"10.1.2.3/8", true, "10.9.9.9"}, // host bits are masked
		{"2001:db8::/32", true, "2001:db8:1::1"},
		{"::1", true, "::1"},
		{"::ffff:10.0.0.0/104", true, "10.3.3.3"},
		{"10.0.0.0/33", false, ""},
		{"10.0.0.0/", false, ""},
		{"proxy.internal", false, ""},
		{"", false, ""},
		{"0.0.0.0/0", false, ""},
		{"::/0", false, ""},
		{"fe80::1%eth0", false, ""},
	} {
		tp, err := ParseTrustedProxies([]string{tc.in})
		if !tc.ok {
			if err == nil || !errors.Is(err, ErrBadProxy) || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
				t.Errorf("%q: err = %v, want ErrBadProxy naming the entry", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !tp.trusted(netip.MustParseAddr(tc.trusted)) {
			t.Errorf("%q does not trust %s", tc.in, tc.trusted)
		}
		if tp.trusted(netip.MustParseAddr("198.51.100.1")) {
			t.Errorf("%q trusts an unrelated address", tc.in)
		}
	}
}

// FuzzClientIP: whatever the header says, the answer is the peer or one of the
// header's entries, and an untrusted peer is always its own answer.
func FuzzClientIP(f *testing.F) {
	f.Add("192.0.2.10:1", "203.0.113.1, 10.1.4.4")
	f.Add("[2001:db8:aa::1]:443", "[2001:db8:ff::7]:5000, unknown")
	f.Add("198.51.100.7:5555", "1.2.3.4")
	f.Add("192.0.2.10:1", ",,, ,")
	f.Add("192.0.2.10:1", `for="[2001:db8:ff::7]:5000";proto=https, for=10.1.4.4`)
	xffMode := mustProxies(f, "10.1.0.0/16", "192.0.2.10", "2001:db8:aa::/48")
	fwdMode, err := xffMode.WithHeader(HeaderForwarded)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		for _, tp := range []TrustedProxies{xffMode, fwdMode} {
			checkClientIP(t, tp, peer, xff)
		}
	})
}

// checkClientIP: the answer for one header line is the peer or an address of
// one of its entries, and an untrusted peer is always its own answer.
func checkClientIP(t *testing.T, tp TrustedProxies, peer, xff string) {
	t.Helper()
	got := tp.clientIP(peer, []string{xff})
	host, _, err := net.SplitHostPort(peer)
	if err != nil {
		host = peer
	}
	p, err := netip.ParseAddr(host)
	if err != nil || !tp.trusted(p.WithZone("").Unmap()) {
		if got != tp.clientIP(peer, nil) {
			t.Fatalf("untrusted peer %q: %q depends on XFF %q", peer, got, xff)
		}
		return
	}
	if got == p.WithZone("").Unmap().String() {
		return
	}
	a, err := netip.ParseAddr(got)
	if err != nil {
		t.Fatalf("result %q is not an address", got)
	}
	found := false
	for _, e := range strings.Split(xff, ",") {
		if ea, ok := tp.parseEntry(e); ok && ea == a {
			found = true
		}
	}
	if !found {
		t.Fatalf("result %q is neither the peer nor in header %q (Forwarded mode %v)", got, xff, tp.forwarded)
	}
}
