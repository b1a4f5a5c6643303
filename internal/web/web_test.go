package web

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/a11y"
)

func TestSealedSessionOpensOnlyUnaltered(t *testing.T) {
	sl, err := newSealer([]byte(strings.Repeat("a", 32)))
	if err != nil {
		t.Fatal(err)
	}
	want := session{Refresh: "refresh-token", Access: "a.b.c", AccessExp: time.Unix(1_800_000_000, 0).UTC()}
	v, err := sl.seal(want)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "refresh-token") || strings.Contains(v, "a.b.c") {
		t.Fatal("the sealed value shows what it holds")
	}
	got, err := sl.open(v)
	if err != nil || got != want {
		t.Fatalf("open: %+v, %v", got, err)
	}
	other, _ := newSealer([]byte(strings.Repeat("b", 32)))
	flipped := []byte(v)
	flipped[len(flipped)/2] ^= 1
	for name, bad := range map[string]string{
		"another key": func() string { s, _ := other.seal(want); return s }(),
		"altered":     string(flipped),
		"truncated":   v[:len(v)-4],
		"empty":       "",
		"not base64":  "!!!",
	} {
		if _, err := sl.open(bad); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
	if _, err := newSealer([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("k", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"WEB_AUTH_URL": "http://auth:8081", "WEB_FILMS_URL": "http://films:8082", "WEB_SESSION_KEY_FILE": keyFile,
		"WEB_SECURE_COOKIES": "true", "WEB_API_TIMEOUT": "3s"}
	cfg, read, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuthURL != "http://auth:8081" || cfg.FilmsURL != "http://films:8082" || len(cfg.SessionKey) != 40 || !cfg.SecureCookies || cfg.APITimeout != 3*time.Second || cfg.InboxURL != "" {
		t.Errorf("config %+v", cfg)
	}
	for _, name := range []string{"WEB_AUTH_URL", "WEB_FILMS_URL", "WEB_SESSION_KEY", "WEB_SECURE_COOKIES", "WEB_INBOX_URL", "WEB_API_TIMEOUT"} {
		if !slices.Contains(read, name) {
			t.Errorf("%s is not read", name)
		}
	}
	if s := cfg.LogValue().String(); strings.Contains(s, "kkkk") {
		t.Errorf("the key is logged: %s", s)
	}

	bad := map[string]string{"WEB_AUTH_URL": "auth:8081", "WEB_FILMS_URL": "ftp://films", "WEB_SESSION_KEY": "short",
		"WEB_INBOX_URL": "nope", "WEB_API_TIMEOUT": "0s"}
	_, err = LoadConfig(func(k string) string { return bad[k] })
	for _, name := range []string{"WEB_AUTH_URL", "WEB_FILMS_URL", "WEB_SESSION_KEY", "WEB_INBOX_URL", "WEB_API_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	if _, err := LoadConfig(func(k string) string { return map[string]string{"WEB_SECURE_COOKIES": "maybe"}[k] }); err == nil || !strings.Contains(err.Error(), "WEB_SECURE_COOKIES") {
		t.Errorf("a malformed bool: %v", err)
	}
	if _, err := LoadConfig(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "WEB_SESSION_KEY") {
		t.Errorf("no key: %v", err)
	}
}

func TestLanguage(t *testing.T) {
	for _, c := range []struct{ cookie, accept, want string }{
		{"", "", "en"},
		{"", "ru-RU,ru;q=0.9,en;q=0.8", "ru"},
		{"", "de-DE, ru;q=0.5", "ru"},
		{"", "fr, de", "en"},
		{"", "ru;q=0, en", "en"},
		{"en", "ru", "en"},
		{"ru", "en", "ru"},
		{"xx", "ru", "ru"},
	} {
		r := newRequest(c.cookie, c.accept)
		if got := language(r); got != c.want {
			t.Errorf("cookie %q Accept-Language %q: %s, want %s", c.cookie, c.accept, got, c.want)
		}
	}
}

// Every message exists in every language, with the same formatting verbs.
func TestMessagesAreComplete(t *testing.T) {
	verbs := func(s string) string {
		var out []string
		for i := 0; i < len(s)-1; i++ {
			if s[i] == '%' {
				out = append(out, s[i:i+2])
			}
		}
		return strings.Join(out, "")
	}
	for _, lang := range languages {
		for key, en := range messages["en"] {
			m, ok := messages[lang][key]
			if !ok {
				t.Errorf("%s: no %q", lang, key)
				continue
			}
			if verbs(m) != verbs(en) && !strings.HasPrefix(key, "film.ours_value") {
				t.Errorf("%s %q: verbs %q, English has %q", lang, key, verbs(m), verbs(en))
			}
		}
		for key := range messages[lang] {
			if _, ok := messages["en"][key]; !ok {
				t.Errorf("%s has %q, English does not", lang, key)
			}
		}
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/films/1?m=x": "/films/1?m=x", "": "/", "https://evil.example/": "/", "//evil.example": "/",
		"/\\evil.example": "/", "films": "/", "/a\r\nSet-Cookie: x": "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := withFlash("/films/1#your-review", "review_saved"); got != "/films/1?m=review_saved#your-review" {
		t.Errorf("withFlash: %s", got)
	}
	if got := withFlash("/favourites?cursor=x", "signed_in"); got != "/favourites?cursor=x&m=signed_in" {
		t.Errorf("withFlash: %s", got)
	}
}

// Every page renders in every language, every message key it names exists,
// its accessible structure holds (internal/a11y: landmarks, one h1 and
// headings in order, every control named, unique ids), and nothing on it is
// loaded from another host or run inline.
func TestEveryPageRendersInEveryLanguage(t *testing.T) {
	assets, err := loadAssets()
	if err != nil {
		t.Fatal(err)
	}
	pages, err := parseTemplates(assets)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{pages: pages, assets: assets, log: slog.New(slog.DiscardHandler), now: time.Now}
	admin := &user{Email: "a@example.com", Roles: []string{"admin", "user"}}
	// Each page with the forms it really carries, every field in error.
	bad := func(f *form) *form {
		f.Error = "bad"
		for _, fl := range f.Fields {
			fl.Error = "bad"
		}
		return f
	}
	button := func(action string) *form { return &form{Action: action, Submit: "Go", Hidden: []hidden{{"on", "1"}}} }
	for _, lang := range languages {
		data := map[string]any{
			"catalogue": cataloguePage{Films: []filmItem{{ID: 1, Title: "A", Year: 2000}}, Next: "/?cursor=x", First: "/", Sorts: []option{{Value: "id", Label: "x"}}, Error: "bad"},
			"film": filmView{Film: film{ID: 1, Title: "A"}, Facts: []fact{{"Year", "2000"}}, Reviews: []reviewItem{{Rating: "9 / 10", Text: "t", Mine: true, Author: "Ann"}, {Rating: "3 / 10", Author: "Reader 1a2b"}},
				NextReview: "/films/1?reviews=x", FavForm: button("/films/1/favourite"), Review: bad(a.reviewForm(lang, "/films/1", &review{Rating: 9})), DeleteForm: button("/films/1/review/delete")},
			"form":       formPage{Heading: "H", Intro: "I", Form: bad(a.signupForm(lang)), Links: []link{{Text: "x", Href: "/"}}},
			"verify":     verifyPage{Email: "a@example.com", Form: bad(a.verifyForm(lang, "a@example.com")), Resend: button("/verify/resend"), WaitSecs: 30, Wait: "wait"},
			"favourites": favouritesPage{Films: []filmItem{{ID: 1, Title: "A", Year: 2000}}, Next: "/favourites?cursor=x"},
			"account": accountPage{Me: me{Email: "a@example.com", Name: "Ann", Roles: []string{"user"}}, SignOut: button("/signout"), SignOutAll: button("/signout-all"),
				Sessions: []sessionItem{{Current: true, Device: "Firefox", IP: "127.0.0.1"}, {Device: "Chromium", End: button("/account/sessions/s2/end")}, {Device: "Safari", End: button("/account/sessions/s3/end")}},
				Name:     bad(a.nameForm(lang, "Ann")), Password: bad(a.passwordForm(lang)), Email: bad(a.emailForm(lang)), Delete: bad(a.deleteForm(lang))},
			"admin_users": usersPage{Q: "ann", Next: "/admin/users?cursor=x", First: "/admin/users", Users: []userRow{
				{Name: "Ann", Email: "a@example.com", Roles: "admin, user", Admin: true, Role: button("/admin/users/1/admin")},
				{Name: "Bob", Email: "b@example.com", Roles: "user", Role: button("/admin/users/2/admin")}}},
			"admin":      adminPage{Film: bad(a.filmForm(lang, "/admin/films", "Add", []genre{{Name: "Drama"}})), Genre: bad(a.genreForm(lang))},
			"admin_film": adminFilmPage{Film: film{ID: 1, Title: "A"}, Form: bad(a.filmForm(lang, "/admin/films/1", "Save", nil)), Delete: button("/admin/films/1/delete")},
			"error":      errorPage{"H", "T"},
		}
		for _, name := range pageNames {
			for _, u := range []*user{nil, admin} {
				w := httptest.NewRecorder()
				a.render(w, newRequest(lang, ""), 200, name, &page{Title: "T", User: u, InboxURL: "http://127.0.0.1:8025", Data: data[name]})
				body := w.Body.String()
				if w.Code != 200 || !strings.Contains(body, `<html lang="`+lang+`">`) {
					t.Fatalf("%s %s: %d\n%s", lang, name, w.Code, body)
				}
				problems, err := a11y.Check(w.Body.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range problems {
					t.Errorf("%s %s (signed in %v): %s", lang, name, u != nil, p)
				}
				for _, bad := range []string{"[[missing", "<script>", "onclick", "style=", "http://cdn", "https://"} {
					if strings.Contains(body, bad) {
						t.Errorf("%s %s holds %q", lang, name, bad)
					}
				}
			}
		}
	}
}
