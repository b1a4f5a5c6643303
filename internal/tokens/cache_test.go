package tokens

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"kinoteka/internal/apperr"
)

// A verified token is answered from the cache until its exp, even after its
// key left the JWK set; without the cache the same token is refused at once.
func TestVerifiedTokenCache(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cacheSize   int
		wantAfterRM bool // still accepted once the key is withdrawn
	}{{"cache on", 0, true}, {"cache off", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			other := NewSigner(attackerKey(), testIssuer, testAudience, testTTL, f.clock.Now)
			rotated := newJWKSServer(t, other.JWKSet())
			v := NewVerifier(VerifierConfig{JWKSURL: f.jwks.URL, Issuer: testIssuer, Audience: testAudience, Now: f.clock.Now, CacheSize: tc.cacheSize})
			tok := f.issue(t)
			ctx := context.Background()
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
			v.cfg.JWKSURL = rotated.URL // auth withdrew the key
			if err := v.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			_, err := v.Verify(ctx, tok)
			if got := err == nil; got != tc.wantAfterRM {
				t.Fatalf("after the key was withdrawn: accepted=%v, want %v (err %v)", got, tc.wantAfterRM, err)
			}
			f.clock.Advance(testTTL)
			if _, err := v.Verify(ctx, tok); !apperr.Is(err, apperr.Unauthenticated) {
				t.Fatalf("at exp: want Unauthenticated, got %v", err)
			}
		})
	}
}

func TestVerifiedTokenCacheIsBounded(t *testing.T) {
	f := newFixture(t)
	v := NewVerifier(VerifierConfig{JWKSURL: f.jwks.URL, Issuer: testIssuer, Audience: testAudience, Now: f.clock.Now, CacheSize: 10})
	for i := range 50 {
		tok, err := f.signer.Issue(Claims{Subject: fmt.Sprintf("user-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Verify(context.Background(), tok)
		if err != nil || p.UserID != fmt.Sprintf("user-%d", i) {
			t.Fatalf("token %d: %+v %v", i, p, err)
		}
		if n := len(v.verified.entries); n > 10 {
			t.Fatalf("cache holds %d entries, bound is 10", n)
		}
	}
}

// With a configured public key and no JWK set URL, films verifies without
// ever reaching auth.
func TestVerifyWithStaticKeyOnly(t *testing.T) {
	f := newFixture(t)
	der, err := x509.MarshalPKIXPublicKey(&authKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParsePublicKeysPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(VerifierConfig{StaticKeys: keys, Issuer: testIssuer, Audience: testAudience, Now: f.clock.Now})
	if p, err := v.Verify(context.Background(), f.issue(t)); err != nil || p.UserID != "user-1" {
		t.Fatalf("genuine token: %+v %v", p, err)
	}
	foreign := NewSigner(attackerKey(), testIssuer, testAudience, testTTL, f.clock.Now)
	tok, err := foreign.Issue(Claims{Subject: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); !apperr.Is(err, apperr.Unauthenticated) {
		t.Fatalf("token of an unknown key: %v", err)
	}
	if hits := f.jwks.hits.Load(); hits != 0 {
		t.Fatalf("the JWK set was fetched %d times", hits)
	}
}

func TestParsePublicKeysPEMRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "",
		"not PEM":     "hello",
		"garbage DER": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
	} {
		if _, err := ParsePublicKeysPEM([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Requests that arrive while the first JWK set fetch is under way wait for
// it rather than being refused as "unknown kid, fetched 0 s ago".
func TestConcurrentFirstRequestsWaitForTheFetch(t *testing.T) {
	f := newFixture(t)
	body := mustJSON(t, f.signer.JWKSet())
	release := make(chan struct{})
	var hits atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		_, _ = io.WriteString(w, body)
	}))
	defer slow.Close()
	v := NewVerifier(VerifierConfig{JWKSURL: slow.URL, Issuer: testIssuer, Audience: testAudience, Now: f.clock.Now})
	tok := f.issue(t)
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		}()
	}
	for hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the other callers pile up behind the fetch
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("a request during the first fetch: %v", err)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("JWK set fetched %d times, want 1", got)
	}
}

// A request that arrives while a background Refresh is fetching waits for it
// too (films refreshes on start and on a timer).
func TestRequestDuringBackgroundRefreshWaits(t *testing.T) {
	f := newFixture(t)
	body := mustJSON(t, f.signer.JWKSet())
	release := make(chan struct{})
	var hits atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		_, _ = io.WriteString(w, body)
	}))
	defer slow.Close()
	v := NewVerifier(VerifierConfig{JWKSURL: slow.URL, Issuer: testIssuer, Audience: testAudience, Now: f.clock.Now})
	refreshed := make(chan error, 1)
	go func() { refreshed <- v.Refresh(context.Background()) }()
	for hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	verified := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), f.issue(t))
		verified <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the request reach the key lookup
	close(release)
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if err := <-verified; err != nil {
		t.Fatalf("a request during the background refresh: %v", err)
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("JWK set fetched %d times, want 1", got)
	}
}
