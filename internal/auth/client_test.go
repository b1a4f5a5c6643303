package auth

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// A proxy named in AUTH_TRUSTED_PROXIES is trusted at the addresses its name
// has, through the system's resolver (localhost: /etc/hosts), and no other.
func TestTrustedProxyByName(t *testing.T) {
	list, err := parseProxyList("localhost")
	if err != nil {
		t.Fatal(err)
	}
	var got netip.Addr
	h := withClientInfo(list, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = clientOf(r.Context()).IP }))
	for _, tc := range []struct{ remote, want string }{
		{"127.0.0.1:40000", "203.0.113.7"},     // the proxy: its header is believed
		{"198.51.100.9:40000", "198.51.100.9"}, // anyone else: the header is ignored
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Forwarded-For", "203.0.113.7")
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got.String() != tc.want {
			t.Errorf("from %s: client %s, want %s", tc.remote, got, tc.want)
		}
	}
}

// fakeDNS is a name table that changes while auth runs, as Docker's DNS does
// when a container is recreated or a replica added, with a clock the test
// moves.
type fakeDNS struct {
	mu      sync.Mutex
	addrs   map[string][]netip.Addr
	lookups int
	clock   time.Time
}

func (d *fakeDNS) lookup(_ context.Context, _, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups++
	a, ok := d.addrs[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return a, nil
}

func (d *fakeDNS) set(host string, addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs[host] = nil
	for _, a := range addrs {
		d.addrs[host] = append(d.addrs[host], netip.MustParseAddr(a))
	}
}

func (d *fakeDNS) now() time.Time { return d.clock }

// The names are looked up again: a proxy that starts after auth is trusted
// from its first requests, a replaced proxy's old address stops being
// trusted, and an unanswered look-up keeps the last addresses.
func TestTrustedProxyNamesFollowTheirAddresses(t *testing.T) {
	dns := &fakeDNS{addrs: map[string][]netip.Addr{}, clock: time.Unix(1_700_000_000, 0)}
	trust := newProxyTrust(ProxyList{Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}, Hosts: []string{"proxy"}},
		dns.lookup, dns.now)
	trusted := func(peer string) bool {
		p := netip.MustParseAddr(peer)
		return inPrefixes(p, trust.prefixes(context.Background(), p))
	}
	if !trusted("192.0.2.1") {
		t.Error("a fixed address is not trusted")
	}
	if trusted("10.0.0.5") {
		t.Error("trusted before the name exists")
	}

	// The proxy comes up after auth; its first request within a second of
	// the last look-up is not believed, the next one a second later is.
	dns.set("proxy", "10.0.0.5")
	dns.clock = dns.clock.Add(500 * time.Millisecond)
	if trusted("10.0.0.5") {
		t.Error("looked up again sooner than proxyMissRefresh")
	}
	dns.clock = dns.clock.Add(proxyMissRefresh)
	if !trusted("10.0.0.5") {
		t.Error("a proxy that appeared after start is not trusted")
	}

	// The proxy is recreated elsewhere; its old address goes to another
	// container, which is trusted at most until proxyRefresh has passed.
	dns.set("proxy", "10.0.0.9")
	dns.clock = dns.clock.Add(proxyRefresh)
	if trusted("10.0.0.5") {
		t.Error("the proxy's old address is still trusted after proxyRefresh")
	}
	if !trusted("10.0.0.9") {
		t.Error("the proxy's new address is not trusted")
	}

	// Scaled: two addresses under one name.
	dns.set("proxy", "10.0.0.9", "10.0.0.10")
	dns.clock = dns.clock.Add(proxyRefresh)
	if !trusted("10.0.0.9") || !trusted("10.0.0.10") {
		t.Error("not every address of the name is trusted")
	}

	// Requests from untrusted peers cause at most one look-up a second.
	before := dns.lookups
	for range 100 {
		trusted("198.51.100.9")
	}
	if n := dns.lookups - before; n != 0 {
		t.Errorf("%d look-ups for untrusted peers within a second, want 0", n)
	}
}

func TestTrustedProxyKeepsAddressesWhenDNSFails(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	fail := false
	lookup := func(context.Context, string, string) ([]netip.Addr, error) {
		if fail {
			return nil, &net.DNSError{Err: "server misbehaving", Name: "proxy", IsTemporary: true}
		}
		return []netip.Addr{netip.MustParseAddr("10.0.0.5")}, nil
	}
	trust := newProxyTrust(ProxyList{Hosts: []string{"proxy"}}, lookup, func() time.Time { return clock })
	fail = true
	clock = clock.Add(proxyRefresh)
	peer := netip.MustParseAddr("10.0.0.5")
	if !inPrefixes(peer, trust.prefixes(context.Background(), peer)) {
		t.Error("a failed look-up dropped the proxy's address")
	}
}
