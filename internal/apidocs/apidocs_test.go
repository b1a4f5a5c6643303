package apidocs

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"kinoteka/internal/a11y"
)

var documents = []*Document{Auth, Films, Mailer}

func TestDocumentsAreValid(t *testing.T) {
	for _, d := range documents {
		if err := d.Validate(); err != nil {
			t.Error(err)
		}
	}
}

// routeFiles are the files that register each service's routes.
var routeFiles = map[*Document][]string{
	Auth:   {"../auth/routes.go"},
	Films:  {"../films/routes.go"},
	Mailer: {"../mailer/routes.go"},
}

var routePattern = regexp.MustCompile(`"(GET|POST|PUT|PATCH|DELETE) (/[^" ]*)"`)

// Every route a service registers is documented, and every documented
// operation is a route: a new route without a document fails here.
func TestEveryRouteIsDocumented(t *testing.T) {
	for _, d := range documents {
		var routes []string
		for _, f := range routeFiles[d] {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
				routes = append(routes, m[1]+" "+m[2])
			}
			if strings.Contains(string(src), "httpapi.Health(") {
				routes = append(routes, "GET /healthz", "GET /readyz")
			}
		}
		documented := operations(t, d)
		slices.Sort(routes)
		if !slices.Equal(routes, documented) {
			t.Errorf("%s: routes and document differ\nroutes:     %v\ndocumented: %v", d.Name(), routes, documented)
		}
	}
}

func operations(t *testing.T, d *Document) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(d.JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" {
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

// The three documents describe one problem+json: the same schema each.
func TestProblemSchemaIsShared(t *testing.T) {
	var first string
	for _, d := range documents {
		var doc struct {
			Components struct {
				Schemas map[string]json.RawMessage `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(d.JSON(), &doc); err != nil {
			t.Fatal(err)
		}
		p := string(doc.Components.Schemas["Problem"])
		if p == "" {
			t.Fatalf("%s: no Problem schema", d.Name())
		}
		if first == "" {
			first = p
		} else if p != first {
			t.Errorf("%s: its Problem schema differs from auth's", d.Name())
		}
	}
}

func TestServeJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	Films.ServeJSON().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" ||
		!strings.HasPrefix(rec.Header().Get("Cache-Control"), "public") {
		t.Fatalf("GET /openapi.json: %d %v", rec.Code, rec.Header())
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc["openapi"] != "3.1.0" {
		t.Fatalf("body: %v %.80s", err, rec.Body)
	}
}

// The page lists every operation, its parameters and schemas, and loads
// nothing from anywhere: no script, no stylesheet link, no image.
func TestServePage(t *testing.T) {
	for _, d := range documents {
		rec := httptest.NewRecorder()
		d.ServePage().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs", nil))
		page := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("%s: GET /docs: %d %v %.200s", d.Name(), rec.Code, rec.Header(), page)
		}
		for _, op := range operations(t, d) {
			method, path, _ := strings.Cut(op, " ")
			if !strings.Contains(page, ">"+method+"</span> <code>"+path+"</code>") {
				t.Errorf("%s: the page does not show %s", d.Name(), op)
			}
		}
		for _, banned := range []string{"<script", "<link", "<img", "@import", "http://", "<iframe"} {
			if strings.Contains(page, banned) {
				t.Errorf("%s: the page contains %q", d.Name(), banned)
			}
		}
	}
	rec := httptest.NewRecorder()
	Films.ServePage().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs", nil))
	for _, want := range []string{
		"<code>year_from</code>", "<code>cursor</code>", `<a href="#schema-Film">Film</a>`, `id="schema-Problem"`,
		"application/problem&#43;json", "<code>&#34;-rating&#34;</code>", "bearerAuth (required)",
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("films page lacks %s", want)
		}
	}
}

// Each page keeps its accessible structure: language, title, viewport, one
// main landmark and one h1, headings that never skip a level, a scope on
// every header cell, named links, unique ids, and contents links that land
// on an operation. Its Lighthouse scores are in docs/benchmarks.md.
func TestPageIsAccessible(t *testing.T) {
	for _, d := range documents {
		page, err := d.page()
		if err != nil {
			t.Fatal(err)
		}
		problems, err := a11y.Check(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", d.Name(), p)
		}
		for _, op := range operations(t, d) {
			method, path, _ := strings.Cut(op, " ")
			if !strings.Contains(string(page), "\">"+method+" "+path+"</a></li>") {
				t.Errorf("%s: the contents do not list %s", d.Name(), op)
			}
		}
	}
}
