package films

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// Reviews and favourites: the personal writes.
//
// A film's review aggregate (count, sum of ratings) lives on the film row and
// is rewritten in the same transaction as every review write, after the film
// row is locked (FOR UPDATE on PostgreSQL; SQLite has one writer at a time).
// Writers of one film therefore take turns, and each recomputes the aggregate
// from the reviews table, which it sees whole: the aggregate is exact however
// many users write at once. Reads pay nothing: the film row carries it, and
// the catalogue can be sorted by it from an index. (The alternative, an
// aggregate subquery per film on every read, costs every page twenty index
// scans and cannot serve sort=-rating without reading every review.)

// reviewsScope binds a review cursor to its film.
func reviewsScope(filmID int64) string { return scopeOf("reviews", fmt.Sprint(filmID)) }

// lockFilm locks film id for the rest of tx and returns its review counter.
func (s *Store) lockFilm(ctx context.Context, tx *sql.Tx, id int64) (reviewSeq int64, err error) {
	err = tx.QueryRowContext(ctx, `SELECT review_seq FROM films WHERE id = $1`+s.forUpdate(""), id).Scan(&reviewSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errFilmNotFound(id)
	}
	return reviewSeq, err
}

// refreshAggregate recomputes film id's review count and rating sum from its
// reviews; tx holds the film's lock.
func refreshAggregate(ctx context.Context, tx *sql.Tx, id, reviewSeq int64) error {
	var count, sum int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(rating), 0) FROM reviews WHERE film_id = $1`, id).Scan(&count, &sum); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE films SET review_count = $1, rating_sum = $2, rating_key = $3, review_seq = $4 WHERE id = $5`,
		count, sum, ratingKey(sum, count), reviewSeq, id)
	return err
}

// PutReview creates or replaces userID's review of film filmID. created
// tells which. A replaced review keeps its CreatedAt and moves to the top of
// the film's reviews.
func (s *Store) PutReview(ctx context.Context, filmID int64, userID string, in ReviewInput) (rev Review, created bool, err error) {
	now := s.stamp()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		created = false // InTx may run this twice
		seq, err := s.lockFilm(ctx, tx, filmID)
		if err != nil {
			return err
		}
		// Under the film's lock, so a deletion of the account cannot miss
		// this review (store_users.go).
		name, err := accountName(ctx, tx, userID)
		if err != nil {
			return err
		}
		seq++
		rev = Review{FilmID: filmID, UserID: userID, Rating: in.Rating, Text: in.Text, CreatedAt: now, UpdatedAt: now, Seq: seq, AuthorName: name}
		var createdAt time.Time
		err = tx.QueryRowContext(ctx, `SELECT created_at FROM reviews WHERE film_id = $1 AND user_id = $2`, filmID, userID).Scan(&createdAt)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			_, err = tx.ExecContext(ctx, `INSERT INTO reviews (film_id, user_id, rating, text, created_at, updated_at, seq)
				VALUES ($1, $2, $3, $4, $5, $5, $6)`, filmID, userID, in.Rating, in.Text, now, seq)
		case err == nil:
			rev.CreatedAt = createdAt.UTC()
			_, err = tx.ExecContext(ctx, `UPDATE reviews SET rating = $1, text = $2, updated_at = $3, seq = $4
				WHERE film_id = $5 AND user_id = $6`, in.Rating, in.Text, now, seq, filmID, userID)
		}
		if err != nil {
			return err
		}
		return refreshAggregate(ctx, tx, filmID, seq)
	})
	if err != nil {
		return Review{}, false, wrapStoreErr("put review", err)
	}
	s.changed()
	return rev, created, nil
}

// DeleteReview removes userID's review of film filmID, if there is one:
// deleting twice is harmless. An unknown film is a NotFound error.
func (s *Store) DeleteReview(ctx context.Context, filmID int64, userID string) error {
	deleted := false
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		seq, err := s.lockFilm(ctx, tx, filmID)
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
		deleted = true
		return refreshAggregate(ctx, tx, filmID, seq)
	})
	if err != nil {
		return wrapStoreErr("delete review", err)
	}
	if deleted {
		s.changed()
	}
	return nil
}

// Reviews returns a page of film filmID's reviews, the most recently written
// first. An unknown film is a NotFound error.
func (s *Store) Reviews(ctx context.Context, filmID int64, req PageRequest) (ReviewPage, error) {
	if req.Limit < 1 {
		return ReviewPage{}, errors.New("films: reviews: a page needs a limit of at least 1")
	}
	before := int64(math.MaxInt64)
	if req.After.ID != 0 {
		before = req.After.ID
	}
	var p ReviewPage
	err := s.db.RetryRead(ctx, func() error {
		rows, err := s.db.QueryContext(ctx, `SELECT r.user_id, r.rating, r.text, r.created_at, r.updated_at, r.seq, u.name
			FROM reviews r LEFT JOIN users u ON u.id = r.user_id
			WHERE r.film_id = $1 AND r.seq < $2 ORDER BY r.seq DESC LIMIT $3`, filmID, before, req.Limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		p = ReviewPage{Items: make([]Review, 0, min(req.Limit+1, MaxLimit+1))}
		for rows.Next() {
			r := Review{FilmID: filmID}
			var name sql.NullString
			if err := rows.Scan(&r.UserID, &r.Rating, &r.Text, &r.CreatedAt, &r.UpdatedAt, &r.Seq, &name); err != nil {
				return err
			}
			r.CreatedAt, r.UpdatedAt, r.AuthorName = r.CreatedAt.UTC(), r.UpdatedAt.UTC(), name.String
			p.Items = append(p.Items, r)
		}
		return rows.Err()
	})
	if err != nil {
		return ReviewPage{}, fmt.Errorf("films: reviews: %w", err)
	}
	if len(p.Items) == 0 {
		// No reviews, or no film: only the second is an error.
		if _, err := s.Film(ctx, filmID); err != nil {
			return ReviewPage{}, err
		}
	}
	if len(p.Items) > req.Limit {
		p.Items = p.Items[:req.Limit]
		p.Next = &Cursor{Sort: sortReviews, ID: p.Items[req.Limit-1].Seq, Scope: reviewsScope(filmID)}
	}
	return p, nil
}

// AddFavorite marks filmID as a favourite of userID. Adding it again changes
// nothing; an unknown film is a NotFound error.
func (s *Store) AddFavorite(ctx context.Context, userID string, filmID int64) error {
	// One statement: no window between "the film exists" and the insert.
	// (SQLite needs the WHERE for ON CONFLICT to parse after a SELECT.)
	res, err := s.db.ExecContext(ctx, `INSERT INTO favorites (user_id, film_id, created_at)
		SELECT $1, f.id, $3 FROM films f WHERE f.id = $2
		AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = $1 AND u.deleted)
		ON CONFLICT (user_id, film_id) DO NOTHING`, userID, filmID, s.stamp())
	if err != nil {
		return fmt.Errorf("films: add favourite: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	// Nothing inserted: either it was already there or there is no such film.
	if _, err := s.Film(ctx, filmID); err != nil {
		return err
	}
	return nil
}

// RemoveFavorite unmarks filmID for userID. Removing what is not there —
// or a film deleted since — is not an error: the caller's wish holds.
func (s *Store) RemoveFavorite(ctx context.Context, userID string, filmID int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM favorites WHERE user_id = $1 AND film_id = $2`, userID, filmID); err != nil {
		return fmt.Errorf("films: remove favourite: %w", err)
	}
	return nil
}
