package tokens

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"kinoteka/internal/apperr"
	"kinoteka/internal/testkit"
)

const (
	testIssuer   = "http://auth.test"
	testAudience = "kinoteka"
	testTTL      = 15 * time.Minute
	minRefetch   = 30 * time.Second
)

// RSA keys are slow to generate; every test shares these two.
var (
	authKey     = sync.OnceValue(func() *rsa.PrivateKey { return mustKey(2048) })
	attackerKey = sync.OnceValue(func() *rsa.PrivateKey { return mustKey(2048) })
)

func mustKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// jwksServer serves a JWK set, counts its hits and can play dead.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64
	down atomic.Bool
}

func newJWKSServer(t testing.TB, set JWKSet) *jwksServer {
	s := &jwksServer{}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "auth is down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

type fixture struct {
	clock    *testkit.Clock
	signer   *Signer
	jwks     *jwksServer
	verifier *Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	c := testkit.NewClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	signer := NewSigner(authKey(), testIssuer, testAudience, testTTL, c.Now)
	jwks := newJWKSServer(t, signer.JWKSet())
	v := NewVerifier(VerifierConfig{
		JWKSURL: jwks.URL, Issuer: testIssuer, Audience: testAudience,
		Leeway: time.Minute, MinRefetch: minRefetch, Now: c.Now,
	})
	return &fixture{clock: c, signer: signer, jwks: jwks, verifier: v}
}

// issue returns a genuine token from auth's signer.
func (f *fixture) issue(t testing.TB) string {
	t.Helper()
	tok, err := f.signer.Issue(Claims{Subject: "user-1", Email: "a@example.com", EmailVerified: true, Roles: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claims are a genuine token's claims at the fixture's time.
func (f *fixture) claims() jwt.MapClaims {
	now := f.clock.Now().Unix()
	return jwt.MapClaims{
		"iss": testIssuer, "sub": "user-1", "aud": []string{testAudience},
		"exp": now + int64(testTTL/time.Second), "nbf": now, "iat": now, "jti": "0123456789abcdef",
		"email": "a@example.com", "email_verified": true, "roles": []string{"user"},
	}
}

// header is a genuine token's header (alg is added by the signing method).
func (f *fixture) header() map[string]any {
	return map[string]any{"kid": f.signer.KeyID(), "typ": TokenType}
}

// forge signs claims with method and key under header; a nil header value
// removes that member.
func forge(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawToken assembles header.payload.signature by hand, for shapes no JWT
// library would produce.
func rawToken(t testing.TB, header map[string]any, claims jwt.MapClaims, sig string) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(h) + "." + b64.EncodeToString(c) + "." + sig
}

// with returns a copy of m with the given members set (nil deletes).
func with[M ~map[string]any](m M, kv ...any) M {
	out := M{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestVerifyAcceptsGenuineToken(t *testing.T) {
	f := newFixture(t)
	p, err := f.verifier.Verify(context.Background(), f.issue(t))
	if err != nil {
		t.Fatalf("Verify(genuine token) = %v", err)
	}
	want := Principal{
		UserID: "user-1", Email: "a@example.com", EmailVerified: true, Roles: []string{"user"},
		ExpiresAt: f.clock.Now().Add(testTTL),
	}
	if p.UserID != want.UserID || p.Email != want.Email || p.EmailVerified != want.EmailVerified ||
		strings.Join(p.Roles, ",") != strings.Join(want.Roles, ",") || !p.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("principal = %+v, want %+v", p, want)
	}
	if !p.HasRole("user") || p.HasRole("admin") {
		t.Errorf("HasRole: user=%v admin=%v, want true false", p.HasRole("user"), p.HasRole("admin"))
	}
	// The forging helpers must make a token the verifier accepts when nothing
	// is forged, or the rejections below would prove nothing.
	if _, err := f.verifier.Verify(context.Background(), forge(t, jwt.SigningMethodRS256, authKey(), f.header(), f.claims())); err != nil {
		t.Fatalf("Verify(hand-made genuine token) = %v", err)
	}
}

func TestVerifyLeeway(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now().Unix()
	for _, tc := range []struct {
		name   string
		claims jwt.MapClaims
	}{
		{"expired 59 s ago", with(f.claims(), "iat", now-960, "nbf", now-960, "exp", now-59)},
		{"not before 59 s from now", with(f.claims(), "nbf", now+59)},
		{"issued 59 s in the future", with(f.claims(), "iat", now+59, "nbf", now+59)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.verifier.Verify(context.Background(), forge(t, jwt.SigningMethodRS256, authKey(), f.header(), tc.claims)); err != nil {
				t.Errorf("Verify = %v, want accepted within the 60 s leeway", err)
			}
		})
	}
}

func TestVerifyRejectsForgedTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.clock.Now().Unix()
	genuine := f.issue(t)
	if _, err := f.verifier.Verify(ctx, genuine); err != nil { // warms the key cache
		t.Fatal(err)
	}

	pub := &authKey().PublicKey
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(pub)
	pemPKIX := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pemPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})

	attackerJWK := PublicJWK(&attackerKey().PublicKey)
	// A server an attacker controls: the verifier must never call it.
	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		_ = json.NewEncoder(w).Encode(JWKSet{Keys: []JWK{attackerJWK}})
	}))
	defer attacker.Close()

	parts := strings.Split(genuine, ".")
	tamperedClaims := with(f.claims(), "sub", "admin-user", "roles", []string{"admin"})
	tamperedPayload, _ := json.Marshal(tamperedClaims)
	bigToken, err := f.signer.Issue(Claims{Subject: "user-1", Email: strings.Repeat("a", MaxTokenBytes) + "@example.com"})
	if err != nil {
		t.Fatal(err)
	}

	hs := jwt.SigningMethodHS256
	rs := jwt.SigningMethodRS256
	tests := []struct {
		name  string
		token string
	}{
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.header(), f.claims())},
		{"alg none, genuine signature kept", rawToken(t, with(f.header(), "alg", "none"), f.claims(), parts[2])},
		{"alg NONE", rawToken(t, with(f.header(), "alg", "NONE"), f.claims(), "")},
		{"alg missing", rawToken(t, f.header(), f.claims(), parts[2])},
		{"HS256 keyed with the public key as PKIX PEM", forge(t, hs, pemPKIX, f.header(), f.claims())},
		{"HS256 keyed with the public key as PKCS#1 PEM", forge(t, hs, pemPKCS1, f.header(), f.claims())},
		{"HS256 keyed with the public key as PKIX DER", forge(t, hs, pkix, f.header(), f.claims())},
		{"HS256 keyed with the public key as PKCS#1 DER", forge(t, hs, pkcs1, f.header(), f.claims())},
		{"HS256 keyed with the JWK modulus", forge(t, hs, []byte(PublicJWK(pub).N), f.header(), f.claims())},
		{"RS512 with auth's own key (not allowed)", forge(t, jwt.SigningMethodRS512, authKey(), f.header(), f.claims())},
		{"PS256 with auth's own key (not allowed)", forge(t, jwt.SigningMethodPS256, authKey(), f.header(), f.claims())},
		{"foreign RSA key, auth's kid", forge(t, rs, attackerKey(), f.header(), f.claims())},
		{"jwk header with the attacker's key and kid", forge(t, rs, attackerKey(), with(f.header(), "kid", attackerJWK.Kid, "jwk", attackerJWK), f.claims())},
		{"jwk header with the attacker's key, auth's kid", forge(t, rs, attackerKey(), with(f.header(), "jwk", attackerJWK), f.claims())},
		{"jku to the attacker's JWK set", forge(t, rs, attackerKey(), with(f.header(), "kid", attackerJWK.Kid, "jku", attacker.URL), f.claims())},
		{"jku to the attacker's JWK set, auth's kid", forge(t, rs, attackerKey(), with(f.header(), "jku", attacker.URL), f.claims())},
		{"x5u to the attacker", forge(t, rs, attackerKey(), with(f.header(), "kid", attackerJWK.Kid, "x5u", attacker.URL+"/cert.pem"), f.claims())},
		{"payload tampered, genuine signature", parts[0] + "." + b64.EncodeToString(tamperedPayload) + "." + parts[2]},
		{"expired 61 s ago", forge(t, rs, authKey(), f.header(), with(f.claims(), "iat", now-961, "nbf", now-961, "exp", now-61))},
		{"no exp", forge(t, rs, authKey(), f.header(), with(f.claims(), "exp", nil))},
		{"not before 61 s from now", forge(t, rs, authKey(), f.header(), with(f.claims(), "nbf", now+61))},
		{"issued 61 s in the future", forge(t, rs, authKey(), f.header(), with(f.claims(), "iat", now+61, "nbf", now))},
		{"wrong iss", forge(t, rs, authKey(), f.header(), with(f.claims(), "iss", "http://evil.test"))},
		{"no iss", forge(t, rs, authKey(), f.header(), with(f.claims(), "iss", nil))},
		{"wrong aud", forge(t, rs, authKey(), f.header(), with(f.claims(), "aud", []string{"another-service"}))},
		{"no aud", forge(t, rs, authKey(), f.header(), with(f.claims(), "aud", nil))},
		{"no sub", forge(t, rs, authKey(), f.header(), with(f.claims(), "sub", nil))},
		{"unknown critical header (RFC 7515 §4.1.11)", forge(t, rs, authKey(), with(f.header(), "crit", []string{"exp-ext"}, "exp-ext", true), f.claims())},
		{"empty crit header", forge(t, rs, authKey(), with(f.header(), "crit", []string{}), f.claims())},
		{"exp as a string (RFC 7519: NumericDate is a number)", forge(t, rs, authKey(), f.header(), with(f.claims(), "exp", strconv.FormatInt(now+600, 10)))},
		{"nbf as a string", forge(t, rs, authKey(), f.header(), with(f.claims(), "nbf", strconv.FormatInt(now, 10)))},
		{"iat as a string", forge(t, rs, authKey(), f.header(), with(f.claims(), "iat", strconv.FormatInt(now, 10)))},
		{"typ JWT", forge(t, rs, authKey(), with(f.header(), "typ", "JWT"), f.claims())},
		{"typ missing", forge(t, rs, authKey(), with(f.header(), "typ", nil), f.claims())},
		{"typ not a string", forge(t, rs, authKey(), with(f.header(), "typ", 1), f.claims())},
		{"kid missing", forge(t, rs, authKey(), with(f.header(), "kid", nil), f.claims())},
		{"truncated signature", genuine[:len(genuine)-10]},
		{"signature removed", parts[0] + "." + parts[1] + "."},
		{"two segments", parts[0] + "." + parts[1]},
		{"four segments", genuine + "." + parts[2]},
		{"oversized (> 8 KiB, genuinely signed)", bigToken},
		{"empty", ""},
		{"garbage", "not a token at all"},
		{"dots only", ".."},
		{"base64 garbage", "eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"},
		{"bearer prefix left in", "Bearer " + genuine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.verifier.Verify(ctx, tc.token)
			if err == nil {
				t.Fatalf("Verify accepted a forged token: principal %+v", p)
			}
			if !apperr.Is(err, apperr.Unauthenticated) {
				t.Errorf("Verify = %v (kind %v), want an Unauthenticated error", err, apperr.KindOf(err))
			}
			if p.UserID != "" {
				t.Errorf("rejected token still yields principal %+v", p)
			}
		})
	}
	if len(bigToken) <= MaxTokenBytes {
		t.Errorf("the oversized token is only %d bytes", len(bigToken))
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the verifier called the attacker's server %d times; jku/x5u must be ignored", n)
	}
	// Only the warm-up fetched: unknown kids within MinRefetch of it must not.
	if n := f.jwks.hits.Load(); n != 1 {
		t.Errorf("JWKS server hit %d times, want 1", n)
	}
	if _, err := f.verifier.Verify(ctx, genuine); err != nil {
		t.Errorf("the genuine token no longer verifies after the attack: %v", err)
	}
}

// An unknown kid makes the verifier fetch the JWK set again, but at most once
// per MinRefetch, so forged kids cannot turn films into a weapon against auth.
func TestVerifyUnknownKidRefetchIsRateLimited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	attackerKid := PublicJWK(&attackerKey().PublicKey).Kid
	unknown := func() string {
		return forge(t, jwt.SigningMethodRS256, attackerKey(), with(f.header(), "kid", attackerKid), f.claims())
	}
	mustReject := func() {
		t.Helper()
		if _, err := f.verifier.Verify(ctx, unknown()); !apperr.Is(err, apperr.Unauthenticated) {
			t.Fatalf("Verify(unknown kid) = %v, want Unauthenticated", err)
		}
	}
	wantHits := func(want int64) {
		t.Helper()
		if n := f.jwks.hits.Load(); n != want {
			t.Fatalf("JWKS server hit %d times, want %d", n, want)
		}
	}

	// First use: the cache is empty, so even an unknown kid fetches once.
	mustReject()
	wantHits(1)
	for range 20 {
		mustReject()
	}
	wantHits(1)

	f.clock.Advance(minRefetch - time.Second)
	mustReject()
	wantHits(1)

	f.clock.Advance(2 * time.Second) // past MinRefetch: one more fetch, then quiet again
	mustReject()
	wantHits(2)
	mustReject()
	wantHits(2)

	// Floods of concurrent forged kids, each after the window reopens: one
	// fetch per flood, however the goroutines interleave.
	tok := unknown()
	const floods = 20
	for i := range int64(floods) {
		f.clock.Advance(minRefetch + time.Second)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := f.verifier.Verify(ctx, tok); err == nil {
					t.Error("unknown kid accepted")
				}
			})
		}
		wg.Wait()
		wantHits(3 + i)
	}

	// Genuine tokens never needed a fetch of their own.
	if _, err := f.verifier.Verify(ctx, f.issue(t)); err != nil {
		t.Fatal(err)
	}
	wantHits(2 + floods)
}

// The rate limit must hold for a caller that read the time of the last fetch
// just before another caller's fetch: staged deterministically by holding the
// first caller inside the clock, which the verifier reads exactly between
// looking at its last fetch and starting one.
func TestVerifyRefetchRateLimitHoldsUnderRace(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.verifier.Verify(ctx, f.issue(t)); err != nil {
		t.Fatal(err)
	}
	attackerKid := PublicJWK(&attackerKey().PublicKey).Kid
	forged := forge(t, jwt.SigningMethodRS256, attackerKey(), with(f.header(), "kid", attackerKid), f.claims())
	f.clock.Advance(minRefetch + time.Second)

	paused, release := f.clock.HoldNextNow()
	done := make(chan error, 1)
	go func() { // B: sees the old fetch time, then is held
		_, err := f.verifier.Verify(ctx, forged)
		done <- err
	}()
	<-paused
	if _, err := f.verifier.Verify(ctx, forged); err == nil { // A: fetches
		t.Fatal("unknown kid accepted")
	}
	release()
	if err := <-done; err == nil {
		t.Fatal("unknown kid accepted")
	}
	if n := f.jwks.hits.Load(); n != 2 {
		t.Errorf("JWKS server hit %d times, want 2: the warm-up and one refetch for both callers", n)
	}
}

// A new signing key (rotation) is picked up by the refetch on its unknown kid.
func TestVerifyPicksUpRotatedKey(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	oldSigner := NewSigner(authKey(), testIssuer, testAudience, testTTL, c.Now)
	newSigner := NewSigner(attackerKey(), testIssuer, testAudience, testTTL, c.Now)
	var (
		mu  sync.Mutex
		set = oldSigner.JWKSet()
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()
	v := NewVerifier(VerifierConfig{JWKSURL: srv.URL, Issuer: testIssuer, Audience: testAudience, MinRefetch: minRefetch, Now: c.Now})
	ctx := context.Background()
	oldTok, _ := oldSigner.Issue(Claims{Subject: "u"})
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	set = JWKSet{Keys: append(newSigner.JWKSet().Keys, oldSigner.JWKSet().Keys...)}
	mu.Unlock()
	c.Advance(minRefetch + time.Second)
	newTok, _ := newSigner.Issue(Claims{Subject: "u"})
	for _, tok := range []string{newTok, oldTok} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("Verify after rotation = %v", err)
		}
	}
}

// With auth down, films keeps verifying tokens signed by keys it has seen.
func TestVerifyKeepsCachedKeysWhileAuthIsDown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.verifier.Verify(ctx, f.issue(t)); err != nil {
		t.Fatal(err)
	}
	f.jwks.down.Store(true)
	f.clock.Advance(time.Hour)
	if _, err := f.verifier.Verify(ctx, f.issue(t)); err != nil {
		t.Fatalf("Verify with auth down = %v, want the cached key to serve", err)
	}
	// An unknown kid makes it try auth, which fails; the cache must survive.
	attackerKid := PublicJWK(&attackerKey().PublicKey).Kid
	forged := forge(t, jwt.SigningMethodRS256, attackerKey(), with(f.header(), "kid", attackerKid), f.claims())
	if _, err := f.verifier.Verify(ctx, forged); !apperr.Is(err, apperr.Unauthenticated) {
		t.Fatalf("Verify(unknown kid, auth down) = %v, want Unauthenticated", err)
	}
	if n := f.jwks.hits.Load(); n != 2 {
		t.Errorf("JWKS server hit %d times, want 2 (warm-up, one failed refetch)", n)
	}
	f.jwks.Close() // now not even listening
	f.clock.Advance(time.Hour)
	if _, err := f.verifier.Verify(ctx, f.issue(t)); err != nil {
		t.Fatalf("Verify with auth gone = %v, want the cached key to serve", err)
	}
}

// films may start before auth: the first tokens fail, and once auth answers
// (and MinRefetch has passed) they verify.
func TestVerifyRecoversWhenAuthComesUp(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.jwks.down.Store(true)
	if _, err := f.verifier.Verify(ctx, f.issue(t)); !apperr.Is(err, apperr.Unauthenticated) {
		t.Fatalf("Verify with auth down and no cache = %v, want Unauthenticated", err)
	}
	f.jwks.down.Store(false)
	f.clock.Advance(minRefetch + time.Second)
	if _, err := f.verifier.Verify(ctx, f.issue(t)); err != nil {
		t.Fatalf("Verify once auth is up = %v", err)
	}
}

func TestRefreshRejectsUnusableJWKSets(t *testing.T) {
	small := PublicJWK(&mustKey(1024).PublicKey)
	enc := PublicJWK(&authKey().PublicKey)
	enc.Use = "enc"
	for _, tc := range []struct {
		name string
		body string
	}{
		{"not JSON", "<html>"},
		{"no keys", `{"keys":[]}`},
		{"1024-bit key", mustJSON(t, JWKSet{Keys: []JWK{small}})},
		{"encryption key", mustJSON(t, JWKSet{Keys: []JWK{enc}})},
		{"EC key", `{"keys":[{"kty":"EC","kid":"x","crv":"P-256","x":"AA","y":"AA"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			v := NewVerifier(VerifierConfig{JWKSURL: srv.URL, Issuer: testIssuer, Audience: testAudience})
			if err := v.Refresh(context.Background()); err == nil {
				t.Error("Refresh accepted an unusable JWK set")
			}
		})
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkVerify measures a full verification (parse, RS256 signature,
// claims) with the key already cached, and the same token answered from the
// cache of verified tokens.
func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{{"full", -1}, {"cached", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b)
			v := NewVerifier(VerifierConfig{JWKSURL: f.jwks.URL, Issuer: testIssuer, Audience: testAudience, Now: f.clock.Now, CacheSize: bc.cacheSize})
			tok := f.issue(b)
			ctx := context.Background()
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
