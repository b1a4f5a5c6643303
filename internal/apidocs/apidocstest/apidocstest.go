// Package apidocstest checks real HTTP exchanges against the services'
// OpenAPI documents: a Recorder captures what a client sent and received, a
// Contract says whether each exchange is one the document allows. OpenAPI
// 3.1 schemas are JSON Schema 2020-12, so they are validated with a JSON
// Schema validator, straight from the document.
package apidocstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Exchange is one recorded request and its answer.
type Exchange struct {
	Method        string
	URL           *url.URL
	RequestHeader http.Header
	RequestBody   []byte
	Status        int
	Header        http.Header
	Body          []byte
}

func (e Exchange) String() string { return fmt.Sprintf("%s %s → %d", e.Method, e.URL.Path, e.Status) }

// Recorder is an http.RoundTripper that keeps a copy of every exchange it
// carries; the caller still reads the answer as usual.
type Recorder struct {
	Next http.RoundTripper // nil: http.DefaultTransport

	mu        sync.Mutex
	exchanges []Exchange
}

// RoundTrip sends req through Next and records it with its answer.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	next := r.Next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.exchanges = append(r.exchanges, Exchange{
		Method: req.Method, URL: req.URL, RequestHeader: req.Header.Clone(), RequestBody: reqBody,
		Status: resp.StatusCode, Header: resp.Header.Clone(), Body: body,
	})
	r.mu.Unlock()
	return resp, nil
}

// Exchanges returns what was recorded so far.
func (r *Recorder) Exchanges() []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.exchanges)
}

// Contract is one service's document, ready to check exchanges with the
// service at its base URLs.
type Contract struct {
	Name  string
	hosts []string
	doc   map[string]any
	ops   []op
	c     *jsonschema.Compiler
	loc   string

	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema
	seen     map[string]bool
}

type op struct {
	method, template string
	segments         []string
	ptr              string // JSON pointer of the operation in the document
	value            map[string]any
}

// Load reads an OpenAPI 3.1 document for the service answering at
// baseURLs: its API's and its operators' listener (the probes, metrics and
// the document itself are on the latter).
func Load(name string, document []byte, baseURLs ...string) (*Contract, error) {
	var hosts []string
	for _, b := range baseURLs {
		u, err := url.Parse(b)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, u.Host)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(document))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	root, ok := doc.(map[string]any)
	if !ok || root["openapi"] != "3.1.0" {
		return nil, fmt.Errorf("%s: not an OpenAPI 3.1.0 document", name)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	loc := "https://kinoteka.invalid/" + name + "/openapi.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	k := &Contract{Name: name, hosts: hosts, doc: root, c: c, loc: loc, compiled: map[string]*jsonschema.Schema{}, seen: map[string]bool{}}
	paths, _ := root["paths"].(map[string]any)
	for tmpl, item := range paths {
		item, _ := item.(map[string]any)
		for method, o := range item {
			o, ok := o.(map[string]any)
			if !ok || method == "parameters" {
				continue
			}
			k.ops = append(k.ops, op{
				method: strings.ToUpper(method), template: tmpl, segments: strings.Split(tmpl, "/"),
				ptr: "/paths/" + escape(tmpl) + "/" + method, value: o,
			})
		}
	}
	return k, nil
}

// Covers reports whether the exchange went to this contract's service.
func (k *Contract) Covers(e Exchange) bool { return slices.Contains(k.hosts, e.URL.Host) }

// Operations lists every documented operation as "METHOD /template".
func (k *Contract) Operations() []string {
	var out []string
	for _, o := range k.ops {
		out = append(out, o.method+" "+o.template)
	}
	slices.Sort(out)
	return out
}

// Unexercised lists the documented operations no checked exchange used.
func (k *Contract) Unexercised() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, o := range k.Operations() {
		if !k.seen[o] {
			out = append(out, o)
		}
	}
	return out
}

// Check says whether the document allows the exchange: a documented
// operation, a documented status, the documented media type and a body that
// matches its schema; for a request that succeeded, a request body that
// matches too (failed requests are often meant to be malformed).
func (k *Contract) Check(e Exchange) error {
	o, ok := k.find(e.Method, e.URL.Path)
	if !ok {
		return fmt.Errorf("%s: %s %s is not documented", k.Name, e.Method, e.URL.Path)
	}
	k.mu.Lock()
	k.seen[o.method+" "+o.template] = true
	k.mu.Unlock()
	var errs []error
	if e.Status < 300 && len(e.RequestBody) > 0 {
		if err := k.checkRequest(o, e); err != nil {
			errs = append(errs, err)
		}
	}
	if err := k.checkResponse(o, e); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %s: %w", k.Name, e, err)
	}
	return nil
}

func (k *Contract) find(method, path string) (op, bool) {
	segs := strings.Split(path, "/")
	for _, o := range k.ops {
		if o.method != method || len(o.segments) != len(segs) {
			continue
		}
		match := true
		for i, s := range o.segments {
			if !(strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && segs[i] != "") && s != segs[i] {
				match = false
				break
			}
		}
		if match {
			return o, true
		}
	}
	return op{}, false
}

func (k *Contract) checkRequest(o op, e Exchange) error {
	body, ok := o.value["requestBody"].(map[string]any)
	if !ok {
		return errors.New("the request has a body, the operation documents none")
	}
	mt := mediaType(e.RequestHeader.Get("Content-Type"))
	content, _ := body["content"].(map[string]any)
	if _, ok := content[mt]; !ok {
		return fmt.Errorf("request media type %q is not documented", mt)
	}
	return k.validate(o.ptr+"/requestBody/content/"+escape(mt)+"/schema", e.RequestBody, "request body")
}

func (k *Contract) checkResponse(o op, e Exchange) error {
	responses, _ := o.value["responses"].(map[string]any)
	status := strconv.Itoa(e.Status)
	resp, ok := responses[status]
	ptr := o.ptr + "/responses/" + status
	if !ok {
		// OpenAPI's ranges, e.g. 4XX.
		status = status[:1] + "XX"
		if resp, ok = responses[status]; !ok {
			return fmt.Errorf("status %d is not documented", e.Status)
		}
		ptr = o.ptr + "/responses/" + status
	}
	r, _ := resp.(map[string]any)
	if ref, ok := r["$ref"].(string); ok {
		ptr = strings.TrimPrefix(ref, "#")
		r, _ = k.resolve(ptr).(map[string]any)
	}
	content, _ := r["content"].(map[string]any)
	if len(e.Body) == 0 {
		if len(content) > 0 && e.Method != http.MethodHead {
			return fmt.Errorf("empty body, the document promises %v", keys(content))
		}
		return nil
	}
	if len(content) == 0 {
		return fmt.Errorf("a body (%.60q) where the document promises none", e.Body)
	}
	mt := mediaType(e.Header.Get("Content-Type"))
	if _, ok := content[mt]; !ok {
		return fmt.Errorf("media type %q is not documented, only %v", mt, keys(content))
	}
	if !strings.HasSuffix(mt, "json") {
		return nil
	}
	return k.validate(ptr+"/content/"+escape(mt)+"/schema", e.Body, "response body")
}

func (k *Contract) validate(ptr string, body []byte, what string) error {
	k.mu.Lock()
	sch, ok := k.compiled[ptr]
	if !ok {
		var err error
		if sch, err = k.c.Compile(k.loc + "#" + ptr); err != nil {
			k.mu.Unlock()
			return fmt.Errorf("compile the schema at %s: %w", ptr, err)
		}
		k.compiled[ptr] = sch
	}
	k.mu.Unlock()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s is not JSON: %w", what, err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("%s %s does not match the schema at %s: %w", what, compact(body), ptr, err)
	}
	return nil
}

// resolve follows a JSON pointer in the document.
func (k *Contract) resolve(ptr string) any {
	var v any = k.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]
	}
	return v
}

// escape makes s one token of a JSON pointer in a URL fragment.
func escape(s string) string {
	s = strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
	return url.PathEscape(s)
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return contentType
	}
	return mt
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func compact(body []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, body) != nil || b.Len() > 300 {
		return fmt.Sprintf("%.300q", body)
	}
	return b.String()
}

// Service is where one service answers: the base URLs of its API and of
// its operators' listener, which serves the document (the mailer has only
// the latter: give it as both).
type Service struct{ API, Ops string }

// CheckServices fetches each service's /openapi.json from its operators'
// listener (services maps a name to where it answers) and checks every
// recorded exchange with one of them against its document, failing t for
// each mismatch. Exchanges with other hosts (the mail API) are left alone.
// It returns the contracts and how many exchanges were checked.
func CheckServices(t testing.TB, rec *Recorder, services map[string]Service) ([]*Contract, int) {
	t.Helper()
	var contracts []*Contract
	for name, s := range services {
		resp, err := http.Get(s.Ops + "/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		doc, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /openapi.json: %d %v", name, resp.StatusCode, err)
		}
		k, err := Load(name, doc, s.API, s.Ops)
		if err != nil {
			t.Fatal(err)
		}
		contracts = append(contracts, k)
	}
	checked := 0
	for _, ex := range rec.Exchanges() {
		i := slices.IndexFunc(contracts, func(k *Contract) bool { return k.Covers(ex) })
		if i < 0 {
			continue
		}
		checked++
		if err := contracts[i].Check(ex); err != nil {
			t.Error(err)
		}
	}
	return contracts, checked
}
