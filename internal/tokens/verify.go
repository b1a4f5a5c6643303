package tokens

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
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
	SessionID     string // the sid claim: the login the token belongs to; "" on older tokens
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
	// Algorithms is the allow-list of signature algorithms (RS256, ES256,
	// EdDSA); empty means RS256 only. A token whose alg is not listed is
	// refused before any key is looked at, and a key verifies only tokens
	// of its own algorithm.
	Algorithms []string
	// StaticKeys are trusted beside (or, with no JWKSURL, instead of) the
	// fetched JWK set — the original design's configured public key. Each
	// must be of a type AlgOf accepts; others are ignored.
	StaticKeys []crypto.PublicKey
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

	static   map[string]verifyKey
	verified *verifiedCache // nil when off

	mu        sync.RWMutex
	keys      map[string]verifyKey // fetched and static
	lastFetch time.Time
}

// verifyKey is a public key and the one algorithm it verifies.
type verifyKey struct {
	pub crypto.PublicKey
	alg string
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
	// Only the supported algorithms can be allowed: anything else in the
	// list (HS256, none) is dropped, never trusted.
	cfg.Algorithms = slices.DeleteFunc(slices.Clone(cfg.Algorithms), func(a string) bool { return !slices.Contains(Algorithms, a) })
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{RS256}
	}
	static := map[string]verifyKey{}
	for _, k := range cfg.StaticKeys {
		if jwk, err := NewJWK(k); err == nil {
			static[jwk.Kid] = verifyKey{k, jwk.Alg}
		}
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
			jwt.WithValidMethods(cfg.Algorithms),
			// Canonical base64 only: otherwise the spare bits of the last
			// character make many spellings of one signature.
			jwt.WithStrictDecoding(),
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

// ParseAlgorithms reads a comma-separated allow-list such as "RS256,ES256"
// (for a verifier's configuration); an empty string is RS256 alone.
func ParseAlgorithms(s string) ([]string, error) {
	var algs []string
	for a := range strings.SplitSeq(s, ",") {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
		case !slices.Contains(Algorithms, a):
			return nil, fmt.Errorf("tokens: algorithm %q is not one of %s", a, strings.Join(Algorithms, ", "))
		case !slices.Contains(algs, a):
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{RS256}
	}
	return algs, nil
}

var errBadToken = apperr.New(apperr.Unauthenticated, "invalid_token", "the access token is invalid or expired")

// Verify checks signature, algorithm, typ, iss, aud, exp and nbf. Every failure
// is an Unauthenticated error with the same client message; the cause says why.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	if len(token) > MaxTokenBytes {
		return Principal{}, fail(errTooLarge)
	}
	if v.verified != nil {
		if p, ok := v.verified.get(token, v.cfg.Now()); ok {
			return p, nil
		}
	}
	var claims accessClaims
	t, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// RFC 7515 §4.1.11: a recipient must refuse a critical extension it
		// does not understand, and this verifier understands none.
		if _, ok := t.Header["crit"]; ok {
			return nil, fmt.Errorf("%w: crit header %v", errCritical, t.Header["crit"])
		}
		if err := numericDates(t.Raw); err != nil {
			return nil, err
		}
		if typ, _ := t.Header["typ"].(string); typ != TokenType && typ != "application/"+TokenType {
			return nil, fmt.Errorf("%w: %q is not %s", errWrongType, typ, TokenType)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKid
		}
		k, err := v.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		// The parser has already checked alg against the allow-list; the
		// key must also be one made for that algorithm.
		if alg := t.Method.Alg(); alg != k.alg {
			return nil, fmt.Errorf("%w: kid %q is an %s key, the token says %s", errKeyAlg, kid, k.alg, alg)
		}
		return k.pub, nil
	})
	if err != nil || !t.Valid {
		return Principal{}, fail(err)
	}
	if claims.Subject == "" {
		return Principal{}, fail(errNoSubject)
	}
	p := Principal{
		UserID:        claims.Subject,
		Email:         claims.Email,
		EmailVerified: claims.EmailVerified,
		Roles:         claims.Roles,
		SessionID:     claims.SessionID,
		ExpiresAt:     claims.ExpiresAt.Time,
	}
	if v.verified != nil {
		v.verified.put(token, p, v.cfg.Now())
	}
	return p, nil
}

// numericDates refuses exp, nbf and iat that are not JSON numbers: RFC 7519
// §2 defines NumericDate as a number, and the JWT library would also take a
// string of digits.
func numericDates(raw string) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return jwt.ErrTokenMalformed
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("%w: %w", jwt.ErrTokenMalformed, err)
	}
	var dates struct{ Exp, Nbf, Iat json.RawMessage }
	if err := json.Unmarshal(payload, &dates); err != nil {
		return fmt.Errorf("%w: %w", jwt.ErrTokenMalformed, err)
	}
	for name, v := range map[string]json.RawMessage{"exp": dates.Exp, "nbf": dates.Nbf, "iat": dates.Iat} {
		if len(v) > 0 && (v[0] == '"' || v[0] == '{' || v[0] == '[' || v[0] == 't' || v[0] == 'f') {
			return fmt.Errorf("%w: %s is %s, not a NumericDate", errNotNumericDate, name, v)
		}
	}
	return nil
}

func fail(cause error) error {
	e := *errBadToken
	e.Cause = cause
	return &e
}

// key returns the public key for kid, fetching the JWK set when kid is
// unknown — at most once per MinRefetch, and once for all concurrent callers.
func (v *Verifier) key(ctx context.Context, kid string) (verifyKey, error) {
	v.mu.RLock()
	k, ok := v.keys[kid]
	v.mu.RUnlock()
	if ok {
		return k, nil
	}
	if v.cfg.JWKSURL == "" {
		return verifyKey{}, fmt.Errorf("%w %q (static keys only)", errUnknownKid, kid)
	}
	// Every caller goes through the flight, so one that arrives while a fetch
	// is under way waits for its result instead of being refused; the rate
	// limit is checked inside, where only one caller at a time can see it.
	_, err, _ := v.group.Do("fetch", func() (any, error) {
		v.mu.RLock()
		last := v.lastFetch
		v.mu.RUnlock()
		if !last.IsZero() && v.cfg.Now().Sub(last) < v.cfg.MinRefetch {
			return nil, nil
		}
		// The fetch serves every waiting caller: the first one's cancellation
		// must not fail it for the rest (the HTTP client has its own timeout).
		return nil, v.fetch(context.WithoutCancel(ctx))
	})
	if err != nil {
		return verifyKey{}, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	v.mu.RLock()
	k, ok = v.keys[kid]
	v.mu.RUnlock()
	if !ok {
		return verifyKey{}, fmt.Errorf("%w %q", errUnknownKid, kid)
	}
	return k, nil
}

// Refresh fetches the JWK set now. On failure the cached keys stay in use.
// It shares its flight with the fetches an unknown kid starts, so a request
// that arrives during a refresh waits for its keys.
func (v *Verifier) Refresh(ctx context.Context) error {
	_, err, _ := v.group.Do("fetch", func() (any, error) { return nil, v.fetch(ctx) })
	return err
}

func (v *Verifier) fetch(ctx context.Context) error {
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
		if pub, alg, err := k.Key(); err == nil && k.Kid != "" {
			keys[k.Kid] = verifyKey{pub, alg}
		}
	}
	if len(keys) == len(v.static) {
		return errors.New("fetch JWK set: no usable keys")
	}
	v.mu.Lock()
	v.keys = keys
	v.mu.Unlock()
	return nil
}
