package catcher

import (
	"html/template"
	"io"
	"net/http"
	"net/mail"
	"strings"
)

// The inbox is server-rendered with html/template, which escapes every
// value. The HTML body of a mail is shown only inside a sandboxed iframe
// (no scripts, no same origin), and the page's CSP forbids scripts anyway.
var pages = template.Must(template.New("layout").Funcs(template.FuncMap{
	"addr": formatAddress,
	"addrs": func(list []mail.Address) string {
		parts := make([]string, len(list))
		for i, a := range list {
			parts[i] = formatAddress(a)
		}
		return strings.Join(parts, ", ")
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{block "title" .}}Kinoteka mail catcher{{end}}</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.4rem;border-bottom:1px solid #ddd;vertical-align:top}
tr.unread td{font-weight:600}a{color:#05c}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}
iframe{width:100%;min-height:24rem;border:1px solid #ddd}.muted{color:#777}
</style></head><body>
{{block "content" .}}{{end}}
</body></html>`))

var inboxPage = template.Must(template.Must(pages.Clone()).Parse(`
{{define "content"}}<h1>Inbox <span class="muted">({{len .}})</span></h1>
{{if not .}}<p class="muted">No mail yet. Send some to the SMTP port.</p>{{else}}
<table><tr><th>From</th><th>To</th><th>Subject</th><th>Received</th></tr>
{{range .}}<tr{{if not .Read}} class="unread"{{end}}><td>{{addr .From}}</td><td>{{addrs .To}}</td>
<td><a href="/view/{{.ID}}">{{if .Subject}}{{.Subject}}{{else}}(no subject){{end}}</a><br><span class="muted">{{.Snippet}}</span></td>
<td>{{.Created.Format "2006-01-02 15:04:05"}}</td></tr>
{{end}}</table>{{end}}{{end}}`))

var viewPage = template.Must(template.Must(pages.Clone()).Parse(`
{{define "title"}}{{.Subject}}{{end}}
{{define "content"}}<p><a href="/">&larr; Inbox</a></p>
<h1>{{if .Subject}}{{.Subject}}{{else}}(no subject){{end}}</h1>
<table>
<tr><th>From</th><td>{{addr .From}}</td></tr>
<tr><th>To</th><td>{{addrs .To}}</td></tr>
{{if .Cc}}<tr><th>Cc</th><td>{{addrs .Cc}}</td></tr>{{end}}
<tr><th>Received</th><td>{{.Created.Format "2006-01-02 15:04:05 MST"}}</td></tr>
<tr><th>Message-ID</th><td>{{.MessageID}}</td></tr>
</table>
{{if .HTML}}<h2>HTML</h2><iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{{.HTML}}"></iframe>{{end}}
{{if .Text}}<h2>Text</h2><pre>{{.Text}}</pre>{{end}}
<h2>Source</h2><pre>{{printf "%s" .Raw}}</pre>{{end}}`))

func formatAddress(a mail.Address) string {
	switch {
	case a.Name == "":
		return a.Address
	case a.Address == "":
		return a.Name
	default:
		return a.Name + " <" + a.Address + ">"
	}
}

func securePage(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
}

func (c *Catcher) handleInbox(w http.ResponseWriter, r *http.Request) {
	msgs, _, _ := c.newest(nil)
	securePage(w)
	if err := inboxPage.Execute(w, msgs); err != nil {
		c.log.Error("render inbox", "err", err)
	}
}

func (c *Catcher) handleView(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	// As in Mailpit, /view/{id}.txt is the plain-text part alone, which is what
	// a shell needs to read a code: curl …/view/latest.txt.
	id, plain := strings.CutSuffix(id, ".txt")
	m, ok := c.open(id)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if plain {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, m.Text)
		return
	}
	securePage(w)
	if err := viewPage.Execute(w, m); err != nil {
		c.log.Error("render message", "err", err)
	}
}
