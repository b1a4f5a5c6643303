package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kinoteka/internal/e2e"
	"kinoteka/internal/web"
)

// visitor is a person's browser without script: a cookie jar, and forms
// posted as browsers post them. Redirects are not followed, so each answer
// can be checked; follow does it.
type visitor struct {
	t      *testing.T
	base   string
	client *http.Client
	header http.Header // added to every request (Origin, Sec-Fetch-Site …)
}

type answer struct {
	status   int
	location string
	body     string
	cookies  []*http.Cookie
}

func newVisitor(t *testing.T, base string) *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: t, base: base, header: http.Header{}, client: &http.Client{
		Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (v *visitor) do(method, path string, form url.Values) answer {
	v.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, v.base+path, body)
	if err != nil {
		v.t.Fatal(err)
	}
	for k, vs := range v.header {
		req.Header[k] = vs
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b), cookies: resp.Cookies()}
}

func (v *visitor) get(path string) answer { v.t.Helper(); return v.do(http.MethodGet, path, nil) }
func (v *visitor) post(path string, f url.Values) answer {
	v.t.Helper()
	return v.do(http.MethodPost, path, f)
}

// follow gets the page a 303 points at.
func (v *visitor) follow(a answer) answer {
	v.t.Helper()
	if a.status != http.StatusSeeOther {
		v.t.Fatalf("want 303 See Other, got %d: %s", a.status, a.body)
	}
	u, err := url.Parse(a.location)
	if err != nil {
		v.t.Fatal(err)
	}
	return v.get(u.RequestURI())
}

// must checks the status and that the page holds every want.
func must(t *testing.T, a answer, status int, want ...string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d; body:\n%s", a.status, status, a.body)
	}
	for _, w := range want {
		if !strings.Contains(a.body, w) {
			t.Fatalf("page lacks %q:\n%s", w, a.body)
		}
	}
}

var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.`)

// noTokens fails when a page shows an access token or a refresh token.
func noTokens(t *testing.T, a answer, refresh ...string) {
	t.Helper()
	if jwtLike.MatchString(a.body) {
		t.Fatalf("a token is in the page:\n%s", a.body)
	}
	for _, r := range refresh {
		if r != "" && strings.Contains(a.body, r) {
			t.Fatal("the refresh token is in the page")
		}
	}
}

// signUp registers addr through the site, reads the code from the
// catcher and enters it: the visitor is then signed in.
func signUp(t *testing.T, v *visitor, env e2e.Env, addr string) {
	t.Helper()
	a := v.post("/signup", url.Values{"email": {addr}, "password": {"correct horse battery"}})
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/verify?email=") {
		t.Fatalf("sign up: %d %s\n%s", a.status, a.location, a.body)
	}
	must(t, v.follow(a), http.StatusOK, "Enter the code", addr, env.MailURL)
	code := env.WaitForCode(t, addr, 60*time.Second)
	a = v.post("/verify", url.Values{"email": {addr}, "code": {code}, "password": {"correct horse battery"}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("verify: %d\n%s", a.status, a.body)
	}
	must(t, v.follow(a), http.StatusOK, "Your address is confirmed", "Sign out")
}

func filmPath(t *testing.T, v *visitor, query string) string {
	t.Helper()
	a := v.get("/?q=" + url.QueryEscape(query))
	m := regexp.MustCompile(`href="(/films/\d+)"`).FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no film found for %q:\n%s", query, a.body)
	}
	return m[1]
}

func TestWebPagesAndForms(t *testing.T) {
	s, env, _ := runSystem(t)
	site := s.webURL()
	v := newVisitor(t, site)

	t.Run("public pages render", func(t *testing.T) {
		must(t, v.get("/"), http.StatusOK, `<h1>Films</h1>`, `type="search"`, `<html lang="en">`, "Next page")
		a := v.get("/?q=star+wars&sort=-year")
		must(t, a, http.StatusOK, "Star Wars", `<option value="-year" selected>`)
		must(t, v.get("/?genre=Western&year_from=1990&year_to=1999&sort=title"), http.StatusOK, `<option value="Western" selected>`)
		must(t, v.get("/?year_from=abc"), http.StatusOK, `role="alert"`) // films' refusal above the form, not a failed page
		film := filmPath(t, v, "star wars")
		must(t, v.get(film), http.StatusOK, "<h1>Star Wars", "IMDb rating", "Our users", "Sign in</a> to add")
		must(t, v.get("/signup"), http.StatusOK, `<label for="f-email">`, `autocomplete="new-password"`, ">Sign up</button>")
		must(t, v.get("/signin"), http.StatusOK, ">Sign in</button>", `href="/forgot"`)
		must(t, v.get("/forgot"), http.StatusOK, ">Send a reset code</button>")
		must(t, v.get("/reset?email=a@example.com"), http.StatusOK, ">Set the new password</button>", `value="a@example.com"`)
		must(t, v.get("/verify?email=a@example.com"), http.StatusOK, ">Verify</button>", ">Send a new code</button>")
		must(t, v.get("/no/such/page"), http.StatusNotFound, "Page not found", `href="/static/site.css`)
		must(t, v.get("/films/999999999"), http.StatusNotFound, "Page not found")
		must(t, v.get("/films/abc"), http.StatusNotFound, "Page not found")
		// Pages for a person send one to sign in, and back afterwards.
		for _, p := range []string{"/favourites", "/account", "/admin"} {
			a := v.get(p)
			if a.status != http.StatusSeeOther || !strings.Contains(a.location, "next="+url.QueryEscape(p)) {
				t.Errorf("%s signed out: %d %s", p, a.status, a.location)
			}
		}
	})

	t.Run("Russian by Accept-Language and by the switch", func(t *testing.T) {
		ru := newVisitor(t, site)
		ru.header.Set("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.8")
		must(t, ru.get("/"), http.StatusOK, `<html lang="ru">`, "Фильмы", "Поиск по названию")
		en := newVisitor(t, site)
		a := en.post("/lang", url.Values{"lang": {"ru"}, "back": {"/signup"}})
		if a.status != http.StatusSeeOther || a.location != "/signup" {
			t.Fatalf("switch: %d %s", a.status, a.location)
		}
		must(t, en.get("/signup"), http.StatusOK, "Зарегистрироваться</button>", "Адрес электронной почты")
		if a := en.post("/lang", url.Values{"lang": {"en"}, "back": {"https://evil.example/"}}); a.location != "/" {
			t.Errorf("the switch went back to another host: %s", a.location)
		}
	})

	t.Run("form errors are shown next to their fields", func(t *testing.T) {
		a := v.post("/signup", url.Values{"email": {"not-an-address"}, "password": {"password"}})
		must(t, a, http.StatusUnprocessableEntity, `aria-invalid="true" aria-describedby="f-email-error"`, `id="f-email-error"`,
			`id="f-password-error"`, "most common passwords", `value="not-an-address"`)
		if strings.Contains(a.body, `value="password"`) {
			t.Error("the password was echoed into the page")
		}
		ru := newVisitor(t, site)
		ru.header.Set("Accept-Language", "ru")
		must(t, ru.post("/signup", url.Values{"email": {"x@example.com"}, "password": {"short"}}), http.StatusUnprocessableEntity, "не короче 8 символов")
		must(t, v.post("/signin", url.Values{"email": {"nobody@example.com"}, "password": {"wrong password"}}), http.StatusUnprocessableEntity,
			"The email address or password is wrong")
		must(t, v.post("/verify", url.Values{"email": {"nobody@example.com"}, "code": {"123456"}, "password": {"correct horse battery"}}), http.StatusUnprocessableEntity,
			`id="f-code-error"`, "The code is wrong")
		must(t, v.post("/verify", url.Values{"email": {"nobody@example.com"}, "code": {"12"}, "password": {"correct horse battery"}}), http.StatusUnprocessableEntity,
			"6 digits from the email")
		must(t, v.post("/reset", url.Values{"email": {"nobody@example.com"}, "code": {"123456"}, "new_password": {"correct horse battery"}}),
			http.StatusUnprocessableEntity, "The code is wrong")
		must(t, v.post("/forgot", url.Values{"email": {""}}), http.StatusUnprocessableEntity, `id="f-email-error"`)
		a = v.post("/forgot", url.Values{"email": {"nobody@example.com"}})
		must(t, v.follow(a), http.StatusOK, "a reset code is on its way", `value="nobody@example.com"`)
	})

	t.Run("too many attempts says when to try again", func(t *testing.T) {
		x := newVisitor(t, site)
		var a answer
		for range 20 { // auth allows 10 sign-ins an hour per account
			if a = x.post("/signin", url.Values{"email": {"locked@example.com"}, "password": {"wrong password"}}); a.status == http.StatusTooManyRequests {
				break
			}
		}
		must(t, a, http.StatusTooManyRequests, "Too many attempts", "Please try again in")
		if !regexp.MustCompile(`try again in [1-9]\d* seconds`).MatchString(a.body) {
			t.Errorf("no wait in seconds:\n%s", a.body)
		}
	})

	t.Run("cross-origin posts are refused", func(t *testing.T) {
		evil := newVisitor(t, site)
		evil.header.Set("Origin", "https://evil.example")
		must(t, evil.post("/signup", url.Values{"email": {"csrf@example.com"}, "password": {"correct horse battery"}}),
			http.StatusForbidden, "Request refused")
		evil = newVisitor(t, site)
		evil.header.Set("Sec-Fetch-Site", "cross-site")
		must(t, evil.post("/signout", nil), http.StatusForbidden, "sent from another site")
		same := newVisitor(t, site)
		same.header.Set("Sec-Fetch-Site", "same-origin")
		same.header.Set("Origin", site)
		if a := same.post("/signout", nil); a.status != http.StatusSeeOther {
			t.Fatalf("a same-origin post: %d", a.status)
		}
	})

	t.Run("security headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, site+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for k, want := range map[string]string{
			"Content-Security-Policy": "default-src 'self'; script-src 'self'",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "same-origin",
		} {
			if got := resp.Header.Get(k); !strings.Contains(got, want) {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("CSP %q", csp)
		}
	})

	t.Run("a person signs up, favourites, reviews and signs out", func(t *testing.T) {
		p := newVisitor(t, site)
		p.header.Set("Accept-Language", "en")
		a := p.post("/signup", url.Values{"email": {"viewer@example.com"}, "password": {"correct horse battery"}})
		must(t, p.follow(a), http.StatusOK, "Enter the code")
		// Asking for another code at once is refused here, saying how long to wait.
		must(t, p.post("/verify/resend", url.Values{"email": {"viewer@example.com"}}), http.StatusTooManyRequests, "Please wait")
		code := env.WaitForCode(t, "viewer@example.com", 60*time.Second)
		a = p.post("/verify", url.Values{"email": {"viewer@example.com"}, "code": {code}, "password": {"correct horse battery"}})
		if a.status != http.StatusSeeOther {
			t.Fatalf("verify: %d %s", a.status, a.body)
		}
		var sess *http.Cookie
		for _, c := range a.cookies {
			if c.Name == "kinoteka_session" {
				sess = c
			}
		}
		if sess == nil {
			t.Fatal("verify set no session cookie")
		}
		if !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" || sess.Secure || sess.MaxAge < 24*3600 {
			t.Errorf("session cookie: HttpOnly %v SameSite %v Path %q Secure %v MaxAge %d", sess.HttpOnly, sess.SameSite, sess.Path, sess.Secure, sess.MaxAge)
		}
		if jwtLike.MatchString(sess.Value) || strings.Contains(sess.Value, ".") {
			t.Error("the session cookie holds a readable token")
		}
		for _, c := range a.cookies {
			if !c.HttpOnly {
				t.Errorf("cookie %s is readable by script", c.Name)
			}
		}
		home := p.follow(a)
		must(t, home, http.StatusOK, "Your address is confirmed", `href="/favourites"`, `href="/account"`, ">Sign out</button>")
		noTokens(t, home)
		if strings.Contains(home.body, `href="/admin"`) {
			t.Error("a person without the admin role sees the admin link")
		}
		must(t, p.get("/admin"), http.StatusForbidden, "administrators only")
		must(t, p.post("/admin/films", url.Values{"title": {"Nope"}, "year": {"2000"}}), http.StatusForbidden)

		film := filmPath(t, p, "star wars")
		page := p.get(film)
		must(t, page, http.StatusOK, ">Add to favourites</button>", ">Post review</button>", `<label for="f-rating">`)
		noTokens(t, page)
		must(t, p.follow(p.post(film+"/favourite", url.Values{"on": {"1"}})), http.StatusOK, "Added to your favourites", ">Remove from favourites</button>")
		must(t, p.get("/favourites"), http.StatusOK, `href="`+film+`"`)

		must(t, p.post(film+"/review", url.Values{"rating": {"11"}, "text": {"too much"}}), http.StatusUnprocessableEntity,
			`id="f-rating-error"`, "from 1 to 10", ">too much</textarea>")
		a = p.post(film+"/review", url.Values{"rating": {"9"}, "text": {"A classic."}})
		if a.status != http.StatusSeeOther || !strings.HasSuffix(a.location, "#your-review") {
			t.Fatalf("review: %d %s", a.status, a.location)
		}
		must(t, p.follow(a), http.StatusOK, "Your review is saved", "9 / 10", "9.0 / 10 from 1 reviews", "A classic.", ">Save review</button>", ">Delete my review</button>")
		must(t, p.follow(p.post(film+"/review/delete", nil)), http.StatusOK, "Your review is deleted", "No reviews yet")
		must(t, p.follow(p.post(film+"/favourite", url.Values{"on": {"0"}})), http.StatusOK, ">Add to favourites</button>")

		acct := p.get("/account")
		must(t, acct, http.StatusOK, "viewer@example.com", "user", ">Sign out everywhere</button>")
		noTokens(t, acct)

		must(t, p.follow(p.post("/signout", nil)), http.StatusOK, "You are signed out", `href="/signin"`)
	})

	t.Run("sign in again, sign out everywhere", func(t *testing.T) {
		one, two := newVisitor(t, site), newVisitor(t, site)
		for _, p := range []*visitor{one, two} {
			a := p.post("/signin", url.Values{"email": {"viewer@example.com"}, "password": {"correct horse battery"}, "next": {"/favourites"}})
			if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/favourites") {
				t.Fatalf("sign in: %d %s %s", a.status, a.location, a.body)
			}
		}
		must(t, one.follow(one.post("/signout-all", nil)), http.StatusOK, "signed out on every device")
		must(t, one.get("/account"), http.StatusSeeOther)
		// The other browser's refresh token is revoked; its access token
		// lives on until it expires (checked with a moved clock below).
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// A second web replica with the same key serves the same sessions (no
// shared state but the key), renews an access token about to expire through
// auth's refresh rotation, and drops a session auth has ended.
func TestWebSessionsRenewAndScale(t *testing.T) {
	s, env, _ := runSystem(t)
	key, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "web-session-key"))
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	cfg := web.DefaultConfig()
	cfg.AuthURL, cfg.FilmsURL, cfg.SessionKey = s.authURL(), s.filmsURL(), key
	cfg.Clock = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	h, _, err := web.NewHandlers(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	replica := httptest.NewServer(h)
	defer replica.Close()

	p := newVisitor(t, s.webURL())
	signUp(t, p, env, "renew@example.com")
	// The same cookie, on the other replica.
	other := newVisitor(t, replica.URL)
	other.client.Jar.SetCookies(mustURL(t, replica.URL), p.client.Jar.Cookies(mustURL(t, s.webURL())))
	must(t, other.get("/account"), http.StatusOK, "renew@example.com")

	// Twenty minutes on, the access token has expired: the replica renews
	// it and re-seals the cookie.
	skew.Store(int64(20 * time.Minute))
	a := other.get("/account")
	must(t, a, http.StatusOK, "renew@example.com")
	renewed := false
	for _, c := range a.cookies {
		renewed = renewed || (c.Name == "kinoteka_session" && c.MaxAge > 0)
	}
	if !renewed {
		t.Fatal("no renewed session cookie")
	}

	// Signed out everywhere from the first browser, the second's session
	// ends at its next renewal.
	skew.Store(0)
	must(t, p.follow(p.post("/signout-all", nil)), http.StatusOK)
	skew.Store(int64(40 * time.Minute))
	a = other.get("/account")
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/signin") {
		t.Fatalf("a session ended at auth still served: %d %s", a.status, a.location)
	}
	must(t, other.get("/"), http.StatusOK, `href="/signin"`)
}

// An admin adds a genre and a film, edits and deletes it.
func TestWebAdmin(t *testing.T) {
	s, env, _ := runSystem(t)
	p := newVisitor(t, s.webURL())
	signUp(t, p, env, "boss@example.com")
	db := "sqlite:" + filepath.Join(s.cfg.DataDir, "auth.db")
	if err := runAdmin(context.Background(), []string{"grant-role", "-db", db, "boss@example.com", "admin"}, func(string) string { return "" }, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	// The role is in the next token: sign in again.
	p.follow(p.post("/signout", nil))
	a := p.post("/signin", url.Values{"email": {"boss@example.com"}, "password": {"correct horse battery"}, "next": {"/admin"}})
	must(t, p.follow(a), http.StatusOK, "Add a film", "Add a genre", `href="/admin"`)

	must(t, p.post("/admin/films", url.Values{"title": {""}, "year": {"abc"}}), http.StatusUnprocessableEntity,
		`id="f-title-error"`, `id="f-year-error"`)
	must(t, p.post("/admin/films", url.Values{"title": {"Too Early"}, "year": {"1700"}}), http.StatusUnprocessableEntity, `id="f-year-error"`)
	must(t, p.follow(p.post("/admin/genres", url.Values{"name": {"Space Opera"}})), http.StatusOK, "The genre is added", `value="Space Opera"`)
	must(t, p.post("/admin/genres", url.Values{"name": {"space opera"}}), http.StatusUnprocessableEntity, "already exists")

	a = p.post("/admin/films", url.Values{"title": {"Kinoteka: The Movie"}, "year": {"2026"}, "genre": {"Space Opera"},
		"director": {"A. Gopher"}, "runtime_min": {"101"}, "imdb_rating": {"8.5"}})
	page := p.follow(a)
	must(t, page, http.StatusOK, "The film is added", "<h1>Kinoteka: The Movie</h1>", "A. Gopher", "101 min", "8.5 / 10", "Edit this film")
	film := regexp.MustCompile(`/films/(\d+)`).FindString(a.location)
	must(t, p.post("/admin/films", url.Values{"title": {"Kinoteka: The Movie"}, "year": {"2026"}}), http.StatusUnprocessableEntity, "already exists")

	edit := p.get("/admin" + film)
	must(t, edit, http.StatusOK, `value="Kinoteka: The Movie"`, `<option value="Space Opera" selected>`, ">Delete film</button>")
	must(t, p.follow(p.post("/admin"+film, url.Values{"title": {"Kinoteka: The Sequel"}, "year": {"2026"}, "genre": {""}, "director": {""}})),
		http.StatusOK, "The film is saved", "<h1>Kinoteka: The Sequel</h1>")
	must(t, p.follow(p.post("/admin"+film+"/delete", nil)), http.StatusOK, "The film is deleted")
	must(t, p.get(film), http.StatusNotFound)
}

// With films down the catalogue says so; with auth down sign-in says so.
func TestWebSaysWhenAServiceIsDown(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there now
	cfg := web.DefaultConfig()
	cfg.AuthURL, cfg.FilmsURL, cfg.SessionKey = deadURL, deadURL, key
	h, ops, err := web.NewHandlers(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	opsSrv := httptest.NewServer(ops)
	defer opsSrv.Close()
	v := newVisitor(t, srv.URL)
	a := v.get("/")
	must(t, a, http.StatusServiceUnavailable, "The film catalogue is unavailable right now")
	must(t, v.post("/signin", url.Values{"email": {"a@example.com"}, "password": {"correct horse battery"}}),
		http.StatusServiceUnavailable, "Sign-in and accounts are unavailable")
	must(t, v.get("/signin"), http.StatusOK) // pages that need no service still work
	if r := newVisitor(t, opsSrv.URL).get("/readyz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("readyz with both down: %d", r.status)
	}
}

// The banner leads with the address people open.
func TestBannerLeadsWithTheSite(t *testing.T) {
	s, _, _ := runSystem(t)
	var b strings.Builder
	printBanner(&b, s)
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "Kinoteka is running") || strings.TrimSpace(line) == "" {
			continue
		}
		if !strings.Contains(line, "Open "+s.webURL()) {
			t.Fatalf("the first line after the heading is %q, want the site's URL %s", line, s.webURL())
		}
		return
	}
	t.Fatal("empty banner")
}
