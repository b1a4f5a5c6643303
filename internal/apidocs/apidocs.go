// Package apidocs holds each service's API contract, an OpenAPI 3.1 document
// written by hand next to the code it describes, and serves it: the document
// at GET /openapi.json and a page rendered from it at GET /docs. Nothing is
// generated from the handlers, so cmd/kinoteka's TestOpenAPIMatchesRealAnswers
// checks the documents against the answers of the running system, and this
// package's tests check that every route in the services' routes.go is
// documented.
package apidocs

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

//go:embed auth.json films.json mailer.json
var files embed.FS

// Document is one service's OpenAPI document.
type Document struct {
	name string
	raw  []byte
	page func() ([]byte, error)
}

// The services' documents.
var (
	Auth   = mustLoad("auth")
	Films  = mustLoad("films")
	Mailer = mustLoad("mailer")
)

func mustLoad(name string) *Document {
	raw, err := files.ReadFile(name + ".json")
	if err != nil {
		panic(err) // embedded: a missing file does not compile
	}
	d := &Document{name: name, raw: raw}
	// Rendered once, on the first request for the page: the binaries pay
	// nothing for it at start.
	d.page = sync.OnceValues(func() ([]byte, error) { return render(raw) })
	return d
}

// Name is the service the document describes.
func (d *Document) Name() string { return d.name }

// JSON returns the document's bytes, as served.
func (d *Document) JSON() []byte { return bytes.Clone(d.raw) }

// Validate checks that the document is well-formed JSON with the parts the
// page and the contract test rely on.
func (d *Document) Validate() error {
	var s spec
	if err := json.Unmarshal(d.raw, &s); err != nil {
		return fmt.Errorf("apidocs: %s.json: %w", d.name, err)
	}
	if s.OpenAPI != "3.1.0" || s.Info.Title == "" || len(s.Paths) == 0 {
		return fmt.Errorf("apidocs: %s.json: want openapi 3.1.0 with a title and paths", d.name)
	}
	return nil
}

// cacheControl lets clients and proxies keep the contract for five minutes:
// it changes only with a new release.
const cacheControl = "public, max-age=300"

// ServeJSON answers GET /openapi.json.
func (d *Document) ServeJSON() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", cacheControl)
		w.Header().Set("Content-Length", strconv.Itoa(len(d.raw)))
		_, _ = w.Write(d.raw)
	})
}

// ServePage answers GET /docs with the document rendered as one HTML page
// that loads nothing else (no scripts, no fonts, no CDN).
func (d *Document) ServePage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := d.page()
		if err != nil {
			// Only a broken embedded document gets here, which the tests catch.
			http.Error(w, "the API page could not be rendered", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", cacheControl)
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = w.Write(page)
	})
}
