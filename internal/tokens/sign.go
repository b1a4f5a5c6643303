package tokens

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenType is the JWT typ header of access tokens (RFC 9068 §2.1).
const TokenType = "at+jwt"

// Claims are the facts about a user that an access token carries.
type Claims struct {
	Subject       string // user id
	Email         string
	EmailVerified bool
	Roles         []string
}

// accessClaims is the JWT payload of an access token.
type accessClaims struct {
	jwt.RegisteredClaims
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Roles         []string `json:"roles"`
}

// Signer issues access tokens with auth's private key.
type Signer struct {
	key      *rsa.PrivateKey
	jwk      JWK
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
}

// NewSigner returns a signer whose tokens say they come from issuer, are meant
// for audience and live for ttl.
func NewSigner(key *rsa.PrivateKey, issuer, audience string, ttl time.Duration, now func() time.Time) *Signer {
	if now == nil {
		now = time.Now
	}
	return &Signer{key: key, jwk: PublicJWK(&key.PublicKey), issuer: issuer, audience: audience, ttl: ttl, now: now}
}

// KeyID is the kid of the signing key.
func (s *Signer) KeyID() string { return s.jwk.Kid }

// TTL is how long issued tokens live.
func (s *Signer) TTL() time.Duration { return s.ttl }

// JWKSet is the set of public keys that verify this signer's tokens.
func (s *Signer) JWKSet() JWKSet { return JWKSet{Keys: []JWK{s.jwk}} }

// Issue signs an access token for c.
func (s *Signer) Issue(c Claims) (string, error) {
	now := s.now().Truncate(time.Second)
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	roles := c.Roles
	if roles == nil {
		roles = []string{}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   c.Subject,
			Audience:  jwt.ClaimStrings{s.audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        hex.EncodeToString(jti[:]),
		},
		Email:         c.Email,
		EmailVerified: c.EmailVerified,
		Roles:         roles,
	})
	t.Header["kid"] = s.jwk.Kid
	t.Header["typ"] = TokenType
	return t.SignedString(s.key)
}
