package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// The account page and what a person does to their own account through
// auth's self-service API: change the display name, see and end sessions,
// change the password, change the address (new address and password → the
// code mailed to it → changed), and delete the account. Each is a form that
// works without script; a refusal comes back on the account page with the
// reasons next to the fields.

// accountPage is the content of the account template.
type accountPage struct {
	Me         me
	Since      string
	Sessions   []sessionItem
	Name       *form
	Password   *form
	Email      *form
	Delete     *form
	SignOut    *form
	SignOutAll *form
}

// sessionItem is one of the person's sessions as the page shows it.
type sessionItem struct {
	Current   bool
	Device    string
	IP        string
	Since     string
	LastUsed  string
	End       *form
	SessionID string
}

func (a *app) nameForm(lang, name string) *form {
	return &form{Action: "/account/name", Submit: translate(lang, "button.name_save"), Fields: []*field{
		{Name: "name", Type: "text", Label: translate(lang, "field.name"), Value: name, Hint: translate(lang, "field.name_hint"), Autocomplete: "nickname", Required: true, MaxLength: 50},
	}}
}

func (a *app) passwordForm(lang string) *form {
	return scoped("pw", &form{Action: "/account/password", Submit: translate(lang, "button.password_change"), Fields: []*field{
		{Name: "current_password", Type: "password", Label: translate(lang, "field.current_password"), Autocomplete: "current-password", Required: true, MaxLength: 128},
		{Name: "new_password", Type: "password", Label: translate(lang, "field.new_password"), Hint: translate(lang, "field.password_hint"), Autocomplete: "new-password", Required: true, MaxLength: 128},
	}})
}

func (a *app) emailForm(lang string) *form {
	return scoped("em", &form{Action: "/account/email/change", Submit: translate(lang, "button.email_change"), Fields: []*field{
		{Name: "new_email", Type: "email", Label: translate(lang, "field.new_email"), Autocomplete: "email", Required: true, MaxLength: 254},
		{Name: "password", Type: "password", Label: translate(lang, "field.password"), Autocomplete: "current-password", Required: true, MaxLength: 128},
	}})
}

func (a *app) deleteForm(lang string) *form {
	return scoped("del", &form{Action: "/account/delete", Submit: translate(lang, "button.account_delete"), Class: "secondary", Fields: []*field{
		{Name: "password", Type: "password", Label: translate(lang, "field.password"), Autocomplete: "current-password", Required: true, MaxLength: 128},
		{Name: "confirm", Type: "checkbox", Label: translate(lang, "field.delete_confirm"), Required: true},
	}})
}

// accountPage renders the account page; with, when non-nil, puts a form
// shown again with its errors in place of the fresh one.
func (a *app) accountPage(w http.ResponseWriter, r *http.Request, u *user, status int, with func(*accountPage)) {
	lang := language(r)
	ctx, cancel := a.ctx(r)
	defer cancel()
	var m me
	if err := a.api.auth(ctx, r, http.MethodGet, "/v1/auth/me", u.bearer(), nil, &m); err != nil {
		a.fail(w, r, u, err)
		return
	}
	var list struct{ Items []authSession }
	if err := a.api.auth(ctx, r, http.MethodGet, "/v1/auth/sessions", u.bearer(), nil, &list); err != nil {
		a.fail(w, r, u, err)
		return
	}
	p := accountPage{
		Me: m, Since: m.CreatedAt.Format("2006-01-02"),
		Password: a.passwordForm(lang), Email: a.emailForm(lang), Delete: a.deleteForm(lang),
		SignOut:    &form{Action: "/signout", Submit: translate(lang, "button.signout"), Class: "secondary"},
		SignOutAll: &form{Action: "/signout-all", Submit: translate(lang, "button.signout_all"), Class: "secondary"},
	}
	name := ""
	if m.NameSet {
		name = m.Name
	}
	p.Name = a.nameForm(lang, name)
	for _, s := range list.Items {
		device := s.UserAgent
		if device == "" {
			device = translate(lang, "account.device_unknown")
		}
		it := sessionItem{Current: s.Current, Device: device, IP: s.IP, SessionID: s.ID,
			Since: s.CreatedAt.Format("2006-01-02 15:04"), LastUsed: s.LastUsedAt.Format("2006-01-02 15:04")}
		if !s.Current {
			it.End = &form{Action: "/account/sessions/" + url.PathEscape(s.ID) + "/end", Submit: translate(lang, "button.session_end"), Class: "secondary outline"}
		}
		p.Sessions = append(p.Sessions, it)
	}
	if with != nil {
		with(&p)
	}
	a.render(w, r, status, "account", &page{Title: translate(lang, "account.title"), User: u, Data: p})
}

func (a *app) handleAccount(w http.ResponseWriter, r *http.Request) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return
	}
	a.accountPage(w, r, u, http.StatusOK, nil)
}

// selfService is one account form's round trip: sign-in required, the
// posted form filled, call made; a refusal the form can show comes back
// on the account page (place puts the form there), anything else is the
// error page. ok is false when the answer has been written.
func (a *app) selfService(w http.ResponseWriter, r *http.Request, f *form, place func(*accountPage, *form), call func(u *user) error) (*user, bool) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return nil, false
	}
	f.fill(r)
	if err := call(u); err != nil {
		if errors.Is(err, errFormInvalid) || f.apply(language(r), err, nil) {
			a.accountPage(w, r, u, http.StatusUnprocessableEntity, func(p *accountPage) { place(p, f) })
			return nil, false
		}
		a.fail(w, r, u, err)
		return nil, false
	}
	return u, true
}

// errFormInvalid is a form refused before any API was asked; the form
// already carries the reasons.
var errFormInvalid = errors.New("the form is not valid")

func (a *app) handleNameChange(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	f := a.nameForm(lang, "")
	_, ok := a.selfService(w, r, f, func(p *accountPage, f *form) { p.Name = f }, func(u *user) error {
		ctx, cancel := a.ctx(r)
		defer cancel()
		return a.api.auth(ctx, r, http.MethodPatch, "/v1/auth/me", u.bearer(), map[string]string{"name": r.PostFormValue("name")}, nil)
	})
	if ok {
		a.redirect(w, r, "/account?m=name_saved")
	}
}

// handlePasswordChange changes the password: auth ends every other
// session and keeps this one, so the person stays signed in here.
func (a *app) handlePasswordChange(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	f := a.passwordForm(lang)
	_, ok := a.selfService(w, r, f, func(p *accountPage, f *form) { p.Password = f }, func(u *user) error {
		ctx, cancel := a.ctx(r)
		defer cancel()
		return a.api.auth(ctx, r, http.MethodPost, "/v1/auth/password/change", u.bearer(),
			map[string]string{"current_password": r.PostFormValue("current_password"), "new_password": r.PostFormValue("new_password")}, nil)
	})
	if ok {
		a.redirect(w, r, "/account?m=password_changed")
	}
}

// handleEmailChange asks auth to mail a code to the new address; the
// address changes only when that code comes back (handleEmailConfirm).
func (a *app) handleEmailChange(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	f := a.emailForm(lang)
	addr := strings.TrimSpace(r.PostFormValue("new_email"))
	_, ok := a.selfService(w, r, f, func(p *accountPage, f *form) { p.Email = f }, func(u *user) error {
		ctx, cancel := a.ctx(r)
		defer cancel()
		return a.api.auth(ctx, r, http.MethodPost, "/v1/auth/email/change", u.bearer(),
			map[string]string{"new_email": addr, "password": r.PostFormValue("password")}, nil)
	})
	if ok {
		a.redirect(w, r, "/account/email?m=email_code_sent&email="+url.QueryEscape(addr))
	}
}

func (a *app) emailConfirmForm(lang string) *form {
	return &form{Action: "/account/email", Submit: translate(lang, "button.email_confirm"), Fields: []*field{
		{Name: "code", Type: "text", Label: translate(lang, "field.code"), Autocomplete: "one-time-code", InputMode: "numeric", Required: true, MaxLength: 6},
	}}
}

func (a *app) emailConfirmPage(w http.ResponseWriter, r *http.Request, u *user, status int, f *form) {
	lang := language(r)
	intro := translate(lang, "email.intro_any")
	if addr := r.URL.Query().Get("email"); addr != "" {
		intro = translate(lang, "email.intro", addr)
	}
	a.render(w, r, status, "form", &page{Title: translate(lang, "email.title"), User: u, InboxURL: a.cfg.InboxURL, Data: formPage{
		Heading: translate(lang, "email.title"), Intro: intro, Form: f,
		Links: []link{{Text: translate(lang, "email.back"), Href: "/account"}},
	}})
}

func (a *app) handleEmailConfirmPage(w http.ResponseWriter, r *http.Request) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return
	}
	a.emailConfirmPage(w, r, u, http.StatusOK, a.emailConfirmForm(language(r)))
}

func (a *app) handleEmailConfirm(w http.ResponseWriter, r *http.Request) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return
	}
	lang := language(r)
	f := a.emailConfirmForm(lang)
	f.fill(r)
	ctx, cancel := a.ctx(r)
	defer cancel()
	err := a.api.auth(ctx, r, http.MethodPost, "/v1/auth/email/confirm", u.bearer(), map[string]string{"code": strings.TrimSpace(r.PostFormValue("code"))}, nil)
	if err != nil {
		if f.apply(lang, err, nil) {
			a.emailConfirmPage(w, r, u, http.StatusUnprocessableEntity, f)
			return
		}
		a.fail(w, r, u, err)
		return
	}
	a.redirect(w, r, "/account?m=email_changed")
}

// handleSessionEnd ends one of the person's other sessions. One already
// gone (ended twice, from two tabs) is ended all the same.
func (a *app) handleSessionEnd(w http.ResponseWriter, r *http.Request) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	err := a.api.auth(ctx, r, http.MethodDelete, "/v1/auth/sessions/"+url.PathEscape(r.PathValue("id")), u.bearer(), nil, nil)
	if err != nil && statusOf(err) != http.StatusNotFound {
		a.fail(w, r, u, err)
		return
	}
	a.redirect(w, r, "/account?m=session_ended#sessions")
}

// handleAccountDelete deletes the account after the password and a ticked
// confirmation; auth ends every session, so the cookie goes too.
func (a *app) handleAccountDelete(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	f := a.deleteForm(lang)
	confirmed := r.PostFormValue("confirm") == "yes"
	_, ok := a.selfService(w, r, f, func(p *accountPage, f *form) { p.Delete = f }, func(u *user) error {
		if !confirmed {
			// Refused here: auth is not asked until the box is ticked.
			f.setError(lang, "confirm", "error.delete_confirm")
			return errFormInvalid
		}
		ctx, cancel := a.ctx(r)
		defer cancel()
		return a.api.auth(ctx, r, http.MethodDelete, "/v1/auth/me", u.bearer(), map[string]string{"password": r.PostFormValue("password")}, nil)
	})
	if ok {
		a.endSession(w, r)
		a.redirect(w, r, "/?m=account_deleted")
	}
}
