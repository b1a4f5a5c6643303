package main

import (
	"context"
	"io"
	"kinoteka/internal/sqldb"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A person manages their own account on the site, each form's refusal and
// success: the display name (shown on their reviews once films has
// followed it), the sessions (another browser's ended from here), the
// password, the address (only with the code mailed to the new one), and
// the account itself.
func TestWebAccountSelfService(t *testing.T) {
	s, env, _ := runSystem(t)
	site := s.webURL()
	const pw = "correct horse battery"

	p := newVisitor(t, site)
	a := p.post("/signup", url.Values{"name": {"Ann Web"}, "email": {"ann@example.com"}, "password": {pw}})
	must(t, p.follow(a), http.StatusOK, "Enter the code")
	a = p.post("/verify", url.Values{"email": {"ann@example.com"}, "code": {env.WaitForCode(t, "ann@example.com", 60*time.Second)}, "password": {pw}})
	must(t, p.follow(a), http.StatusOK, "Your address is confirmed")
	must(t, p.post("/signup", url.Values{"name": {strings.Repeat("n", 51)}, "email": {"long@example.com"}, "password": {pw}}),
		http.StatusUnprocessableEntity, `id="f-name-error"`, "at most 50 characters")

	acct := p.get("/account")
	must(t, acct, http.StatusOK, "<dd>Ann Web</dd>", `value="Ann Web"`, "This browser", ">Change password</button>",
		">Send a code to the new address</button>", ">Delete my account</button>", `id="f-del-password"`, `id="f-em-password"`, `type="checkbox"`)
	noTokens(t, acct)
	if strings.Contains(acct.body, ">End session</button>") {
		t.Error("the only session, this one, offers to be ended from the list")
	}

	t.Run("name", func(t *testing.T) {
		must(t, p.post("/account/name", url.Values{"name": {"  "}}), http.StatusUnprocessableEntity, `id="f-name-error"`, "Is required")
		must(t, p.follow(p.post("/account/name", url.Values{"name": {"Ann Renamed"}})), http.StatusOK, "Your name is saved", "<dd>Ann Renamed</dd>")
		film := filmPath(t, p, "star wars")
		must(t, p.follow(p.post(film+"/review", url.Values{"rating": {"8"}, "text": {"Named."}})), http.StatusOK, "Your review is saved")
		// films learns the name from the users topic: soon, not at once.
		waitFor(t, "the name on the film page", func() bool { return strings.Contains(p.get(film).body, "Ann Renamed (you)") })
		other := newVisitor(t, site)
		must(t, other.get(film), http.StatusOK, "Ann Renamed")
		ru := newVisitor(t, site)
		ru.header.Set("Accept-Language", "ru")
		ru.client.Jar.SetCookies(mustURL(t, site), p.client.Jar.Cookies(mustURL(t, site)))
		must(t, ru.get("/account"), http.StatusOK, "Ваше имя", "Этот браузер", "Удалить учётную запись</button>")
	})

	t.Run("sessions", func(t *testing.T) {
		q := newVisitor(t, site)
		q.header.Set("User-Agent", "Second Browser/1.0")
		if a := q.post("/signin", url.Values{"email": {"ann@example.com"}, "password": {pw}}); a.status != http.StatusSeeOther {
			t.Fatalf("second sign-in: %d %s", a.status, a.body)
		}
		acct := p.get("/account")
		must(t, acct, http.StatusOK, "Second Browser/1.0", ">End session</button>")
		end := regexp.MustCompile(`action="(/account/sessions/[^"]+/end)"`).FindStringSubmatch(acct.body)
		if end == nil {
			t.Fatalf("no form ends the other session:\n%s", acct.body)
		}
		must(t, p.follow(p.post(end[1], nil)), http.StatusOK, "The session has ended")
		if strings.Contains(p.get("/account").body, "Second Browser/1.0") {
			t.Error("the ended session is still listed")
		}
		// Ending it again (a second tab) is not an error.
		must(t, p.follow(p.post(end[1], nil)), http.StatusOK, "The session has ended")
	})

	t.Run("password", func(t *testing.T) {
		must(t, p.post("/account/password", url.Values{"current_password": {"not my password"}, "new_password": {"a new good secret"}}),
			http.StatusUnprocessableEntity, `id="f-pw-current_password-error"`, "The password is wrong")
		must(t, p.post("/account/password", url.Values{"current_password": {pw}, "new_password": {"short"}}),
			http.StatusUnprocessableEntity, `id="f-pw-new_password-error"`, "at least 8 characters")
		must(t, p.follow(p.post("/account/password", url.Values{"current_password": {pw}, "new_password": {"a new good secret"}})),
			http.StatusOK, "Your password is changed", "<dd>Ann Renamed</dd>") // still signed in here
		x := newVisitor(t, site)
		must(t, x.post("/signin", url.Values{"email": {"ann@example.com"}, "password": {pw}}), http.StatusUnprocessableEntity, "password is wrong")
		if a := x.post("/signin", url.Values{"email": {"ann@example.com"}, "password": {"a new good secret"}}); a.status != http.StatusSeeOther {
			t.Fatalf("sign in with the new password: %d", a.status)
		}
	})

	t.Run("email", func(t *testing.T) {
		// auth mails a person at most one code a minute and drops the rest
		// silently; the sign-up's code went out seconds ago. Move it back a
		// minute rather than wait one.
		backdateCodes(t, filepath.Join(s.cfg.DataDir, "auth.db"), 2*time.Minute)
		must(t, p.post("/account/email/change", url.Values{"new_email": {"not-an-address"}, "password": {"a new good secret"}}),
			http.StatusUnprocessableEntity, `id="f-em-new_email-error"`, `value="not-an-address"`)
		must(t, p.post("/account/email/change", url.Values{"new_email": {"ann.new@example.com"}, "password": {"wrong"}}),
			http.StatusUnprocessableEntity, `id="f-em-password-error"`, "The password is wrong")
		a := p.post("/account/email/change", url.Values{"new_email": {"ann.new@example.com"}, "password": {"a new good secret"}})
		must(t, p.follow(a), http.StatusOK, "Confirm your new address", "ann.new@example.com", "A code is on its way")
		must(t, p.post("/account/email", url.Values{"code": {"000000"}}), http.StatusUnprocessableEntity, `id="f-code-error"`, "The code is wrong")
		must(t, p.get("/account"), http.StatusOK, "<dd>ann@example.com</dd>") // not moved without the code
		code := env.WaitForCode(t, "ann.new@example.com", 60*time.Second)
		must(t, p.follow(p.post("/account/email", url.Values{"code": {code}})), http.StatusOK, "Your email address is changed", "<dd>ann.new@example.com</dd>")
	})

	t.Run("delete", func(t *testing.T) {
		must(t, p.post("/account/delete", url.Values{"password": {"a new good secret"}}), http.StatusUnprocessableEntity,
			`id="f-del-confirm-error"`, "Tick the box")
		must(t, p.post("/account/delete", url.Values{"password": {"wrong"}, "confirm": {"yes"}}), http.StatusUnprocessableEntity,
			`id="f-del-password-error"`, "The password is wrong")
		a := p.post("/account/delete", url.Values{"password": {"a new good secret"}, "confirm": {"yes"}})
		must(t, p.follow(a), http.StatusOK, "Your account is deleted", `href="/signin"`)
		if a := p.get("/account"); a.status != http.StatusSeeOther {
			t.Errorf("the account page after deletion: %d", a.status)
		}
		must(t, newVisitor(t, site).post("/signin", url.Values{"email": {"ann.new@example.com"}, "password": {"a new good secret"}}),
			http.StatusUnprocessableEntity, "password is wrong")
	})
}

// An admin finds accounts and grants and revokes the admin role; a person
// without it sees none of this.
func TestWebAdminUsers(t *testing.T) {
	s, env, _ := runSystem(t)
	site := s.webURL()
	boss, viewer := newVisitor(t, site), newVisitor(t, site)
	signUp(t, boss, env, "boss@example.com")
	signUp(t, viewer, env, "viewer@example.com")
	must(t, viewer.get("/admin/users"), http.StatusForbidden, "administrators only")
	must(t, viewer.post("/admin/users/x/admin", url.Values{"on": {"1"}}), http.StatusForbidden)

	db := "sqlite:" + filepath.Join(s.cfg.DataDir, "auth.db")
	if err := runAdmin(context.Background(), []string{"grant-role", "-db", db, "boss@example.com", "admin"}, func(string) string { return "" }, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	boss.follow(boss.post("/signout", nil))
	boss.post("/signin", url.Values{"email": {"boss@example.com"}, "password": {"correct horse battery"}})

	must(t, boss.get("/admin"), http.StatusOK, `href="/admin/users"`)
	list := boss.get("/admin/users")
	must(t, list, http.StatusOK, "<h1>Users</h1>", "boss@example.com", "viewer@example.com", `<th scope="col">`)
	found := boss.get("/admin/users?q=VIEWER")
	must(t, found, http.StatusOK, "viewer@example.com", `value="VIEWER"`)
	if strings.Contains(found.body, "boss@example.com") {
		t.Error("the search for viewer lists boss")
	}
	grant := regexp.MustCompile(`action="(/admin/users/[^"]+/admin)"`).FindStringSubmatch(found.body)
	if grant == nil || !strings.Contains(found.body, ">Make Reader") {
		t.Fatalf("no grant form:\n%s", found.body)
	}
	a := boss.post(grant[1], url.Values{"on": {"1"}, "back": {"/admin/users?q=VIEWER&m=role_revoked"}})
	if a.status != http.StatusSeeOther || a.location != "/admin/users?q=VIEWER&m=role_granted" {
		t.Fatalf("grant: %d %s", a.status, a.location)
	}
	must(t, boss.follow(a), http.StatusOK, "The admin role is granted", ">Remove admin from", "admin, user")
	// The role is in the viewer's next token.
	viewer.follow(viewer.post("/signout", nil))
	viewer.post("/signin", url.Values{"email": {"viewer@example.com"}, "password": {"correct horse battery"}})
	must(t, viewer.get("/admin/users"), http.StatusOK, "<h1>Users</h1>")
	a = boss.post(grant[1], url.Values{"on": {"0"}, "back": {"https://evil.example/"}})
	if a.location != "/admin/users?m=role_revoked" {
		t.Fatalf("revoke went to %q", a.location)
	}
	must(t, boss.follow(a), http.StatusOK, "The admin role is removed")
	must(t, boss.post("/admin/users/not-an-id/admin", url.Values{"on": {"1"}}), http.StatusNotFound)
}

// backdateCodes moves every one-time code in the auth database at path
// back by d, as if that much time had passed since each was mailed.
func backdateCodes(t *testing.T, path string, d time.Duration) {
	t.Helper()
	db, err := sqldb.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), `SELECT id, created_at FROM one_time_codes`)
	if err != nil {
		t.Fatal(err)
	}
	type code struct {
		id int64
		at time.Time
	}
	var codes []code
	for rows.Next() {
		var c code
		if err := rows.Scan(&c.id, &c.at); err != nil {
			t.Fatal(err)
		}
		codes = append(codes, c)
	}
	rows.Close()
	for _, c := range codes {
		if _, err := db.ExecContext(context.Background(), `UPDATE one_time_codes SET created_at = $1 WHERE id = $2`, c.at.Add(-d), c.id); err != nil {
			t.Fatal(err)
		}
	}
}

// When the address was registered again with another password before the
// code was entered, the site tells the person to sign up again rather than
// signing them in to an account under someone else's password.
func TestWebVerifyAfterASecondRegistration(t *testing.T) {
	s, env, _ := runSystem(t)
	victim, other := newVisitor(t, s.webURL()), newVisitor(t, s.webURL())
	must(t, victim.follow(victim.post("/signup", url.Values{"email": {"twice@example.com"}, "password": {"the owner's secret"}})), http.StatusOK, "Enter the code")
	first := env.WaitForCode(t, "twice@example.com", 60*time.Second)
	backdateCodes(t, filepath.Join(s.cfg.DataDir, "auth.db"), 2*time.Minute) // past the one-mail-a-minute limit
	must(t, other.follow(other.post("/signup", url.Values{"email": {"twice@example.com"}, "password": {"a stranger's secret"}})), http.StatusOK, "Enter the code")
	newest := env.WaitForNthCode(t, "twice@example.com", 2, 60*time.Second)
	if newest == first {
		t.Fatal("the second registration mailed the same code")
	}
	must(t, victim.post("/verify", url.Values{"email": {"twice@example.com"}, "code": {newest}, "password": {"the owner's secret"}}),
		http.StatusUnprocessableEntity, "Sign up again with your password")
	// Signing up again makes the owner's password the pending one; the
	// newest code then signs them in.
	backdateCodes(t, filepath.Join(s.cfg.DataDir, "auth.db"), 2*time.Minute)
	must(t, victim.follow(victim.post("/signup", url.Values{"email": {"twice@example.com"}, "password": {"the owner's secret"}})), http.StatusOK, "Enter the code")
	code := env.WaitForNthCode(t, "twice@example.com", 3, 60*time.Second)
	must(t, victim.follow(victim.post("/verify", url.Values{"email": {"twice@example.com"}, "code": {code}, "password": {"the owner's secret"}})),
		http.StatusOK, "Your address is confirmed")
}
