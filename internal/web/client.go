package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"kinoteka/internal/httpapi"
	"kinoteka/internal/telemetry"
)

// api calls auth and films over their public HTTP APIs, exactly as any
// other client would: JSON bodies, Bearer tokens, problem+json errors.
type api struct {
	http     *http.Client
	authURL  string
	filmsURL string
	calls    func(service, outcome string) // counts each call (metrics)
}

// apiError is a problem+json answer of auth or films.
type apiError struct {
	Status     int
	Code       string
	Detail     string
	Fields     []httpapi.ProblemField
	RetryAfter time.Duration // with 429
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail)
}

// unavailableError is auth or films not answering (refused, timed out, or a
// 5xx): the person gets a page that says which part is down.
type unavailableError struct {
	Service string
	Err     error
}

func (e *unavailableError) Error() string { return e.Service + " is unavailable: " + e.Err.Error() }
func (e *unavailableError) Unwrap() error { return e.Err }

// statusOf is the HTTP status of an apiError, 0 for any other error.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// codeOf is the problem code of an apiError, "" for any other error.
func codeOf(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// call is one request to service ("auth" or "films") at base+path. in is
// the browser's request: its address and user agent are passed on, so auth
// throttles and audits the person rather than the web service (auth believes
// the X-Forwarded-For only from proxies it trusts: AUTH_TRUSTED_PROXIES).
// out, when non-nil, receives a 2xx JSON body.
func (c *api) call(ctx context.Context, in *http.Request, service, method, url, bearer string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	// Continue the page's trace into auth and films (when tracing is on).
	if tp := telemetry.Traceparent(ctx); tp != "" {
		req.Header.Set("traceparent", tp)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if in != nil {
		if id := httpapi.RequestID(in.Context()); id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		if ua := in.UserAgent(); ua != "" {
			req.Header.Set("User-Agent", ua)
		}
		if host, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
			xff := host
			if prior := in.Header.Get("X-Forwarded-For"); prior != "" {
				xff = prior + ", " + host
			}
			req.Header.Set("X-Forwarded-For", xff)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.count(service, "unavailable")
		return &unavailableError{Service: service, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		c.count(service, "unavailable")
		return &unavailableError{Service: service, Err: err}
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		c.count(service, "ok")
		if out != nil && len(b) > 0 {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("%s %s: answer: %w", method, url, err)
			}
		}
		return nil
	case resp.StatusCode >= 500:
		c.count(service, "unavailable")
		return &unavailableError{Service: service, Err: fmt.Errorf("%s %s: %s", method, url, resp.Status)}
	}
	c.count(service, "refused")
	var p httpapi.Problem
	_ = json.Unmarshal(b, &p)
	e := &apiError{Status: resp.StatusCode, Code: p.Code, Detail: p.Detail, Fields: p.Errors}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = time.Second
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
	}
	return e
}

func (c *api) count(service, outcome string) {
	if c.calls != nil {
		c.calls(service, outcome)
	}
}

func (c *api) auth(ctx context.Context, in *http.Request, method, path, bearer string, body, out any) error {
	return c.call(ctx, in, "auth", method, c.authURL+path, bearer, body, out)
}

func (c *api) films(ctx context.Context, in *http.Request, method, path, bearer string, body, out any) error {
	return c.call(ctx, in, "films", method, c.filmsURL+path, bearer, body, out)
}

// tokens is auth's answer to verify, login and refresh.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

// film is films' film.
type film struct {
	ID            int64     `json:"id"`
	Title         string    `json:"title"`
	Year          int       `json:"year"`
	ReleaseDate   *string   `json:"release_date"`
	Genre         *string   `json:"genre"`
	Director      *string   `json:"director"`
	RuntimeMin    *int      `json:"runtime_min"`
	MPAARating    *string   `json:"mpaa_rating"`
	IMDBRating    *float64  `json:"imdb_rating"`
	AverageRating *float64  `json:"average_rating"`
	ReviewCount   int       `json:"review_count"`
	CreatedAt     time.Time `json:"created_at"`
}

type filmPage struct {
	Items      []film  `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

type genre struct {
	Name      string `json:"name"`
	FilmCount int    `json:"film_count"`
}

type review struct {
	UserID    string    `json:"user_id"`
	Author    author    `json:"author"`
	Rating    int       `json:"rating"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type reviewPage struct {
	Items      []review `json:"items"`
	NextCursor *string  `json:"next_cursor"`
}

// author is the name films keeps for a review's writer (its copy of
// auth's display name, followed through the users topic).
type author struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// me is auth's GET /v1/auth/me; an admin's list of users adds Status.
type me struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name"`
	NameSet       bool      `json:"name_set"`
	Roles         []string  `json:"roles"`
	CreatedAt     time.Time `json:"created_at"`
	Status        string    `json:"status"`
}

// authSession is one of auth's GET /v1/auth/sessions.
type authSession struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

// userPage is auth's GET /v1/admin/users.
type userPage struct {
	Items      []me    `json:"items"`
	NextCursor *string `json:"next_cursor"`
}
