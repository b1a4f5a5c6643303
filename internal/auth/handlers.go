package auth

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/httpapi"
)

// registerAccepted is the one answer to every well-formed registration, so
// that it does not tell whether the address already has an account.
var registerAccepted = struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}{
	Status:  "accepted",
	Message: "If this address can be registered, a 6-digit code is on its way to it; submit it with the same password to POST /v1/auth/verify.",
}

func handleRegister(log *slog.Logger, svc *service) http.Handler {
	type request struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Locale   string `json:"locale"`
		Name     string `json:"name"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := httpapi.Decode(w, r, &req); err != nil {
			fail(w, r, log, err)
			return
		}
		if err := svc.RegisterNamed(r.Context(), req.Email, req.Password, req.Locale, req.Name); err != nil {
			fail(w, r, log, err)
			return
		}
		httpapi.JSON(w, http.StatusAccepted, registerAccepted)
	})
}

// tokenResponse is the token answer of DESIGN.md (RFC 6749 §5.1 names).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"` // seconds
}

func writeTokens(w http.ResponseWriter, t Tokens) {
	// Tokens must not be cached by anything between us and the client.
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusOK, tokenResponse{
		AccessToken: t.Access, RefreshToken: t.Refresh, TokenType: "Bearer", ExpiresIn: int(t.ExpiresIn / time.Second),
	})
}

func handleVerify(log *slog.Logger, svc *service) http.Handler {
	type request struct {
		Email    string `json:"email"`
		Code     string `json:"code"`
		Password string `json:"password"` // the one registered with: see service.Verify
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := httpapi.Decode(w, r, &req); err != nil {
			fail(w, r, log, err)
			return
		}
		t, err := svc.Verify(r.Context(), req.Email, req.Code, req.Password)
		if err != nil {
			fail(w, r, log, err)
			return
		}
		writeTokens(w, t)
	})
}

func handleLogin(log *slog.Logger, svc *service) http.Handler {
	type request struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := httpapi.Decode(w, r, &req); err != nil {
			fail(w, r, log, err)
			return
		}
		t, err := svc.Login(r.Context(), req.Email, req.Password)
		if err != nil {
			fail(w, r, log, err)
			return
		}
		writeTokens(w, t)
	})
}

func handleMe(log *slog.Logger, svc *service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			fail(w, r, log, errInvalidToken)
			return
		}
		u, err := svc.Me(r.Context(), token)
		if err != nil {
			fail(w, r, log, err)
			return
		}
		writeMe(w, u)
	})
}

// bearer returns the token of an "Authorization: Bearer …" header; the
// scheme is case-insensitive (RFC 9110 §11.1).
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// publicMaxAge lets caches keep the key set and the server metadata for five
// minutes: they change rarely, and verifiers re-fetch on an unknown kid.
const publicMaxAge = "public, max-age=300"

func handleJWKS(svc *service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", publicMaxAge)
		httpapi.JSON(w, http.StatusOK, svc.JWKSet())
	})
}

// handleServerMetadata serves RFC 8414 authorization server metadata
// (/.well-known/oauth-authorization-server) with only what is true of
// auth: its issuer — the iss of its tokens — and where its public keys are,
// which is what a verifier discovers from the issuer alone. Everything else
// RFC 8414 defines is left out because auth has none of it: no
// authorization endpoint (so no response_types_supported, required only
// with one: errata 7793), no OAuth token endpoint (login and refresh are
// JSON APIs, not RFC 6749 grants), no registration, revocation or
// introspection endpoint, no scopes. docs/security.md, "Discovery".
func handleServerMetadata(issuer string) http.Handler {
	doc := struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}{issuer, issuer + "/.well-known/jwks.json"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", publicMaxAge)
		httpapi.JSON(w, http.StatusOK, doc)
	})
}

// errNotAnOpenIDProvider answers /.well-known/openid-configuration. An
// OpenID Provider's metadata must name an authorization endpoint, ID token
// algorithms and more that auth does not have, so any document there would
// be rejected by OpenID libraries or would claim what is not true. A 404
// lets clients that try both names (Spring's issuer-location lookup, for
// one) go on to RFC 8414's, and tells a person where to look.
var errNotAnOpenIDProvider = apperr.New(apperr.NotFound, "not_an_openid_provider",
	"auth issues access tokens but is not an OpenID provider (no ID tokens, no authorization endpoint): "+
		"its metadata (RFC 8414) is at /.well-known/oauth-authorization-server and its public keys at /.well-known/jwks.json")

func handleOpenIDConfiguration(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail(w, r, log, errNotAnOpenIDProvider)
	})
}
