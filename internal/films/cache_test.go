package films

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/sqldb/sqldbtest"
	"kinoteka/internal/testkit"
)

func TestAPIConditionalRequests(t *testing.T) {
	db := sqldbtest.SQLite(t, Migrations)
	a := newAPI(t, db)
	seedCatalogue(t, a.store)
	for _, path := range []string{"/v1/films/1", "/v1/films?limit=3&sort=title", "/v1/genres", "/v1/films/1/reviews"} {
		t.Run(path, func(t *testing.T) {
			r := a.do("GET", path)
			etag := r.header.Get("ETag")
			if r.status != http.StatusOK || !strings.HasPrefix(etag, `"`) || r.header.Get("Cache-Control") != "public, max-age=5" {
				t.Fatalf("GET: %d, ETag %q, Cache-Control %q", r.status, etag, r.header.Get("Cache-Control"))
			}
			// A token changes nothing: the catalogue is the same for everyone.
			if again := a.do("GET", path, bearer(a.auth.token(t, "u1"))...); again.header.Get("ETag") != etag || string(again.body) != string(r.body) {
				t.Errorf("with a token: ETag %q, body differs %v", again.header.Get("ETag"), string(again.body) != string(r.body))
			}
			for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
				nm := a.do("GET", path, "If-None-Match", inm)
				if nm.status != http.StatusNotModified || len(nm.body) != 0 || nm.header.Get("ETag") != etag || nm.header.Get("Cache-Control") == "" {
					t.Errorf("If-None-Match %s: %d %q, ETag %q", inm, nm.status, nm.body, nm.header.Get("ETag"))
				}
			}
			if r := a.do("GET", path, "If-None-Match", `"stale"`); r.status != http.StatusOK || len(r.body) == 0 {
				t.Errorf("a stale ETag: %d", r.status)
			}
			head := a.do("HEAD", path)
			if head.status != http.StatusOK || len(head.body) != 0 || head.header.Get("ETag") != etag || head.header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
				t.Errorf("HEAD: %d, %d bytes, ETag %q, Content-Length %q", head.status, len(head.body), head.header.Get("ETag"), head.header.Get("Content-Length"))
			}
		})
	}
	// A write through this process shows at once: new body, new ETag.
	before := a.do("GET", "/v1/films/2")
	a.doJSON("PUT", "/v1/films/2/reviews/me", `{"rating":4}`, bearer(a.auth.token(t, "u9"))...)
	after := a.do("GET", "/v1/films/2", "If-None-Match", before.header.Get("ETag"))
	if after.status != http.StatusOK || after.header.Get("ETag") == before.header.Get("ETag") || !strings.Contains(string(after.body), `"review_count":1`) {
		t.Errorf("after a review: %d %s", after.status, after.body)
	}
	// Errors and personal answers are never cached.
	nf := a.do("GET", "/v1/films/404")
	if nf.header.Get("ETag") != "" || nf.header.Get("Cache-Control") != "no-store" {
		t.Errorf("404: ETag %q, Cache-Control %q", nf.header.Get("ETag"), nf.header.Get("Cache-Control"))
	}
	fav := a.do("GET", "/v1/me/favorites", bearer(a.auth.token(t, "u1"))...)
	if fav.header.Get("ETag") != "" || fav.header.Get("Cache-Control") != "private, no-store" {
		t.Errorf("favourites: ETag %q, Cache-Control %q", fav.header.Get("ETag"), fav.header.Get("Cache-Control"))
	}
}

// cacheRig is a readCache with a hand-moved clock and generation, in front
// of a render that counts its calls.
type cacheRig struct {
	cache   *readCache
	clock   *testkit.Clock
	gen     uint64
	mu      sync.Mutex
	renders atomic.Int64
	gens    atomic.Int64 // calls of the generation func
	body    string
	gate    chan struct{} // when set, render waits for it to close
}

func newCacheRig(ttl time.Duration) *cacheRig {
	c := &cacheRig{clock: testkit.NewClock(testNow), body: "v1"}
	c.cache = newReadCache(nil, ttl,
		func() uint64 { c.gens.Add(1); c.mu.Lock(); defer c.mu.Unlock(); return c.gen },
		c.clock.Now)
	return c
}

func (c *cacheRig) handler() http.Handler {
	return c.cache.serve(func(ctx context.Context, r *http.Request) ([]byte, error) {
		c.renders.Add(1)
		if c.gate != nil {
			<-c.gate
		}
		if r.URL.Query().Get("fail") != "" {
			return nil, apperr.New(apperr.NotFound, "x", "no")
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return []byte(c.body + r.URL.Path), nil
	})
}

func (c *cacheRig) get(t *testing.T, path string) string {
	t.Helper()
	w := httptest.NewRecorder()
	c.handler().ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	return fmt.Sprintf("%d %s", w.Code, w.Body.String())
}

func TestReadCache(t *testing.T) {
	c := newCacheRig(5 * time.Second)
	for range 3 {
		if got := c.get(t, "/a"); got != "200 v1/a" {
			t.Fatalf("GET /a = %s", got)
		}
	}
	if n := c.renders.Load(); n != 1 {
		t.Errorf("3 GETs rendered %d times, want 1", n)
	}
	c.body = "v2"
	c.clock.Advance(4 * time.Second)
	if got := c.get(t, "/a"); got != "200 v1/a" {
		t.Errorf("within the TTL: %s", got)
	}
	c.clock.Advance(time.Second)
	if got := c.get(t, "/a"); got != "200 v2/a" {
		t.Errorf("at the TTL: %s", got)
	}
	c.body = "v3"
	c.gen++
	if got := c.get(t, "/a"); got != "200 v3/a" {
		t.Errorf("after a write (generation moved): %s", got)
	}
	// Errors are not kept.
	c.get(t, "/a?fail=1")
	c.get(t, "/a?fail=1")
	if n := c.renders.Load(); n != 5 {
		t.Errorf("%d renders, want 5 (errors rendered each time)", n)
	}
}

func TestReadCacheOff(t *testing.T) {
	c := newCacheRig(-1)
	for range 3 {
		c.get(t, "/a")
	}
	if n := c.renders.Load(); n != 3 {
		t.Errorf("3 GETs with the cache off rendered %d times", n)
	}
	w := httptest.NewRecorder()
	c.handler().ServeHTTP(w, httptest.NewRequest("GET", "/a", nil))
	if w.Header().Get("Cache-Control") != "public, no-cache" || w.Header().Get("ETag") == "" {
		t.Errorf("headers with the cache off: %v", w.Header())
	}
}

// Concurrent misses of one URL share one render.
func TestReadCacheSingleFlight(t *testing.T) {
	c := newCacheRig(5 * time.Second)
	c.gate = make(chan struct{})
	var wg sync.WaitGroup
	results := make(chan string, 8)
	for range 8 {
		wg.Go(func() { results <- c.get(t, "/hot") })
	}
	// Every caller reads the generation once to name its flight, and the
	// render reads it once more: wait until all eight are at the flight,
	// let them enter it, then release the render.
	for c.gens.Load() < 9 {
		runtime.Gosched()
	}
	for range 100 {
		runtime.Gosched()
	}
	close(c.gate)
	wg.Wait()
	close(results)
	for r := range results {
		if r != "200 v1/hot" {
			t.Errorf("a waiter got %s", r)
		}
	}
	if n := c.renders.Load(); n != 1 {
		t.Errorf("8 concurrent misses rendered %d times, want 1", n)
	}
}

func TestReadCacheIsBounded(t *testing.T) {
	c := newCacheRig(time.Minute)
	big := strings.Repeat("x", readCacheBytes/100)
	c.body = big
	for i := range 200 {
		c.get(t, fmt.Sprintf("/%d", i))
	}
	c.cache.mu.RLock()
	size, n := c.cache.size, len(c.cache.entries)
	sum := 0
	for _, e := range c.cache.entries {
		sum += len(e.body)
	}
	c.cache.mu.RUnlock()
	if size > readCacheBytes || size != sum || n == 0 {
		t.Errorf("cache holds %d entries, %d bytes (counted %d); bound %d", n, size, sum, readCacheBytes)
	}
}

func TestEtagMatches(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{``, false}, {`"a"`, true}, {`W/"a"`, true}, {`"b", "a"`, true}, {`"b",W/"a"`, true},
		{`*`, true}, {`"b"`, false}, {`a`, false}, {`"A"`, false},
	} {
		if got := etagMatches(tc.header, `"a"`); got != tc.want {
			t.Errorf("etagMatches(%q) = %v", tc.header, got)
		}
	}
}
