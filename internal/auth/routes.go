package auth

import (
	"log/slog"
	"net/http"

	"kinoteka/internal/apidocs"
	"kinoteka/internal/httpapi"
)

// routes is auth's HTTP API on one screen, served through the shared stack
// (httpapi.Stack) with auth's own middleware, which reads the client
// address (X-Forwarded-For only from svc.cfg.TrustedProxies). metrics is
// the service's registry: the stack counts requests in it and /metrics
// serves it.
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
	mux.Handle("GET /.well-known/jwks.json", handleJWKS(svc))
	mux.Handle("GET /.well-known/oauth-authorization-server", handleServerMetadata(svc.cfg.Issuer))
	mux.Handle("GET /.well-known/openid-configuration", handleOpenIDConfiguration(log))
	mux.Handle("GET /openapi.json", apidocs.Auth.ServeJSON())
	mux.Handle("GET /docs", apidocs.Auth.ServePage())
	// Ready means the database answers. Kafka is deliberately not a
	// condition: registrations go to the outbox, which waits for the broker,
	// so auth serves every request while Kafka is down.
	httpapi.Health(mux, map[string]httpapi.Check{"database": svc.store.Ping})
	mux.Handle("GET /metrics", metrics.Handler())
	trusted := svc.cfg.TrustedProxies
	return httpapi.Stack{Log: log, Metrics: metrics, Tracing: svc.cfg.Tracing,
		Wrap: func(h http.Handler) http.Handler { return withClientInfo(trusted, h) }}.Handler(mux)
}
