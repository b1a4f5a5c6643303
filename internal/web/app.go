package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// app is the web service: its configuration, the API client, the session
// sealer and the parsed pages. Handlers are its methods.
type app struct {
	cfg    Config
	log    *slog.Logger
	api    *api
	sealer *sealer
	pages  templates
	assets *assetSet
	now    func() time.Time
	// refreshed counts session renewals by outcome (metrics).
	refreshed func(outcome string)
}

// currentUser is the signed-in person, or nil. It opens the session
// cookie and, when the access token is about to expire, renews it through
// auth's refresh rotation and re-seals the cookie. A session auth no longer
// honours (signed out elsewhere, password reset) is dropped. When auth
// cannot be reached to renew, a page that needs no one (required false)
// is shown signed out rather than not at all.
func (a *app) currentUser(w http.ResponseWriter, r *http.Request, required bool) (*user, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	s, err := a.sealer.open(c.Value)
	if err != nil {
		http.SetCookie(w, a.cookie(r, sessionCookie, "", -1))
		return nil, nil
	}
	if a.now().Add(renewBefore).After(s.AccessExp) {
		var t tokens
		err := a.api.auth(r.Context(), r, http.MethodPost, "/v1/auth/refresh", "", map[string]string{"refresh_token": s.Refresh}, &t)
		switch st := statusOf(err); {
		case err == nil:
			a.count("renewed")
			if s, err = a.startSession(w, r, t); err != nil {
				return nil, err
			}
		case st == http.StatusUnauthorized || st == http.StatusBadRequest:
			a.count("ended")
			http.SetCookie(w, a.cookie(r, sessionCookie, "", -1))
			return nil, nil
		default:
			a.count("failed")
			if a.now().Before(s.AccessExp) {
				break // the token has a few seconds left: use them
			}
			if required {
				return nil, err
			}
			return nil, nil
		}
	}
	u, err := claims(s.Access)
	if err != nil {
		http.SetCookie(w, a.cookie(r, sessionCookie, "", -1))
		return nil, nil
	}
	u.sess = s
	return &u, nil
}

func (a *app) count(outcome string) {
	if a.refreshed != nil {
		a.refreshed(outcome)
	}
}

// startSession seals fresh tokens into the session cookie.
func (a *app) startSession(w http.ResponseWriter, r *http.Request, t tokens) (session, error) {
	s := session{Refresh: t.RefreshToken, Access: t.AccessToken, AccessExp: a.now().Add(time.Duration(t.ExpiresIn) * time.Second)}
	v, err := a.sealer.seal(s)
	if err != nil {
		return s, err
	}
	http.SetCookie(w, a.cookie(r, sessionCookie, v, int(sessionLife/time.Second)))
	return s, nil
}

// endSession drops the session cookie.
func (a *app) endSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, a.cookie(r, sessionCookie, "", -1))
}

// signedIn is currentUser for the pages that need a person: without one it
// sends them to sign in, and back here afterwards. ok is false when the
// answer has been written.
func (a *app) signedIn(w http.ResponseWriter, r *http.Request) (u *user, ok bool) {
	u, err := a.currentUser(w, r, true)
	if err != nil {
		a.fail(w, r, nil, err)
		return nil, false
	}
	if u == nil {
		back := r.URL.RequestURI()
		if r.Method != http.MethodGet {
			back = backPath(r)
		}
		a.redirect(w, r, "/signin?m=signin_needed&next="+url.QueryEscape(back))
		return nil, false
	}
	return u, true
}

// backPath is where a form posted from should lead back to: the local
// path the Referer names, else the catalogue.
func backPath(r *http.Request) string {
	if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host {
		return localPath(ref.RequestURI())
	}
	return "/"
}

// localPath is p when it is a path on this site, else "/": a "next" or
// "back" parameter must never send a person to another host.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

// redirect answers a form post with 303 See Other, so reloading the page
// that follows never posts the form again.
func (a *app) redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// withFlash adds the flash message key m to the local path p.
func withFlash(p, m string) string {
	sep := "?"
	if strings.Contains(p, "?") {
		sep = "&"
	}
	// Keep a fragment last.
	frag := ""
	if i := strings.IndexByte(p, '#'); i >= 0 {
		p, frag = p[:i], p[i:]
		if strings.Contains(p, "?") {
			sep = "&"
		} else {
			sep = "?"
		}
	}
	return p + sep + "m=" + url.QueryEscape(m) + frag
}

// bearer is the user's access token, or "".
func (u *user) bearer() string {
	if u == nil {
		return ""
	}
	return u.sess.Access
}

// ctx bounds one page's calls to the APIs.
func (a *app) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), a.cfg.APITimeout)
}

// isPersonFacing reports whether err is something the form shows next to
// its fields (a 4xx other than 429, 401 on a token, 404) rather than a page
// of its own.
func isFormError(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict || ae.Status == http.StatusUnprocessableEntity ||
		(ae.Status == http.StatusUnauthorized && ae.Code == "invalid_credentials") ||
		(ae.Status == http.StatusForbidden && (ae.Code == "email_not_verified" || ae.Code == "wrong_password"))
}
