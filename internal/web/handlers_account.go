package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The account pages: sign up → enter the code → signed in; sign in; forgot
// and reset the password; sign out (here, or everywhere); the account page;
// the language switch. Each form posts, and on success redirects (303) to a
// page that can be reloaded; on a refusal the form comes back with the
// reasons next to the fields.

// resendCookie remembers when a code was last mailed from this browser, so
// the verify page can say how long to wait: auth sends at most one mail a
// minute per address and silently drops the rest.
const (
	resendCookie   = "code_sent"
	resendCooldown = time.Minute
)

func (a *app) signupForm(lang string) *form {
	return &form{Action: "/signup", Submit: translate(lang, "button.signup"), Fields: []*field{
		{Name: "name", Type: "text", Label: translate(lang, "field.name"), Hint: translate(lang, "field.name_hint"), Autocomplete: "nickname", MaxLength: 50},
		{Name: "email", Type: "email", Label: translate(lang, "field.email"), Autocomplete: "email", Required: true, MaxLength: 254},
		{Name: "password", Type: "password", Label: translate(lang, "field.password"), Hint: translate(lang, "field.password_hint"), Autocomplete: "new-password", Required: true, MaxLength: 128},
	}}
}

func (a *app) signupPage(w http.ResponseWriter, r *http.Request, status int, f *form) {
	lang := language(r)
	a.render(w, r, status, "form", &page{Title: translate(lang, "signup.title"), Data: formPage{
		Heading: translate(lang, "signup.title"), Intro: translate(lang, "signup.intro"), Form: f,
		Links: []link{{Lead: translate(lang, "signup.have"), Text: translate(lang, "nav.signin"), Href: "/signin"}},
	}})
}

func (a *app) handleSignupPage(w http.ResponseWriter, r *http.Request) {
	a.signupPage(w, r, http.StatusOK, a.signupForm(language(r)))
}

func (a *app) handleSignup(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	f := a.signupForm(lang)
	f.fill(r)
	email := strings.TrimSpace(r.PostFormValue("email"))
	ctx, cancel := a.ctx(r)
	defer cancel()
	err := a.api.auth(ctx, r, http.MethodPost, "/v1/auth/register", "",
		map[string]string{"email": email, "password": r.PostFormValue("password"), "locale": lang, "name": r.PostFormValue("name")}, nil)
	if err != nil {
		if f.apply(lang, err, nil) {
			a.signupPage(w, r, http.StatusUnprocessableEntity, f)
			return
		}
		a.fail(w, r, nil, err)
		return
	}
	a.markCodeSent(w, r)
	a.redirect(w, r, "/verify?email="+url.QueryEscape(email))
}

func (a *app) markCodeSent(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, a.cookie(r, resendCookie, strconv.FormatInt(a.now().Unix(), 10), int(resendCooldown/time.Second)))
}

// codeWait is how long this browser should wait before asking for another
// code.
func (a *app) codeWait(r *http.Request) time.Duration {
	c, err := r.Cookie(resendCookie)
	if err != nil {
		return 0
	}
	sec, err := strconv.ParseInt(c.Value, 10, 64)
	if err != nil {
		return 0
	}
	left := time.Unix(sec, 0).Add(resendCooldown).Sub(a.now())
	if left < 0 || left > resendCooldown {
		return 0
	}
	return left.Round(time.Second)
}

// verifyPage is the content of the verify template.
type verifyPage struct {
	Email    string
	Form     *form
	Resend   *form
	WaitSecs int
	Wait     string
}

func (a *app) verifyForm(lang, email string) *form {
	return &form{Action: "/verify", Submit: translate(lang, "button.verify"), Fields: []*field{
		{Name: "email", Type: "email", Label: translate(lang, "field.email"), Value: email, Autocomplete: "email", Required: true},
		{Name: "code", Type: "text", Label: translate(lang, "field.code"), Autocomplete: "one-time-code", InputMode: "numeric", Required: true, MaxLength: 6},
		// auth activates the account only with the password of the newest
		// registration, so a stranger who registered the address again
		// cannot have the owner sign in to an account under their password.
		{Name: "password", Type: "password", Label: translate(lang, "field.password"), Hint: translate(lang, "verify.password_hint"),
			Autocomplete: "current-password", Required: true},
	}}
}

func (a *app) verifyPage(w http.ResponseWriter, r *http.Request, status int, f *form, email string) {
	lang := language(r)
	wait := int(a.codeWait(r) / time.Second)
	p := verifyPage{Email: email, Form: f, WaitSecs: wait,
		Resend: &form{Action: "/verify/resend", Submit: translate(lang, "button.resend"), Class: "secondary", Hidden: []hidden{{"email", email}}}}
	if wait > 0 {
		p.Wait = translate(lang, "verify.wait", wait)
	}
	a.render(w, r, status, "verify", &page{Title: translate(lang, "verify.title"), InboxURL: a.cfg.InboxURL, Data: p})
}

func (a *app) handleVerifyPage(w http.ResponseWriter, r *http.Request) {
	email := r.URL.Query().Get("email")
	a.verifyPage(w, r, http.StatusOK, a.verifyForm(language(r), email), email)
}

func (a *app) handleVerify(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	email := strings.TrimSpace(r.PostFormValue("email"))
	f := a.verifyForm(lang, email)
	f.fill(r)
	ctx, cancel := a.ctx(r)
	defer cancel()
	var t tokens
	err := a.api.auth(ctx, r, http.MethodPost, "/v1/auth/verify", "",
		map[string]string{"email": email, "code": strings.TrimSpace(r.PostFormValue("code")), "password": r.PostFormValue("password")}, &t)
	if err != nil {
		if f.apply(lang, err, nil) {
			a.verifyPage(w, r, http.StatusUnprocessableEntity, f, email)
			return
		}
		a.fail(w, r, nil, err)
		return
	}
	if _, err := a.startSession(w, r, t); err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.redirect(w, r, "/?m=welcome")
}

func (a *app) handleResend(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	email := strings.TrimSpace(r.PostFormValue("email"))
	if wait := a.codeWait(r); wait > 0 {
		f := a.verifyForm(lang, email)
		f.Error = translate(lang, "verify.wait_now", int(wait/time.Second))
		a.verifyPage(w, r, http.StatusTooManyRequests, f, email)
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	err := a.api.auth(ctx, r, http.MethodPost, "/v1/auth/verify/resend", "", map[string]string{"email": email}, nil)
	if err != nil {
		f := a.verifyForm(lang, email)
		if f.apply(lang, err, nil) {
			a.verifyPage(w, r, http.StatusUnprocessableEntity, f, email)
			return
		}
		a.fail(w, r, nil, err)
		return
	}
	a.markCodeSent(w, r)
	a.redirect(w, r, "/verify?m=code_sent&email="+url.QueryEscape(email))
}

func (a *app) signinForm(lang, next string) *form {
	return &form{Action: "/signin", Submit: translate(lang, "button.signin"), Hidden: []hidden{{"next", next}}, Fields: []*field{
		{Name: "email", Type: "email", Label: translate(lang, "field.email"), Autocomplete: "email", Required: true, MaxLength: 254},
		{Name: "password", Type: "password", Label: translate(lang, "field.password"), Autocomplete: "current-password", Required: true, MaxLength: 128},
	}}
}

func (a *app) signinPage(w http.ResponseWriter, r *http.Request, status int, f *form) {
	lang := language(r)
	a.render(w, r, status, "form", &page{Title: translate(lang, "signin.title"), Data: formPage{
		Heading: translate(lang, "signin.title"), Form: f,
		Links: []link{
			{Text: translate(lang, "signin.forgot"), Href: "/forgot"},
			{Lead: translate(lang, "signin.new"), Text: translate(lang, "nav.signup"), Href: "/signup"},
		},
	}})
}

func (a *app) handleSigninPage(w http.ResponseWriter, r *http.Request) {
	a.signinPage(w, r, http.StatusOK, a.signinForm(language(r), localPath(r.URL.Query().Get("next"))))
}

func (a *app) handleSignin(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	next := localPath(r.PostFormValue("next"))
	f := a.signinForm(lang, next)
	f.fill(r)
	email := strings.TrimSpace(r.PostFormValue("email"))
	ctx, cancel := a.ctx(r)
	defer cancel()
	var t tokens
	err := a.api.auth(ctx, r, http.MethodPost, "/v1/auth/login", "",
		map[string]string{"email": email, "password": r.PostFormValue("password")}, &t)
	if codeOf(err) == "email_not_verified" {
		// The password was right: finish the sign-up instead.
		a.redirect(w, r, "/verify?m=not_verified&email="+url.QueryEscape(email))
		return
	}
	if err != nil {
		if f.apply(lang, err, nil) {
			a.signinPage(w, r, http.StatusUnprocessableEntity, f)
			return
		}
		a.fail(w, r, nil, err)
		return
	}
	if _, err := a.startSession(w, r, t); err != nil {
		a.fail(w, r, nil, err)
		return
	}
	a.redirect(w, r, withFlash(next, "signed_in"))
}

func (a *app) forgotForm(lang string) *form {
	return &form{Action: "/forgot", Submit: translate(lang, "button.forgot"), Fields: []*field{
		{Name: "email", Type: "email", Label: translate(lang, "field.email"), Autocomplete: "email", Required: true, MaxLength: 254},
	}}
}

func (a *app) forgotPage(w http.ResponseWriter, r *http.Request, status int, f *form) {
	lang := language(r)
	a.render(w, r, status, "form", &page{Title: translate(lang, "forgot.title"), Data: formPage{
		Heading: translate(lang, "forgot.title"), Intro: translate(lang, "forgot.intro"), Form: f,
	}})
}

func (a *app) handleForgotPage(w http.ResponseWriter, r *http.Request) {
	a.forgotPage(w, r, http.StatusOK, a.forgotForm(language(r)))
}

func (a *app) handleForgot(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	f := a.forgotForm(lang)
	f.fill(r)
	email := strings.TrimSpace(r.PostFormValue("email"))
	ctx, cancel := a.ctx(r)
	defer cancel()
	if err := a.api.auth(ctx, r, http.MethodPost, "/v1/auth/password/forgot", "", map[string]string{"email": email}, nil); err != nil {
		if f.apply(lang, err, nil) {
			a.forgotPage(w, r, http.StatusUnprocessableEntity, f)
			return
		}
		a.fail(w, r, nil, err)
		return
	}
	a.redirect(w, r, "/reset?m=reset_sent&email="+url.QueryEscape(email))
}

func (a *app) resetForm(lang, email string) *form {
	return &form{Action: "/reset", Submit: translate(lang, "button.reset"), Fields: []*field{
		{Name: "email", Type: "email", Label: translate(lang, "field.email"), Value: email, Autocomplete: "email", Required: true, MaxLength: 254},
		{Name: "code", Type: "text", Label: translate(lang, "field.code"), Autocomplete: "one-time-code", InputMode: "numeric", Required: true, MaxLength: 6},
		{Name: "new_password", Type: "password", Label: translate(lang, "field.new_password"), Hint: translate(lang, "field.password_hint"), Autocomplete: "new-password", Required: true, MaxLength: 128},
	}}
}

func (a *app) resetPage(w http.ResponseWriter, r *http.Request, status int, f *form) {
	lang := language(r)
	a.render(w, r, status, "form", &page{Title: translate(lang, "reset.title"), InboxURL: a.cfg.InboxURL, Data: formPage{
		Heading: translate(lang, "reset.title"), Intro: translate(lang, "reset.intro"), Form: f,
	}})
}

func (a *app) handleResetPage(w http.ResponseWriter, r *http.Request) {
	a.resetPage(w, r, http.StatusOK, a.resetForm(language(r), r.URL.Query().Get("email")))
}

func (a *app) handleReset(w http.ResponseWriter, r *http.Request) {
	lang := language(r)
	f := a.resetForm(lang, "")
	f.fill(r)
	ctx, cancel := a.ctx(r)
	defer cancel()
	err := a.api.auth(ctx, r, http.MethodPost, "/v1/auth/password/reset", "", map[string]string{
		"email": strings.TrimSpace(r.PostFormValue("email")), "code": strings.TrimSpace(r.PostFormValue("code")), "new_password": r.PostFormValue("new_password"),
	}, nil)
	if err != nil {
		if f.apply(lang, err, nil) {
			a.resetPage(w, r, http.StatusUnprocessableEntity, f)
			return
		}
		a.fail(w, r, nil, err)
		return
	}
	a.endSession(w, r) // every session of the account has just ended
	a.redirect(w, r, "/signin?m=password_reset")
}

// handleSignout ends this browser's session at auth and drops the cookie.
// The cookie goes even when auth cannot be reached: the person asked to be
// signed out here, and the refresh token then simply lapses.
func (a *app) handleSignout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if s, err := a.sealer.open(c.Value); err == nil {
			ctx, cancel := a.ctx(r)
			defer cancel()
			if err := a.api.auth(ctx, r, http.MethodPost, "/v1/auth/logout", "", map[string]string{"refresh_token": s.Refresh}, nil); err != nil {
				a.log.WarnContext(r.Context(), "logout not confirmed by auth; the cookie is dropped anyway", "err", err)
			}
		}
	}
	a.endSession(w, r)
	a.redirect(w, r, "/?m=signed_out")
}

// handleSignoutAll ends every session of the person (auth's logout-all).
// Unlike a plain sign-out it must reach auth, or it has not happened.
func (a *app) handleSignoutAll(w http.ResponseWriter, r *http.Request) {
	u, ok := a.signedIn(w, r)
	if !ok {
		return
	}
	ctx, cancel := a.ctx(r)
	defer cancel()
	if err := a.api.auth(ctx, r, http.MethodPost, "/v1/auth/logout-all", u.bearer(), nil, nil); err != nil {
		a.fail(w, r, u, err)
		return
	}
	a.endSession(w, r)
	a.redirect(w, r, "/?m=signed_out_all")
}

// handleLang stores the language chosen with the switch for a year and
// goes back to the page it was pressed on.
func (a *app) handleLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PostFormValue("lang")
	if messages[lang] == nil {
		lang = "en"
	}
	c := a.cookie(r, langCookie, lang, 365*24*3600)
	http.SetCookie(w, c)
	a.redirect(w, r, localPath(r.PostFormValue("back")))
}
