package web

import (
	"net/http"

	"kinoteka/internal/httpapi"
)

// routes is the whole site on one screen. Every POST is a form; a post
// from another site is refused before it reaches a handler. The probes and
// /metrics are not here but on the operators' listener (opsRoutes): here
// they are pages that do not exist.
func (a *app) routes(metrics *httpapi.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.handleCatalogue)
	mux.HandleFunc("GET /films/{id}", a.handleFilm)
	mux.HandleFunc("POST /films/{id}/favourite", a.handleFavourite)
	mux.HandleFunc("POST /films/{id}/review", a.handleReview)
	mux.HandleFunc("POST /films/{id}/review/delete", a.handleReviewDelete)
	mux.HandleFunc("GET /favourites", a.handleFavourites)

	mux.HandleFunc("GET /signup", a.handleSignupPage)
	mux.HandleFunc("POST /signup", a.handleSignup)
	mux.HandleFunc("GET /verify", a.handleVerifyPage)
	mux.HandleFunc("POST /verify", a.handleVerify)
	mux.HandleFunc("POST /verify/resend", a.handleResend)
	mux.HandleFunc("GET /signin", a.handleSigninPage)
	mux.HandleFunc("POST /signin", a.handleSignin)
	mux.HandleFunc("GET /forgot", a.handleForgotPage)
	mux.HandleFunc("POST /forgot", a.handleForgot)
	mux.HandleFunc("GET /reset", a.handleResetPage)
	mux.HandleFunc("POST /reset", a.handleReset)
	mux.HandleFunc("POST /signout", a.handleSignout)
	mux.HandleFunc("POST /signout-all", a.handleSignoutAll)
	mux.HandleFunc("GET /account", a.handleAccount)
	mux.HandleFunc("POST /account/name", a.handleNameChange)
	mux.HandleFunc("POST /account/password", a.handlePasswordChange)
	mux.HandleFunc("POST /account/email/change", a.handleEmailChange)
	mux.HandleFunc("GET /account/email", a.handleEmailConfirmPage)
	mux.HandleFunc("POST /account/email", a.handleEmailConfirm)
	mux.HandleFunc("POST /account/sessions/{id}/end", a.handleSessionEnd)
	mux.HandleFunc("POST /account/delete", a.handleAccountDelete)
	mux.HandleFunc("POST /lang", a.handleLang)

	mux.HandleFunc("GET /admin", a.handleAdmin)
	mux.HandleFunc("POST /admin/films", a.handleFilmCreate)
	mux.HandleFunc("GET /admin/films/{id}", a.handleFilmEditPage)
	mux.HandleFunc("POST /admin/films/{id}", a.handleFilmSave)
	mux.HandleFunc("POST /admin/films/{id}/delete", a.handleFilmDelete)
	mux.HandleFunc("POST /admin/genres", a.handleGenreCreate)
	mux.HandleFunc("GET /admin/users", a.handleUsers)
	mux.HandleFunc("POST /admin/users/{id}/admin", a.handleUserAdmin)

	mux.Handle("GET /static/{name}", a.assets.serve(a.log))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, a.assets.url("favicon.svg"), http.StatusMovedPermanently)
	})
	// Anything else is a page that does not exist, in the site's style.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u, _ := a.currentUser(w, r, false)
		a.fail(w, r, u, errNotFound)
	})

	return httpapi.Stack{Log: a.log, Metrics: metrics, Tracing: a.cfg.Tracing, Wrap: a.protect}.Handler(mux)
}

// opsRoutes is what web serves on the operators' listener (WEB_OPS_ADDR).
// Ready means auth and films answer a cheap public route each: auth its JWK
// set (from memory), films its genres (from its database, through the read
// cache).
func (a *app) opsRoutes(metrics *httpapi.Metrics) http.Handler {
	mux := http.NewServeMux()
	httpapi.Health(mux, map[string]httpapi.Check{
		"auth":  a.ping(a.cfg.AuthURL + "/.well-known/jwks.json"),
		"films": a.ping(a.cfg.FilmsURL + "/v1/genres"),
	})
	mux.Handle("GET /metrics", metrics.Handler())
	return httpapi.Stack{Log: a.log, Metrics: metrics, Tracing: a.cfg.Tracing}.Handler(mux)
}

// contentSecurityPolicy lets a page load only this site's own files: no
// inline script, no other host, no framing, forms posting only here.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// protect adds the security headers to every answer and refuses
// cross-origin form posts (http.CrossOriginProtection: Sec-Fetch-Site, or
// Origin against Host for older browsers) with a page that says why. The
// session cookie's SameSite=Lax is the second line: a cross-site post
// carries no session at all.
func (a *app) protect(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lang := language(r)
		a.render(w, r, http.StatusForbidden, "error", &page{Title: translate(lang, "error.csrf.title"),
			Data: errorPage{translate(lang, "error.csrf.title"), translate(lang, "error.csrf.text")}})
	}))
	inner := cop.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		inner.ServeHTTP(w, r)
	})
}
