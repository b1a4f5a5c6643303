package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The session lives in the browser, sealed: the cookie holds the refresh
// token and the current access token, encrypted and authenticated with
// AES-256-GCM under a key only the web replicas know. Script cannot read it
// (HttpOnly), other sites do not send it on their posts (SameSite=Lax), and
// the web service keeps no session table — any replica with the same key
// serves any request.

const (
	sessionCookie = "kinoteka_session"
	// sessionLife is how long the browser keeps the cookie: auth's refresh
	// token lives 30 days renewed by use, and every renewal re-sets it.
	sessionLife = 30 * 24 * time.Hour
	// renewBefore is how early an access token is renewed before it
	// expires, so a call to films never carries one about to lapse.
	renewBefore = 30 * time.Second
)

// session is what the sealed cookie holds.
type session struct {
	Refresh   string    `json:"r"`
	Access    string    `json:"a"`
	AccessExp time.Time `json:"e"`
}

// sealer seals and opens session cookies.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) < MinSessionKey {
		return nil, errors.New("web: the session key must be at least 32 bytes")
	}
	// A derived key: WEB_SESSION_KEY may be any long secret (hex, a
	// passphrase), and the cookie key is bound to this one use.
	k, err := hkdf.Key(sha256.New, key, nil, "kinoteka web session v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts s; the cookie's name is the associated data, so a value
// sealed for one cookie cannot be replayed as another.
func (sl *sealer) seal(s session) (string, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, sl.aead.NonceSize(), sl.aead.NonceSize()+len(plain)+sl.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sl.aead.Seal(nonce, nonce, plain, []byte(sessionCookie))), nil
}

// open decrypts a cookie value; anything altered, truncated or sealed under
// another key is an error.
func (sl *sealer) open(v string) (session, error) {
	var s session
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) < sl.aead.NonceSize() {
		return s, errors.New("malformed session cookie")
	}
	plain, err := sl.aead.Open(nil, b[:sl.aead.NonceSize()], b[sl.aead.NonceSize():], []byte(sessionCookie))
	if err != nil {
		return s, errors.New("session cookie does not open")
	}
	if err := json.Unmarshal(plain, &s); err != nil || s.Refresh == "" {
		return s, errors.New("session cookie holds no session")
	}
	return s, nil
}

// cookie is the session cookie carrying value; maxAge < 0 deletes it.
func (a *app) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   a.cfg.SecureCookies || r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
}

// user is the signed-in person, as the access token describes them.
type user struct {
	ID    string
	Email string
	Roles []string
	sess  session
}

// Admin reports whether the user holds the admin role.
func (u *user) Admin() bool { return u != nil && slices.Contains(u.Roles, "admin") }

// claims reads the identity from an access token's payload. The signature
// is not checked here: the token came straight from auth over our own
// connection and has sat sealed since; films checks it on every call.
func claims(access string) (user, error) {
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		return user{}, errors.New("access token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return user{}, err
	}
	var c struct {
		Sub   string   `json:"sub"`
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return user{}, err
	}
	return user{ID: c.Sub, Email: c.Email, Roles: c.Roles}, nil
}
