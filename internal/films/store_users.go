package films

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"kinoteka/internal/apperr"
	"kinoteka/internal/events"
)

// films keeps its own copy of what it shows of auth's accounts, from the
// users topic (consumer.go): a name per account, or a tombstone once the
// account is deleted. An event is applied only when its version is newer
// than the stored one, so re-delivered and late events change nothing, and
// a tombstone is never overwritten by an update.
//
// A deletion takes the account's reviews and favourites with it. It first
// commits the tombstone, then deletes the reviews film by film under the
// film's lock (as every review write takes it) and recomputes the film's
// aggregate; a review write checks the tombstone under the same lock. So a
// write racing the deletion either commits before the deletion reaches its
// film (and is deleted with the rest) or sees the tombstone and is refused:
// the aggregates stay exact.

// errAccountDeleted answers a token whose account was deleted: it stays
// signed until it expires, but films knows better.
var errAccountDeleted = apperr.New(apperr.Unauthenticated, "invalid_token", "the account of this access token was deleted")

// ApplyUserEvent applies one users topic event and reports whether it
// changed anything.
func (s *Store) ApplyUserEvent(ctx context.Context, e events.UserEvent) (bool, error) {
	now := s.stamp()
	if !e.Deleted() {
		res, err := s.db.ExecContext(ctx, `INSERT INTO users (id, name, deleted, version, updated_at) VALUES ($1, $2, FALSE, $3, $4)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version, updated_at = excluded.updated_at
			WHERE users.version < excluded.version AND NOT users.deleted`, e.ID, e.Name, e.Version, now)
		if err != nil {
			return false, fmt.Errorf("films: apply %s: %w", e.Type, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, fmt.Errorf("films: apply %s: %w", e.Type, err)
		}
		if n > 0 {
			s.changed()
		}
		return n > 0, nil
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO users (id, name, deleted, version, updated_at) VALUES ($1, NULL, TRUE, $2, $3)
		ON CONFLICT (id) DO UPDATE SET name = NULL, deleted = TRUE, version = excluded.version, updated_at = excluded.updated_at
		WHERE users.version < excluded.version`, e.ID, e.Version, now)
	if err != nil {
		return false, fmt.Errorf("films: apply %s: %w", e.Type, err)
	}
	marked, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("films: apply %s: %w", e.Type, err)
	}
	var deleted bool
	if err := s.db.QueryRowContext(ctx, `SELECT deleted FROM users WHERE id = $1`, e.ID).Scan(&deleted); err != nil {
		return false, fmt.Errorf("films: apply %s: %w", e.Type, err)
	}
	if !deleted {
		return false, nil // a newer account state than this deletion: impossible from auth, ignored
	}
	s.accounts.remember(e.ID, true)
	// Purged even when the tombstone was there already: a purge cut short
	// (a crash, a database error) is finished by the event's re-delivery.
	purged, err := s.purgeUser(ctx, e.ID)
	if err != nil {
		return false, err
	}
	if marked > 0 || purged {
		s.changed()
	}
	return marked > 0 || purged, nil
}

// purgeUser deletes a deleted account's reviews, recomputing each film's
// aggregate in the review's own transaction, then its favourites.
func (s *Store) purgeUser(ctx context.Context, userID string) (bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT film_id FROM reviews WHERE user_id = $1 ORDER BY film_id`, userID)
	if err != nil {
		return false, fmt.Errorf("films: purge user: %w", err)
	}
	var filmIDs []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return false, fmt.Errorf("films: purge user: %w", err)
		}
		filmIDs = append(filmIDs, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("films: purge user: %w", err)
	}
	changed := false
	for _, filmID := range filmIDs {
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			seq, err := s.lockFilm(ctx, tx, filmID)
			if apperr.Is(err, apperr.NotFound) {
				return nil // the film went, and its reviews with it
			}
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM reviews WHERE film_id = $1 AND user_id = $2`, filmID, userID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			changed = true
			return refreshAggregate(ctx, tx, filmID, seq)
		})
		if err != nil {
			return changed, fmt.Errorf("films: purge user's review of film %d: %w", filmID, err)
		}
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM favorites WHERE user_id = $1`, userID)
	if err != nil {
		return changed, fmt.Errorf("films: purge user's favourites: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		changed = true
	}
	return changed, nil
}

// accountName returns the name films holds for userID ("" when it has
// none) inside tx, or errAccountDeleted for a deleted account.
func accountName(ctx context.Context, tx *sql.Tx, userID string) (string, error) {
	var (
		name    sql.NullString
		deleted bool
	)
	err := tx.QueryRowContext(ctx, `SELECT name, deleted FROM users WHERE id = $1`, userID).Scan(&name, &deleted)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", err
	case deleted:
		return "", errAccountDeleted
	}
	return name.String, nil
}

// AccountDeleted reports whether films heard that userID's account was
// deleted. Every authenticated request asks, a cached catalogue read
// included, so the answers are remembered (accountStates): a deletion
// this store applied is seen at once, one another replica applied within
// accountLiveTTL. Writes do not rely on it: they check the account inside
// their transaction (accountName).
func (s *Store) AccountDeleted(ctx context.Context, userID string) (bool, error) {
	if deleted, known := s.accounts.lookup(userID); known {
		return deleted, nil
	}
	var deleted bool
	err := s.db.QueryRowContext(ctx, `SELECT deleted FROM users WHERE id = $1`, userID).Scan(&deleted)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		deleted = false
	case err != nil:
		return false, fmt.Errorf("films: account state: %w", err)
	}
	s.accounts.remember(userID, deleted)
	return deleted, nil
}

// accountLiveTTL is how long AccountDeleted trusts a "not deleted" answer:
// the longest a deletion applied by another replica goes unseen here (the
// users topic itself takes longer to bring it). A query per user and
// second instead of one per request: on PostgreSQL the query's round trip
// cost a cached read a third of its throughput.
const accountLiveTTL = time.Second

// maxAccountStates bounds what accountStates holds; past it, it starts
// over (each account then costs one query again).
const maxAccountStates = 1 << 16

// accountStates remembers AccountDeleted's answers. A deletion is for good
// — auth never gives an id out again, and films ignores any update after
// it — so "deleted" is kept; "not deleted" for accountLiveTTL.
type accountStates struct {
	now     func() time.Time // time.Now; tests move it
	deleted sync.Map         // user id → struct{}
	live    sync.Map         // user id → time.Time the answer was read
	n       atomic.Int64     // entries stored since the last start over
}

// lookup returns a remembered answer, known false when there is none.
func (a *accountStates) lookup(userID string) (deleted, known bool) {
	if _, ok := a.deleted.Load(userID); ok {
		return true, true
	}
	if at, ok := a.live.Load(userID); ok && a.now().Sub(at.(time.Time)) < accountLiveTTL {
		return false, true
	}
	return false, false
}

// remember keeps an answer read from the database, or a deletion applied.
func (a *accountStates) remember(userID string, deleted bool) {
	if a.n.Add(1) > maxAccountStates {
		a.deleted.Clear()
		a.live.Clear()
		a.n.Store(1)
	}
	if deleted {
		a.deleted.Store(userID, struct{}{})
		a.live.Delete(userID)
		return
	}
	a.live.Store(userID, a.now())
}

// UserName returns the name films holds for userID: "" when it has none.
func (s *Store) UserName(ctx context.Context, userID string) (string, error) {
	var name sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT name FROM users WHERE id = $1`, userID).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("films: user name: %w", err)
	}
	return name.String, nil
}
