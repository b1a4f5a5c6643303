package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/httpapi"
	"kinoteka/internal/tokens"
)

func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("segment %q: %v", seg, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("segment %s: %v", b, err)
	}
}

func TestAccessTokenClaims(t *testing.T) {
	f := sqliteFixture(t)
	f.clock.Advance(1500 * time.Millisecond) // iat is whole seconds
	tok := f.registerVerified(t, "a@example.com")
	u, err := f.svc.store.UserByEmail(context.Background(), "a@example.com")
	if err != nil {
		t.Fatal(err)
	}

	parts := strings.Split(tok.Access, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts", len(parts))
	}
	var header struct{ Alg, Kid, Typ string }
	decodeSegment(t, parts[0], &header)
	if header.Alg != "RS256" || header.Typ != "at+jwt" || header.Kid != tokens.PublicJWK(&testKey().PublicKey).Kid {
		t.Errorf("header = %+v", header)
	}
	var claims struct {
		Iss           string
		Sub           string
		Aud           []string
		Exp, Iat, Nbf int64
		Jti           string
		Email         string
		EmailVerified bool `json:"email_verified"`
		Roles         []string
	}
	decodeSegment(t, parts[1], &claims)
	now := start.Add(1500 * time.Millisecond).Truncate(time.Second).Unix()
	switch {
	case claims.Iss != "http://auth.test", claims.Sub != u.ID, !slices.Equal(claims.Aud, []string{"kinoteka"}):
		t.Errorf("iss, sub, aud = %q %q %q", claims.Iss, claims.Sub, claims.Aud)
	case claims.Iat != now, claims.Nbf != now, claims.Exp-claims.Iat != int64((15 * time.Minute).Seconds()):
		t.Errorf("iat %d nbf %d exp %d, want iat = nbf = %d and a 15-minute lifetime", claims.Iat, claims.Nbf, claims.Exp, now)
	case claims.Jti == "":
		t.Error("no jti")
	case claims.Email != "a@example.com" || !claims.EmailVerified || !slices.Equal(claims.Roles, []string{"user"}):
		t.Errorf("email %q verified %v roles %v", claims.Email, claims.EmailVerified, claims.Roles)
	}
	if tok.ExpiresIn != 15*time.Minute {
		t.Errorf("expires_in = %s", tok.ExpiresIn)
	}

	// films' verifier, reading the published key set over HTTP, accepts it.
	srv := httptest.NewServer(routes(discard, f.svc, httpapi.NewMetrics()))
	defer srv.Close()
	v := tokens.NewVerifier(tokens.VerifierConfig{
		JWKSURL: srv.URL + "/.well-known/jwks.json", Issuer: "http://auth.test", Audience: "kinoteka", Now: f.clock.Now,
	})
	p, err := v.Verify(context.Background(), tok.Access)
	if err != nil || p.UserID != u.ID || !p.EmailVerified {
		t.Errorf("films' verifier: %+v, %v", p, err)
	}
}

func TestMeChecksTheToken(t *testing.T) {
	f := sqliteFixture(t)
	ctx := context.Background()
	tok := f.registerVerified(t, "a@example.com")
	if u, err := f.svc.Me(ctx, tok.Access); err != nil || u.Email != "a@example.com" {
		t.Fatalf("Me = %+v, %v", u, err)
	}
	for name, token := range map[string]string{
		"garbage":   "not.a.token",
		"tampered":  tok.Access[:len(tok.Access)-4] + "AAAA",
		"refresh":   tok.Refresh,
		"alg none":  "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + strings.Split(tok.Access, ".")[1] + ".",
		"empty":     "",
		"truncated": tok.Access[:len(tok.Access)/2],
	} {
		if _, err := f.svc.Me(ctx, token); !isCode(err, "invalid_token") {
			t.Errorf("%s: err = %v, want invalid_token", name, err)
		}
	}
	f.clock.Advance(15*time.Minute + 61*time.Second)
	if _, err := f.svc.Me(ctx, tok.Access); !isCode(err, "invalid_token") {
		t.Errorf("expired: err = %v, want invalid_token", err)
	}
}
