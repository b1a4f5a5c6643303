package auth

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
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

// withClientInfo puts the request's client into its context.
func withClientInfo(trusted []netip.Prefix, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua := r.UserAgent()
		if len(ua) > maxUserAgent {
			ua = ua[:maxUserAgent]
			for !utf8.ValidString(ua) {
				ua = ua[:len(ua)-1]
			}
		}
		c := clientInfo{IP: clientIP(r, trusted), UserAgent: ua}
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
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := peer.Addr().Unmap()
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
