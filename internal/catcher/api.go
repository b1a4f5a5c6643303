package catcher

import (
	"encoding/json"
	"io"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// Handler serves the inbox page and Mailpit's JSON API subset:
//
//	GET    /api/v1/messages?start=&limit=   newest first
//	DELETE /api/v1/messages                 all, or {"IDs": [...]}
//	GET    /api/v1/message/{id}             "latest" for the newest (?query= to filter)
//	GET    /api/v1/search?query=&start=&limit=
//	GET    /  and  /view/{id}               the web inbox
//	GET    /livez, /readyz
func (c *Catcher) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/messages", c.handleList)
	mux.HandleFunc("DELETE /api/v1/messages", c.handleDelete)
	mux.HandleFunc("GET /api/v1/message/{id}", c.handleMessage)
	mux.HandleFunc("GET /api/v1/search", c.handleSearch)
	mux.HandleFunc("GET /{$}", c.handleInbox)
	mux.HandleFunc("GET /view/{id}", c.handleView)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { text(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !c.ready.Load() {
			text(w, http.StatusServiceUnavailable, "not ready")
			return
		}
		text(w, http.StatusOK, "ok")
	})
	return mux
}

// address is Mailpit's address object.
type address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// summary is Mailpit's MessageSummary.
type summary struct {
	ID          string    `json:"ID"`
	MessageID   string    `json:"MessageID"`
	Read        bool      `json:"Read"`
	From        address   `json:"From"`
	To          []address `json:"To"`
	Cc          []address `json:"Cc"`
	Bcc         []address `json:"Bcc"`
	ReplyTo     []address `json:"ReplyTo"`
	Subject     string    `json:"Subject"`
	Created     time.Time `json:"Created"`
	Username    string    `json:"Username"`
	Tags        []string  `json:"Tags"`
	Size        int       `json:"Size"`
	Attachments int       `json:"Attachments"`
	Snippet     string    `json:"Snippet"`
}

// messagesSummary is Mailpit's answer to a list or a search.
type messagesSummary struct {
	Total          int       `json:"total"`           // messages in the mailbox
	Unread         int       `json:"unread"`          // unread in the mailbox
	Count          int       `json:"count"`           // messages in this page (legacy)
	MessagesCount  int       `json:"messages_count"`  // messages matching the query
	MessagesUnread int       `json:"messages_unread"` // unread matching the query
	Start          int       `json:"start"`
	Tags           []string  `json:"tags"`
	Messages       []summary `json:"messages"`
}

// listUnsubscribe is Mailpit's List-Unsubscribe summary (always empty here).
type listUnsubscribe struct {
	Header     string   `json:"Header"`
	Links      []string `json:"Links"`
	Errors     string   `json:"Errors"`
	HeaderPost string   `json:"HeaderPost"`
}

// message is Mailpit's Message, plus Created, which Mailpit has only on the
// summary; Kinoteka's DESIGN names it on both.
type message struct {
	ID              string          `json:"ID"`
	MessageID       string          `json:"MessageID"`
	From            address         `json:"From"`
	To              []address       `json:"To"`
	Cc              []address       `json:"Cc"`
	Bcc             []address       `json:"Bcc"`
	ReplyTo         []address       `json:"ReplyTo"`
	ReturnPath      string          `json:"ReturnPath"`
	Subject         string          `json:"Subject"`
	ListUnsubscribe listUnsubscribe `json:"ListUnsubscribe"`
	Date            time.Time       `json:"Date"`
	Created         time.Time       `json:"Created"`
	Tags            []string        `json:"Tags"`
	Username        string          `json:"Username"`
	Text            string          `json:"Text"`
	HTML            string          `json:"HTML"`
	Size            int             `json:"Size"`
	Inline          []struct{}      `json:"Inline"`
	Attachments     []struct{}      `json:"Attachments"`
}

func toAddresses(list []mail.Address) []address {
	out := make([]address, 0, len(list)) // [] rather than null, as Mailpit answers
	for _, a := range list {
		out = append(out, address(a))
	}
	return out
}

func toSummary(m Message) summary {
	return summary{
		ID: m.ID, MessageID: m.MessageID, Read: m.Read,
		From: address(m.From), To: toAddresses(m.To), Cc: toAddresses(m.Cc),
		Bcc: toAddresses(m.Bcc), ReplyTo: toAddresses(m.ReplyTo),
		Subject: m.Subject, Created: m.Created, Username: m.Username, Tags: []string{},
		Size: m.Size, Attachments: m.Attachments, Snippet: m.Snippet,
	}
}

func toMessage(m Message) message {
	date := m.Date
	if date.IsZero() {
		date = m.Created // Mailpit falls back to the time received
	}
	return message{
		ID: m.ID, MessageID: m.MessageID,
		From: address(m.From), To: toAddresses(m.To), Cc: toAddresses(m.Cc),
		Bcc: toAddresses(m.Bcc), ReplyTo: toAddresses(m.ReplyTo),
		ReturnPath: m.ReturnPath, Subject: m.Subject,
		ListUnsubscribe: listUnsubscribe{Links: []string{}},
		Date:            date, Created: m.Created, Tags: []string{}, Username: m.Username,
		Text: m.Text, HTML: m.HTML, Size: m.Size,
		Inline: []struct{}{}, Attachments: []struct{}{},
	}
}

func (c *Catcher) handleList(w http.ResponseWriter, r *http.Request) {
	all, total, unread := c.newest(nil)
	writeJSON(w, page(all, total, unread, r))
}

func (c *Catcher) handleSearch(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("query"))
	if q == "" {
		text(w, http.StatusBadRequest, "Error: no search query")
		return
	}
	match := parseQuery(q)
	found, total, unread := c.newest(match)
	writeJSON(w, page(found, total, unread, r))
}

// page applies Mailpit's start/limit (defaults 0 and 50) to matches, newest first.
func page(matches []Message, total, unread int, r *http.Request) messagesSummary {
	start, limit := 0, 50
	if n, err := strconv.Atoi(r.URL.Query().Get("start")); err == nil && n > 0 {
		start = n
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 {
		limit = n
	}
	res := messagesSummary{Total: total, Unread: unread, MessagesCount: len(matches), Start: start, Tags: []string{}, Messages: []summary{}}
	for _, m := range matches {
		if !m.Read {
			res.MessagesUnread++
		}
	}
	if start < len(matches) {
		for _, m := range matches[start:min(len(matches), start+limit)] {
			res.Messages = append(res.Messages, toSummary(m))
		}
	}
	res.Count = len(res.Messages)
	return res
}

func (c *Catcher) handleMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	// As in Mailpit, "latest" with ?query= is the newest matching message.
	if q := strings.TrimSpace(r.URL.Query().Get("query")); id == "latest" && q != "" {
		found, _, _ := c.newest(parseQuery(q))
		if len(found) == 0 {
			text(w, http.StatusNotFound, "Message not found")
			return
		}
		id = found[0].ID
	}
	m, ok := c.open(id)
	if !ok {
		if id == "latest" {
			text(w, http.StatusNotFound, "Message not found")
			return
		}
		text(w, http.StatusNotFound, "404 page not found")
		return
	}
	writeJSON(w, toMessage(m))
}

func (c *Catcher) handleDelete(w http.ResponseWriter, r *http.Request) {
	var body struct{ IDs []string }
	// Like Mailpit: no body (or an unreadable one) deletes everything.
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
	c.remove(body.IDs)
	text(w, http.StatusOK, "ok")
}

// parseQuery understands Mailpit's search terms that matter for tests:
// to:, from:, cc:, bcc:, reply-to:, subject:, message-id:, is:read,
// is:unread, has:attachment and free text; "quoted phrases"; a leading - or
// ! negates a term. All terms must match; comparisons ignore case.
func parseQuery(q string) func(*Message) bool {
	var terms []func(*Message) bool
	for _, word := range splitQuery(q) {
		negate := false
		if len(word) > 1 && (word[0] == '-' || word[0] == '!') {
			negate, word = true, word[1:]
		}
		lw := strings.ToLower(word)
		var t func(*Message) bool
		switch {
		case hasField(lw, "to:"):
			t = addressTerm(lw[3:], func(m *Message) []mail.Address { return m.To })
		case hasField(lw, "from:"):
			t = addressTerm(lw[5:], func(m *Message) []mail.Address { return []mail.Address{m.From} })
		case hasField(lw, "cc:"):
			t = addressTerm(lw[3:], func(m *Message) []mail.Address { return m.Cc })
		case hasField(lw, "bcc:"):
			t = addressTerm(lw[4:], func(m *Message) []mail.Address { return m.Bcc })
		case hasField(lw, "reply-to:"):
			t = addressTerm(lw[9:], func(m *Message) []mail.Address { return m.ReplyTo })
		case hasField(lw, "subject:"):
			v := lw[8:]
			t = func(m *Message) bool { return strings.Contains(strings.ToLower(m.Subject), v) }
		case hasField(lw, "message-id:"):
			v := lw[11:]
			t = func(m *Message) bool { return strings.Contains(strings.ToLower(m.MessageID), v) }
		case lw == "is:read":
			t = func(m *Message) bool { return m.Read }
		case lw == "is:unread":
			t = func(m *Message) bool { return !m.Read }
		case lw == "has:attachment" || lw == "has:attachments":
			t = func(m *Message) bool { return m.Attachments > 0 }
		default:
			t = func(m *Message) bool { return strings.Contains(searchText(m), lw) }
		}
		if negate {
			inner := t
			t = func(m *Message) bool { return !inner(m) }
		}
		terms = append(terms, t)
	}
	return func(m *Message) bool {
		for _, t := range terms {
			if !t(m) {
				return false
			}
		}
		return true
	}
}

func hasField(lw, prefix string) bool { return strings.HasPrefix(lw, prefix) && len(lw) > len(prefix) }

func addressTerm(v string, field func(*Message) []mail.Address) func(*Message) bool {
	return func(m *Message) bool {
		for _, a := range field(m) {
			if strings.Contains(strings.ToLower(a.Name), v) || strings.Contains(strings.ToLower(a.Address), v) {
				return true
			}
		}
		return false
	}
}

func searchText(m *Message) string {
	var b strings.Builder
	b.WriteString(m.Subject)
	for _, list := range [][]mail.Address{{m.From}, m.To, m.Cc, m.Bcc, m.ReplyTo} {
		for _, a := range list {
			b.WriteString(" " + a.Name + " " + a.Address)
		}
	}
	b.WriteString(" " + m.Text + " " + stripTags(m.HTML))
	return strings.ToLower(b.String())
}

// splitQuery splits on spaces, keeping "quoted phrases" (quotes removed)
// together, also after a prefix as in to:"a b".
func splitQuery(q string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range q {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		text(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

func text(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}
