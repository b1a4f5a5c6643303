package films

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"kinoteka/internal/apperr"
)

// The caller's own review and favourite state of one film, each one indexed
// read: a client showing a film to a signed-in person needs both, and
// walking the film's reviews or the person's favourites page by page to find
// them costs more the more there are (and must stop somewhere).

var (
	errNoReview      = apperr.New(apperr.NotFound, "review_not_found", "you have not reviewed this film")
	errNotAFavourite = apperr.New(apperr.NotFound, "not_a_favorite", "this film is not among your favourites")
)

// OwnReview returns userID's review of film filmID: a NotFound error
// film_not_found when there is no such film, review_not_found when there is
// no review.
func (s *Store) OwnReview(ctx context.Context, filmID int64, userID string) (Review, error) {
	r := Review{FilmID: filmID, UserID: userID}
	var name sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT r.rating, r.text, r.created_at, r.updated_at, r.seq, u.name
		FROM reviews r LEFT JOIN users u ON u.id = r.user_id
		WHERE r.film_id = $1 AND r.user_id = $2`, filmID, userID).Scan(&r.Rating, &r.Text, &r.CreatedAt, &r.UpdatedAt, &r.Seq, &name)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.Film(ctx, filmID); err != nil {
			return Review{}, err
		}
		return Review{}, errNoReview
	}
	if err != nil {
		return Review{}, fmt.Errorf("films: own review: %w", err)
	}
	r.CreatedAt, r.UpdatedAt, r.AuthorName = r.CreatedAt.UTC(), r.UpdatedAt.UTC(), name.String
	return r, nil
}

// IsFavorite reports whether filmID is among userID's favourites: nil when
// it is, a NotFound error not_a_favorite when it is not (a film that does
// not exist is not a favourite either: the answer is the same 404).
func (s *Store) IsFavorite(ctx context.Context, userID string, filmID int64) error {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM favorites WHERE user_id = $1 AND film_id = $2`, userID, filmID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errNotAFavourite
	}
	if err != nil {
		return fmt.Errorf("films: is favourite: %w", err)
	}
	return nil
}
