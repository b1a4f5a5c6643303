package auth

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"kinoteka/internal/httpapi"
)

// registerAccepted is the one answer to every well-formed registration, so
// that it does not tell whether the address already has an account.
var registerAccepted = struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}{
	Status:  "accepted",
	Message: "If this address can be registered, a 6-digit code is on its way to it; submit it to POST /v1/auth/verify.",
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
		Email string `json:"email"`
		Code  string `json:"code"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := httpapi.Decode(w, r, &req); err != nil {
			fail(w, r, log, err)
			return
		}
		t, err := svc.Verify(r.Context(), req.Email, req.Code)
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

// publicMaxAge lets caches keep the key set and discovery document for five
// minutes: they change rarely, and verifiers re-fetch on an unknown kid.
const publicMaxAge = "public, max-age=300"

func handleJWKS(svc *service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", publicMaxAge)
		httpapi.JSON(w, http.StatusOK, svc.JWKSet())
	})
}

// handleDiscovery serves the parts of OpenID Connect Discovery 1.0 that
// apply to a service issuing signed access tokens, so standard JWT libraries
// can find the keys from the issuer alone. Kinoteka has no authorization
// endpoint (it is not an OpenID provider), so none is advertised.
func handleDiscovery(issuer string, algs []string) http.Handler {
	doc := map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              issuer + "/.well-known/jwks.json",
		"id_token_signing_alg_values_supported": algs,
		"subject_types_supported":               []string{"public"},
		"response_types_supported":              []string{"token"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "email", "email_verified", "roles", "sid"},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", publicMaxAge)
		httpapi.JSON(w, http.StatusOK, doc)
	})
}
