package auth

import (
	"context"
	"log/slog"
	"net/http"

	"kinoteka/internal/apidocs"
	"kinoteka/internal/httpapi"
)

// routes is auth's public HTTP API on one screen, served through the
// shared stack (httpapi.Stack) with auth's own middleware, which reads the
// client address (X-Forwarded-For only from svc.cfg.TrustedProxies).
// metrics is the service's registry: the stack counts requests in it, and
// opsRoutes serves it on the operators' listener — never here, since its
// login failures by reason would tell an unknown address from a wrong
// password.
func routes(log *slog.Logger, svc *service, metrics *httpapi.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/auth/register", handleRegister(log, svc))
	mux.Handle("POST /v1/auth/verify", handleVerify(log, svc))
	mux.Handle("POST /v1/auth/verify/resend", handleResend(log, svc))
	mux.Handle("POST /v1/auth/login", handleLogin(log, svc))
	mux.Handle("POST /v1/auth/refresh", handleRefresh(log, svc))
	mux.Handle("POST /v1/auth/logout", handleLogout(log, svc))
	mux.Handle("POST /v1/auth/logout-all", handleLogoutAll(log, svc))
	mux.Handle("POST /v1/auth/password/forgot", handleForgot(log, svc))
	mux.Handle("POST /v1/auth/password/reset", handleReset(log, svc))
	mux.Handle("GET /v1/auth/me", handleMe(log, svc))
	mux.Handle("PATCH /v1/auth/me", handleMePatch(log, svc))
	mux.Handle("DELETE /v1/auth/me", handleMeDelete(log, svc))
	mux.Handle("POST /v1/auth/password/change", handlePasswordChange(log, svc))
	mux.Handle("POST /v1/auth/email/change", handleEmailChange(log, svc))
	mux.Handle("POST /v1/auth/email/confirm", handleEmailConfirm(log, svc))
	mux.Handle("GET /v1/auth/sessions", handleSessionList(log, svc))
	mux.Handle("DELETE /v1/auth/sessions/{id}", handleSessionDelete(log, svc))
	mux.Handle("GET /v1/admin/users", handleAdminUsers(log, svc))
	mux.Handle("PUT /v1/admin/users/{id}/roles/{role}", handleAdminRole(log, svc, true))
	mux.Handle("DELETE /v1/admin/users/{id}/roles/{role}", handleAdminRole(log, svc, false))
	mux.Handle("GET /.well-known/jwks.json", handleJWKS(svc))
	mux.Handle("GET /.well-known/oauth-authorization-server", handleServerMetadata(svc.cfg.Issuer))
	mux.Handle("GET /.well-known/openid-configuration", handleOpenIDConfiguration(log))
	trusted := svc.cfg.TrustedProxies
	return httpapi.Stack{Log: log, Metrics: metrics, Tracing: svc.cfg.Tracing,
		Wrap: func(h http.Handler) http.Handler { return withClientInfo(trusted, h) }}.Handler(mux)
}

// opsRoutes is what auth serves on the operators' listener (AUTH_OPS_ADDR):
// probes, metrics and the API docs.
func opsRoutes(log *slog.Logger, svc *service, metrics *httpapi.Metrics) http.Handler {
	mux := http.NewServeMux()
	// Ready means the database answers. Kafka is deliberately not a
	// condition: registrations go to the outbox, which waits for the broker,
	// so auth serves every request while Kafka is down. A 503 then would
	// take every replica out of the load balancer — logins and key
	// discovery with them — for an outage the outbox absorbs. So the relay
	// is reported, "degraded" with its error while its attempts fail (a
	// broker away, a recreated topic), but /readyz stays 200.
	checks := map[string]httpapi.Check{"database": svc.store.Ping}
	if relay := svc.cfg.Relay; relay != nil {
		checks["outbox relay"] = func(ctx context.Context) error { return httpapi.Degraded(relay(ctx)) }
	}
	httpapi.Health(mux, checks)
	mux.Handle("GET /metrics", metrics.Handler())
	mux.Handle("GET /openapi.json", apidocs.Auth.ServeJSON())
	mux.Handle("GET /docs", apidocs.Auth.ServePage())
	return httpapi.Stack{Log: log, Metrics: metrics, Tracing: svc.cfg.Tracing}.Handler(mux)
}
