package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"kinoteka/internal/apperr"
)

// Action is an endpoint that is throttled.
type Action string

// The throttled actions.
const (
	ActRegister Action = "register"
	ActVerify   Action = "verify"
	ActResend   Action = "resend"
	ActLogin    Action = "login"
	ActRefresh  Action = "refresh" // also logout, which takes a refresh token
	ActForgot   Action = "forgot"
	ActReset    Action = "reset"
)

// Actions lists every throttled action.
var Actions = []Action{ActRegister, ActVerify, ActResend, ActLogin, ActRefresh, ActForgot, ActReset}

// Rule is a token bucket: at most Limit attempts at once, refilled evenly
// over Per (so "10/1h" allows a burst of 10, then one every 6 minutes). The
// zero Rule is no limit.
type Rule struct {
	Limit int
	Per   time.Duration
}

func (r Rule) off() bool { return r.Limit <= 0 || r.Per <= 0 }

// rate is tokens per second.
func (r Rule) rate() float64 { return float64(r.Limit) / r.Per.Seconds() }

func (r Rule) String() string {
	if r.off() {
		return "off"
	}
	return strconv.Itoa(r.Limit) + "/" + shortDuration(r.Per)
}

func shortDuration(d time.Duration) string {
	s := d.String() // 1h0m0s, 10m0s, 30s
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseRule reads "30/10m" or "off".
func parseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return Rule{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	limit, err1 := strconv.Atoi(n)
	d, err2 := time.ParseDuration(per)
	if !ok || err1 != nil || err2 != nil || limit < 1 || d < time.Second {
		return Rule{}, fmt.Errorf("%q is not a rule such as 30/10m (at least 1 per at least 1s) or off", s)
	}
	return Rule{Limit: limit, Per: d}, nil
}

// Limits are an action's two buckets: one per client IP (an IPv6 client is
// its /64, which one subscriber usually holds whole) and one per account
// (the email address, or for refresh the user).
type Limits struct {
	IP      Rule
	Account Rule
}

func (l Limits) String() string { return "ip=" + l.IP.String() + ",account=" + l.Account.String() }

// parseLimits reads "ip=30/10m,account=10/1h"; a scope left out is off.
func parseLimits(s string) (Limits, error) {
	var l Limits
	for part := range strings.SplitSeq(s, ",") {
		scope, rule, ok := strings.Cut(strings.TrimSpace(part), "=")
		r, err := parseRule(rule)
		switch {
		case !ok:
			return Limits{}, fmt.Errorf("%q is not ip=RULE or account=RULE", part)
		case err != nil:
			return Limits{}, err
		case scope == "ip":
			l.IP = r
		case scope == "account":
			l.Account = r
		default:
			return Limits{}, fmt.Errorf("scope %q is neither ip nor account", scope)
		}
	}
	return l, nil
}

// DefaultLimits are the limits of an action not configured otherwise. The
// IP rules leave room for many people behind one NAT; the account rules
// bound what anyone, from any number of addresses, can try against one
// account: 10 passwords an hour at most (NIST SP 800-63B §5.2.2 asks for
// fewer than 100 failures before a stronger measure).
var DefaultLimits = map[Action]Limits{
	ActRegister: {IP: Rule{20, time.Hour}, Account: Rule{5, time.Hour}},
	ActVerify:   {IP: Rule{30, 10 * time.Minute}, Account: Rule{10, 10 * time.Minute}},
	ActResend:   {IP: Rule{10, time.Hour}, Account: Rule{5, time.Hour}},
	ActLogin:    {IP: Rule{30, 10 * time.Minute}, Account: Rule{10, time.Hour}},
	ActRefresh:  {IP: Rule{120, time.Minute}, Account: Rule{30, time.Minute}},
	ActForgot:   {IP: Rule{10, time.Hour}, Account: Rule{5, time.Hour}},
	ActReset:    {IP: Rule{30, 10 * time.Minute}, Account: Rule{10, 10 * time.Minute}},
}

// decision is a bucket's answer.
type decision struct {
	ok         bool
	retryAfter time.Duration // when refused: until one attempt is back
	first      bool          // the first refusal since the bucket last said yes
}

// limiter keeps token buckets; memoryLimiter and sqlLimiter are the two.
type limiter interface {
	take(ctx context.Context, key string, r Rule, now time.Time) (decision, error)
}

// bucket is a token bucket's state; the arithmetic is shared by both stores.
type bucket struct {
	tokens float64
	at     time.Time
	denied bool
}

// take refills b up to now and takes one token if there is one.
func (b bucket) take(r Rule, now time.Time) (bucket, decision) {
	capacity := float64(r.Limit)
	if b.at.IsZero() {
		b.tokens = capacity
	} else if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = math.Min(capacity, b.tokens+elapsed*r.rate())
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		b.denied = false
		return b, decision{ok: true}
	}
	wait := time.Duration((1 - b.tokens) / r.rate() * float64(time.Second))
	d := decision{retryAfter: wait, first: !b.denied}
	b.denied = true
	return b, d
}

// fullAt is when b will be full again, after which forgetting it changes nothing.
func (b bucket) fullAt(r Rule) time.Time {
	return b.at.Add(time.Duration((float64(r.Limit) - b.tokens) / r.rate() * float64(time.Second)))
}

// memoryLimiter keeps buckets in this process: right for one replica, and
// for several it still bounds each replica.
type memoryLimiter struct {
	max int

	mu      sync.Mutex
	buckets map[string]memoryBucket
}

type memoryBucket struct {
	bucket
	full time.Time
}

func newMemoryLimiter(max int) *memoryLimiter {
	return &memoryLimiter{max: max, buckets: map[string]memoryBucket{}}
}

func (m *memoryLimiter) take(_ context.Context, key string, r Rule, now time.Time) (decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.buckets) >= m.max {
		m.prune(now)
	}
	b, d := m.buckets[key].bucket.take(r, now)
	m.buckets[key] = memoryBucket{b, b.fullAt(r)}
	return d, nil
}

// prune forgets full buckets, and if that is not enough, arbitrary ones:
// bounded memory is worth an attacker with 100,000 addresses occasionally
// getting a fresh bucket.
func (m *memoryLimiter) prune(now time.Time) {
	for k, b := range m.buckets {
		if !b.full.After(now) {
			delete(m.buckets, k)
		}
	}
	for k := range m.buckets {
		if len(m.buckets) < m.max-m.max/10 {
			break
		}
		delete(m.buckets, k)
	}
}

// bucketKey names a bucket without holding the address in the clear (the
// shared store keeps keys in a table).
func bucketKey(act Action, scope, subject string) string {
	sum := sha256.Sum256([]byte("kinoteka-throttle-v1\x00" + string(act) + "\x00" + scope + "\x00" + subject))
	return hex.EncodeToString(sum[:16])
}

// ipSubject is the part of a client address that one subscriber holds:
// the address for IPv4, the /64 for IPv6.
func ipSubject(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.Unmap().String()
}

func errThrottled(wait time.Duration) error {
	e := &retryAfterError{after: wait}
	return &apperr.Error{
		Kind: apperr.RateLimited, Code: "too_many_requests",
		Message: fmt.Sprintf("too many attempts; try again in %d seconds", e.retryAfterSeconds()),
		Cause:   e,
	}
}

// throttle takes one attempt of act from the client's IP bucket and, when
// account is not empty, from the account's. The first refusal of a run is
// an audit event; a refusal is an error of kind RateLimited that carries the
// wait. Without a limiter (throttling off) it allows everything; a limiter
// that fails (the shared store is down) lets the request through, logged:
// throttling is a brake, not a reason to stop logins.
func (s *service) throttle(ctx context.Context, act Action, account string) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	limits := s.cfg.Throttle.limits(act)
	c := clientOf(ctx)
	now := s.now()
	for _, b := range []struct {
		scope, subject string
		rule           Rule
	}{
		{"ip", ipSubjectOrEmpty(c.IP), limits.IP},
		{"account", account, limits.Account},
	} {
		if b.rule.off() || b.subject == "" {
			continue
		}
		d, err := s.cfg.Limiter.take(ctx, bucketKey(act, b.scope, b.subject), b.rule, now)
		if err != nil {
			s.log.ErrorContext(ctx, "throttle store failed; request let through", "action", act, "err", err)
			continue
		}
		if !d.ok {
			if d.first {
				e := auditEvent{Event: evThrottled, Detail: map[string]string{"action": string(act), "scope": b.scope, "rule": b.rule.String()}}
				if b.scope == "account" && act != ActRefresh {
					e.Email = account
				} else if b.scope == "account" {
					e.UserID = account
				}
				s.audit(ctx, e)
			}
			s.cfg.Metrics.throttledRequest(act, b.scope)
			return errThrottled(d.retryAfter)
		}
	}
	return nil
}

func ipSubjectOrEmpty(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ipSubject(ip)
}
