package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"kinoteka/internal/sqldb"
)

func TestBucketArithmetic(t *testing.T) {
	r := Rule{Limit: 3, Per: time.Minute} // one back every 20 s
	now := start
	var b bucket
	var d decision
	for i := range 3 {
		if b, d = b.take(r, now); !d.ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	b, d = b.take(r, now)
	if d.ok || d.retryAfter != 20*time.Second || !d.first {
		t.Fatalf("4th attempt: %+v, want refused for 20 s, first refusal", d)
	}
	b, d = b.take(r, now.Add(10*time.Second))
	if d.ok || d.retryAfter != 10*time.Second || d.first {
		t.Fatalf("10 s later: %+v, want refused for 10 s more, not the first", d)
	}
	now = now.Add(20 * time.Second)
	if b, d = b.take(r, now); !d.ok {
		t.Fatal("the token refilled after 20 s was refused")
	}
	if b, d = b.take(r, now); d.ok || !d.first {
		t.Fatalf("after a yes, the next refusal is a new run: %+v", d)
	}
	if full := b.fullAt(r); !full.Equal(now.Add(time.Minute)) {
		t.Errorf("full again at %s, want %s", full, now.Add(time.Minute))
	}
}

func TestParseRulesAndLimits(t *testing.T) {
	for in, want := range map[string]Limits{
		"ip=30/10m,account=10/1h": {IP: Rule{30, 10 * time.Minute}, Account: Rule{10, time.Hour}},
		"ip=5/1s":                 {IP: Rule{5, time.Second}},
		" account=off , ip=1/1h ": {IP: Rule{1, time.Hour}},
	} {
		got, err := parseLimits(in)
		if err != nil || got != want {
			t.Errorf("parseLimits(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ip=", "ip=10", "ip=0/1m", "ip=10/0s", "ip=10/1ms", "ip=x/1m", "user=1/1m", "ip=1/1m,account"} {
		if _, err := parseLimits(in); err == nil {
			t.Errorf("parseLimits(%q) accepted it", in)
		}
	}
	if s := (Limits{IP: Rule{30, 10 * time.Minute}, Account: Rule{10, time.Hour}}).String(); s != "ip=30/10m,account=10/1h" {
		t.Errorf("String() = %q", s)
	}
	if s := (Rule{20, 30 * time.Second}).String(); s != "20/30s" {
		t.Errorf("String() = %q", s)
	}
}

// Both stores give the same answers; the shared one holds under concurrent
// takes (as from several replicas): exactly Limit of them succeed.
func TestLimiterStores(t *testing.T) {
	run := func(t *testing.T, l limiter) {
		ctx := context.Background()
		r := Rule{Limit: 2, Per: time.Hour}
		for i, want := range []bool{true, true, false, false} {
			d, err := l.take(ctx, "k", r, start)
			if err != nil || d.ok != want || (!want && d.first != (i == 2)) {
				t.Fatalf("take %d = %+v, %v; want ok=%v", i+1, d, err, want)
			}
		}
		if d, _ := l.take(ctx, "other", r, start); !d.ok {
			t.Error("another key shares the bucket")
		}
		if d, _ := l.take(ctx, "k", r, start.Add(30*time.Minute)); !d.ok {
			t.Error("no token back after half the period")
		}
		const n = 20
		var (
			wg sync.WaitGroup
			mu sync.Mutex
			ok int
		)
		for range n {
			wg.Go(func() {
				d, err := l.take(ctx, "race", Rule{Limit: 10, Per: time.Hour}, start)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if d.ok {
					ok++
				}
			})
		}
		wg.Wait()
		if ok != 10 {
			t.Errorf("%d of %d concurrent takes succeeded, want 10", ok, n)
		}
	}
	t.Run("memory", func(t *testing.T) { run(t, newMemoryLimiter(1000)) })
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		l := newSQLLimiter(db.DB)
		run(t, l)
		if err := l.sweep(context.Background(), start.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM throttle_buckets"); n != 0 {
			t.Errorf("%d buckets left after the sweep, want 0 (all full again)", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM throttle_buckets WHERE bucket LIKE '%@%' OR bucket LIKE '%.%'"); n != 0 {
			t.Error("bucket keys hold addresses")
		}
	})
}

func TestMemoryLimiterIsBounded(t *testing.T) {
	l := newMemoryLimiter(100)
	for i := range 1000 {
		if _, err := l.take(context.Background(), fmt.Sprint(i), Rule{1, time.Hour}, start); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.buckets); n > 100 {
		t.Errorf("%d buckets kept, bound is 100", n)
	}
}

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"no proxy", "203.0.113.7:5555", nil, proxies, "203.0.113.7"},
		{"header ignored without trusted proxies", "10.0.0.2:80", []string{"203.0.113.7"}, nil, "10.0.0.2"},
		{"header from an untrusted peer ignored", "198.51.100.9:80", []string{"203.0.113.7"}, proxies, "198.51.100.9"},
		{"one trusted proxy", "10.0.0.2:80", []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"spoofed left entries skipped", "10.0.0.2:80", []string{"1.2.3.4, 203.0.113.7"}, proxies, "203.0.113.7"},
		{"two trusted proxies", "10.0.0.2:80", []string{"203.0.113.7, 192.0.2.1"}, proxies, "203.0.113.7"},
		{"several header lines", "10.0.0.2:80", []string{"1.2.3.4", "203.0.113.7"}, proxies, "203.0.113.7"},
		{"entry with a port", "10.0.0.2:80", []string{"203.0.113.7:4444"}, proxies, "203.0.113.7"},
		{"IPv6 client", "[::1]:80", []string{"2001:db8::5"}, proxies, "2001:db8::5"},
		{"garbage stops at the proxy", "10.0.0.2:80", []string{"203.0.113.7, garbage"}, proxies, "10.0.0.2"},
		{"all trusted: the leftmost", "10.0.0.2:80", []string{"10.1.1.1"}, proxies, "10.1.1.1"},
		{"mapped IPv4 peer", "[::ffff:203.0.113.7]:80", nil, proxies, "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, tc.trusted); got.String() != tc.want {
				t.Errorf("clientIP = %s, want %s", got, tc.want)
			}
		})
	}
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:1")
	if ipSubject(a) != ipSubject(b) || ipSubject(a) == ipSubject(netip.MustParseAddr("2001:db8:0:1::1")) {
		t.Error("IPv6 clients are not bucketed by /64")
	}
}

// throttleBodies are requests of each action for one address; they need not
// succeed, only reach the throttle.
var throttleBodies = map[Action]struct{ path, body string }{
	ActRegister: {"/v1/auth/register", `{"email":"%s","password":"correct horse"}`},
	ActVerify:   {"/v1/auth/verify", `{"email":"%s","code":"123456","password":"correct horse"}`},
	ActResend:   {"/v1/auth/verify/resend", `{"email":"%s"}`},
	ActLogin:    {"/v1/auth/login", `{"email":"%s","password":"correct horse"}`},
	ActRefresh:  {"/v1/auth/refresh", `%.0s{"refresh_token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`},
	ActForgot:   {"/v1/auth/password/forgot", `{"email":"%s"}`},
	ActReset:    {"/v1/auth/password/reset", `{"email":"%s","code":"123456","new_password":"a brand new secret"}`},
}

func throttledFixture(t *testing.T, limits Limits) (*fixture, http.Handler) {
	f := newFixture(t, sqliteDB(t), func(c *serviceConfig) {
		c.Limiter = newMemoryLimiter(1000)
		c.Throttle.Limits = map[Action]Limits{}
		for _, a := range Actions {
			c.Throttle.Limits[a] = limits
		}
	})
	return f, testRoutes(f)
}

func postFrom(h http.Handler, path, body, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "throttle-test/1.0")
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// The N+1-th attempt from one IP gets 429 with Retry-After, on every
// throttled endpoint; another IP is not affected.
func TestThrottlePerIP(t *testing.T) {
	const n = 3
	for _, act := range Actions {
		t.Run(string(act), func(t *testing.T) {
			f, h := throttledFixture(t, Limits{IP: Rule{n, time.Hour}})
			req := throttleBodies[act]
			for i := range n {
				body := fmt.Sprintf(req.body, fmt.Sprintf("user%d@example.com", i))
				if w := postFrom(h, req.path, body, "203.0.113.7:1000"); w.Code == http.StatusTooManyRequests {
					t.Fatalf("attempt %d of %d: 429 %s", i+1, n, w.Body)
				}
			}
			w := postFrom(h, req.path, fmt.Sprintf(req.body, "userx@example.com"), "203.0.113.7:2000")
			var p struct{ Code string }
			_ = json.Unmarshal(w.Body.Bytes(), &p)
			if w.Code != http.StatusTooManyRequests || p.Code != "too_many_requests" || w.Header().Get("Retry-After") != "1200" {
				t.Fatalf("attempt %d: %d, Retry-After %q, %s; want 429 with Retry-After 1200 (one attempt back in 20 min)",
					n+1, w.Code, w.Header().Get("Retry-After"), w.Body)
			}
			if w := postFrom(h, req.path, fmt.Sprintf(req.body, "userx@example.com"), "198.51.100.1:1000"); w.Code == http.StatusTooManyRequests {
				t.Error("another IP was throttled too")
			}
			f.clock.Advance(20 * time.Minute)
			if w := postFrom(h, req.path, fmt.Sprintf(req.body, "usery@example.com"), "203.0.113.7:3000"); w.Code == http.StatusTooManyRequests {
				t.Error("still throttled after the bucket refilled one attempt")
			}
			recs, err := f.svc.store.AuditEvents(context.Background(), "", 100)
			if err != nil {
				t.Fatal(err)
			}
			throttled := 0
			for _, r := range recs {
				if r.Event == evThrottled {
					throttled++
					if r.IP != "203.0.113.7" || r.UserAgent != "throttle-test/1.0" || r.Detail["action"] != string(act) || r.Detail["scope"] != "ip" {
						t.Errorf("throttled event = %+v", r)
					}
				}
			}
			if throttled != 1 {
				t.Errorf("%d throttled events, want 1", throttled)
			}
		})
	}
}

// Per account: attempts on one address from many IPs are throttled too.
func TestThrottlePerAccount(t *testing.T) {
	const n = 2
	for _, act := range Actions {
		if act == ActRefresh {
			continue // its account is the token's user; see TestThrottleRefreshPerUser
		}
		t.Run(string(act), func(t *testing.T) {
			_, h := throttledFixture(t, Limits{Account: Rule{n, time.Hour}})
			req := throttleBodies[act]
			body := fmt.Sprintf(req.body, "Victim@Example.com")
			for i := range n {
				if w := postFrom(h, req.path, body, fmt.Sprintf("203.0.113.%d:1000", i+1)); w.Code == http.StatusTooManyRequests {
					t.Fatalf("attempt %d of %d: 429", i+1, n)
				}
			}
			if w := postFrom(h, req.path, fmt.Sprintf(req.body, "victim@example.com"), "198.51.100.99:1000"); w.Code != http.StatusTooManyRequests {
				t.Errorf("attempt %d on one account from a new IP: %d, want 429", n+1, w.Code)
			}
			if w := postFrom(h, req.path, fmt.Sprintf(req.body, "someone-else@example.com"), "198.51.100.99:1000"); w.Code == http.StatusTooManyRequests {
				t.Error("another account was throttled too")
			}
		})
	}
}

func TestThrottleRefreshPerUser(t *testing.T) {
	f, h := throttledFixture(t, Limits{Account: Rule{2, time.Hour}})
	tok := f.registerVerified(t, "a@example.com")
	for i := range 2 {
		w := postFrom(h, "/v1/auth/refresh", `{"refresh_token":"`+tok.Refresh+`"}`, fmt.Sprintf("203.0.113.%d:1000", i+1))
		if w.Code != http.StatusOK {
			t.Fatalf("refresh %d: %d %s", i+1, w.Code, w.Body)
		}
		var resp tokenResponse
		_ = json.Unmarshal(w.Body.Bytes(), &resp)
		tok.Refresh = resp.RefreshToken
	}
	if w := postFrom(h, "/v1/auth/refresh", `{"refresh_token":"`+tok.Refresh+`"}`, "198.51.100.1:1000"); w.Code != http.StatusTooManyRequests {
		t.Errorf("third refresh of one user within the hour: %d, want 429", w.Code)
	}
}
