package tokens

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"

	"kinoteka/internal/apperr"
)

// MaxTokenBytes bounds the tokens the verifier will even parse.
const MaxTokenBytes = 8 << 10

// Principal is who a verified token speaks for.
type Principal struct {
	UserID        string
	Email         string
	EmailVerified bool
	Roles         []string
	ExpiresAt     time.Time
}

// HasRole reports whether the principal holds role.
func (p Principal) HasRole(role string) bool {
	for _, r := range p.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// VerifierConfig says whose tokens to trust.
type VerifierConfig struct {
	JWKSURL  string        // auth's /.well-known/jwks.json
	Issuer   string        // expected iss
	Audience string        // expected aud
	Leeway   time.Duration // clock skew allowed on exp/nbf; at most 60 s
	// MinRefetch is the least time between two JWK set fetches caused by an
	// unknown kid, so forged kids cannot make films hammer auth.
	MinRefetch time.Duration
	// StaticKeys are trusted beside (or, with no JWKSURL, instead of) the
	// fetched JWK set — the original design's configured public key.
	StaticKeys []*rsa.PublicKey
	// CacheSize bounds the cache of already verified tokens; 0 means 10,000
	// and a negative value turns the cache off.
	CacheSize int
	Client    *http.Client
	Now       func() time.Time
}

// Verifier checks access tokens locally against a cached JWK set.
type Verifier struct {
	cfg    VerifierConfig
	parser *jwt.Parser
	group  singleflight.Group

	static   map[string]*rsa.PublicKey
	verified *verifiedCache // nil when off

	mu        sync.RWMutex
	keys      map[string]*rsa.PublicKey // fetched and static
	lastFetch time.Time
}

// NewVerifier returns a verifier; keys are fetched on first use.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.Leeway <= 0 || cfg.Leeway > time.Minute {
		cfg.Leeway = time.Minute
	}
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	static := map[string]*rsa.PublicKey{}
	for _, k := range cfg.StaticKeys {
		static[PublicJWK(k).Kid] = k
	}
	var verified *verifiedCache
	switch {
	case cfg.CacheSize == 0:
		verified = newVerifiedCache(10_000)
	case cfg.CacheSize > 0:
		verified = newVerifiedCache(cfg.CacheSize)
	}
	return &Verifier{
		static:   static,
		verified: verified,
		cfg:      cfg,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"RS256"}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(cfg.Now),
		),
		keys: maps.Clone(static),
	}
}

var errBadToken = apperr.New(apperr.Unauthenticated, "invalid_token", "the access token is invalid or expired")

// Verify checks signature, algorithm, typ, iss, aud, exp and nbf. Every failure
// is an Unauthenticated error with the same client message; the cause says why.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	if len(token) > MaxTokenBytes {
		return Principal{}, fail(errors.New("token too large"))
	}
	if v.verified != nil {
		if p, ok := v.verified.get(token, v.cfg.Now()); ok {
			return p, nil
		}
	}
	var claims accessClaims
	t, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != TokenType && typ != "application/"+TokenType {
			return nil, fmt.Errorf("typ %q is not %s", typ, TokenType)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		return v.key(ctx, kid)
	})
	if err != nil || !t.Valid {
		return Principal{}, fail(err)
	}
	if claims.Subject == "" {
		return Principal{}, fail(errors.New("no sub"))
	}
	p := Principal{
		UserID:        claims.Subject,
		Email:         claims.Email,
		EmailVerified: claims.EmailVerified,
		Roles:         claims.Roles,
		ExpiresAt:     claims.ExpiresAt.Time,
	}
	if v.verified != nil {
		v.verified.put(token, p, v.cfg.Now())
	}
	return p, nil
}

func fail(cause error) error {
	e := *errBadToken
	e.Cause = cause
	return &e
}

// key returns the public key for kid, fetching the JWK set when kid is
// unknown — at most once per MinRefetch, and once for all concurrent callers.
func (v *Verifier) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	v.mu.RLock()
	k, ok := v.keys[kid]
	last := v.lastFetch
	v.mu.RUnlock()
	if ok {
		return k, nil
	}
	if v.cfg.JWKSURL == "" {
		return nil, fmt.Errorf("unknown kid %q (static keys only)", kid)
	}
	if !last.IsZero() && v.cfg.Now().Sub(last) < v.cfg.MinRefetch {
		return nil, fmt.Errorf("unknown kid %q (JWK set fetched %s ago)", kid, v.cfg.Now().Sub(last).Round(time.Millisecond))
	}
	_, err, _ := v.group.Do("fetch", func() (any, error) {
		// Look again inside the flight: a caller that read lastFetch just
		// before another caller's fetch finished would otherwise fetch again.
		v.mu.RLock()
		last := v.lastFetch
		v.mu.RUnlock()
		if !last.IsZero() && v.cfg.Now().Sub(last) < v.cfg.MinRefetch {
			return nil, nil
		}
		return nil, v.Refresh(ctx)
	})
	if err != nil {
		return nil, err
	}
	v.mu.RLock()
	k, ok = v.keys[kid]
	v.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	return k, nil
}

// Refresh fetches the JWK set now. On failure the cached keys stay in use.
func (v *Verifier) Refresh(ctx context.Context) error {
	v.mu.Lock()
	v.lastFetch = v.cfg.Now()
	v.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return err
	}
	resp, err := v.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch JWK set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch JWK set: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("fetch JWK set: %w", err)
	}
	set, err := ParseJWKSet(body)
	if err != nil {
		return err
	}
	keys := maps.Clone(v.static)
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if pub, err := k.PublicKey(); err == nil {
			keys[k.Kid] = pub
		}
	}
	if len(keys) == len(v.static) {
		return errors.New("fetch JWK set: no usable RSA keys")
	}
	v.mu.Lock()
	v.keys = keys
	v.mu.Unlock()
	return nil
}
