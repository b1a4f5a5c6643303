package apidocs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"strings"
)

// spec is the part of an OpenAPI document the page shows. Schemas stay raw:
// they are rendered in the order they are written.
type spec struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Paths      json.RawMessage `json:"paths"`
	Components struct {
		Schemas         json.RawMessage      `json:"schemas"`
		Responses       map[string]response  `json:"responses"`
		Parameters      map[string]parameter `json:"parameters"`
		Headers         map[string]header    `json:"headers"`
		SecuritySchemes map[string]struct {
			Scheme       string `json:"scheme"`
			BearerFormat string `json:"bearerFormat"`
			Description  string `json:"description"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

type operation struct {
	OperationID string      `json:"operationId"`
	Summary     string      `json:"summary"`
	Description string      `json:"description"`
	Parameters  []parameter `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]response    `json:"responses"`
	Security  *[]map[string][]string `json:"security"`
}

type parameter struct {
	Ref         string          `json:"$ref"`
	Name        string          `json:"name"`
	In          string          `json:"in"`
	Description string          `json:"description"`
	Required    bool            `json:"required"`
	Schema      json.RawMessage `json:"schema"`
}

type header struct {
	Ref         string `json:"$ref"`
	Description string `json:"description"`
}

type response struct {
	Ref         string            `json:"$ref"`
	Description string            `json:"description"`
	Headers     map[string]header `json:"headers"`
	Content     map[string]struct {
		Schema json.RawMessage `json:"schema"`
	} `json:"content"`
}

// The page's view of the document.
type (
	pageView struct {
		Title, Version, Description string
		Security                    []string
		Operations                  []pageOp
		Schemas                     []pageSchema
	}
	pageOp struct {
		Method, Path, Anchor, Summary, Description, Auth string
		Params                                           []pageParam
		Body                                             []pageContent
		Responses                                        []pageResponse
	}
	pageParam struct {
		Name, In, Description string
		Required              bool
		Schema                template.HTML
	}
	pageContent struct {
		MediaType string
		Schema    template.HTML
	}
	pageResponse struct {
		Status, Description string
		Headers             []string
		Content             []pageContent
	}
	pageSchema struct {
		Name   string
		Schema template.HTML
	}
)

var methods = []string{"get", "post", "put", "patch", "delete"}

// render turns an OpenAPI document into the /docs page.
func render(raw []byte) ([]byte, error) {
	var s spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	v := pageView{Title: s.Info.Title, Version: s.Info.Version, Description: s.Info.Description}
	for _, name := range sortedKeys(s.Components.SecuritySchemes) {
		sc := s.Components.SecuritySchemes[name]
		v.Security = append(v.Security, fmt.Sprintf("%s: %s %s — %s", name, sc.Scheme, sc.BearerFormat, sc.Description))
	}
	paths, err := orderedObject(s.Paths)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		item, err := orderedObject(p.value)
		if err != nil {
			return nil, err
		}
		var shared []parameter
		for _, m := range item {
			if m.key == "parameters" {
				if err := json.Unmarshal(m.value, &shared); err != nil {
					return nil, err
				}
			}
		}
		for _, m := range item {
			if !slices.Contains(methods, m.key) {
				continue
			}
			var o operation
			if err := json.Unmarshal(m.value, &o); err != nil {
				return nil, fmt.Errorf("%s %s: %w", m.key, p.key, err)
			}
			op, err := s.viewOp(strings.ToUpper(m.key), p.key, o, shared)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", m.key, p.key, err)
			}
			v.Operations = append(v.Operations, op)
		}
	}
	schemas, err := orderedObject(s.Components.Schemas)
	if err != nil {
		return nil, err
	}
	for _, sc := range schemas {
		h, err := schemaHTML(sc.value)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", sc.key, err)
		}
		v.Schemas = append(v.Schemas, pageSchema{Name: sc.key, Schema: h})
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (s spec) viewOp(method, path string, o operation, shared []parameter) (pageOp, error) {
	op := pageOp{Method: method, Path: path, Anchor: o.OperationID, Summary: o.Summary, Description: o.Description, Auth: "public"}
	if o.Security != nil {
		var schemes []string
		optional := false
		for _, req := range *o.Security {
			if len(req) == 0 {
				optional = true
			}
			schemes = append(schemes, sortedKeys(req)...)
		}
		switch {
		case len(schemes) > 0 && optional:
			op.Auth = strings.Join(schemes, ", ") + " (optional; a token that is sent must be valid)"
		case len(schemes) > 0:
			op.Auth = strings.Join(schemes, ", ") + " (required)"
		}
	}
	for _, p := range append(slices.Clone(shared), o.Parameters...) {
		if ref := p.Ref; ref != "" {
			var ok bool
			if p, ok = s.Components.Parameters[refName(ref)]; !ok {
				return op, fmt.Errorf("unknown parameter %s", ref)
			}
		}
		h, err := schemaHTML(p.Schema)
		if err != nil {
			return op, err
		}
		op.Params = append(op.Params, pageParam{Name: p.Name, In: p.In, Description: p.Description, Required: p.Required, Schema: h})
	}
	if o.RequestBody != nil {
		for _, mt := range sortedKeys(o.RequestBody.Content) {
			h, err := schemaHTML(o.RequestBody.Content[mt].Schema)
			if err != nil {
				return op, err
			}
			op.Body = append(op.Body, pageContent{MediaType: mt, Schema: h})
		}
	}
	for _, status := range sortedKeys(o.Responses) {
		r := o.Responses[status]
		if ref := r.Ref; ref != "" {
			var ok bool
			if r, ok = s.Components.Responses[refName(ref)]; !ok {
				return op, fmt.Errorf("unknown response %s", ref)
			}
		}
		pr := pageResponse{Status: status, Description: r.Description}
		for _, name := range sortedKeys(r.Headers) {
			h := r.Headers[name]
			if h.Ref != "" {
				h = s.Components.Headers[refName(h.Ref)]
			}
			pr.Headers = append(pr.Headers, name+": "+h.Description)
		}
		for _, mt := range sortedKeys(r.Content) {
			h, err := schemaHTML(r.Content[mt].Schema)
			if err != nil {
				return op, err
			}
			pr.Content = append(pr.Content, pageContent{MediaType: mt, Schema: h})
		}
		op.Responses = append(op.Responses, pr)
	}
	return op, nil
}

// schemaHTML renders a JSON Schema compactly: a $ref as a link to the
// schema's section, an object as a table of its properties, anything else
// as its type and constraints.
func schemaHTML(raw json.RawMessage) (template.HTML, error) {
	var b strings.Builder
	if err := writeSchema(&b, raw); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil // every piece of text is escaped by writeSchema
}

func writeSchema(b *strings.Builder, raw json.RawMessage) error {
	if len(raw) == 0 {
		b.WriteString("any")
		return nil
	}
	var s map[string]json.RawMessage
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	str := func(key string) string {
		var v string
		_ = json.Unmarshal(s[key], &v)
		return v
	}
	if ref := str("$ref"); ref != "" {
		name := template.HTMLEscapeString(refName(ref))
		fmt.Fprintf(b, `<a href="#schema-%s">%s</a>`, name, name)
		return nil
	}
	var types []string
	if err := json.Unmarshal(s["type"], &types); err != nil {
		if t := str("type"); t != "" {
			types = []string{t}
		}
	}
	switch {
	case s["const"] != nil:
		b.WriteString("<code>" + template.HTMLEscapeString(string(s["const"])) + "</code>")
	case s["enum"] != nil:
		var vals []json.RawMessage
		_ = json.Unmarshal(s["enum"], &vals)
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = "<code>" + template.HTMLEscapeString(string(v)) + "</code>"
		}
		b.WriteString("one of " + strings.Join(parts, ", "))
	case slices.Contains(types, "array"):
		b.WriteString("array of ")
		if err := writeSchema(b, s["items"]); err != nil {
			return err
		}
	case len(types) > 0:
		b.WriteString(template.HTMLEscapeString(strings.Join(types, " | ")))
	default:
		if s["properties"] == nil {
			b.WriteString("any")
		}
	}
	var notes []string
	if f := str("format"); f != "" {
		notes = append(notes, f)
	}
	for _, c := range []struct{ key, label string }{
		{"minimum", "≥ "}, {"maximum", "≤ "}, {"minLength", "length ≥ "}, {"maxLength", "length ≤ "}, {"pattern", "matches "}, {"default", "default "},
	} {
		if v, ok := s[c.key]; ok {
			notes = append(notes, c.label+string(v))
		}
	}
	if len(notes) > 0 {
		b.WriteString(" <small>(" + template.HTMLEscapeString(strings.Join(notes, ", ")) + ")</small>")
	}
	if d := str("description"); d != "" {
		b.WriteString(` <span class="d">` + template.HTMLEscapeString(d) + `</span>`)
	}
	if s["properties"] != nil {
		return writeProperties(b, s)
	}
	if ap := s["additionalProperties"]; ap != nil && string(ap) != "false" {
		b.WriteString(" map of ")
		return writeSchema(b, ap)
	}
	return nil
}

func writeProperties(b *strings.Builder, s map[string]json.RawMessage) error {
	props, err := orderedObject(s["properties"])
	if err != nil {
		return err
	}
	var required []string
	_ = json.Unmarshal(s["required"], &required)
	b.WriteString(`<table class="props"><tr><th scope="col">field</th><th scope="col">schema</th></tr>`)
	for _, p := range props {
		name := template.HTMLEscapeString(p.key)
		if slices.Contains(required, p.key) {
			name = "<b>" + name + "</b> <small>required</small>"
		}
		b.WriteString(`<tr><th scope="row"><code>` + name + "</code></th><td>")
		if err := writeSchema(b, p.value); err != nil {
			return err
		}
		b.WriteString("</td></tr>")
	}
	b.WriteString("</table>")
	if string(s["additionalProperties"]) == "false" {
		b.WriteString(`<small>No other fields.</small>`)
	}
	return nil
}

type member struct {
	key   string
	value json.RawMessage
}

// orderedObject returns a JSON object's members in the order written, which
// a Go map would lose.
func orderedObject(raw json.RawMessage) ([]member, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("apidocs: want a JSON object, got %.40s", raw)
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{key: t.(string), value: v})
	}
	return out, nil
}

func refName(ref string) string { return ref[strings.LastIndexByte(ref, '/')+1:] }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// The page aims at WCAG 2.1 AA (Lighthouse accessibility 100, see
// docs/benchmarks.md): landmarks (header, nav, main), headings that never
// skip a level, header cells with a scope, text colours of at least 4.5:1
// (the method colours too), contents links tall enough to tap, and a
// visible focus ring.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} API {{.Version}}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222;background:#fff}
h2{margin-top:2.5rem;border-bottom:1px solid #ccc}
section.op{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.m{display:inline-block;min-width:4.5rem;font-weight:bold;font-family:monospace}
.GET{color:#0a6b3d}.POST{color:#1550b5}.PUT{color:#8a4b00}.PATCH{color:#6f3d99}.DELETE{color:#b02a2a}
table{border-collapse:collapse;margin:.3rem 0}td,th{border:1px solid #e3e3e3;padding:.2rem .5rem;vertical-align:top;text-align:left}
th[scope=row]{font-weight:normal}a{color:#05c}a:focus-visible{outline:3px solid #1550b5;outline-offset:2px}
.d{color:#555}code{background:#f4f4f4;padding:0 .2rem}
nav ul{list-style:none;margin:0;padding:0}nav a{display:inline-block;padding:.2rem 0;font-family:monospace}
</style></head><body>
<header>
<h1>{{.Title}} <small>{{.Version}}</small></h1>
<p>{{.Description}}</p>
<p>The machine-readable contract: <a href="openapi.json">openapi.json</a> (OpenAPI 3.1).</p>
{{range .Security}}<p>Authentication — {{.}}</p>{{end}}
</header>
<nav aria-labelledby="contents"><h2 id="contents">Contents</h2>
<ul>{{range .Operations}}<li><a href="#{{.Anchor}}">{{.Method}} {{.Path}}</a></li>{{end}}
{{if .Schemas}}<li><a href="#schemas">Schemas</a></li>{{end}}</ul></nav>
<main>
<h2 id="operations">Operations</h2>
{{range .Operations}}<section class="op" id="{{.Anchor}}">
<h3><span class="m {{.Method}}">{{.Method}}</span> <code>{{.Path}}</code> — {{.Summary}}</h3>
{{with .Description}}<p>{{.}}</p>{{end}}
<p>Authentication: {{.Auth}}</p>
{{with .Params}}<h4>Parameters</h4><table><tr><th scope="col">name</th><th scope="col">in</th><th scope="col">schema</th><th scope="col">meaning</th></tr>
{{range .}}<tr><th scope="row"><code>{{.Name}}</code>{{if .Required}} <small>required</small>{{end}}</th><td>{{.In}}</td><td>{{.Schema}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{with .Body}}<h4>Request body</h4>{{range .}}<p><code>{{.MediaType}}</code></p>{{.Schema}}{{end}}{{end}}
<h4>Responses</h4><table><tr><th scope="col">status</th><th scope="col">meaning</th><th scope="col">body</th></tr>
{{range .Responses}}<tr><th scope="row"><b>{{.Status}}</b></th><td>{{.Description}}{{range .Headers}}<br><small>{{.}}</small>{{end}}</td>
<td>{{range .Content}}<code>{{.MediaType}}</code> {{.Schema}}{{else}}—{{end}}</td></tr>{{end}}</table>
</section>{{end}}
{{with .Schemas}}<h2 id="schemas">Schemas</h2>
{{range .}}<section class="op" id="schema-{{.Name}}"><h3>{{.Name}}</h3>{{.Schema}}</section>{{end}}{{end}}
</main>
</body></html>
`))
