package tokens

import (
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
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
	// SessionID names the refresh family (the login) the token was issued
	// in, so the account pages can tell which session is the caller's.
	SessionID string
}

// accessClaims is the JWT payload of an access token.
type accessClaims struct {
	jwt.RegisteredClaims
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Roles         []string `json:"roles"`
	SessionID     string   `json:"sid,omitempty"` // OpenID Connect's session id claim
}

// ringKey is a key of the ring with what signing and publishing need.
type ringKey struct {
	Key
	jwk    JWK
	method jwt.SigningMethod
}

// Signer issues access tokens with auth's private keys: the newest key whose
// ActiveFrom has come signs, and every key of the ring is published.
type Signer struct {
	keys     []ringKey // oldest first
	set      JWKSet
	algs     []string
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
}

// NewSigner returns a signer with one key, whose tokens say they come from
// issuer, are meant for audience and live for ttl. It panics when key is of
// a type AlgOf refuses: keys come from LoadSigningKey or GenerateKey, which
// check that.
func NewSigner(key crypto.Signer, issuer, audience string, ttl time.Duration, now func() time.Time) *Signer {
	s, err := NewRingSigner([]Key{{Private: key, Public: key.Public()}}, issuer, audience, ttl, now)
	if err != nil {
		panic(err)
	}
	return s
}

// NewRingSigner returns a signer over a key ring (see LoadKeyDir); at least
// one key must be private.
func NewRingSigner(keys []Key, issuer, audience string, ttl time.Duration, now func() time.Time) (*Signer, error) {
	if now == nil {
		now = time.Now
	}
	keys = slices.Clone(keys)
	sortKeys(keys)
	s := &Signer{issuer: issuer, audience: audience, ttl: ttl, now: now, set: JWKSet{Keys: []JWK{}}}
	seen := map[string]bool{}
	for _, k := range keys {
		jwk, err := NewJWK(k.Public)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, ringKey{Key: k, jwk: jwk, method: jwt.GetSigningMethod(jwk.Alg)})
		if !seen[jwk.Kid] { // the same key in two files is published once
			seen[jwk.Kid] = true
			s.set.Keys = append(s.set.Keys, jwk)
		}
		if !slices.Contains(s.algs, jwk.Alg) {
			s.algs = append(s.algs, jwk.Alg)
		}
	}
	if !slices.ContainsFunc(keys, func(k Key) bool { return k.Private != nil }) {
		return nil, errors.New("tokens: no private key to sign with")
	}
	// Newest first in the published set: a verifier scanning it meets the
	// key in use first.
	slices.Reverse(s.set.Keys)
	return s, nil
}

// current is the key that signs at now: the newest private key already
// active, or, when none is active yet, the oldest private key.
func (s *Signer) current() ringKey {
	now := s.now()
	var first *ringKey
	for i := len(s.keys) - 1; i >= 0; i-- {
		k := &s.keys[i]
		if k.Private == nil {
			continue
		}
		if !k.ActiveFrom.After(now) {
			return *k
		}
		first = k
	}
	return *first
}

// KeyID is the kid of the key that signs now.
func (s *Signer) KeyID() string { return s.current().jwk.Kid }

// Algorithm is the algorithm of the key that signs now.
func (s *Signer) Algorithm() string { return s.current().jwk.Alg }

// Algorithms are the algorithms of every published key.
func (s *Signer) Algorithms() []string { return slices.Clone(s.algs) }

// TTL is how long issued tokens live.
func (s *Signer) TTL() time.Duration { return s.ttl }

// JWKSet is the set of public keys that verify this signer's tokens.
func (s *Signer) JWKSet() JWKSet { return JWKSet{Keys: slices.Clone(s.set.Keys)} }

// Issue signs an access token for c.
func (s *Signer) Issue(c Claims) (string, error) {
	k := s.current()
	now := s.now().Truncate(time.Second)
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	roles := c.Roles
	if roles == nil {
		roles = []string{}
	}
	t := jwt.NewWithClaims(k.method, accessClaims{
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
		SessionID:     c.SessionID,
	})
	t.Header["kid"] = k.jwk.Kid
	t.Header["typ"] = TokenType
	return t.SignedString(k.Private)
}
