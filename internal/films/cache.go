package films

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"kinoteka/internal/httpapi"
)

// The public catalogue reads (films, a film, its reviews, genres) are the hot
// path of the whole system and the same for everyone. readCache keeps their
// encoded answers for a short time, so a popular page costs a map lookup
// instead of a query and a JSON encoding, and every answer carries an ETag
// (a hash of its bytes) for conditional requests.
//
// Freshness: a write through this process moves the store's generation and
// the next read misses; a write through another replica is seen here within
// the TTL — the same bound the answers' Cache-Control: max-age gives browsers
// and proxies. Concurrent misses of one URL share one query (singleflight).

// readCacheBytes bounds the bodies the cache holds.
const readCacheBytes = 32 << 20

// renderFunc computes a public answer's JSON body, or an error for
// httpapi.Error. It must not depend on who asks.
type renderFunc func(ctx context.Context, r *http.Request) ([]byte, error)

type readCache struct {
	log *slog.Logger
	ttl time.Duration // 0: keep nothing (ETags and 304s still work)
	gen func() uint64
	now func() time.Time

	cacheControl string

	flights singleflight.Group

	mu      sync.RWMutex
	entries map[string]cachedAnswer
	size    int
}

type cachedAnswer struct {
	body    []byte
	etag    string
	gen     uint64
	expires time.Time
}

func newReadCache(log *slog.Logger, ttl time.Duration, gen func() uint64, now func() time.Time) *readCache {
	cc := "public, no-cache" // may be stored, must be revalidated: the ETag makes that cheap
	if ttl > 0 {
		cc = "public, max-age=" + strconv.Itoa(max(int(ttl/time.Second), 1))
	}
	return &readCache{log: log, ttl: ttl, gen: gen, now: now, cacheControl: cc, entries: map[string]cachedAnswer{}}
}

// serve answers GET requests with render's body, from the cache when it
// can, and 304 Not Modified when If-None-Match names the body's ETag.
func (c *readCache) serve(render renderFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var (
			a   cachedAnswer
			err error
		)
		if c.ttl <= 0 {
			// No cache: every request queries (what the "uncached" figures
			// of docs/benchmarks.md measure), and nobody keeps the body
			// after it is written.
			a, err = c.answer(r.Context(), r, render)
			defer func() { recycleBody(a.body) }()
		} else {
			a, err = c.lookup(r, render)
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		h := w.Header()
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", c.cacheControl)
		if etagMatches(r.Header.Get("If-None-Match"), a.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(a.body)
		}
	})
}

// answer computes an answer without the cache.
func (c *readCache) answer(ctx context.Context, r *http.Request, render renderFunc) (cachedAnswer, error) {
	body, err := render(ctx, r)
	if err != nil {
		return cachedAnswer{}, err
	}
	return cachedAnswer{body: body, etag: etagOf(body)}, nil
}

// lookup returns the cached answer to r, computing and keeping it on a miss.
func (c *readCache) lookup(r *http.Request, render renderFunc) (cachedAnswer, error) {
	// The key is the request as the client wrote it, query sorted: two
	// spellings of one query are two entries, which is harmless.
	key := r.URL.Path + "?" + r.URL.Query().Encode()
	if a, ok := c.get(key); ok {
		return a, nil
	}
	// The generation is part of the flight's key: a request that arrives
	// after a write never joins a query that began before it.
	flight := key + "\x00" + strconv.FormatUint(c.gen(), 10)
	v, err, _ := c.flights.Do(flight, func() (any, error) {
		gen := c.gen() // before the query: a write after it makes the entry stale
		// Shared by every waiter: not cancelled with the first caller.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		a, err := c.answer(ctx, r, render)
		if err != nil {
			return nil, err
		}
		// Kept: a copy of its own size (render's buffer may be a recycled
		// one, larger, and goes back).
		body := a.body
		a.body = bytes.Clone(body)
		recycleBody(body)
		a.gen, a.expires = gen, c.now().Add(c.ttl)
		c.put(key, a)
		return a, nil
	})
	if err != nil {
		return cachedAnswer{}, err
	}
	return v.(cachedAnswer), nil
}

// statusClientClosedRequest is nginx's code for a request whose client
// went away before the answer: nobody reads it, but the log line says what
// happened instead of showing a 500.
const statusClientClosedRequest = 499

// fail answers a render's error, unless the client has gone: then the
// database's "context canceled" is no internal error worth a log line.
func (c *readCache) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		w.WriteHeader(statusClientClosedRequest)
		return
	}
	httpapi.Error(w, r, c.log, err)
}

func (c *readCache) get(key string) (cachedAnswer, bool) {
	if c.ttl <= 0 {
		return cachedAnswer{}, false
	}
	c.mu.RLock()
	a, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || a.gen != c.gen() || !c.now().Before(a.expires) {
		return cachedAnswer{}, false
	}
	return a, true
}

func (c *readCache) put(key string, a cachedAnswer) {
	if c.ttl <= 0 || len(a.body) > readCacheBytes/64 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[key]; ok {
		c.size -= len(old.body)
	}
	if c.size+len(a.body) > readCacheBytes {
		// Full: drop what is stale, then whatever Go's map order offers
		// until a quarter is free. A lower hit rate, never a wrong answer.
		gen, now := c.gen(), c.now()
		for k, e := range c.entries {
			if e.gen != gen || !now.Before(e.expires) {
				c.size -= len(e.body)
				delete(c.entries, k)
			}
		}
		for k, e := range c.entries {
			if c.size+len(a.body) <= readCacheBytes*3/4 {
				break
			}
			c.size -= len(e.body)
			delete(c.entries, k)
		}
	}
	c.entries[key] = a
	c.size += len(a.body)
}

// etagOf is a strong validator: a hash of the exact bytes, so every replica
// gives the same answer the same ETag.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}

// etagMatches applies If-None-Match (RFC 9110 §13.1.2): "*" or any listed
// tag, compared weakly (a W/ prefix is ignored).
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}
