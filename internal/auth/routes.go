package auth

import (
	"log/slog"
	"net/http"
	"net/netip"

	"kinoteka/internal/apidocs"
	"kinoteka/internal/httpapi"
)

// routes is auth's HTTP API on one screen. trusted are the proxies whose
// X-Forwarded-For is believed (see clientIP).
func routes(log *slog.Logger, svc *service, issuer string, trusted []netip.Prefix) http.Handler {
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
	mux.Handle("GET /.well-known/openid-configuration", handleDiscovery(issuer, svc.signer.Algorithms()))
	mux.Handle("GET /openapi.json", apidocs.Auth.ServeJSON())
	mux.Handle("GET /docs", apidocs.Auth.ServePage())
	// Ready means the database answers. Kafka is deliberately not a
	// condition: registrations go to the outbox, which waits for the broker,
	// so auth serves every request while Kafka is down.
	httpapi.Health(mux, map[string]httpapi.Check{"database": svc.store.Ping})
	mux.Handle("GET /metrics", svc.cfg.Metrics.handler())
	return httpapi.Stack{Log: log, Metrics: svc.cfg.Metrics.httpMetrics(),
		Wrap: func(h http.Handler) http.Handler { return withClientInfo(trusted, h) }}.Handler(mux)
}
