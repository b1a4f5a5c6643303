package auth

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"time"
)

// The audit events. Each is a row of audit_events and a JSON log line
// "audit"; neither ever holds a password, code or token.
const (
	evRegistered     = "registered" // detail outcome: created, updated, ignored_verified, ignored_mail_limit
	evVerified       = "verified"   // the email address was proved
	evResent         = "verification_resent"
	evCodeRejected   = "code_rejected"   // detail purpose, reason: unknown_email, no_code, wrong_code, password_mismatch
	evLoginOK        = "login_succeeded" // detail family
	evLoginFailed    = "login_failed"    // detail reason: unknown_email, wrong_password, not_verified
	evThrottled      = "throttled"       // detail action, scope, rule; once per run of refusals
	evRefreshReused  = "refresh_reused"  // a rotated refresh token came back: its family is revoked
	evResetRequested = "password_reset_requested"
	evPasswordReset  = "password_reset" // every session revoked
	evLogout         = "logout"         // detail family
	evLogoutAll      = "logout_all"     // detail revoked (families)
	evRoleGranted    = "role_granted"   // detail role, by
	evRoleRevoked    = "role_revoked"
)

// auditEvent is one security event; the time, IP and user agent are added
// by audit.
type auditEvent struct {
	Event  string
	UserID string
	Email  string
	Detail map[string]string
}

// AuditRecord is an audit event as stored.
type AuditRecord struct {
	ID         int64
	OccurredAt time.Time
	Event      string
	UserID     string
	Email      string
	IP         string
	UserAgent  string
	Detail     map[string]string
}

// audit records e with the request's client, in the table and the log. It
// runs after the action it records and cannot undo it, so a failure to
// write is logged and swallowed: an outage of the audit table must not turn
// into an outage of logins.
func (s *service) audit(ctx context.Context, e auditEvent) {
	rec := s.auditRecord(ctx, e)
	if err := s.store.InsertAudit(ctx, rec); err != nil {
		s.log.ErrorContext(ctx, "audit event not stored", "event", rec.Event, "err", err)
	}
}

// auditRecord completes e with the time and the request's client and
// writes its log line; the caller stores it.
func (s *service) auditRecord(ctx context.Context, e auditEvent) AuditRecord {
	c := clientOf(ctx)
	rec := AuditRecord{
		OccurredAt: s.now(), Event: e.Event, UserID: e.UserID, Email: e.Email,
		UserAgent: c.UserAgent, Detail: e.Detail,
	}
	if c.IP.IsValid() {
		rec.IP = c.IP.String()
	}
	attrs := []slog.Attr{slog.String("event", rec.Event)}
	for _, a := range []struct{ k, v string }{{"user_id", rec.UserID}, {"email", rec.Email}, {"ip", rec.IP}, {"user_agent", rec.UserAgent}} {
		if a.v != "" {
			attrs = append(attrs, slog.String(a.k, a.v))
		}
	}
	for k, v := range rec.Detail {
		attrs = append(attrs, slog.String(k, v))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
	return rec
}

// InsertAudit stores an audit record.
func (q queries) InsertAudit(ctx context.Context, r AuditRecord) error {
	detail := []byte("{}")
	if len(r.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(r.Detail); err != nil {
			return err
		}
	}
	_, err := q.q.ExecContext(ctx, `INSERT INTO audit_events (occurred_at, event, user_id, email, ip, user_agent, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, dbTime(r.OccurredAt), r.Event, nullString(r.UserID), nullString(r.Email),
		nullString(r.IP), nullString(r.UserAgent), string(detail))
	return translate(err, "audit event")
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// AuditEvents returns the newest audit records, newest first, at most limit;
// only those of userID when it is not empty.
func (q queries) AuditEvents(ctx context.Context, userID string, limit int) ([]AuditRecord, error) {
	const cols = `SELECT id, occurred_at, event, user_id, email, ip, user_agent, detail FROM audit_events`
	var (
		rows *sql.Rows
		err  error
	)
	if userID != "" {
		rows, err = q.q.QueryContext(ctx, cols+` WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, userID, limit)
	} else {
		rows, err = q.q.QueryContext(ctx, cols+` ORDER BY id DESC LIMIT $1`, limit)
	}
	if err != nil {
		return nil, translate(err, "audit events")
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var (
			r                   AuditRecord
			user, email, ip, ua sql.NullString
			detail              string
		)
		if err := rows.Scan(&r.ID, &r.OccurredAt, &r.Event, &user, &email, &ip, &ua, &detail); err != nil {
			return nil, translate(err, "audit events")
		}
		r.OccurredAt = r.OccurredAt.UTC()
		r.UserID, r.Email, r.IP, r.UserAgent = user.String, email.String, ip.String, ua.String
		if err := json.Unmarshal([]byte(detail), &r.Detail); err != nil {
			return nil, translate(err, "audit event detail")
		}
		out = append(out, r)
	}
	return out, translate(rows.Err(), "audit events")
}
