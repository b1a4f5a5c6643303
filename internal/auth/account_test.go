package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/events"
	"kinoteka/internal/sqldb"
)

// call sends a JSON request with tok's access token and decodes the answer
// into out (when not nil).
func call(t *testing.T, h http.Handler, tok Tokens, method, path, body string, out any) int {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	w := do(t, h, method, path, ct, body, "Authorization", "Bearer "+tok.Access, "User-Agent", "test-agent/1")
	if out != nil && w.Code < 300 {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, w.Body)
		}
	}
	if w.Code >= 300 {
		t.Logf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
	return w.Code
}

// userEvents are the users topic's rows of the outbox, oldest first.
func userEvents(t *testing.T, db *sqldb.DB) []events.UserEvent {
	t.Helper()
	rows, err := db.Query("SELECT msg_key, payload FROM outbox WHERE topic = 'users' ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []events.UserEvent
	for rows.Next() {
		var (
			key     string
			payload []byte
		)
		if err := rows.Scan(&key, &payload); err != nil {
			t.Fatal(err)
		}
		e, err := events.DecodeUserEvent(payload)
		if err != nil || e.ID != key {
			t.Fatalf("user event %s (key %s): %v", payload, key, err)
		}
		out = append(out, e)
	}
	return out
}

type me struct {
	ID      string   `json:"id"`
	Email   string   `json:"email"`
	Name    string   `json:"name"`
	NameSet bool     `json:"name_set"`
	Roles   []string `json:"roles"`
}

// A name given at sign-up, or the default, is what me and the users topic
// show; a rename bumps the version and is published in its transaction;
// bad names are refused with the field named.
func TestDisplayNames(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	ctx := context.Background()
	if err := f.svc.RegisterNamed(ctx, "anna@example.com", "correct horse", "en", "  Anna P.  "); err != nil {
		t.Fatal(err)
	}
	anna, err := f.svc.Verify(ctx, "anna@example.com", lastMail(t, f.db).mail.Code, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	bob := f.registerVerified(t, "bob@example.com")

	var m me
	if call(t, h, anna, "GET", "/v1/auth/me", "", &m); m.Name != "Anna P." || !m.NameSet {
		t.Errorf("anna: %+v", m)
	}
	var b me
	call(t, h, bob, "GET", "/v1/auth/me", "", &b)
	if b.Name != events.DisplayName(b.ID, "") || b.NameSet || strings.Contains(b.Name, "bob") {
		t.Errorf("bob's default name %q must be Reader + tag, not from the address", b.Name)
	}
	if code := call(t, h, bob, "PATCH", "/v1/auth/me", `{"name":"Bob"}`, &b); code != 200 || b.Name != "Bob" {
		t.Errorf("rename: %d %+v", code, b)
	}
	for _, bad := range []string{`""`, `"   "`, `"` + strings.Repeat("я", 51) + `"`, `"a\u0007b"`, `"evil\u202Etxt"`} {
		if code := call(t, h, bob, "PATCH", "/v1/auth/me", `{"name":`+bad+`}`, nil); code != 400 {
			t.Errorf("name %s: %d, want 400", bad, code)
		}
	}
	if err := f.svc.RegisterNamed(ctx, "c@example.com", "correct horse", "en", "x\ty"); err == nil {
		t.Error("register took a name with a tab")
	}
	got := userEvents(t, f.db)
	want := []events.UserEvent{
		{Type: events.TypeUserUpdated, ID: m.ID, Name: "Anna P.", Version: 1},
		{Type: events.TypeUserUpdated, ID: b.ID, Name: events.DisplayName(b.ID, ""), Version: 1},
		{Type: events.TypeUserUpdated, ID: b.ID, Name: "Bob", Version: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("user events %+v, want %+v", got, want)
	}
	for i := range want {
		got[i].EventID = ""
		if got[i] != want[i] {
			t.Errorf("user event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// A password change needs the current password, ends every other session
// but keeps this one, and mails a notice.
func TestPasswordChange(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	here := f.registerVerified(t, "a@example.com")
	other := f.login(t, "a@example.com")
	if code := call(t, h, here, "POST", "/v1/auth/password/change", `{"current_password":"wrong one","new_password":"a new secret"}`, nil); code != 403 {
		t.Errorf("wrong current password: %d", code)
	}
	if code := call(t, h, here, "POST", "/v1/auth/password/change", `{"current_password":"correct horse","new_password":"short"}`, nil); code != 400 {
		t.Errorf("weak new password: %d", code)
	}
	if code := call(t, h, here, "POST", "/v1/auth/password/change", `{"current_password":"correct horse","new_password":"a new secret"}`, nil); code != 204 {
		t.Fatalf("change: %d", code)
	}
	if m := lastMail(t, f.db); m.env.Type != events.TypePasswordChanged || m.mail.Email != "a@example.com" || m.mail.Code != "" {
		t.Errorf("notice: %+v", m)
	}
	ctx := context.Background()
	if _, err := f.svc.Refresh(ctx, other.Refresh); err == nil {
		t.Error("the other session still refreshes")
	}
	if _, err := f.svc.Refresh(ctx, here.Refresh); err != nil {
		t.Errorf("this session: %v", err)
	}
	if _, err := f.svc.Login(ctx, "a@example.com", "a new secret"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
}

// An address change answers alike whether or not the new address has an
// account, mails the code there, and moves the account only with the code.
func TestEmailChange(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	tok := f.registerVerified(t, "a@example.com")
	f.registerVerified(t, "taken@example.com")
	f.clock.Advance(mailGap) // the mail limits count the sign-up's code
	free := call(t, h, tok, "POST", "/v1/auth/email/change", `{"new_email":"New@Example.com","password":"correct horse"}`, nil)
	code := lastMail(t, f.db)
	f.clock.Advance(mailGap)
	taken := call(t, h, tok, "POST", "/v1/auth/email/change", `{"new_email":"taken@example.com","password":"correct horse"}`, nil)
	if free != 202 || taken != 202 {
		t.Errorf("answers: free %d, taken %d; want 202 both", free, taken)
	}
	if code.env.Type != events.TypeEmailChangeCode || code.mail.Email != "new@example.com" {
		t.Errorf("code mail: %+v", code)
	}
	var m me
	if call(t, h, tok, "GET", "/v1/auth/me", "", &m); m.Email != "a@example.com" {
		t.Errorf("moved before the code: %s", m.Email)
	}
	// The newest code is for the taken address: confirming it is a conflict.
	if c := call(t, h, tok, "POST", "/v1/auth/email/confirm", `{"code":"`+lastMail(t, f.db).mail.Code+`"}`, nil); c != 409 {
		t.Errorf("confirm onto a taken address: %d", c)
	}
	f.clock.Advance(mailGap)
	call(t, h, tok, "POST", "/v1/auth/email/change", `{"new_email":"new@example.com","password":"correct horse"}`, nil)
	if c := call(t, h, tok, "POST", "/v1/auth/email/confirm", `{"code":"000000"}`, nil); c != 400 {
		t.Errorf("wrong code: %d", c)
	}
	if c := call(t, h, tok, "POST", "/v1/auth/email/confirm", `{"code":"`+lastMail(t, f.db).mail.Code+`"}`, &m); c != 200 || m.Email != "new@example.com" {
		t.Errorf("confirm: %d %+v", c, m)
	}
	if n := lastMail(t, f.db); n.env.Type != events.TypeEmailChanged || n.mail.Email != "a@example.com" {
		t.Errorf("notice to the old address: %+v", n)
	}
	if next, err := f.svc.Refresh(context.Background(), tok.Refresh); err != nil {
		t.Fatal(err)
	} else if call(t, h, next, "GET", "/v1/auth/me", "", &m); m.Email != "new@example.com" {
		t.Errorf("fresh token: %+v", m)
	}
	if _, err := f.svc.Login(context.Background(), "new@example.com", "correct horse"); err != nil {
		t.Errorf("login at the new address: %v", err)
	}
	if c := call(t, h, tok, "POST", "/v1/auth/email/change", `{"new_email":"x@example.com","password":"nope nope"}`, nil); c != 403 {
		t.Errorf("wrong password: %d", c)
	}
}

// The session list shows every live login with the current one marked; a
// listed session can be ended, another person's cannot.
func TestSessions(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	here := f.registerVerified(t, "a@example.com")
	f.clock.Advance(time.Second)
	other := f.login(t, "a@example.com")
	stranger := f.registerVerified(t, "b@example.com")
	var list struct {
		Items []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"items"`
	}
	if c := call(t, h, here, "GET", "/v1/auth/sessions", "", &list); c != 200 || len(list.Items) != 2 || list.Items[0].Current || !list.Items[1].Current {
		t.Fatalf("sessions: %d %+v", c, list)
	}
	otherID := list.Items[0].ID
	if c := call(t, h, stranger, "DELETE", "/v1/auth/sessions/"+otherID, "", nil); c != 404 {
		t.Errorf("a stranger ended it: %d", c)
	}
	if c := call(t, h, here, "DELETE", "/v1/auth/sessions/not-a-uuid", "", nil); c != 404 {
		t.Errorf("a malformed id: %d", c)
	}
	if c := call(t, h, here, "DELETE", "/v1/auth/sessions/"+otherID, "", nil); c != 204 {
		t.Errorf("end: %d", c)
	}
	if _, err := f.svc.Refresh(context.Background(), other.Refresh); err == nil {
		t.Error("the ended session still refreshes")
	}
	if c := call(t, h, here, "DELETE", "/v1/auth/sessions/"+otherID, "", nil); c != 404 {
		t.Errorf("ended twice: %d", c)
	}
	if call(t, h, here, "GET", "/v1/auth/sessions", "", &list); len(list.Items) != 1 || !list.Items[0].Current {
		t.Errorf("after: %+v", list)
	}
}

// Deleting an account needs the password; then the refresh token is refused
// at once, the access token at auth, the audit keeps the event and the id
// but not the address, user.deleted is published with a newer version, a
// goodbye is mailed, and the address can register again.
func TestDeleteAccount(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		h := testRoutes(f)
		tok := f.registerVerified(t, "a@example.com")
		var m me
		call(t, h, tok, "GET", "/v1/auth/me", "", &m)
		if c := call(t, h, tok, "DELETE", "/v1/auth/me", `{"password":"wrong pass"}`, nil); c != 403 {
			t.Errorf("wrong password: %d", c)
		}
		if c := call(t, h, tok, "DELETE", "/v1/auth/me", `{"password":"correct horse"}`, nil); c != 204 {
			t.Fatalf("delete: %d", c)
		}
		if mail := lastMail(t, f.db); mail.env.Type != events.TypeAccountDeleted || mail.mail.Email != "a@example.com" {
			t.Errorf("goodbye: %+v", mail)
		}
		evs := userEvents(t, f.db)
		if last := evs[len(evs)-1]; !last.Deleted() || last.ID != m.ID || last.Version != 2 {
			t.Errorf("user events: %+v", evs)
		}
		if _, err := f.svc.Refresh(context.Background(), tok.Refresh); err == nil {
			t.Error("the refresh token still works")
		}
		if c := call(t, h, tok, "GET", "/v1/auth/me", "", nil); c != 401 {
			t.Errorf("me after delete: %d", c)
		}
		if n := count(t, f.db, "SELECT COUNT(*) FROM audit_events WHERE email = 'a@example.com' OR ip IS NOT NULL OR user_agent IS NOT NULL"); n != 0 {
			t.Errorf("%d audit records still hold personal data", n)
		}
		if n := count(t, f.db, "SELECT COUNT(*) FROM audit_events WHERE user_id = $1 AND event = 'account_deleted'", m.ID); n != 1 {
			t.Errorf("account_deleted records: %d", n)
		}
		again := f.registerVerified(t, "a@example.com")
		var m2 me
		if call(t, h, again, "GET", "/v1/auth/me", "", &m2); m2.ID == m.ID || m2.Email != "a@example.com" {
			t.Errorf("registered again: %+v (old id %s)", m2, m.ID)
		}
	})
}

// The admin API lists and searches accounts page by page and grants and
// revokes the admin role; others get 403.
func TestAdminUsers(t *testing.T) {
	f := newFixture(t, sqliteDB(t), func(c *serviceConfig) { c.AdminEmails = []string{"root@example.com"} })
	h := testRoutes(f)
	root := f.registerVerified(t, "root@example.com")
	user := f.registerVerified(t, "anna@example.com")
	for i := range maxUserPage + 3 {
		f.register(t, "u"+string(rune('a'+i/26))+string(rune('a'+i%26))+"@example.com")
	}
	if c := call(t, h, user, "GET", "/v1/admin/users", "", nil); c != 403 {
		t.Errorf("a user listed users: %d", c)
	}
	type page struct {
		Items []struct {
			ID     string   `json:"id"`
			Email  string   `json:"email"`
			Roles  []string `json:"roles"`
			Status string   `json:"status"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	var p1, p2 page
	if c := call(t, h, root, "GET", "/v1/admin/users", "", &p1); c != 200 || len(p1.Items) != maxUserPage || p1.NextCursor == nil {
		t.Fatalf("page 1: %d, %d items", c, len(p1.Items))
	}
	call(t, h, root, "GET", "/v1/admin/users?cursor="+*p1.NextCursor, "", &p2)
	if len(p2.Items) != 5 || p2.NextCursor != nil || p2.Items[0].ID <= p1.Items[maxUserPage-1].ID {
		t.Errorf("page 2: %+v", p2)
	}
	var found page
	if call(t, h, root, "GET", "/v1/admin/users?q=ANNA", "", &found); len(found.Items) != 1 || found.Items[0].Email != "anna@example.com" {
		t.Fatalf("search: %+v", found)
	}
	if call(t, h, root, "GET", "/v1/admin/users?q=%25", "", &found); len(found.Items) != 0 {
		t.Errorf("%% is a wildcard: %+v", found)
	}
	id := p1.Items[1].ID
	var u struct {
		Roles []string `json:"roles"`
	}
	if c := call(t, h, root, "PUT", "/v1/admin/users/"+id+"/roles/admin", "", &u); c != 200 || strings.Join(u.Roles, ",") != "admin,user" {
		t.Errorf("grant: %d %+v", c, u)
	}
	if c := call(t, h, user, "GET", "/v1/admin/users", "", nil); c != 200 {
		t.Errorf("granted admin cannot list: %d", c)
	}
	if c := call(t, h, root, "DELETE", "/v1/admin/users/"+id+"/roles/admin", "", &u); c != 200 || strings.Join(u.Roles, ",") != "user" {
		t.Errorf("revoke: %d %+v", c, u)
	}
	if c := call(t, h, root, "PUT", "/v1/admin/users/"+id+"/roles/owner", "", nil); c != 400 {
		t.Errorf("unknown role: %d", c)
	}
	if c := call(t, h, root, "PUT", "/v1/admin/users/0190a0e0-0000-7000-8000-000000000001/roles/admin", "", nil); c != 404 {
		t.Errorf("unknown user: %d", c)
	}
	if n := count(t, f.db, "SELECT COUNT(*) FROM audit_events WHERE event IN ('role_granted', 'role_revoked')"); n != 2 {
		t.Errorf("audited role changes: %d", n)
	}
}

// A signed-in person asking for a second address change within the mail
// limits is told to wait, with Retry-After, instead of being sent nothing.
func TestEmailChangeTooSoonSaysWhen(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	tok := f.registerVerified(t, "a@example.com") // its code mail counts
	f.clock.Advance(20 * time.Second)
	w := do(t, h, "POST", "/v1/auth/email/change", "application/json", `{"new_email":"b@example.com","password":"correct horse"}`,
		"Authorization", "Bearer "+tok.Access)
	if w.Code != 429 || w.Header().Get("Retry-After") != "40" {
		t.Fatalf("too soon: %d, Retry-After %q, %s; want 429 after 40 s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	f.clock.Advance(40 * time.Second)
	if c := call(t, h, tok, "POST", "/v1/auth/email/change", `{"new_email":"b@example.com","password":"correct horse"}`, nil); c != 202 {
		t.Errorf("after the wait: %d", c)
	}
	if m := lastMail(t, f.db); m.env.Type != events.TypeEmailChangeCode || m.mail.Email != "b@example.com" {
		t.Errorf("the code mail: %+v", m)
	}
}

func TestMailWait(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ago := func(ds ...time.Duration) []time.Time {
		var out []time.Time
		for _, d := range ds {
			out = append(out, now.Add(-d))
		}
		return out
	}
	m := time.Minute
	for _, tc := range []struct {
		name   string
		recent []time.Time
		gap    bool
		want   time.Duration
	}{
		{"none", nil, true, 0},
		{"one a minute: 20 s ago", ago(20 * time.Second), true, 40 * time.Second},
		{"no gap asked", ago(20 * time.Second), false, 0},
		{"five this hour", ago(2*m, 10*m, 20*m, 30*m, 50*m), true, 10 * m},
		{"ten today", ago(2*time.Hour, 3*time.Hour, 4*time.Hour, 5*time.Hour, 6*time.Hour, 7*time.Hour, 8*time.Hour, 9*time.Hour, 10*time.Hour, 23*time.Hour), true, time.Hour},
	} {
		if got := mailWait(tc.recent, now, tc.gap); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if allowed := countSince(tc.recent, now.Add(-time.Hour)) < maxCodesPerHour && countSince(tc.recent, now.Add(-24*time.Hour)) < maxMailsPerDay &&
			(!tc.gap || countSince(tc.recent, now.Add(-mailGap)) == 0); allowed != (tc.want == 0) {
			t.Errorf("%s: mailWait %v disagrees with the limits", tc.name, tc.want)
		}
	}
}
