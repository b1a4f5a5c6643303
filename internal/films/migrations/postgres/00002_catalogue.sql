-- Issue 5: search, sorting, review aggregates and review order.
--
-- The *_search and sort_title columns are derived from title and director by
-- the Go code (lower case, accents removed, punctuation turned into spaces:
-- see search.go), so both engines index exactly the same words; rows written
-- before this migration get them from Store.backfill when the service starts.
-- sort_title uses the "C" collation: byte order, the same as SQLite's BINARY,
-- so a title cursor means the same thing on both engines.

-- +goose Up
ALTER TABLE films
    ADD COLUMN sort_title      text COLLATE "C",
    ADD COLUMN title_search    text,
    ADD COLUMN director_search text,
    -- Our users' reviews, kept in the same transaction as each review write
    -- (the film row is locked first), so average and count are exact and
    -- the catalogue can be sorted by them with an index.
    ADD COLUMN review_count    integer NOT NULL DEFAULT 0 CHECK (review_count >= 0),
    ADD COLUMN rating_sum      integer NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
    -- round(1000 × average), 0 without reviews: the -rating sort key.
    ADD COLUMN rating_key      integer NOT NULL DEFAULT 0,
    -- The last review write's number, for "newest first" without clocks.
    ADD COLUMN review_seq      bigint  NOT NULL DEFAULT 0;

ALTER TABLE genres ADD COLUMN name_key text;
CREATE UNIQUE INDEX genres_key ON genres (name_key);

ALTER TABLE reviews ADD COLUMN seq bigint NOT NULL DEFAULT 0;
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
-- Full-text search: every query word must begin a word of the title
-- (director). 'simple' does no stemming: titles are names in many languages.
CREATE INDEX films_title_fts    ON films USING gin (to_tsvector('simple', title_search));
CREATE INDEX films_director_fts ON films USING gin (to_tsvector('simple', director_search));

-- +goose Down
DROP INDEX films_director_fts;
DROP INDEX films_title_fts;
DROP INDEX films_reviews;
DROP INDEX films_rating;
DROP INDEX films_year;
DROP INDEX films_sort_title;
DROP INDEX reviews_film_seq;
ALTER TABLE reviews DROP COLUMN seq;
DROP INDEX genres_key;
ALTER TABLE genres DROP COLUMN name_key;
ALTER TABLE films
    DROP COLUMN review_seq,
    DROP COLUMN rating_key,
    DROP COLUMN rating_sum,
    DROP COLUMN review_count,
    DROP COLUMN director_search,
    DROP COLUMN title_search,
    DROP COLUMN sort_title;
