package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"kinoteka/internal/apperr"
)

// The session and recovery routes over HTTP: statuses, bodies and headers.
func TestHTTPSessionAndRecoveryFlow(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	const js = "application/json"
	tok := f.registerVerified(t, "a@example.com")

	w := do(t, h, "POST", "/v1/auth/refresh", js, `{"refresh_token":"`+tok.Refresh+`"}`)
	next := decodeTokens(t, w)
	if next.RefreshToken == tok.Refresh || next.TokenType != "Bearer" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("refresh: %+v, Cache-Control %q", next, w.Header().Get("Cache-Control"))
	}
	f.clock.Advance(time.Minute)
	w = do(t, h, "POST", "/v1/auth/refresh", js, `{"refresh_token":"`+tok.Refresh+`"}`)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "invalid_refresh_token") {
		t.Errorf("reuse: %d %s", w.Code, w.Body)
	}
	login := f.login(t, "a@example.com")
	if w = do(t, h, "POST", "/v1/auth/logout", js, `{"refresh_token":"`+login.Refresh+`"}`); w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("logout: %d %s", w.Code, w.Body)
	}
	if w = do(t, h, "POST", "/v1/auth/logout", js, `{"refresh_token":"`+login.Refresh+`"}`); w.Code != http.StatusNoContent {
		t.Errorf("second logout: %d %s", w.Code, w.Body)
	}
	if w = do(t, h, "POST", "/v1/auth/logout", js, `{}`); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "refresh_token") {
		t.Errorf("logout without a token: %d %s", w.Code, w.Body)
	}
	other := f.login(t, "a@example.com")
	if w = do(t, h, "POST", "/v1/auth/logout-all", "", ""); w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("logout-all without a token: %d %s", w.Code, w.Body)
	}
	if w = do(t, h, "POST", "/v1/auth/logout-all", "", "", "Authorization", "Bearer "+other.Access); w.Code != http.StatusNoContent {
		t.Errorf("logout-all: %d %s", w.Code, w.Body)
	}
	f.refused(t, other.Refresh, "after logout-all over HTTP")

	if w = do(t, h, "POST", "/v1/auth/verify/resend", js, `{"email":"a@example.com"}`); w.Code != http.StatusAccepted {
		t.Errorf("resend: %d %s", w.Code, w.Body)
	}
	if w = do(t, h, "POST", "/v1/auth/password/forgot", js, `{"email":"a@example.com"}`); w.Code != http.StatusAccepted {
		t.Errorf("forgot: %d %s", w.Code, w.Body)
	}
	code := lastMail(t, f.db).mail.Code
	w = do(t, h, "POST", "/v1/auth/password/reset", js, `{"email":"a@example.com","code":"`+code+`","new_password":"Password123"}`)
	var p struct {
		Errors []struct{ Field, Message string }
	}
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if w.Code != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != "new_password" {
		t.Errorf("reset to a common password: %d %s", w.Code, w.Body)
	}
	if w = do(t, h, "POST", "/v1/auth/password/reset", js, `{"email":"a@example.com","code":"`+code+`","new_password":"a brand new secret"}`); w.Code != http.StatusNoContent {
		t.Errorf("reset: %d %s", w.Code, w.Body)
	}
	if w = do(t, h, "POST", "/v1/auth/login", js, `{"email":"a@example.com","password":"a brand new secret"}`); w.Code != http.StatusOK {
		t.Errorf("login with the new password: %d %s", w.Code, w.Body)
	}
}

// Register's password rules reach the client as field errors.
func TestRegisterRefusesWeakPasswords(t *testing.T) {
	f := sqliteFixture(t)
	h := testRoutes(f)
	for _, tc := range []struct{ body, want string }{
		{`{"email":"anna@example.com","password":"Password1"}`, "most common passwords"},
		{`{"email":"anna@example.com","password":"hello anna 1234"}`, "before the @"},
		{`{"email":"anna@example.com","password":"short"}`, "at least 8 characters"},
	} {
		w := do(t, h, "POST", "/v1/auth/register", "application/json", tc.body)
		var p struct {
			Errors []struct{ Field, Message string }
		}
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != "password" || !strings.Contains(p.Errors[0].Message, tc.want) {
			t.Errorf("%s: %d %s; want a password error saying %q", tc.body, w.Code, w.Body, tc.want)
		}
	}
}

func TestRolesInTheToken(t *testing.T) {
	db := sqliteDB(t)
	f := newFixture(t, db, func(c *serviceConfig) { c.AdminEmails = []string{"boss@example.com"} })
	ctx := context.Background()
	boss := f.registerVerified(t, "boss@example.com")
	user := f.registerVerified(t, "user@example.com")
	roles := func(access string) string {
		p, err := f.svc.verifier.Verify(ctx, access)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(p.Roles, ",")
	}
	if got := roles(boss.Access); got != "admin,user" {
		t.Errorf("configured admin's roles = %s", got)
	}
	if got := roles(user.Access); got != "user" {
		t.Errorf("user's roles = %s", got)
	}

	changed, err := GrantRole(ctx, db, "User@Example.com", RoleAdmin, "cli", start)
	if err != nil || !changed {
		t.Fatalf("GrantRole = %v, %v", changed, err)
	}
	if changed, err := GrantRole(ctx, db, "user@example.com", RoleAdmin, "cli", start); err != nil || changed {
		t.Errorf("granting again = %v, %v; want no change", changed, err)
	}
	// Roles reach the token at its next issue: the refresh.
	user = f.refresh(t, user.Refresh)
	if got := roles(user.Access); got != "admin,user" {
		t.Errorf("after the grant, roles = %s", got)
	}
	if me, err := f.svc.Me(ctx, user.Access); err != nil || strings.Join(me.Roles, ",") != "admin,user" {
		t.Errorf("me = %+v, %v", me, err)
	}
	if changed, err := RevokeRole(ctx, db, "user@example.com", RoleAdmin, "cli", start); err != nil || !changed {
		t.Fatalf("RevokeRole = %v, %v", changed, err)
	}
	user = f.refresh(t, user.Refresh)
	if got := roles(user.Access); got != "user" {
		t.Errorf("after the revoke, roles = %s", got)
	}
	if _, err := GrantRole(ctx, db, "nobody@example.com", RoleAdmin, "cli", start); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("grant to an unknown address: %v", err)
	}
	if _, err := GrantRole(ctx, db, "user@example.com", "superuser", "cli", start); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("grant of an unknown role: %v", err)
	}
	if n := auditCount(t, db, evRoleGranted) + auditCount(t, db, evRoleRevoked); n != 2 {
		t.Errorf("%d role events, want 2", n)
	}
}
