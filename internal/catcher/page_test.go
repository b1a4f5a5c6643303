package catcher_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"kinoteka/internal/a11y"
)

// The inbox and message pages keep their accessible structure (language,
// title, one main landmark, one h1, headings in order, named links and
// frame, table headers with a scope) in every state: empty, with read and
// unread mail, for a message with an HTML part and for one without a subject.
// Their Lighthouse scores are in docs/benchmarks.md.
func TestPagesAreAccessible(t *testing.T) {
	_, srv, c := inbox(t, 0)
	assertAccessible(t, "empty inbox", get(t, srv.URL+"/", http.StatusOK))

	for _, raw := range []string{
		"From: Kinoteka <no-reply@kinoteka.local>\r\nTo: alice@example.com\r\nSubject: Your code\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=zz\r\n\r\n" +
			"--zz\r\nContent-Type: text/plain\r\n\r\nYour code is 123456\r\n" +
			"--zz\r\nContent-Type: text/html\r\n\r\n<p>Your code is <b>123456</b></p>\r\n--zz--\r\n",
		"From: a@example.com\r\nTo: bob@example.com\r\nCc: carol@example.com\r\n\r\nNo subject here\r\n",
	} {
		if err := send(c, "alice@example.com", raw); err != nil {
			t.Fatal(err)
		}
	}
	var list listAnswer
	if err := json.Unmarshal(get(t, srv.URL+"/api/v1/messages", http.StatusOK), &list); err != nil || len(list.Messages) != 2 {
		t.Fatalf("messages: %v %+v", err, list)
	}
	noSubject, withHTML := list.Messages[0].ID, list.Messages[1].ID

	page := get(t, srv.URL+"/view/"+withHTML, http.StatusOK)
	assertAccessible(t, "message with an HTML part", page)
	if !strings.Contains(string(page), `<iframe title="`) {
		t.Errorf("the HTML part's frame has no title:\n%s", page)
	}
	page = get(t, srv.URL+"/view/"+noSubject, http.StatusOK)
	assertAccessible(t, "message without a subject", page)
	if !strings.Contains(string(page), "<title>(no subject) — Kinoteka mail catcher</title>") {
		t.Errorf("a message without a subject has no title:\n%s", page)
	}

	// Both are read now; a third arrives unread. A screen reader hears which.
	if err := send(c, "dave@example.com", "From: a@example.com\r\nTo: dave@example.com\r\nSubject: New\r\n\r\nhi\r\n"); err != nil {
		t.Fatal(err)
	}
	page = get(t, srv.URL+"/", http.StatusOK)
	assertAccessible(t, "inbox", page)
	if n := strings.Count(string(page), `<span class="vh">Unread: </span>`); n != 1 || !strings.Contains(string(page), `Unread: </span>New</a>`) {
		t.Errorf("want exactly the new message marked unread, found %d marks:\n%s", n, page)
	}
}

func assertAccessible(t *testing.T, name string, page []byte) {
	t.Helper()
	problems, err := a11y.Check(page)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", name, p)
	}
}
