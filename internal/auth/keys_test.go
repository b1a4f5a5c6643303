package auth

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/tokens"
)

// A keys directory mid-rotation: the old RSA key, an ES256 key active since
// an hour ago (it signs), an EdDSA key active only in an hour (published
// ahead, not signing yet). All three are published.
func TestSignerFromAKeysDirectory(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if err := tokens.WriteSigningKey(filepath.Join(dir, "old-rsa.pem"), testKey()); err != nil {
		t.Fatal(err)
	}
	current, err := tokens.GenerateKeyFile(dir, tokens.ES256, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.GenerateKeyFile(dir, tokens.EdDSA, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	signer, err := newSigner(Config{SigningKeysDir: dir, Issuer: "http://auth.test", Audience: "kinoteka", AccessTTL: time.Minute}, discard, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := tokens.NewJWK(current.Public)
	if signer.KeyID() != jwk.Kid || signer.Algorithm() != tokens.ES256 {
		t.Errorf("signing with %s (%s), want the active ES256 key %s", signer.KeyID(), signer.Algorithm(), jwk.Kid)
	}
	if n := len(signer.JWKSet().Keys); n != 3 {
		t.Errorf("%d keys published, want 3", n)
	}
	algs := signer.Algorithms()
	slices.Sort(algs)
	if !slices.Equal(algs, []string{"ES256", "EdDSA", "RS256"}) {
		t.Errorf("algorithms = %v", algs)
	}

	empty := t.TempDir()
	if _, err := newSigner(Config{SigningKeysDir: empty}, discard, time.Now); err == nil || !strings.Contains(err.Error(), "kinoteka keys generate") {
		t.Errorf("empty keys directory: %v, want advice to generate a key", err)
	}
}

// Run with a generated keys directory of ES256 keys serves their JWK set
// and discovery, and signs the tokens it issues with them.
func TestRunWithAGeneratedKeysDirectory(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	srv := startRun(t, []string{"127.0.0.1:1"}, func(c *Config) {
		c.SigningKeyFile, c.SigningKeysDir, c.SigningAlg = "", keys, tokens.ES256
	})
	base := srv.url
	resp, err := client.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var set tokens.JWKSet
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil || len(set.Keys) != 1 || set.Keys[0].Kty != "EC" || set.Keys[0].Alg != "ES256" {
		t.Fatalf("JWK set: %+v, %v", set, err)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != publicMaxAge {
		t.Errorf("Cache-Control = %q", cc)
	}
	files, _ := filepath.Glob(filepath.Join(keys, "*-es256-*.pem"))
	if len(files) != 1 {
		t.Errorf("generated key files: %v", files)
	} else if info, err := os.Stat(files[0]); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file %s: %v", files[0], err)
	}
	// The metadata leads from the issuer to that key set.
	resp, err = client.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || doc.Issuer != srv.cfg.Issuer || doc.JWKSURI != srv.cfg.Issuer+"/.well-known/jwks.json" {
		t.Errorf("metadata: %d %+v, %v", resp.StatusCode, doc, err)
	}
}
