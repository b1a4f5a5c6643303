package auth

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"kinoteka/internal/apperr"
)

// The statements of self-service (account.go).

// SetPendingName replaces the display name of a user that is still pending
// (a new registration of the address replaces the old one's choices).
func (q queries) SetPendingName(ctx context.Context, id, name string) error {
	_, err := q.q.ExecContext(ctx, `UPDATE users SET name = $1 WHERE id = $2 AND status = 'pending'`, nullString(name), id)
	return translate(err, "user")
}

// SetName sets a user's display name and counts the change in its version.
func (q queries) SetName(ctx context.Context, id, name string, now time.Time) error {
	res, err := q.q.ExecContext(ctx, `UPDATE users SET name = $1, version = version + 1, updated_at = $2 WHERE id = $3`,
		nullString(name), dbTime(now), id)
	return mustAffect(res, err, "user")
}

// SetEmail moves a user to a new (normalised) address; Conflict when
// another account has it.
func (q queries) SetEmail(ctx context.Context, id, email string, now time.Time) error {
	res, err := q.q.ExecContext(ctx, `UPDATE users SET email = $1, updated_at = $2 WHERE id = $3`, email, dbTime(now), id)
	return mustAffect(res, err, "user")
}

// DeleteUser deletes a user at version, with its codes and refresh tokens
// (ON DELETE CASCADE); Conflict when the account changed since it was read.
func (q queries) DeleteUser(ctx context.Context, id string, version int64) error {
	res, err := q.q.ExecContext(ctx, `DELETE FROM users WHERE id = $1 AND version = $2`, id, version)
	if err := mustAffect(res, err, "user"); apperr.Is(err, apperr.NotFound) {
		return apperr.New(apperr.Conflict, "account_changed", "the account changed while it was being deleted; try again")
	} else if err != nil {
		return err
	}
	return nil
}

// EraseAudit removes the personal data of a deleted account from the audit
// trail — the address, IP and user agent of its events, and of events that
// named the address without an account — keeping the events and the id.
func (q queries) EraseAudit(ctx context.Context, id, email string) error {
	_, err := q.q.ExecContext(ctx, `UPDATE audit_events SET email = NULL, ip = NULL, user_agent = NULL WHERE user_id = $1`, id)
	if err == nil {
		_, err = q.q.ExecContext(ctx, `UPDATE audit_events SET email = NULL, ip = NULL, user_agent = NULL WHERE email = $1`, email)
	}
	return translate(err, "audit events")
}

// InsertTargetCode stores a one-time code with the address it is for.
func (q queries) InsertTargetCode(ctx context.Context, c Code, target string) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO one_time_codes (user_id, purpose, code_mac, expires_at, attempts, created_at, target)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.UserID, c.Purpose, c.MAC, dbTime(c.ExpiresAt), c.Attempts, dbTime(c.CreatedAt), target)
	return translate(err, "one-time code")
}

// LatestTargetCode is LatestCode with the address the code is for.
func (q queries) LatestTargetCode(ctx context.Context, userID, purpose string) (Code, string, error) {
	var (
		c      Code
		used   sql.NullTime
		target sql.NullString
	)
	err := q.q.QueryRowContext(ctx, `SELECT id, user_id, purpose, code_mac, expires_at, attempts, used_at, created_at, target
		FROM one_time_codes WHERE user_id = $1 AND purpose = $2 ORDER BY id DESC LIMIT 1`, userID, purpose).
		Scan(&c.ID, &c.UserID, &c.Purpose, &c.MAC, &c.ExpiresAt, &c.Attempts, &used, &c.CreatedAt, &target)
	if err != nil {
		return Code{}, "", translate(err, "one-time code")
	}
	c.ExpiresAt, c.CreatedAt = c.ExpiresAt.UTC(), c.CreatedAt.UTC()
	if used.Valid {
		c.UsedAt = used.Time.UTC()
	}
	if !target.Valid {
		return Code{}, "", apperr.New(apperr.NotFound, "", "one-time code without an address")
	}
	return c, target.String, nil
}

// RevokeOtherFamilies revokes every live family of a user but keep (all of
// them when keep is "") and returns how many families that was.
func (q queries) RevokeOtherFamilies(ctx context.Context, userID, keep, reason string, now time.Time) (int64, error) {
	if keep == "" {
		return q.RevokeUserFamilies(ctx, userID, reason, now)
	}
	var families int64
	err := q.q.QueryRowContext(ctx, `SELECT COUNT(DISTINCT family_id) FROM refresh_tokens
		WHERE user_id = $1 AND family_id <> $2 AND revoked_at IS NULL AND used_at IS NULL`, userID, keep).Scan(&families)
	if err != nil {
		return 0, translate(err, "refresh tokens")
	}
	_, err = q.q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1, revoke_reason = $2, successor_box = NULL
		WHERE user_id = $3 AND family_id <> $4 AND revoked_at IS NULL`, dbTime(now), reason, userID, keep)
	return families, translate(err, "refresh tokens")
}

// RevokeUserFamily revokes one family of a user; 0 when the user has no
// such family left to revoke.
func (q queries) RevokeUserFamily(ctx context.Context, userID, familyID, reason string, now time.Time) (int64, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1, revoke_reason = $2, successor_box = NULL
		WHERE user_id = $3 AND family_id = $4 AND revoked_at IS NULL`, dbTime(now), reason, userID, familyID)
	if err != nil {
		return 0, translate(err, "refresh tokens")
	}
	n, err := res.RowsAffected()
	return n, translate(err, "refresh tokens")
}

// LiveSessions lists a user's families that still have a live token, the
// most recently used first: the live token tells when and from where the
// session was last used, the family's first token (the one without a
// parent) when it began. That token is swept a day after it expires, so a
// session older than the refresh TTL shows its last use as its start.
func (q queries) LiveSessions(ctx context.Context, userID string, now time.Time) ([]Session, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT t.family_id, t.created_at, t.user_agent, t.ip, f.created_at
		FROM refresh_tokens t
		LEFT JOIN refresh_tokens f ON f.family_id = t.family_id AND f.parent_hash IS NULL
		WHERE t.user_id = $1 AND t.used_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > $2
		ORDER BY t.created_at DESC, t.family_id`, userID, dbTime(now))
	if err != nil {
		return nil, translate(err, "sessions")
	}
	defer rows.Close()
	out := []Session{}
	for rows.Next() {
		var (
			s       Session
			ua, ip  sql.NullString
			created sql.NullTime
		)
		if err := rows.Scan(&s.ID, &s.LastUsedAt, &ua, &ip, &created); err != nil {
			return nil, translate(err, "sessions")
		}
		s.UserAgent, s.IP, s.LastUsedAt, s.CreatedAt = ua.String, ip.String, s.LastUsedAt.UTC(), created.Time.UTC()
		if !created.Valid {
			s.CreatedAt = s.LastUsedAt
		}
		out = append(out, s)
	}
	return out, translate(rows.Err(), "sessions")
}

// likeEscaper escapes LIKE's wildcards, so a search is a plain substring.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// SearchUsers returns at most limit users with an id after after, in id
// order, whose address or name contains q (lower case; "" matches all).
func (q queries) SearchUsers(ctx context.Context, query, after string, limit int) ([]User, error) {
	pattern := "%" + likeEscaper.Replace(query) + "%"
	rows, err := q.q.QueryContext(ctx, "SELECT "+userColumns+` FROM users
		WHERE ($1 = '' OR email LIKE $2 ESCAPE '\' OR lower(COALESCE(name, '')) LIKE $2 ESCAPE '\')
		AND id > $3 ORDER BY id LIMIT $4`, query, pattern, after, limit)
	if err != nil {
		return nil, translate(err, "users")
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, translate(rows.Err(), "users")
}
