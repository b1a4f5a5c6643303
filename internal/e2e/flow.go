// Package e2e drives a running Kinoteka — embedded or as separate processes —
// through its public interfaces only: HTTP to auth and films, and a
// Mailpit-compatible JSON API to read the mail. The same flow runs against
// the embedded catcher and against Mailpit.
package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"kinoteka/internal/tokens"
)

// Env says where the system under test answers.
type Env struct {
	AuthURL  string // e.g. http://127.0.0.1:8081
	FilmsURL string
	MailURL  string // Mailpit-compatible API base, e.g. http://127.0.0.1:8025
	KeyFile  string // auth's signing key, to forge tokens that are valid but for one claim
	Client   *http.Client
}

func (e Env) client() *http.Client {
	if e.Client != nil {
		return e.Client
	}
	return &http.Client{Timeout: 15 * time.Second}
}

// Response is a decoded HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Do sends a request with an optional JSON body and bearer token.
func (e Env) Do(t testing.TB, method, u string, body any, bearer string) Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Tokens is auth's token answer.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

var codeRE = regexp.MustCompile(`\b\d{6}\b`)

// WaitForCode polls the mail API until a mail to addr arrives and returns
// the six-digit code in its text part (of the newest mail, if several).
func (e Env) WaitForCode(t testing.TB, addr string, timeout time.Duration) string {
	t.Helper()
	return e.WaitForNthCode(t, addr, 1, timeout)
}

// WaitForNthCode polls the mail API until n mails to addr have arrived and
// returns the code of the newest: the code a person would read after the
// n-th mail.
func (e Env) WaitForNthCode(t testing.TB, addr string, n int, timeout time.Duration) string {
	t.Helper()
	text := e.waitForMails(t, addr, "", n, timeout)
	code := codeRE.FindString(text)
	if code == "" {
		t.Fatalf("mail to %s holds no six-digit code: %q", addr, text)
	}
	return code
}

// WaitForMail polls the mail API until a mail to addr whose subject
// contains subject arrives (the newest such), and returns its text part.
func (e Env) WaitForMail(t testing.TB, addr, subject string, timeout time.Duration) string {
	t.Helper()
	return e.waitForMails(t, addr, subject, 1, timeout)
}

// waitForMails polls until n mails to addr with subject in their subject
// have arrived, and returns the newest one's text part.
func (e Env) waitForMails(t testing.TB, addr, subject string, n int, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var list struct {
			Messages []struct {
				ID      string
				Subject string
				To      []struct{ Address string }
			} `json:"messages"`
		}
		r := e.Do(t, http.MethodGet, e.MailURL+"/api/v1/search?query="+url.QueryEscape("to:"+addr), nil, "")
		if r.Status == http.StatusOK {
			r.JSON(t, &list)
			var ids []string // newest first, as both APIs list them
			for _, m := range list.Messages {
				if !strings.Contains(m.Subject, subject) {
					continue
				}
				for _, to := range m.To {
					if strings.EqualFold(to.Address, addr) {
						ids = append(ids, m.ID)
						break
					}
				}
			}
			if len(ids) >= n {
				var msg struct{ Text string }
				e.Do(t, http.MethodGet, e.MailURL+"/api/v1/message/"+ids[0], nil, "").JSON(t, &msg)
				return msg.Text
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d mails to %s with %q in their subject within %s", n, addr, subject, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Verify submits a code with the password addr was registered with (auth
// activates the account only when both match the newest registration).
func (e Env) Verify(t testing.TB, addr, code, password string) Response {
	t.Helper()
	return e.Do(t, http.MethodPost, e.AuthURL+"/v1/auth/verify", map[string]string{"email": addr, "code": code, "password": password}, "")
}

// Register registers addr and returns the status.
func (e Env) Register(t testing.TB, addr, password string) Response {
	t.Helper()
	return e.Do(t, http.MethodPost, e.AuthURL+"/v1/auth/register", map[string]string{"email": addr, "password": password}, "")
}

// SignUp registers addr, reads the code from the mail and verifies it.
func (e Env) SignUp(t testing.TB, addr, password string) Tokens {
	t.Helper()
	if r := e.Register(t, addr, password); r.Status != http.StatusAccepted {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	code := e.WaitForCode(t, addr, 60*time.Second)
	r := e.Verify(t, addr, code, password)
	if r.Status != http.StatusOK {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	var tk Tokens
	r.JSON(t, &tk)
	return tk
}

// Walkthrough is the whole user journey: register, read the code from the
// mail, verify, log in, read /me, list films, add a favourite; then forged
// tokens must all be refused by films.
func (e Env) Walkthrough(t *testing.T) {
	addr := fmt.Sprintf("walk-%d@example.com", time.Now().UnixNano())
	const password = "correct horse battery staple"

	// Login before verification: a correct password is told the address is unverified.
	if r := e.Register(t, addr, password); r.Status != http.StatusAccepted {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, http.MethodPost, e.AuthURL+"/v1/auth/login", map[string]string{"email": addr, "password": password}, ""); r.Status != http.StatusForbidden {
		t.Fatalf("login before verify: want 403, got %d %s", r.Status, r.Body)
	}
	code := e.WaitForCode(t, addr, 60*time.Second)
	r := e.Verify(t, addr, code, password)
	if r.Status != http.StatusOK {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	if r := e.Verify(t, addr, code, password); r.Status < 400 || r.Status >= 500 {
		t.Fatalf("second use of the code: want 4xx, got %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, http.MethodPost, e.AuthURL+"/v1/auth/login", map[string]string{"email": addr, "password": "wrong password!"}, ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("login with a wrong password: want 401, got %d %s", r.Status, r.Body)
	}
	r = e.Do(t, http.MethodPost, e.AuthURL+"/v1/auth/login", map[string]string{"email": addr, "password": password}, "")
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	var tk Tokens
	r.JSON(t, &tk)
	if tk.TokenType != "Bearer" || tk.AccessToken == "" || tk.RefreshToken == "" || tk.ExpiresIn <= 0 {
		t.Fatalf("login tokens: %+v", tk)
	}

	var me struct {
		ID            string   `json:"id"`
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		Roles         []string `json:"roles"`
	}
	r = e.Do(t, http.MethodGet, e.AuthURL+"/v1/auth/me", nil, tk.AccessToken)
	if r.Status != http.StatusOK {
		t.Fatalf("me: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &me)
	if me.Email != addr || !me.EmailVerified || me.ID == "" {
		t.Fatalf("me: %+v", me)
	}

	var page struct {
		Items []struct {
			ID    int64  `json:"id"`
			Title string `json:"title"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	r = e.Do(t, http.MethodGet, e.FilmsURL+"/v1/films?limit=5", nil, "")
	if r.Status != http.StatusOK {
		t.Fatalf("films: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &page)
	if len(page.Items) != 5 || page.NextCursor == nil {
		t.Fatalf("films page: %d items, next %v", len(page.Items), page.NextCursor)
	}
	r = e.Do(t, http.MethodGet, e.FilmsURL+"/v1/films?limit=5&cursor="+url.QueryEscape(*page.NextCursor), nil, "")
	if r.Status != http.StatusOK {
		t.Fatalf("films page 2: %d %s", r.Status, r.Body)
	}
	film := page.Items[2]
	if r := e.Do(t, http.MethodGet, fmt.Sprintf("%s/v1/films/%d", e.FilmsURL, film.ID), nil, ""); r.Status != http.StatusOK {
		t.Fatalf("film %d: %d %s", film.ID, r.Status, r.Body)
	}
	if r := e.Do(t, http.MethodPut, fmt.Sprintf("%s/v1/me/favorites/%d", e.FilmsURL, film.ID), nil, tk.AccessToken); r.Status >= 300 {
		t.Fatalf("add favourite: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, http.MethodGet, e.FilmsURL+"/v1/me/favorites", nil, tk.AccessToken)
	if r.Status != http.StatusOK {
		t.Fatalf("favourites: %d %s", r.Status, r.Body)
	}
	page.Items = nil
	r.JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != film.ID {
		t.Fatalf("favourites: %s", r.Body)
	}
	if r := e.Do(t, http.MethodGet, e.FilmsURL+"/v1/me/favorites", nil, ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("favourites without a token: want 401, got %d", r.Status)
	}

	for name, forged := range e.forgeries(t, tk.AccessToken) {
		r := e.Do(t, http.MethodGet, e.FilmsURL+"/v1/me/favorites", nil, forged)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("forged token %q: want 401, got %d %s", name, r.Status, r.Body)
		}
	}

	e.PreHijacking(t)
}

// PreHijacking registers one address twice before it is verified — by its
// owner and by an attacker who cannot read its mail — in both orders, and
// checks that the account ends with the owner's password only (issue 11,
// finding 2): verify takes the password with the code, and the newest code
// verifies only with the newest registration's password.
func (e Env) PreHijacking(t *testing.T) {
	const victim, attacker = "the victim's own password", "the attacker's password"
	expect := func(r Response, status int, code, what string) {
		t.Helper()
		var p struct{ Code string }
		_ = json.Unmarshal(r.Body, &p)
		if r.Status != status || p.Code != code {
			t.Fatalf("%s: want %d %s, got %d %s", what, status, code, r.Status, r.Body)
		}
	}
	register := func(addr, password, who string) {
		t.Helper()
		expect(e.Register(t, addr, password), http.StatusAccepted, "", who+" registers")
	}
	login := func(addr string) {
		t.Helper()
		expect(e.Do(t, http.MethodPost, e.AuthURL+"/v1/auth/login", map[string]string{"email": addr, "password": attacker}, ""),
			http.StatusUnauthorized, "invalid_credentials", "the attacker logs in")
		expect(e.Do(t, http.MethodPost, e.AuthURL+"/v1/auth/login", map[string]string{"email": addr, "password": victim}, ""),
			http.StatusOK, "", "the victim logs in")
	}

	// Victim first: the attacker's registration replaces the pending
	// password and mails the victim a new code; the victim's password does
	// not go with it, so the victim registers again.
	addr := fmt.Sprintf("prehijack-a-%d@example.com", time.Now().UnixNano())
	register(addr, victim, "the victim")
	own := e.WaitForNthCode(t, addr, 1, 60*time.Second)
	register(addr, attacker, "the attacker")
	newest := e.WaitForNthCode(t, addr, 2, 60*time.Second)
	expect(e.Verify(t, addr, own, victim), http.StatusBadRequest, "invalid_code", "the victim's superseded code")
	expect(e.Verify(t, addr, newest, victim), http.StatusBadRequest, "register_again", "the newest code with the victim's password")
	register(addr, victim, "the victim, again,")
	expect(e.Verify(t, addr, e.WaitForNthCode(t, addr, 3, 60*time.Second), victim), http.StatusOK, "", "the victim verifies")
	login(addr)

	// Attacker first: the victim's registration replaces the attacker's
	// password, and the victim's code verifies with the victim's password.
	addr = fmt.Sprintf("prehijack-b-%d@example.com", time.Now().UnixNano())
	register(addr, attacker, "the attacker")
	e.WaitForNthCode(t, addr, 1, 60*time.Second)
	register(addr, victim, "the victim")
	expect(e.Verify(t, addr, e.WaitForNthCode(t, addr, 2, 60*time.Second), victim), http.StatusOK, "", "the victim verifies")
	login(addr)
}

// forgeries returns tokens that must all be refused, built from a genuine one.
func (e Env) forgeries(t *testing.T, genuine string) map[string]string {
	t.Helper()
	var claims jwt.MapClaims
	parsed, _, err := jwt.NewParser().ParseUnverified(genuine, &claims)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	sign := func(method jwt.SigningMethod, key any, edit func(jwt.MapClaims)) string {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		if edit != nil {
			edit(c)
		}
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"], tok.Header["typ"] = kid, tokens.TokenType
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	real, err := tokens.LoadKey(e.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&real.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	none := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil)
	past := time.Now().Add(-time.Hour).Unix()
	return map[string]string{
		"alg none":              none,
		"HS256 with public key": sign(jwt.SigningMethodHS256, pubPEM, nil),
		"foreign RSA key":       sign(jwt.SigningMethodRS256, foreign, nil),
		"expired":               sign(jwt.SigningMethodRS256, real, func(c jwt.MapClaims) { c["exp"], c["iat"], c["nbf"] = past, past-900, past-900 }),
		"wrong aud":             sign(jwt.SigningMethodRS256, real, func(c jwt.MapClaims) { c["aud"] = "someone-else" }),
		"wrong iss":             sign(jwt.SigningMethodRS256, real, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }),
		"truncated":             genuine[:len(genuine)-10],
		"signature stripped":    genuine[:strings.LastIndexByte(genuine, '.')] + none[strings.LastIndexByte(none, '.'):],
		"not a JWT":             "definitely-not-a-token",
	}
}
