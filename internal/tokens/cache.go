package tokens

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCache remembers tokens that passed verification, by their SHA-256,
// until they expire, so the RSA check is paid once per token rather than once
// per request. It is bounded: when full it first drops expired entries, then
// arbitrary ones (Go's map order), which costs a hit-rate dip, never a wrong
// answer. A key withdrawn from the JWK set stops new tokens at once; tokens it
// already verified stay accepted until their exp (at most the access TTL).
type verifiedCache struct {
	max int

	mu      sync.RWMutex
	entries map[[sha256.Size]byte]Principal
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[[sha256.Size]byte]Principal)}
}

func (c *verifiedCache) get(token string, now time.Time) (Principal, bool) {
	sum := sha256.Sum256([]byte(token))
	c.mu.RLock()
	p, ok := c.entries[sum]
	c.mu.RUnlock()
	if !ok || !now.Before(p.ExpiresAt) {
		return Principal{}, false
	}
	return p, true
}

func (c *verifiedCache) put(token string, p Principal, now time.Time) {
	sum := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.ExpiresAt) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max-c.max/10 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[sum] = p
}
