package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"kinoteka/internal/httpapi"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageNames are the pages, each templates/NAME.html defining "content".
var pageNames = []string{"catalogue", "film", "form", "verify", "favourites", "account", "admin", "admin_film", "admin_users", "error"}

// page is what every template gets.
type page struct {
	Lang      string
	Title     string
	User      *user
	Flash     string
	Path      string // this page's path and query, for the language switch to come back to
	InboxURL  string
	RequestID string
	Data      any
}

// templates holds every page, parsed once per language with "t" bound to it.
type templates map[string]map[string]*template.Template

func parseTemplates(assets *assetSet) (templates, error) {
	out := templates{}
	for _, lang := range languages {
		funcs := template.FuncMap{
			"t":     func(key string, args ...any) string { return translate(lang, key, args...) },
			"asset": assets.url,
			"otherLang": func() string {
				if lang == "ru" {
					return "en"
				}
				return "ru"
			},
		}
		base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
		if err != nil {
			return nil, err
		}
		out[lang] = map[string]*template.Template{}
		for _, name := range pageNames {
			t, err := base.Clone()
			if err != nil {
				return nil, err
			}
			if _, err := t.ParseFS(templateFS, "templates/"+name+".html"); err != nil {
				return nil, err
			}
			out[lang][name] = t
		}
	}
	return out, nil
}

// render writes the page name with status. A page for a signed-in person
// is never stored by a cache; a public one may be kept but must be checked.
func (a *app) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	if p.Lang == "" {
		p.Lang = language(r)
	}
	p.Path = r.URL.RequestURI()
	p.RequestID = httpapi.RequestID(r.Context())
	if m := r.URL.Query().Get("m"); p.Flash == "" && m != "" {
		if _, ok := messages["en"]["flash."+m]; ok {
			p.Flash = translate(p.Lang, "flash."+m)
		}
	}
	var buf bytes.Buffer
	if err := a.pages[p.Lang][name].ExecuteTemplate(&buf, "layout", p); err != nil {
		a.log.ErrorContext(r.Context(), "template failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", p.Lang)
	h.Set("Vary", "Cookie, Accept-Language")
	if p.User != nil || r.Method != http.MethodGet {
		h.Set("Cache-Control", "no-store")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage is the content of the error template.
type errorPage struct {
	Heading string
	Text    string
}

// fail answers with the page that explains err to a person: a service
// down (503), too many attempts (429, with when to retry), not found, not
// allowed, or our own error (500, logged, with the request id to quote).
func (a *app) fail(w http.ResponseWriter, r *http.Request, u *user, err error) {
	lang := language(r)
	p := &page{Lang: lang, User: u}
	var (
		ua *unavailableError
		ae *apiError
	)
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		// films or auth no longer takes the session's token (its key
		// withdrawn, the session ended elsewhere): sign in again.
		a.endSession(w, r)
		back := r.URL.RequestURI()
		if r.Method != http.MethodGet {
			back = backPath(r)
		}
		a.redirect(w, r, "/signin?m=signin_needed&next="+url.QueryEscape(back))
		return
	case errors.As(err, &ua):
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "30")
		p.Data = errorPage{translate(lang, "error.503.title"), translate(lang, "error.503."+ua.Service)}
		a.log.WarnContext(r.Context(), "a service is unavailable", "service", ua.Service, "err", ua.Err)
	case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
		status = http.StatusTooManyRequests
		secs := int(ae.RetryAfter.Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		p.Data = errorPage{translate(lang, "error.429.title"), translate(lang, "error.429.text", secs)}
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound, errors.Is(err, errNotFound):
		status = http.StatusNotFound
		p.Data = errorPage{translate(lang, "error.404.title"), translate(lang, "error.404.text")}
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden, errors.Is(err, errForbidden):
		status = http.StatusForbidden
		p.Data = errorPage{translate(lang, "error.403.title"), translate(lang, "error.403.text")}
	default:
		a.log.ErrorContext(r.Context(), "page failed", "request_id", httpapi.RequestID(r.Context()), "path", r.URL.Path, "err", err)
		p.Data = errorPage{translate(lang, "error.500.title"), translate(lang, "error.500.text", httpapi.RequestID(r.Context()))}
	}
	p.Title = p.Data.(errorPage).Heading
	a.render(w, r, status, "error", p)
}

var (
	errNotFound  = errors.New("not found")
	errForbidden = errors.New("forbidden")
)

// assetSet is the embedded static files, served under /static/ with a
// content hash in the URL so browsers may keep them for a year, gzipped
// once at start for the browsers that accept it.
type assetSet struct {
	files map[string]asset
}

type asset struct {
	body, gz    []byte
	contentType string
	hash        string
}

//go:embed static
var staticFS embed.FS

func loadAssets() (*assetSet, error) {
	s := &assetSet{files: map[string]asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".md") || strings.HasSuffix(p, "LICENSE") {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}[path.Ext(p)]
		if ct == "" {
			return fmt.Errorf("static file %s: unknown type", p)
		}
		s.files[strings.TrimPrefix(p, "static/")] = asset{body: b, gz: gzipped(b), contentType: ct, hash: hex.EncodeToString(sum[:6])}
		return nil
	})
	return s, err
}

// url is the versioned URL of an asset; an unknown name is a template bug
// the page tests catch.
func (s *assetSet) url(name string) string {
	f, ok := s.files[name]
	if !ok {
		return "/static/missing/" + name
	}
	return "/static/" + name + "?v=" + f.hash
}

func (s *assetSet) serve(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := s.files[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("Vary", "Accept-Encoding")
		if r.URL.Query().Get("v") == f.hash {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		h.Set("ETag", `"`+f.hash+`"`)
		if r.Header.Get("If-None-Match") == `"`+f.hash+`"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := f.body
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.Set("Content-Encoding", "gzip")
			body = f.gz
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}
