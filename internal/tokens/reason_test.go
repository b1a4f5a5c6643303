package tokens

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestFailureReason(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.clock.Now().Unix()
	genuine := f.issue(t)
	if _, err := f.verifier.Verify(ctx, genuine); err != nil { // warms the key cache
		t.Fatal(err)
	}
	parts := strings.Split(genuine, ".")
	rs := jwt.SigningMethodRS256
	attackerKid := PublicJWK(&attackerKey().PublicKey).Kid

	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"garbage", "not a token at all", ReasonMalformed},
		{"two segments", parts[0] + "." + parts[1], ReasonMalformed},
		{"oversized", strings.Repeat("a", MaxTokenBytes+1), ReasonMalformed},
		{"kid missing", forge(t, rs, authKey(), with(f.header(), "kid", nil), f.claims()), ReasonMalformed},
		{"foreign key, auth's kid", forge(t, rs, attackerKey(), f.header(), f.claims()), ReasonSignature},
		{"truncated signature", genuine[:len(genuine)-10], ReasonSignature},
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.header(), f.claims()), ReasonSignature},
		{"alg missing", rawToken(t, f.header(), f.claims(), parts[2]), ReasonSignature},
		{"RS512 not allowed", forge(t, jwt.SigningMethodRS512, authKey(), f.header(), f.claims()), ReasonSignature},
		{"unknown kid", forge(t, rs, attackerKey(), with(f.header(), "kid", attackerKid), f.claims()), ReasonUnknownKid},
		{"expired", forge(t, rs, authKey(), f.header(), with(f.claims(), "exp", now-61)), ReasonExpired},
		{"wrong iss", forge(t, rs, authKey(), f.header(), with(f.claims(), "iss", "http://evil.test")), ReasonClaims},
		{"wrong aud", forge(t, rs, authKey(), f.header(), with(f.claims(), "aud", []string{"x"})), ReasonClaims},
		{"not before", forge(t, rs, authKey(), f.header(), with(f.claims(), "nbf", now+61)), ReasonClaims},
		{"no exp", forge(t, rs, authKey(), f.header(), with(f.claims(), "exp", nil)), ReasonClaims},
		{"no sub", forge(t, rs, authKey(), f.header(), with(f.claims(), "sub", nil)), ReasonClaims},
		{"typ JWT", forge(t, rs, authKey(), with(f.header(), "typ", "JWT"), f.claims()), ReasonClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.verifier.Verify(ctx, tc.token)
			if err == nil {
				t.Fatal("Verify accepted the token")
			}
			if got := FailureReason(err); got != tc.want {
				t.Errorf("FailureReason(%v) = %q, want %q", err, got, tc.want)
			}
			if !slices.Contains(Reasons, FailureReason(err)) {
				t.Errorf("reason %q is not in Reasons", FailureReason(err))
			}
		})
	}

	t.Run("JWK set unavailable", func(t *testing.T) {
		f.jwks.down.Store(true)
		f.clock.Advance(2 * minRefetch) // the fetch is allowed again
		tok := forge(t, rs, attackerKey(), with(f.header(), "kid", "another-kid"), f.claims())
		_, err := f.verifier.Verify(ctx, tok)
		if got := FailureReason(err); got != ReasonKeysUnavailable {
			t.Errorf("FailureReason(%v) = %q, want %q", err, got, ReasonKeysUnavailable)
		}
	})
	if got := FailureReason(errors.New("something else")); got != ReasonMalformed {
		t.Errorf("FailureReason(foreign error) = %q, want %q", got, ReasonMalformed)
	}
}
