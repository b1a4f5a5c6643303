package tokens

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The example key and thumbprint of RFC 7638 §3.1.
const (
	rfc7638N          = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	rfc7638E          = "AQAB"
	rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

func TestPublicJWKThumbprintMatchesRFC7638(t *testing.T) {
	n, err := b64.DecodeString(rfc7638N)
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	jwk := PublicJWK(pub)
	if jwk.Kid != rfc7638Thumbprint {
		t.Errorf("kid = %s, want RFC 7638's %s", jwk.Kid, rfc7638Thumbprint)
	}
	if jwk.N != rfc7638N || jwk.E != rfc7638E || jwk.Kty != "RSA" || jwk.Alg != "RS256" || jwk.Use != "sig" {
		t.Errorf("JWK = %+v, want the RFC's n and e, kty RSA, alg RS256, use sig", jwk)
	}
	back, alg, err := jwk.Key()
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(back) || alg != RS256 {
		t.Errorf("JWK.Key gives back %v for %s, want the key for RS256", back, alg)
	}
}

func TestJWKPublicKeyRejectsBadKeys(t *testing.T) {
	good := PublicJWK(&authKey().PublicKey)
	small := PublicJWK(&mustKey(1024).PublicKey)
	for _, tc := range []struct {
		name string
		jwk  JWK
	}{
		{"kty EC", JWK{Kty: "EC", N: good.N, E: good.E}},
		{"n not base64url", JWK{Kty: "RSA", N: "!!!", E: good.E}},
		{"e empty", JWK{Kty: "RSA", N: good.N, E: ""}},
		{"e too long", JWK{Kty: "RSA", N: good.N, E: "AQABAQAB"}},
		{"1024-bit modulus", small},
		{"alg ES256 on an RSA key", func() JWK { j := good; j.Alg = ES256; return j }()},
		{"kty missing", JWK{N: good.N, E: good.E}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := tc.jwk.Key(); err == nil {
				t.Error("Key accepted a bad JWK")
			}
		})
	}
}

func TestLoadOrGenerateKeyPersistsAndReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "signing.pem")
	first, err := LoadOrGenerateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the generated key was not written: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %v, want 0600", perm)
	}
	if first.N.BitLen() != 2048 {
		t.Errorf("generated a %d-bit key, want 2048", first.N.BitLen())
	}
	second, err := LoadOrGenerateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Equal(first) {
		t.Fatal("the second call generated a new key instead of loading the saved one")
	}
	if a, b := PublicJWK(&first.PublicKey).Kid, PublicJWK(&second.PublicKey).Kid; a != b {
		t.Errorf("kid changed across a restart: %s then %s", a, b)
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkcs1 := write("pkcs1.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(authKey())}))
	if k, err := LoadKey(pkcs1); err != nil || !k.Equal(authKey()) {
		t.Errorf("LoadKey(PKCS#1) = %v", err)
	}
	pkix, _ := x509.MarshalPKIXPublicKey(&authKey().PublicKey)
	small, _ := x509.MarshalPKCS8PrivateKey(mustKey(1024))
	for _, tc := range []struct {
		name string
		path string
	}{
		{"no PEM", write("junk.pem", []byte("not a key"))},
		{"public key", write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}))},
		{"1024-bit key", write("small.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: small}))},
		{"corrupt DER", write("bad.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LoadKey(tc.path); err == nil {
				t.Error("LoadKey accepted it")
			}
			// A broken key file must never be silently replaced.
			if _, err := LoadOrGenerateKey(tc.path); err == nil {
				t.Error("LoadOrGenerateKey accepted it")
			}
		})
	}
}

// The issued token has the header and claims DESIGN.md promises.
func TestSignerIssuesRFC9068Tokens(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 500_000_000, time.UTC)
	s := NewSigner(authKey(), testIssuer, testAudience, testTTL, func() time.Time { return now })
	tok, err := s.Issue(Claims{Subject: "user-7", Email: "b@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var header map[string]any
	var claims map[string]any
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	if header["alg"] != "RS256" || header["typ"] != "at+jwt" || header["kid"] != s.KeyID() || s.KeyID() != PublicJWK(&authKey().PublicKey).Kid {
		t.Errorf("header = %v, want alg RS256, typ at+jwt, kid %s", header, s.KeyID())
	}
	sec := float64(now.Unix()) // whole seconds
	want := map[string]any{
		"iss": testIssuer, "sub": "user-7", "aud": []any{testAudience}, "email": "b@example.com",
		"email_verified": false, "roles": []any{}, "iat": sec, "nbf": sec, "exp": sec + testTTL.Seconds(),
	}
	for k, v := range want {
		if got, _ := json.Marshal(claims[k]); string(got) != mustJSON(t, v) {
			t.Errorf("claim %s = %s, want %s", k, got, mustJSON(t, v))
		}
	}
	if jti, _ := claims["jti"].(string); len(jti) != 32 {
		t.Errorf("jti = %q, want 32 hex digits", jti)
	}
	other, _ := s.Issue(Claims{Subject: "user-7"})
	var otherClaims jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(other, &otherClaims); err != nil {
		t.Fatal(err)
	}
	if otherClaims["jti"] == claims["jti"] {
		t.Error("two tokens share a jti")
	}
	if s.TTL() != testTTL || len(s.JWKSet().Keys) != 1 {
		t.Errorf("TTL %v, %d keys published", s.TTL(), len(s.JWKSet().Keys))
	}
}
