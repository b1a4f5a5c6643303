package catcher_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"kinoteka/internal/catcher"
)

// inbox is a catcher with its SMTP and HTTP sides running and n messages
// delivered: "Message 0" … "Message n-1", each to user<i>@example.com.
func inbox(t *testing.T, n int) (*catcher.Catcher, *httptest.Server, *smtp.Client) {
	t.Helper()
	cat, addr := start(t, catcher.Config{})
	srv := httptest.NewServer(cat.Handler())
	t.Cleanup(srv.Close)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i := range n {
		raw := fmt.Sprintf("From: Sender <sender@example.com>\r\nTo: User %d <user%d@example.com>\r\nSubject: Message %d\r\n\r\nBody %d\r\n", i, i, i, i)
		if err := send(c, fmt.Sprintf("user%d@example.com", i), raw); err != nil {
			t.Fatal(err)
		}
	}
	return cat, srv, c
}

func get(t *testing.T, url string, wantStatus int) []byte {
	t.Helper()
	return do(t, http.MethodGet, url, "", wantStatus)
}

func do(t *testing.T, method, url, body string, wantStatus int) []byte {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, res.StatusCode, wantStatus, b)
	}
	return b
}

// Mailpit's list answer and MessageSummary, field for field.
type listAnswer struct {
	Total          int        `json:"total"`
	Unread         int        `json:"unread"`
	Count          int        `json:"count"`
	MessagesCount  int        `json:"messages_count"`
	MessagesUnread int        `json:"messages_unread"`
	Start          int        `json:"start"`
	Tags           []string   `json:"tags"`
	Messages       []sumReply `json:"messages"`
}

type addrReply struct{ Name, Address string }

type sumReply struct {
	ID, MessageID, Subject, Created, Snippet, Username string
	Read                                               bool
	From                                               addrReply
	To, Cc, Bcc, ReplyTo                               []addrReply
	Tags                                               []string
	Size, Attachments                                  int
}

func keys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func subjects(a listAnswer) []string {
	var s []string
	for _, m := range a.Messages {
		s = append(s, m.Subject)
	}
	return s
}

func TestListShapeAndOrder(t *testing.T) {
	_, srv, _ := inbox(t, 3)
	body := get(t, srv.URL+"/api/v1/messages", http.StatusOK)

	wantTop := []string{"count", "messages", "messages_count", "messages_unread", "start", "tags", "total", "unread"}
	if got := keys(t, body); !slices.Equal(got, wantTop) {
		t.Errorf("top-level keys = %v, want %v", got, wantTop)
	}
	var raw struct{ Messages []json.RawMessage }
	_ = json.Unmarshal(body, &raw)
	wantSummary := []string{"Attachments", "Bcc", "Cc", "Created", "From", "ID", "MessageID", "Read", "ReplyTo", "Size", "Snippet", "Subject", "Tags", "To", "Username"}
	if got := keys(t, raw.Messages[0]); !slices.Equal(got, wantSummary) {
		t.Errorf("summary keys = %v, want %v", got, wantSummary)
	}
	var from struct{ From map[string]string }
	_ = json.Unmarshal(raw.Messages[0], &from)
	if from.From["Name"] != "Sender" || from.From["Address"] != "sender@example.com" || len(from.From) != 2 {
		t.Errorf("From = %v, want {Name, Address}", from.From)
	}
	if !strings.Contains(string(raw.Messages[0]), `"Cc":[]`) {
		t.Errorf("empty address lists must be [] as in Mailpit: %s", raw.Messages[0])
	}

	var a listAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Message 2", "Message 1", "Message 0"}; !slices.Equal(subjects(a), want) {
		t.Errorf("order = %v, want newest first %v", subjects(a), want)
	}
	if a.Total != 3 || a.Unread != 3 || a.Count != 3 || a.MessagesCount != 3 || a.Start != 0 {
		t.Errorf("counts = %+v", a)
	}
	m := a.Messages[0]
	if len(m.To) != 1 || m.To[0] != (addrReply{"User 2", "user2@example.com"}) || m.Snippet != "Body 2" || m.Size == 0 || m.Created == "" || m.ID == "" {
		t.Errorf("newest summary = %+v", m)
	}
}

func TestListPaging(t *testing.T) {
	_, srv, _ := inbox(t, 5)
	tests := []struct {
		query string
		want  []string
	}{
		{"?limit=2", []string{"Message 4", "Message 3"}},
		{"?start=2&limit=2", []string{"Message 2", "Message 1"}},
		{"?start=4&limit=10", []string{"Message 0"}},
		{"?start=9", nil},
		{"?start=-1&limit=0", []string{"Message 4", "Message 3", "Message 2", "Message 1", "Message 0"}}, // Mailpit ignores bad values
	}
	for _, tt := range tests {
		var a listAnswer
		if err := json.Unmarshal(get(t, srv.URL+"/api/v1/messages"+tt.query, http.StatusOK), &a); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(subjects(a), tt.want) || a.Total != 5 || a.Count != len(tt.want) {
			t.Errorf("%s: %v (total %d, count %d), want %v", tt.query, subjects(a), a.Total, a.Count, tt.want)
		}
	}
}

func TestMessage(t *testing.T) {
	_, srv, _ := inbox(t, 2)
	body := get(t, srv.URL+"/api/v1/message/latest", http.StatusOK)
	want := []string{"Attachments", "Bcc", "Cc", "Created", "Date", "From", "HTML", "ID", "Inline", "ListUnsubscribe", "MessageID", "ReplyTo", "ReturnPath", "Size", "Subject", "Tags", "Text", "To", "Username"}
	if got := keys(t, body); !slices.Equal(got, want) {
		t.Errorf("message keys = %v, want %v", got, want)
	}
	var m struct {
		ID, Subject, Text, HTML, Created string
		From                             addrReply
		To                               []addrReply
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Message 1" || !strings.Contains(m.Text, "Body 1") || m.HTML != "" || m.From.Address != "sender@example.com" ||
		len(m.To) != 1 || m.To[0].Address != "user1@example.com" || m.Created == "" {
		t.Errorf("latest = %+v", m)
	}

	var byID struct{ ID, Subject string }
	_ = json.Unmarshal(get(t, srv.URL+"/api/v1/message/"+m.ID, http.StatusOK), &byID)
	if byID.ID != m.ID || byID.Subject != "Message 1" {
		t.Errorf("by id = %+v", byID)
	}
	get(t, srv.URL+"/api/v1/message/no-such-id", http.StatusNotFound)

	// Opening a message marks it read, as in Mailpit.
	var a listAnswer
	_ = json.Unmarshal(get(t, srv.URL+"/api/v1/messages", http.StatusOK), &a)
	if a.Unread != 1 || !a.Messages[0].Read || a.Messages[1].Read {
		t.Errorf("after reading the latest: unread %d, %+v", a.Unread, a.Messages)
	}

	var filtered struct{ Subject string }
	_ = json.Unmarshal(get(t, srv.URL+"/api/v1/message/latest?query=to:user0@example.com", http.StatusOK), &filtered)
	if filtered.Subject != "Message 0" {
		t.Errorf("latest?query=to:user0 = %q, want Message 0", filtered.Subject)
	}
	get(t, srv.URL+"/api/v1/message/latest?query=to:nobody@example.com", http.StatusNotFound)
}

func TestDelete(t *testing.T) {
	cat, srv, _ := inbox(t, 3)
	var a listAnswer
	_ = json.Unmarshal(get(t, srv.URL+"/api/v1/messages", http.StatusOK), &a)

	do(t, http.MethodDelete, srv.URL+"/api/v1/messages", fmt.Sprintf(`{"IDs":[%q]}`, a.Messages[0].ID), http.StatusOK)
	if got := cat.Messages(); len(got) != 2 || got[1].Subject != "Message 1" {
		t.Fatalf("after deleting one: %d messages", len(got))
	}
	do(t, http.MethodDelete, srv.URL+"/api/v1/messages", "", http.StatusOK)
	if got := cat.Messages(); len(got) != 0 {
		t.Fatalf("after deleting all: %d messages", len(got))
	}
	get(t, srv.URL+"/api/v1/message/latest", http.StatusNotFound)
	_ = json.Unmarshal(get(t, srv.URL+"/api/v1/messages", http.StatusOK), &a)
	if a.Total != 0 || a.Messages == nil {
		t.Errorf("empty list = %+v (messages must be [], not null)", a)
	}
}

func TestSearch(t *testing.T) {
	_, srv, c := inbox(t, 3)
	// Another mail to user1, so to: matches two.
	if err := send(c, "user1@example.com", "To: user1@example.com\r\nSubject: Again\r\n\r\nsecond\r\n"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"to:user1@example.com", []string{"Again", "Message 1"}},
		{"to:USER2@example.com", []string{"Message 2"}},
		{`to:"User 0"`, []string{"Message 0"}},
		{"to:user1@example.com subject:again", []string{"Again"}},
		{"to:user1@example.com -subject:again", []string{"Message 1"}},
		{"from:sender@example.com", []string{"Message 2", "Message 1", "Message 0"}},
		{"body", []string{"Message 2", "Message 1", "Message 0"}},
		{"to:nobody@example.com", nil},
	}
	for _, tt := range tests {
		var a listAnswer
		body := get(t, srv.URL+"/api/v1/search?query="+strings.ReplaceAll(tt.query, " ", "+"), http.StatusOK)
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(subjects(a), tt.want) || a.MessagesCount != len(tt.want) || a.Total != 4 || a.Messages == nil {
			t.Errorf("%s: %v (messages_count %d, total %d), want %v", tt.query, subjects(a), a.MessagesCount, a.Total, tt.want)
		}
	}
	get(t, srv.URL+"/api/v1/search?query=", http.StatusBadRequest)
}

func TestMIMEThroughAPI(t *testing.T) {
	_, srv, c := inbox(t, 0)
	raw := "From: no-reply@kinoteka.local\r\nTo: alice@example.com\r\n" +
		"Subject: =?utf-8?b?0JLQsNGIINC+0LTQvdC+0YDQsNC30L7QstGL0Lkg0LrQvtC0?=\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=zz\r\n\r\n" +
		"--zz\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"=D0=92=D0=B0=D1=88 =D0=BA=D0=BE=D0=B4 123456\r\n" +
		"--zz\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"PHA+0JLQsNGIINC60L7QtDogPGI+MTIzNDU2PC9iPjwvcD4=\r\n--zz--\r\n"
	if err := send(c, "alice@example.com", raw); err != nil {
		t.Fatal(err)
	}
	var m struct{ Subject, Text, HTML string }
	_ = json.Unmarshal(get(t, srv.URL+"/api/v1/message/latest", http.StatusOK), &m)
	if m.Subject != "Ваш одноразовый код" || !strings.Contains(m.Text, "Ваш код 123456") || m.HTML != "<p>Ваш код: <b>123456</b></p>" {
		t.Errorf("decoded = %+v", m)
	}
}

func TestPageEscapes(t *testing.T) {
	_, srv, c := inbox(t, 0)
	raw := "From: \"<img src=x onerror=alert(1)>\" <evil@example.com>\r\nTo: alice@example.com\r\n" +
		"Subject: <script>alert('subject')</script>\r\nContent-Type: text/html\r\n\r\n" +
		"<p>hi</p><script>alert('body')</script>\r\n"
	if err := send(c, "alice@example.com", raw); err != nil {
		t.Fatal(err)
	}
	page := string(get(t, srv.URL+"/", http.StatusOK))
	if strings.Contains(page, "<script>") || strings.Contains(page, "<img") {
		t.Errorf("inbox page has unescaped markup:\n%s", page)
	}
	if !strings.Contains(page, "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;") {
		t.Errorf("inbox page does not show the escaped subject:\n%s", page)
	}
	var a listAnswer
	_ = json.Unmarshal(get(t, srv.URL+"/api/v1/messages", http.StatusOK), &a)
	view := string(get(t, srv.URL+"/view/"+a.Messages[0].ID, http.StatusOK))
	if strings.Contains(view, "<script>") || strings.Contains(view, "<img") {
		t.Errorf("message page has unescaped markup:\n%s", view)
	}
	if !strings.Contains(view, `sandbox=""`) || !strings.Contains(view, "srcdoc=") {
		t.Errorf("HTML body not in a sandboxed iframe:\n%s", view)
	}
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	get(t, srv.URL+"/view/nope", http.StatusNotFound)
}

func TestViewText(t *testing.T) {
	_, srv, c := inbox(t, 0)
	raw := "From: a@example.com\r\nTo: bob@example.com\r\nSubject: code\r\n\r\nYour code is 123456\r\n"
	if err := send(c, "bob@example.com", raw); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(srv.URL + "/view/latest.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") || !strings.Contains(string(body), "Your code is 123456") {
		t.Fatalf("latest.txt: %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	get(t, srv.URL+"/view/nope.txt", http.StatusNotFound)
}

func TestHealth(t *testing.T) {
	cat := catcher.New(catcher.Config{}, nil)
	srv := httptest.NewServer(cat.Handler())
	defer srv.Close()
	get(t, srv.URL+"/livez", http.StatusOK)
	get(t, srv.URL+"/readyz", http.StatusServiceUnavailable) // SMTP not serving yet

	_, srv2, _ := inbox(t, 0)
	get(t, srv2.URL+"/readyz", http.StatusOK)
}
