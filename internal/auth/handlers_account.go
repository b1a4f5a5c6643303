package auth

import (
	"log/slog"
	"net/http"
	"time"

	"kinoteka/internal/events"
	"kinoteka/internal/httpapi"
)

// meResponse is the account as its person (GET /v1/auth/me) and an admin
// see it. name is always what people see (DisplayName applied); name_set
// tells whether the person chose it.
type meResponse struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name"`
	NameSet       bool      `json:"name_set"`
	Roles         []string  `json:"roles"`
	CreatedAt     time.Time `json:"created_at"`
}

func newMeResponse(u User) meResponse {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return meResponse{
		ID: u.ID, Email: u.Email, EmailVerified: u.Verified(), Name: events.DisplayName(u.ID, u.Name), NameSet: u.Name != "",
		Roles: roles, CreatedAt: u.CreatedAt,
	}
}

func writeMe(w http.ResponseWriter, u User) {
	w.Header().Set("Cache-Control", "no-store")
	httpapi.JSON(w, http.StatusOK, newMeResponse(u))
}

// withBearer runs h with the request's access token, or answers 401.
func withBearer(log *slog.Logger, h func(w http.ResponseWriter, r *http.Request, token string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			fail(w, r, log, errInvalidToken)
			return
		}
		h(w, r, token)
	})
}

// decodeBearer is withBearer that also decodes a JSON body into a new Req.
func decodeBearer[Req any](log *slog.Logger, h func(w http.ResponseWriter, r *http.Request, token string, req Req)) http.Handler {
	return withBearer(log, func(w http.ResponseWriter, r *http.Request, token string) {
		var req Req
		if err := httpapi.Decode(w, r, &req); err != nil {
			fail(w, r, log, err)
			return
		}
		h(w, r, token, req)
	})
}

func handleMePatch(log *slog.Logger, svc *service) http.Handler {
	type request struct {
		Name string `json:"name"`
	}
	return decodeBearer(log, func(w http.ResponseWriter, r *http.Request, token string, req request) {
		u, err := svc.UpdateName(r.Context(), token, req.Name)
		if err != nil {
			fail(w, r, log, err)
			return
		}
		writeMe(w, u)
	})
}

func handlePasswordChange(log *slog.Logger, svc *service) http.Handler {
	type request struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	return decodeBearer(log, func(w http.ResponseWriter, r *http.Request, token string, req request) {
		if err := svc.ChangePassword(r.Context(), token, req.CurrentPassword, req.NewPassword); err != nil {
			fail(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

var emailChangeAccepted = accepted{
	Status:  "accepted",
	Message: "A 6-digit code is on its way to the new address; submit it to POST /v1/auth/email/confirm. The address changes only then.",
}

func handleEmailChange(log *slog.Logger, svc *service) http.Handler {
	type request struct {
		NewEmail string `json:"new_email"`
		Password string `json:"password"`
	}
	return decodeBearer(log, func(w http.ResponseWriter, r *http.Request, token string, req request) {
		if err := svc.RequestEmailChange(r.Context(), token, req.NewEmail, req.Password); err != nil {
			fail(w, r, log, err)
			return
		}
		httpapi.JSON(w, http.StatusAccepted, emailChangeAccepted)
	})
}

func handleEmailConfirm(log *slog.Logger, svc *service) http.Handler {
	type request struct {
		Code string `json:"code"`
	}
	return decodeBearer(log, func(w http.ResponseWriter, r *http.Request, token string, req request) {
		u, err := svc.ConfirmEmailChange(r.Context(), token, req.Code)
		if err != nil {
			fail(w, r, log, err)
			return
		}
		writeMe(w, u)
	})
}

func handleSessionList(log *slog.Logger, svc *service) http.Handler {
	type session struct {
		ID         string    `json:"id"`
		CreatedAt  time.Time `json:"created_at"`
		LastUsedAt time.Time `json:"last_used_at"`
		UserAgent  string    `json:"user_agent"`
		IP         string    `json:"ip"`
		Current    bool      `json:"current"`
	}
	type response struct {
		Items []session `json:"items"`
	}
	return withBearer(log, func(w http.ResponseWriter, r *http.Request, token string) {
		list, err := svc.Sessions(r.Context(), token)
		if err != nil {
			fail(w, r, log, err)
			return
		}
		resp := response{Items: make([]session, len(list))}
		for i, s := range list {
			resp.Items[i] = session(s)
		}
		w.Header().Set("Cache-Control", "no-store")
		httpapi.JSON(w, http.StatusOK, resp)
	})
}

func handleSessionDelete(log *slog.Logger, svc *service) http.Handler {
	return withBearer(log, func(w http.ResponseWriter, r *http.Request, token string) {
		if err := svc.EndSession(r.Context(), token, r.PathValue("id")); err != nil {
			fail(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleMeDelete(log *slog.Logger, svc *service) http.Handler {
	type request struct {
		Password string `json:"password"`
	}
	return decodeBearer(log, func(w http.ResponseWriter, r *http.Request, token string, req request) {
		if err := svc.DeleteAccount(r.Context(), token, req.Password); err != nil {
			fail(w, r, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// adminUser is an account in the admin's list.
type adminUser struct {
	meResponse
	Status string `json:"status"`
}

func newAdminUser(u User) adminUser { return adminUser{newMeResponse(u), string(u.Status)} }

func handleAdminUsers(log *slog.Logger, svc *service) http.Handler {
	type response struct {
		Items      []adminUser `json:"items"`
		NextCursor *string     `json:"next_cursor"`
	}
	return withBearer(log, func(w http.ResponseWriter, r *http.Request, token string) {
		page, err := svc.ListUsers(r.Context(), token, r.URL.Query().Get("q"), r.URL.Query().Get("cursor"))
		if err != nil {
			fail(w, r, log, err)
			return
		}
		resp := response{Items: make([]adminUser, len(page.Items))}
		for i, u := range page.Items {
			resp.Items[i] = newAdminUser(u)
		}
		if page.Next != "" {
			resp.NextCursor = &page.Next
		}
		w.Header().Set("Cache-Control", "no-store")
		httpapi.JSON(w, http.StatusOK, resp)
	})
}

func handleAdminRole(log *slog.Logger, svc *service, grant bool) http.Handler {
	return withBearer(log, func(w http.ResponseWriter, r *http.Request, token string) {
		u, err := svc.SetUserRole(r.Context(), token, r.PathValue("id"), r.PathValue("role"), grant)
		if err != nil {
			fail(w, r, log, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		httpapi.JSON(w, http.StatusOK, newAdminUser(u))
	})
}
