package films

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"kinoteka/internal/apperr"
	"kinoteka/internal/httpapi"
	"kinoteka/internal/tokens"
)

// verifier checks an access token; *tokens.Verifier is the real one.
type verifier interface {
	Verify(ctx context.Context, token string) (tokens.Principal, error)
}

type principalKey struct{}

// principalFrom returns the caller a route's middleware authenticated.
func principalFrom(ctx context.Context) (tokens.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(tokens.Principal)
	return p, ok
}

// authn is the Bearer token middleware. A token that is present is always
// verified, on public routes too, and a bad one is always 401: a client
// must never believe a broken token works because the route did not care.
type authn struct {
	log      *slog.Logger
	v        verifier
	failures *prometheus.CounterVec // by reason; nil counts nothing
}

var (
	errNoToken = apperr.New(apperr.Unauthenticated, "missing_token",
		"this route needs an access token: Authorization: Bearer <token>")
	errBadHeader = apperr.New(apperr.Unauthenticated, "invalid_authorization",
		`the Authorization header must be "Bearer <access token>"`)
)

// optional lets anonymous requests through and authenticates the others.
func (a authn) optional(h http.Handler) http.Handler { return a.wrap(h, false) }

// required answers 401 unless the request carries a valid token.
func (a authn) required(h http.Handler) http.Handler { return a.wrap(h, true) }

func (a authn) wrap(h http.Handler, required bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, present, err := bearerToken(r.Header)
		switch {
		case err != nil:
			a.count(reasonBadHeader)
			httpapi.Error(w, r, a.log, err)
			return
		case !present && required:
			httpapi.Error(w, r, a.log, errNoToken)
			return
		case !present:
			h.ServeHTTP(w, r)
			return
		}
		p, err := a.v.Verify(r.Context(), token)
		if err != nil {
			// The cause (expired, unknown kid, bad signature…) helps an
			// operator; it never contains the token.
			a.log.DebugContext(r.Context(), "access token rejected", "request_id", httpapi.RequestID(r.Context()), "reason", err)
			a.count(tokens.FailureReason(err))
			httpapi.Error(w, r, a.log, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func (a authn) count(reason string) {
	if a.failures != nil {
		a.failures.WithLabelValues(reason).Inc()
	}
}

// bearerToken extracts the token of an RFC 6750 Authorization header.
// present is false when there is no header at all; any other shape than one
// "Bearer <token>" header is an error.
func bearerToken(h http.Header) (token string, present bool, err error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, errBadHeader
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	token = strings.TrimLeft(token, " ")
	// IndexByte, not ContainsAny: a token is ~700 bytes on every request,
	// and IndexByte scans them with vector instructions.
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" ||
		strings.IndexByte(token, ' ') >= 0 || strings.IndexByte(token, '\t') >= 0 {
		return "", true, errBadHeader
	}
	return token, true, nil
}
