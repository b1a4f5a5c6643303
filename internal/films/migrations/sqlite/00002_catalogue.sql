-- Issue 5: search, sorting, review aggregates and review order. The
-- PostgreSQL twin of this file explains the columns; here the search index
-- is FTS5 over the same Go-normalised columns.

-- +goose Up
ALTER TABLE films ADD COLUMN sort_title      TEXT;
ALTER TABLE films ADD COLUMN title_search    TEXT;
ALTER TABLE films ADD COLUMN director_search TEXT;
ALTER TABLE films ADD COLUMN review_count    INTEGER NOT NULL DEFAULT 0 CHECK (review_count >= 0);
ALTER TABLE films ADD COLUMN rating_sum      INTEGER NOT NULL DEFAULT 0 CHECK (rating_sum >= 0);
ALTER TABLE films ADD COLUMN rating_key      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE films ADD COLUMN review_seq      INTEGER NOT NULL DEFAULT 0;

ALTER TABLE genres ADD COLUMN name_key TEXT;
CREATE UNIQUE INDEX genres_key ON genres (name_key);

ALTER TABLE reviews ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE reviews SET seq = (
    SELECT COUNT(*) FROM reviews r2
    WHERE r2.film_id = reviews.film_id
      AND (r2.updated_at < reviews.updated_at OR (r2.updated_at = reviews.updated_at AND r2.user_id <= reviews.user_id)));
UPDATE films SET
    review_count = (SELECT COUNT(*) FROM reviews r WHERE r.film_id = films.id),
    rating_sum   = (SELECT COALESCE(SUM(r.rating), 0) FROM reviews r WHERE r.film_id = films.id),
    review_seq   = (SELECT COALESCE(MAX(r.seq), 0) FROM reviews r WHERE r.film_id = films.id);
UPDATE films SET rating_key = (rating_sum * 1000 + review_count / 2) / review_count WHERE review_count > 0;
CREATE UNIQUE INDEX reviews_film_seq ON reviews (film_id, seq);

CREATE INDEX films_sort_title ON films (sort_title, id);
CREATE INDEX films_year       ON films (year, id);
CREATE INDEX films_rating     ON films (rating_key, id);
CREATE INDEX films_reviews    ON films (review_count, id);

-- An external-content FTS5 index over films' search columns, kept in step by
-- triggers. remove_diacritics 0: the columns are already folded in Go.
CREATE VIRTUAL TABLE films_fts USING fts5(
    title_search, director_search,
    content = 'films', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO films_fts (rowid, title_search, director_search)
    SELECT id, title_search, director_search FROM films WHERE title_search IS NOT NULL;

-- A row is in the index exactly when its title_search is not NULL (rows
-- of version 1 get it from the start-up backfill): FTS5 reports a corrupt
-- index when asked to delete a row it never held.

-- +goose StatementBegin
CREATE TRIGGER films_fts_insert AFTER INSERT ON films WHEN new.title_search IS NOT NULL BEGIN
    INSERT INTO films_fts (rowid, title_search, director_search)
        VALUES (new.id, new.title_search, new.director_search);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER films_fts_delete AFTER DELETE ON films WHEN old.title_search IS NOT NULL BEGIN
    INSERT INTO films_fts (films_fts, rowid, title_search, director_search)
        VALUES ('delete', old.id, old.title_search, old.director_search);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER films_fts_update AFTER UPDATE OF title_search, director_search ON films BEGIN
    INSERT INTO films_fts (films_fts, rowid, title_search, director_search)
        SELECT 'delete', old.id, old.title_search, old.director_search WHERE old.title_search IS NOT NULL;
    INSERT INTO films_fts (rowid, title_search, director_search)
        SELECT new.id, new.title_search, new.director_search WHERE new.title_search IS NOT NULL;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER films_fts_update;
DROP TRIGGER films_fts_delete;
DROP TRIGGER films_fts_insert;
DROP TABLE films_fts;
DROP INDEX films_reviews;
DROP INDEX films_rating;
DROP INDEX films_year;
DROP INDEX films_sort_title;
DROP INDEX reviews_film_seq;
ALTER TABLE reviews DROP COLUMN seq;
DROP INDEX genres_key;
ALTER TABLE genres DROP COLUMN name_key;
ALTER TABLE films DROP COLUMN review_seq;
ALTER TABLE films DROP COLUMN rating_key;
ALTER TABLE films DROP COLUMN rating_sum;
ALTER TABLE films DROP COLUMN review_count;
ALTER TABLE films DROP COLUMN director_search;
ALTER TABLE films DROP COLUMN title_search;
ALTER TABLE films DROP COLUMN sort_title;
