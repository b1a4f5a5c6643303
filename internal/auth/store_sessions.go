package auth

import (
	"context"
	"database/sql"
	"time"
)

// RefreshToken is a refresh token as stored: its SHA-256, never the token.
type RefreshToken struct {
	Hash       string
	UserID     string
	FamilyID   string // all tokens rotated from one login; revoked together
	ParentHash string // the token this one replaced; empty for a login's first
	ExpiresAt  time.Time
	CreatedAt  time.Time
	UsedAt     time.Time // when it was rotated; zero while it is the family's live token
	// SuccessorHash and SuccessorBox are set when it is rotated: the hash of
	// the token that replaced it, and that token and its access token sealed
	// under a key only this token's plaintext gives (see sealSuccessor).
	SuccessorHash string
	SuccessorBox  []byte
	RevokedAt     time.Time
	RevokeReason  string
	// The client that got the token, for the session list.
	UserAgent string
	IP        string
}

// Live reports whether t may still be exchanged at now.
func (t RefreshToken) Live(now time.Time) bool {
	return t.UsedAt.IsZero() && t.RevokedAt.IsZero() && now.Before(t.ExpiresAt)
}

// Why a family was revoked.
const (
	revokedLogout    = "logout"
	revokedLogoutAll = "logout_all"
	revokedReuse     = "reuse"
	revokedReset     = "password_reset"
)

// InsertRefreshToken stores a refresh token's hash.
func (q queries) InsertRefreshToken(ctx context.Context, t RefreshToken) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO refresh_tokens (token_hash, user_id, family_id, parent_hash, expires_at, created_at, user_agent, ip)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, t.Hash, t.UserID, t.FamilyID, nullString(t.ParentHash), dbTime(t.ExpiresAt), dbTime(t.CreatedAt),
		nullString(t.UserAgent), nullString(t.IP))
	return translate(err, "refresh token")
}

// RefreshTokenByHash finds a refresh token; NotFound when none.
func (q queries) RefreshTokenByHash(ctx context.Context, hash string) (RefreshToken, error) {
	var (
		t                         RefreshToken
		parent, successor, reason sql.NullString
		used, revoked             sql.NullTime
	)
	err := q.q.QueryRowContext(ctx, `SELECT token_hash, user_id, family_id, parent_hash, expires_at, created_at,
		used_at, successor_hash, successor_box, revoked_at, revoke_reason FROM refresh_tokens WHERE token_hash = $1`, hash).
		Scan(&t.Hash, &t.UserID, &t.FamilyID, &parent, &t.ExpiresAt, &t.CreatedAt, &used, &successor, &t.SuccessorBox, &revoked, &reason)
	if err != nil {
		return RefreshToken{}, translate(err, "refresh token")
	}
	t.ParentHash, t.SuccessorHash, t.RevokeReason = parent.String, successor.String, reason.String
	t.ExpiresAt, t.CreatedAt = t.ExpiresAt.UTC(), t.CreatedAt.UTC()
	if used.Valid {
		t.UsedAt = used.Time.UTC()
	}
	if revoked.Valid {
		t.RevokedAt = revoked.Time.UTC()
	}
	return t, nil
}

// MarkRotated records that the live token hash was exchanged for successor,
// in one conditional statement: of concurrent rotations of one token exactly
// one gets true. A revoked or already rotated token gives false.
func (q queries) MarkRotated(ctx context.Context, hash, successorHash string, box []byte, now time.Time) (bool, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $1, successor_hash = $2, successor_box = $3
		WHERE token_hash = $4 AND used_at IS NULL AND revoked_at IS NULL`, dbTime(now), successorHash, box, hash)
	if err != nil {
		return false, translate(err, "refresh token")
	}
	n, err := res.RowsAffected()
	return n == 1, translate(err, "refresh token")
}

// ForgetSuccessor drops a used token's sealed successor: once that successor
// has itself been rotated, the grace answer can never be given again.
func (q queries) ForgetSuccessor(ctx context.Context, hash string) error {
	_, err := q.q.ExecContext(ctx, `UPDATE refresh_tokens SET successor_box = NULL WHERE token_hash = $1`, hash)
	return translate(err, "refresh token")
}

// RevokeFamily revokes every token of a family not yet revoked and returns
// how many there were.
func (q queries) RevokeFamily(ctx context.Context, familyID, reason string, now time.Time) (int64, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1, revoke_reason = $2, successor_box = NULL
		WHERE family_id = $3 AND revoked_at IS NULL`, dbTime(now), reason, familyID)
	if err != nil {
		return 0, translate(err, "refresh tokens")
	}
	n, err := res.RowsAffected()
	return n, translate(err, "refresh tokens")
}

// RevokeUserFamilies revokes every live family of a user and returns how
// many families that was.
func (q queries) RevokeUserFamilies(ctx context.Context, userID, reason string, now time.Time) (int64, error) {
	var families int64
	err := q.q.QueryRowContext(ctx, `SELECT COUNT(DISTINCT family_id) FROM refresh_tokens
		WHERE user_id = $1 AND revoked_at IS NULL AND used_at IS NULL`, userID).Scan(&families)
	if err != nil {
		return 0, translate(err, "refresh tokens")
	}
	_, err = q.q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = $1, revoke_reason = $2, successor_box = NULL
		WHERE user_id = $3 AND revoked_at IS NULL`, dbTime(now), reason, userID)
	return families, translate(err, "refresh tokens")
}

// DeleteRefreshTokensExpiredBefore removes tokens that expired before t:
// they can no longer be used, and a reuse of one is simply unknown.
func (q queries) DeleteRefreshTokensExpiredBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := q.q.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE expires_at < $1`, dbTime(t))
	if err != nil {
		return 0, translate(err, "refresh tokens")
	}
	n, err := res.RowsAffected()
	return n, translate(err, "refresh tokens")
}

// RecentMailTimes returns when the newest codes (at most limit) of a user,
// of any purpose, were issued, newest first: every code is a mail, and the
// mail limits count them all.
func (q queries) RecentMailTimes(ctx context.Context, userID string, limit int) ([]time.Time, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT created_at FROM one_time_codes
		WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, userID, limit)
	if err != nil {
		return nil, translate(err, "one-time codes")
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var t time.Time
		if err := rows.Scan(&t); err != nil {
			return nil, translate(err, "one-time codes")
		}
		out = append(out, t.UTC())
	}
	return out, translate(rows.Err(), "one-time codes")
}

// SetRoles replaces a user's stored roles.
func (q queries) SetRoles(ctx context.Context, id string, roles []string, now time.Time) error {
	b, err := jsonRoles(roles)
	if err != nil {
		return err
	}
	res, err := q.q.ExecContext(ctx, "UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3", b, dbTime(now), id)
	return mustAffect(res, err, "user")
}
