package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"kinoteka/internal/httpapi"
)

// fail writes err as problem+json, with Retry-After when it says how long
// to wait (a throttle, or every hashing slot taken).
func fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var t *retryAfterError
	if errors.As(err, &t) {
		w.Header().Set("Retry-After", strconv.Itoa(t.retryAfterSeconds()))
	}
	httpapi.Error(w, r, log, err)
}

// accepted is the one answer of an endpoint that must not tell whether an
// address has an account.
type accepted struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

var (
	resendAccepted = accepted{
		Status:  "accepted",
		Message: "If this address has an account waiting for verification, a new 6-digit code is on its way to it; it replaces the previous one.",
	}
	forgotAccepted = accepted{
		Status:  "accepted",
		Message: "If this address has an account, a 6-digit reset code is on its way to it; submit it to POST /v1/auth/password/reset.",
	}
)

// emailOnly is the body of resend and forgot.
type emailOnly struct {
	Email string `json:"email"`
}

func handleResend(log *slog.Logger, svc *service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req emailOnly
		if err := httpapi.Decode(w, r, &req); err != nil {
			fail(w, r, log, err)
			return
		}
		if err := svc.Resend(r.Context(), req.Email); err != nil {
			fail(w, r, log, err)
			return
		}
		httpapi.JSON(w, http.StatusAccepted, resendAccepted)
	})
}

func handleForgot(log *slog.Logger, svc *service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req emailOnly
		if err := httpapi.Decode(w, r, &req); err != nil {
			fail(w, r, log, err)
			return
		}
		if err := svc.Forgot(r.Context(), req.Email); err != nil {
			fail(w, r, log, err)
			return
		}
		httpapi.JSON(w, http.StatusAccepted, forgotAccepted)
	})
}

func handleReset(log *slog.Logger, svc *service) http.Handler {
	type request struct {
		Email       string `json:"email"`
		Code        string `json:"code"`
		NewPassword string `json:"new_password"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := httpapi.Decode(w, r, &req); err != nil {
			fail(w, r, log, err)
			return
		}
		if err := svc.Reset(r.Context(), req.Email, req.Code, req.NewPassword); err != nil {
			fail(w, r, log, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}

// refreshRequest is the body of refresh and logout.
type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func handleRefresh(log *slog.Logger, svc *service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req refreshRequest
		if err := httpapi.Decode(w, r, &req); err != nil {
			fail(w, r, log, err)
			return
		}
		t, err := svc.Refresh(r.Context(), req.RefreshToken)
		if err != nil {
			fail(w, r, log, err)
			return
		}
		writeTokens(w, t)
	})
}

func handleLogout(log *slog.Logger, svc *service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req refreshRequest
		if err := httpapi.Decode(w, r, &req); err != nil {
			fail(w, r, log, err)
			return
		}
		if err := svc.Logout(r.Context(), req.RefreshToken); err != nil {
			fail(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleLogoutAll(log *slog.Logger, svc *service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			fail(w, r, log, errInvalidToken)
			return
		}
		if err := svc.LogoutAll(r.Context(), token); err != nil {
			fail(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
