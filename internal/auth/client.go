package auth

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// clientInfo is who sent a request, as far as auth can tell: for throttling and
// the audit trail.
type clientInfo struct {
	IP        netip.Addr // invalid when unknown (a test calling the service directly)
	UserAgent string     // cut to maxUserAgent bytes
}

type clientKey struct{}

func withClient(ctx context.Context, c clientInfo) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

func clientOf(ctx context.Context) clientInfo {
	c, _ := ctx.Value(clientKey{}).(clientInfo)
	return c
}

// maxUserAgent bounds what the audit table keeps of a User-Agent header.
const maxUserAgent = 256

// withClientInfo puts the request's client into its context. The trusted
// proxies' names are looked up now and again while requests come (proxyTrust).
func withClientInfo(trusted ProxyList, h http.Handler) http.Handler {
	trust := newProxyTrust(trusted, net.DefaultResolver.LookupNetIP, time.Now)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua := r.UserAgent()
		if len(ua) > maxUserAgent {
			ua = ua[:maxUserAgent]
			for !utf8.ValidString(ua) {
				ua = ua[:len(ua)-1]
			}
		}
		c := clientInfo{IP: clientIP(r, trust.prefixes(r.Context(), peerAddr(r))), UserAgent: ua}
		inner := r.WithContext(withClient(r.Context(), c))
		h.ServeHTTP(w, inner)
		r.Pattern = inner.Pattern // the matched route, for the log line and the trace span outside
	})
}

// clientIP is the address the request came from. X-Forwarded-For is
// believed only as far as it was written by trusted proxies: starting from
// the peer, each hop that is a trusted proxy hands over to the address it
// says it received the request from, and the first untrusted hop is the
// client. With no trusted proxies (the default) the header is ignored, so a
// client cannot pick its own address to dodge throttling.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ip := peerAddr(r)
	if !ip.IsValid() {
		return ip
	}
	if len(trusted) == 0 || !inPrefixes(ip, trusted) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(hops[i])
		if !ok {
			return ip // a hop we cannot read: stop at the last one we trust
		}
		ip = hop
		if !inPrefixes(ip, trusted) {
			return ip
		}
	}
	return ip
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func inPrefixes(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// peerAddr is the address of the connection's other end; invalid when
// RemoteAddr is not an address (a test calling the handler directly).
func peerAddr(r *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return peer.Addr().Unmap()
}

const (
	// proxyRefresh is how old the trusted names' addresses may get: a
	// replaced proxy container's old address, handed to another container,
	// is trusted at most this long after the name moved (nginx in compose
	// re-resolves as often: "resolver … valid=5s").
	proxyRefresh = 5 * time.Second
	// proxyMissRefresh is how soon a request from an untrusted peer may
	// cause another look-up: a proxy that came up after auth (compose starts
	// it once auth is healthy) is believed from its first requests, while
	// untrusted clients cannot make auth query DNS more than once a second.
	proxyMissRefresh = time.Second
	// proxyLookupTimeout bounds one round of look-ups on the request path.
	proxyLookupTimeout = 2 * time.Second
)

// proxyTrust is the set of trusted proxy addresses: the fixed prefixes plus
// the current addresses of the trusted names. A name that does not resolve
// (yet) trusts nothing; a look-up that fails for another reason (the DNS
// server did not answer) keeps the name's previous addresses. Look-ups
// happen on the request path, by one request at a time — the others go on
// with the addresses known — so there is no goroutine to stop.
type proxyTrust struct {
	static []netip.Prefix
	hosts  []string
	lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)
	now    func() time.Time

	snapshot  atomic.Pointer[[]netip.Prefix] // static plus the names' addresses
	refreshed atomic.Int64                   // unix nanoseconds of the last look-up round
	mu        sync.Mutex                     // one look-up round at a time
	byHost    map[string][]netip.Prefix      // under mu
}

func newProxyTrust(l ProxyList, lookup func(context.Context, string, string) ([]netip.Addr, error), now func() time.Time) *proxyTrust {
	t := &proxyTrust{static: l.Prefixes, hosts: l.Hosts, lookup: lookup, now: now, byHost: map[string][]netip.Prefix{}}
	static := slices.Clone(l.Prefixes)
	t.snapshot.Store(&static)
	if len(t.hosts) > 0 {
		t.mu.Lock()
		t.refresh(context.Background())
		t.mu.Unlock()
	}
	return t
}

// prefixes is the trusted set for a request from peer, looking the names up
// again first when the set is older than proxyRefresh, or older than
// proxyMissRefresh and peer is not in it.
func (t *proxyTrust) prefixes(ctx context.Context, peer netip.Addr) []netip.Prefix {
	cur := *t.snapshot.Load()
	if len(t.hosts) == 0 {
		return cur
	}
	age := t.now().Sub(time.Unix(0, t.refreshed.Load()))
	if age < proxyRefresh && (age < proxyMissRefresh || inPrefixes(peer, cur)) {
		return cur
	}
	if !t.mu.TryLock() {
		return cur // another request is looking the names up
	}
	defer t.mu.Unlock()
	if t.now().Sub(time.Unix(0, t.refreshed.Load())) >= age { // not refreshed meanwhile
		t.refresh(ctx)
	}
	return *t.snapshot.Load()
}

// refresh looks every name up and publishes the new set; t.mu is held.
func (t *proxyTrust) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), proxyLookupTimeout)
	defer cancel()
	for _, h := range t.hosts {
		addrs, err := t.lookup(ctx, "ip", h)
		var dnsErr *net.DNSError
		switch {
		case err == nil:
			ps := make([]netip.Prefix, 0, len(addrs))
			for _, a := range addrs {
				a = a.Unmap()
				ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
			}
			t.byHost[h] = ps
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			delete(t.byHost, h) // gone: trust nothing under this name
		default:
			// Unanswered: keep what the name had, or a DNS hiccup would put
			// every client behind the proxy into one throttle bucket.
		}
	}
	next := slices.Clone(t.static)
	for _, h := range t.hosts {
		next = append(next, t.byHost[h]...)
	}
	t.snapshot.Store(&next)
	t.refreshed.Store(t.now().UnixNano())
}
