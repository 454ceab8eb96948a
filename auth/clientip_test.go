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
	tp := mustProxies(f, "10.1.0.0/16", "192.0.2.10", "2001:db8:aa::/48")
	f.Fuzz(func(t *testing.T, peer, xff string) {
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
			if ea, ok := parseForwarded(strings.TrimSpace(e)); ok && ea == a {
				found = true
			}
		}
		if !found {
			t.Fatalf("result %q is neither the peer nor in XFF %q", got, xff)
		}
	})
}
