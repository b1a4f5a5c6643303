package tokens

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"kinoteka/internal/apperr"
	"kinoteka/internal/testkit"
)

// One key per algorithm for auth and one for the attacker, shared by tests.
var (
	authKeys = sync.OnceValue(func() map[string]crypto.Signer {
		return map[string]crypto.Signer{RS256: authKey(), ES256: mustGenerate(ES256), EdDSA: mustGenerate(EdDSA)}
	})
	attackerKeys = sync.OnceValue(func() map[string]crypto.Signer {
		return map[string]crypto.Signer{RS256: attackerKey(), ES256: mustGenerate(ES256), EdDSA: mustGenerate(EdDSA)}
	})
)

func mustGenerate(alg string) crypto.Signer {
	k, err := GenerateKey(alg)
	if err != nil {
		panic(err)
	}
	return k
}

func mustJWK(t testing.TB, pub crypto.PublicKey) JWK {
	t.Helper()
	j, err := NewJWK(pub)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// RFC 8037 Appendix A.2 and A.3: the Ed25519 example key and its thumbprint.
func TestNewJWKThumbprintMatchesRFC8037(t *testing.T) {
	x, err := b64.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	jwk := mustJWK(t, ed25519.PublicKey(x))
	if jwk.Kid != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" || jwk.Kty != "OKP" || jwk.Crv != "Ed25519" || jwk.Alg != EdDSA {
		t.Errorf("JWK = %+v, want RFC 8037's thumbprint, kty OKP, crv Ed25519, alg EdDSA", jwk)
	}
}

func TestJWKRoundTripsEveryKeyType(t *testing.T) {
	for alg, key := range authKeys() {
		t.Run(alg, func(t *testing.T) {
			jwk := mustJWK(t, key.Public())
			if jwk.Alg != alg || jwk.Use != "sig" {
				t.Errorf("JWK alg %s use %s, want %s sig", jwk.Alg, jwk.Use, alg)
			}
			pub, gotAlg, err := jwk.Key()
			if err != nil {
				t.Fatal(err)
			}
			if gotAlg != alg || !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
				t.Errorf("Key() = %v %s, want the original key for %s", pub, gotAlg, alg)
			}
			if again := mustJWK(t, pub); again.Kid != jwk.Kid {
				t.Errorf("kid changed across a round trip: %s then %s", jwk.Kid, again.Kid)
			}
		})
	}
}

func TestKeysOfUnsupportedShapesAreRefused(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec := mustJWK(t, authKeys()[ES256].Public())
	ed := mustJWK(t, authKeys()[EdDSA].Public())
	if _, err := NewJWK(&p384.PublicKey); err == nil {
		t.Error("NewJWK accepted a P-384 key (ES256 is P-256 only)")
	}
	if _, err := GenerateKey("HS256"); err == nil {
		t.Error("GenerateKey made a key for HS256")
	}
	for _, tc := range []struct {
		name string
		jwk  JWK
	}{
		{"EC on P-384", JWK{Kty: "EC", Crv: "P-384", X: ec.X, Y: ec.Y}},
		{"EC point not on the curve", JWK{Kty: "EC", Crv: "P-256", X: ec.X, Y: ec.X}},
		{"EC short coordinate", JWK{Kty: "EC", Crv: "P-256", X: ec.X[:10], Y: ec.Y}},
		{"EC key claiming RS256", JWK{Kty: "EC", Crv: "P-256", X: ec.X, Y: ec.Y, Alg: RS256}},
		{"OKP on X25519", JWK{Kty: "OKP", Crv: "X25519", X: ed.X}},
		{"OKP short key", JWK{Kty: "OKP", Crv: "Ed25519", X: ed.X[:20]}},
		{"OKP key claiming ES256", JWK{Kty: "OKP", Crv: "Ed25519", X: ed.X, Alg: ES256}},
		{"symmetric key", JWK{Kty: "oct", X: "c2VjcmV0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := tc.jwk.Key(); err == nil {
				t.Error("Key accepted it")
			}
		})
	}
}

// algFixture is auth signing with one algorithm's key and a verifier that
// fetches auth's JWK set.
type algFixture struct {
	clock  *testkit.Clock
	signer *Signer
	jwks   *jwksServer
}

func newAlgFixture(t testing.TB, alg string) *algFixture {
	c := testkit.NewClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	s := NewSigner(authKeys()[alg], testIssuer, testAudience, testTTL, c.Now)
	return &algFixture{clock: c, signer: s, jwks: newJWKSServer(t, s.JWKSet())}
}

func (f *algFixture) verifier(algs ...string) *Verifier {
	return NewVerifier(VerifierConfig{JWKSURL: f.jwks.URL, Issuer: testIssuer, Audience: testAudience, Algorithms: algs, Now: f.clock.Now, CacheSize: -1})
}

func TestVerifyAcceptsOnlyAllowedAlgorithms(t *testing.T) {
	ctx := context.Background()
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			f := newAlgFixture(t, alg)
			tok, err := f.signer.Issue(Claims{Subject: "user-1", Roles: []string{"user"}})
			if err != nil {
				t.Fatal(err)
			}
			var header struct{ Alg, Kid, Typ string }
			parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
			if err != nil {
				t.Fatal(err)
			}
			header.Alg, _ = parsed.Header["alg"].(string)
			header.Kid, _ = parsed.Header["kid"].(string)
			if header.Alg != alg || header.Kid != f.signer.KeyID() || f.signer.Algorithm() != alg {
				t.Errorf("header alg %s kid %s, want %s %s", header.Alg, header.Kid, alg, f.signer.KeyID())
			}
			if p, err := f.verifier(alg).Verify(ctx, tok); err != nil || p.UserID != "user-1" {
				t.Errorf("verifier allowing %s: %+v %v", alg, p, err)
			}
			if _, err := f.verifier(Algorithms...).Verify(ctx, tok); err != nil {
				t.Errorf("verifier allowing all: %v", err)
			}
			for _, other := range Algorithms {
				if other == alg {
					continue
				}
				if _, err := f.verifier(other).Verify(ctx, tok); !apperr.Is(err, apperr.Unauthenticated) {
					t.Errorf("verifier allowing only %s accepted a %s token: %v", other, alg, err)
				}
			}
			if alg != RS256 {
				if _, err := f.verifier().Verify(ctx, tok); err == nil {
					t.Errorf("the default verifier (RS256 only) accepted a %s token", alg)
				}
			}
		})
	}
}

// The forged-token suite for the elliptic algorithms, with a verifier that
// allows all three: what the allow-list lets through must still be signed by
// auth's key of that very algorithm.
func TestVerifyRejectsForgedEllipticTokens(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{ES256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			f := newAlgFixture(t, alg)
			// auth publishes an RSA key too, so that a token can name an
			// existing kid of another type.
			ring, err := NewRingSigner([]Key{
				{Private: authKeys()[alg], Public: authKeys()[alg].Public(), Name: "b"},
				{Private: authKey(), Public: authKey().Public(), Name: "a"},
			}, testIssuer, testAudience, testTTL, f.clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			f.jwks = newJWKSServer(t, ring.JWKSet())
			v := f.verifier(Algorithms...)
			now := f.clock.Now().Unix()
			claims := jwt.MapClaims{
				"iss": testIssuer, "sub": "user-1", "aud": []string{testAudience},
				"exp": now + 900, "nbf": now, "iat": now, "roles": []string{"admin"},
			}
			kid := ring.KeyID()
			rsaKid := PublicJWK(&authKey().PublicKey).Kid
			header := map[string]any{"kid": kid, "typ": TokenType}
			method := jwt.GetSigningMethod(alg)
			pubDER, err := x509.MarshalPKIXPublicKey(authKeys()[alg].Public())
			if err != nil {
				t.Fatal(err)
			}
			pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
			otherAlg := map[string]string{ES256: EdDSA, EdDSA: ES256}[alg]

			if _, err := v.Verify(ctx, forge(t, method, authKeys()[alg], header, claims)); err != nil {
				t.Fatalf("the hand-made genuine %s token is refused: %v", alg, err)
			}
			for _, tc := range []struct {
				name  string
				token string
			}{
				{"foreign key, auth's kid", forge(t, method, attackerKeys()[alg], header, claims)},
				{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, header, claims)},
				{"HS256 keyed with the public key PEM", forge(t, jwt.SigningMethodHS256, pubPEM, header, claims)},
				{"HS256 keyed with the public key DER", forge(t, jwt.SigningMethodHS256, pubDER, header, claims)},
				{"other curve algorithm, auth's kid", forge(t, jwt.GetSigningMethod(otherAlg), attackerKeys()[otherAlg], header, claims)},
				{"RS256 by the attacker, naming the " + alg + " kid", forge(t, jwt.SigningMethodRS256, attackerKey(), header, claims)},
				{alg + " by the attacker, naming the RSA kid", forge(t, method, attackerKeys()[alg], with(header, "kid", rsaKid), claims)},
				{"ES384 (not allowed)", forge(t, jwt.SigningMethodES384, mustP384(t), header, claims)},
				{"jwk header with the attacker's key", forge(t, method, attackerKeys()[alg], with(header, "jwk", mustJWK(t, attackerKeys()[alg].Public())), claims)},
				{"expired", forge(t, method, authKeys()[alg], header, with(claims, "exp", now-61, "iat", now-1000, "nbf", now-1000))},
				{"wrong aud", forge(t, method, authKeys()[alg], header, with(claims, "aud", "elsewhere"))},
				{"typ JWT", forge(t, method, authKeys()[alg], with(header, "typ", "JWT"), claims)},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if p, err := v.Verify(ctx, tc.token); !apperr.Is(err, apperr.Unauthenticated) {
						t.Errorf("Verify = %+v, %v; want Unauthenticated", p, err)
					}
				})
			}
		})
	}
}

func mustP384(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A rotation through the ring: the next key is published at once but signs
// only from its ActiveFrom; a retired key (public half only) stays published
// and its tokens keep verifying; the verifier never needs a restart.
func TestSignerRingRotation(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	old := authKey()
	next := authKeys()[ES256]
	retired := attackerKeys()[EdDSA]
	keys := []Key{
		{Private: next, Public: next.Public(), ActiveFrom: c.Now().Add(10 * time.Minute), Name: "20261127T101000Z-es256.pem"},
		{Private: old, Public: old.Public(), Name: "old.pem"},
		{Public: retired.Public(), Name: "retired.pem"},
	}
	s, err := NewRingSigner(keys, testIssuer, testAudience, testTTL, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	oldKid, nextKid := PublicJWK(&old.PublicKey).Kid, mustJWK(t, next.Public()).Kid
	if s.KeyID() != oldKid {
		t.Errorf("before the next key's time, %s signs; want the old key", s.KeyID())
	}
	if got := len(s.JWKSet().Keys); got != 3 {
		t.Errorf("%d keys published, want 3 (old, next, retired)", got)
	}
	if s.JWKSet().Keys[0].Kid != nextKid {
		t.Errorf("the newest key is not first in the JWK set")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.JWKSet())
	}))
	defer srv.Close()
	v := NewVerifier(VerifierConfig{JWKSURL: srv.URL, Issuer: testIssuer, Audience: testAudience, Algorithms: []string{RS256, ES256}, Now: c.Now})
	ctx := context.Background()
	before, err := s.Issue(Claims{Subject: "u"})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(10 * time.Minute)
	if s.KeyID() != nextKid || s.Algorithm() != ES256 {
		t.Errorf("at its time, the next key does not sign (kid %s alg %s)", s.KeyID(), s.Algorithm())
	}
	after, err := s.Issue(Claims{Subject: "u"})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"old key's token": before, "next key's token": after} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewRingSigner([]Key{{Public: retired.Public()}}, testIssuer, testAudience, testTTL, c.Now); err == nil {
		t.Error("a ring with no private key was accepted")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// FuzzVerify feeds the token parser arbitrary input: it must never panic and
// never accept anything but the genuine token it was seeded with.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	genuine := fx.issue(f)
	parts := []string{genuine, "", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", genuine + "x", genuine[:len(genuine)/2]}
	for _, s := range parts {
		f.Add(s)
	}
	v := NewVerifier(VerifierConfig{JWKSURL: fx.jwks.URL, Issuer: testIssuer, Audience: testAudience, Algorithms: Algorithms, Now: fx.clock.Now, CacheSize: -1})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(ctx, token)
		if err == nil && token != genuine {
			t.Fatalf("accepted %q as %+v", token, p)
		}
		if err != nil && !apperr.Is(err, apperr.Unauthenticated) {
			t.Fatalf("error of kind %v: %v", apperr.KindOf(err), err)
		}
	})
}

// FuzzJWKSet feeds the JWK set parser arbitrary documents: no panic, and a
// key it accepts is one of a supported type that round-trips.
func FuzzJWKSet(f *testing.F) {
	f.Add(mustJSON(f, JWKSet{Keys: []JWK{PublicJWK(&authKey().PublicKey)}}))
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`)
	f.Add(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`)
	f.Add(`{"keys":null}`)
	f.Fuzz(func(t *testing.T, doc string) {
		set, err := ParseJWKSet([]byte(doc))
		if err != nil {
			return
		}
		for _, k := range set.Keys {
			pub, alg, err := k.Key()
			if err != nil {
				continue
			}
			again, err := NewJWK(pub)
			if err != nil || again.Alg != alg {
				t.Fatalf("accepted key %+v does not round-trip: %+v %v", k, again, err)
			}
		}
	})
}

// BenchmarkVerifyAlgorithms measures a full verification (parse, signature,
// claims; key cached, verified-token cache off) per algorithm, and signing.
func BenchmarkVerifyAlgorithms(b *testing.B) {
	ctx := context.Background()
	for _, alg := range Algorithms {
		f := newAlgFixture(b, alg)
		v := f.verifier(alg)
		tok, err := f.signer.Issue(Claims{Subject: "user-1", Email: "a@example.com", EmailVerified: true, Roles: []string{"user"}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		b.Run("verify/"+alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("sign/"+alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := f.signer.Issue(Claims{Subject: "user-1"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestAlgorithmAllowList(t *testing.T) {
	for in, want := range map[string]string{"": "RS256", "ES256": "ES256", " RS256 , EdDSA,RS256": "RS256,EdDSA"} {
		got, err := ParseAlgorithms(in)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("ParseAlgorithms(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"HS256", "RS256,none", "rs256"} {
		if _, err := ParseAlgorithms(in); err == nil {
			t.Errorf("ParseAlgorithms(%q) accepted it", in)
		}
	}
	// A verifier told to allow HS256 or none ignores that part.
	f := newFixture(t)
	v := NewVerifier(VerifierConfig{JWKSURL: f.jwks.URL, Issuer: testIssuer, Audience: testAudience, Algorithms: []string{"HS256", "none"}, Now: f.clock.Now})
	if !slices.Equal(v.cfg.Algorithms, []string{RS256}) {
		t.Errorf("allow-list = %v, want RS256 alone", v.cfg.Algorithms)
	}
	if _, err := v.Verify(context.Background(), forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.header(), f.claims())); err == nil {
		t.Error("alg none accepted")
	}
}
