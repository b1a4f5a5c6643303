package auth

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/outbox"
	"kinoteka/internal/sqldb"
)

//go:embed migrations
var embedded embed.FS

// Migrations is auth's own tables for both engines, rooted as sqldb.Migrate
// expects (sqlite/…, postgres/…). Migrate applies them with the outbox's.
var Migrations = func() fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}()

// Migrate brings db to the schema this version of auth uses: its own
// tables, then the outbox's (which keeps its own version table). Run calls
// it at start; so does any command that prepares auth's database.
func Migrate(ctx context.Context, db *sqldb.DB) error {
	if err := db.Migrate(ctx, Migrations); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return outbox.Migrate(ctx, db)
}

// Status is where a user account is in its life.
type Status string

// The statuses.
const (
	StatusPending Status = "pending" // registered, email not verified yet
	StatusActive  Status = "active"  // email verified
)

// User is an account.
type User struct {
	ID           string
	Email        string // normalised: see parseEmail
	PasswordHash string // argon2id PHC string
	Status       Status
	VerifiedAt   time.Time // zero while pending
	Locale       string    // "en" or "ru": the language of the mails
	Roles        []string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Name         string // display name; "" shows DisplayName's default
	Version      int64  // bumped by every change the users topic carries
}

// Verified reports whether the user proved the email address theirs.
func (u User) Verified() bool { return u.Status == StatusActive }

// Code is a one-time code as stored: its MAC, never the code.
type Code struct {
	ID        int64
	UserID    string
	Purpose   string
	MAC       string
	ExpiresAt time.Time
	Attempts  int       // wrong tries so far
	UsedAt    time.Time // zero until consumed
	CreatedAt time.Time
}

// Store keeps auth's data in SQLite or PostgreSQL with one set of queries.
// Its methods run on their own; InTx runs several in one transaction.
type Store struct {
	queries
	db *sqldb.DB
}

// Tx is a Store inside a transaction; SQL gives the transaction itself, for
// statements of other packages (outbox.Enqueue) to join it.
type Tx struct {
	queries
	tx *sql.Tx
}

// NewStore returns a store on a migrated database.
func NewStore(db *sqldb.DB) *Store { return &Store{queries{db.DB}, db} }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// InTx runs fn in one transaction, committed when fn returns nil. fn may
// run twice, when the first try lost its connection before the commit
// (sqldb.DB.InTx): it resets what it hands out.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error { return fn(&Tx{queries{tx}, tx}) })
}

// SQL is the underlying transaction.
func (t *Tx) SQL() *sql.Tx { return t.tx }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries are the statements, shared by Store and Tx.
type queries struct{ q querier }

// dbTime is how times go into the database: UTC at PostgreSQL's microsecond
// precision, so a value reads back equal on both engines.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: dbTime(t), Valid: !t.IsZero()} }

// translate gives driver errors their kinds.
func translate(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return apperr.Wrap(err, apperr.NotFound, what+" not found")
	case sqldb.IsUniqueViolation(err):
		return apperr.Wrap(err, apperr.Conflict, what+" already exists")
	default:
		return fmt.Errorf("auth store: %s: %w", what, err)
	}
}

// mustAffect turns "no row matched" into NotFound.
func mustAffect(res sql.Result, err error, what string) error {
	if err != nil {
		return translate(err, what)
	}
	if n, err := res.RowsAffected(); err != nil {
		return translate(err, what)
	} else if n == 0 {
		return apperr.New(apperr.NotFound, "", "%s not found", what)
	}
	return nil
}

const userColumns = "id, email, password_hash, status, verified_at, locale, roles, created_at, updated_at, name, version"

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var (
		u        User
		verified sql.NullTime
		roles    string
		name     sql.NullString
	)
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Status, &verified, &u.Locale, &roles, &u.CreatedAt, &u.UpdatedAt, &name, &u.Version); err != nil {
		return User{}, translate(err, "user")
	}
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return User{}, fmt.Errorf("auth store: user %s roles: %w", u.ID, err)
	}
	if verified.Valid {
		u.VerifiedAt = verified.Time.UTC()
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	u.Name = name.String
	return u, nil
}

// UserByEmail finds a user by normalised email; NotFound when none.
func (q queries) UserByEmail(ctx context.Context, email string) (User, error) {
	return scanUser(q.q.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE email = $1", email))
}

// UserByID finds a user by id; NotFound when none.
func (q queries) UserByID(ctx context.Context, id string) (User, error) {
	return scanUser(q.q.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id))
}

// CreateUser inserts u; Conflict when the email is taken.
func (q queries) CreateUser(ctx context.Context, u User) error {
	roles, err := json.Marshal(u.Roles)
	if err != nil {
		return err
	}
	if u.Roles == nil {
		roles = []byte("[]")
	}
	_, err = q.q.ExecContext(ctx, `INSERT INTO users (id, email, password_hash, status, verified_at, locale, roles, created_at, updated_at, name, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1)`,
		u.ID, u.Email, u.PasswordHash, string(u.Status), nullTime(u.VerifiedAt), u.Locale, string(roles), dbTime(u.CreatedAt), dbTime(u.UpdatedAt), nullString(u.Name))
	return translate(err, "user")
}

// UpdatePending replaces the password and locale of a user that is still
// pending; NotFound when there is no such pending user.
func (q queries) UpdatePending(ctx context.Context, id, passwordHash, locale string, now time.Time) error {
	res, err := q.q.ExecContext(ctx, `UPDATE users SET password_hash = $1, locale = $2, updated_at = $3
		WHERE id = $4 AND status = 'pending'`, passwordHash, locale, dbTime(now), id)
	return mustAffect(res, err, "pending user")
}

// Activate marks a pending user verified; an active user stays as it is.
func (q queries) Activate(ctx context.Context, id string, now time.Time) error {
	_, err := q.q.ExecContext(ctx, `UPDATE users SET status = 'active', verified_at = $1, updated_at = $1
		WHERE id = $2 AND status = 'pending'`, dbTime(now), id)
	return translate(err, "user")
}

// ActivateWithHash marks a user verified if its password hash is still
// hash (a compare-and-swap: a concurrent registration that replaced the
// password makes it change nothing) and reports whether it matched. An
// active user with that hash stays active, its verified_at kept.
func (q queries) ActivateWithHash(ctx context.Context, id, hash string, now time.Time) (bool, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE users SET status = 'active', verified_at = COALESCE(verified_at, $1), updated_at = $1
		WHERE id = $2 AND password_hash = $3`, dbTime(now), id, hash)
	if err != nil {
		return false, translate(err, "user")
	}
	n, err := res.RowsAffected()
	return n == 1, translate(err, "user")
}

// SetPasswordHash replaces a user's password hash (a re-hash with stronger
// parameters, for now).
func (q queries) SetPasswordHash(ctx context.Context, id, hash string, now time.Time) error {
	res, err := q.q.ExecContext(ctx, "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3", hash, dbTime(now), id)
	return mustAffect(res, err, "user")
}

// InsertCode stores a one-time code.
func (q queries) InsertCode(ctx context.Context, c Code) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO one_time_codes (user_id, purpose, code_mac, expires_at, attempts, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.UserID, c.Purpose, c.MAC, dbTime(c.ExpiresAt), c.Attempts, dbTime(c.CreatedAt))
	return translate(err, "one-time code")
}

// LatestCode returns the newest code of a user for purpose, the only live
// one; NotFound when none was ever issued.
func (q queries) LatestCode(ctx context.Context, userID, purpose string) (Code, error) {
	var (
		c    Code
		used sql.NullTime
	)
	err := q.q.QueryRowContext(ctx, `SELECT id, user_id, purpose, code_mac, expires_at, attempts, used_at, created_at
		FROM one_time_codes WHERE user_id = $1 AND purpose = $2 ORDER BY id DESC LIMIT 1`, userID, purpose).
		Scan(&c.ID, &c.UserID, &c.Purpose, &c.MAC, &c.ExpiresAt, &c.Attempts, &used, &c.CreatedAt)
	if err != nil {
		return Code{}, translate(err, "one-time code")
	}
	c.ExpiresAt, c.CreatedAt = c.ExpiresAt.UTC(), c.CreatedAt.UTC()
	if used.Valid {
		c.UsedAt = used.Time.UTC()
	}
	return c, nil
}

// Placeholders of LatestCodeByEmail for what does not exist, of the sizes
// of the real values: no user has the nil UUID (ids are UUIDv7), and no MAC
// (64 hex digits) is 64 dashes.
const (
	noUserID = "00000000-0000-0000-0000-000000000000"
	noMAC    = "----------------------------------------------------------------"
)

// LatestCodeByEmail reads, in one statement, the newest code for purpose of
// the account of email, with the account's id as UserID. The statement
// returns one row of one shape whatever exists: for an unknown address
// UserID is noUserID, for no code ID is 0 and MAC noMAC, so an unknown
// address costs what a known one does, on the wire and in the scan
// (checkCode: its timing must not tell them apart).
func (q queries) LatestCodeByEmail(ctx context.Context, email, purpose string) (Code, error) {
	var (
		c                          Code
		expires, used, codeCreated sql.NullTime
	)
	err := q.q.QueryRowContext(ctx, `SELECT COALESCE(u.id, $3), COALESCE(c.id, 0), COALESCE(c.code_mac, $4), COALESCE(c.attempts, 0),
			c.expires_at, c.used_at, c.created_at
		FROM (SELECT CAST($1 AS TEXT) AS email) AS q
		LEFT JOIN users u ON u.email = q.email
		LEFT JOIN one_time_codes c ON c.id = (SELECT id FROM one_time_codes WHERE user_id = u.id AND purpose = $2 ORDER BY id DESC LIMIT 1)`,
		email, purpose, noUserID, noMAC).
		Scan(&c.UserID, &c.ID, &c.MAC, &c.Attempts, &expires, &used, &codeCreated)
	if err != nil {
		return Code{}, translate(err, "one-time code")
	}
	c.Purpose = purpose
	c.ExpiresAt, c.UsedAt, c.CreatedAt = utcOrZero(expires), utcOrZero(used), utcOrZero(codeCreated)
	return c, nil
}

// utcOrZero is t in UTC, or the zero time for NULL.
func utcOrZero(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// ConsumeCode marks a code used if it is still unused and not burned, in one
// conditional statement: of several concurrent callers exactly one gets true.
func (q queries) ConsumeCode(ctx context.Context, id int64, now time.Time) (bool, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE one_time_codes SET used_at = $1
		WHERE id = $2 AND used_at IS NULL AND attempts < $3`, dbTime(now), id, maxCodeAttempts)
	if err != nil {
		return false, translate(err, "one-time code")
	}
	n, err := res.RowsAffected()
	return n == 1, translate(err, "one-time code")
}

// AddCodeAttempt counts one wrong try against a live code, atomically, so
// concurrent wrong tries are all counted and never exceed the limit.
func (q queries) AddCodeAttempt(ctx context.Context, id int64) error {
	_, err := q.q.ExecContext(ctx, `UPDATE one_time_codes SET attempts = attempts + 1
		WHERE id = $1 AND used_at IS NULL AND attempts < $2`, id, maxCodeAttempts)
	return translate(err, "one-time code")
}
