-- films' own database: the catalogue, our users' reviews and favourites.
-- Users belong to auth; user_id columns hold the access token's sub only.

-- +goose Up
CREATE TABLE genres (
    id   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);

CREATE TABLE films (
    -- AUTOINCREMENT: an id is never reused after a delete, so a pagination
    -- cursor or a favourite can never come to point at another film.
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    title        TEXT      NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    year         INTEGER   NOT NULL CHECK (year BETWEEN 1850 AND 2200),
    release_date DATE,
    genre_id     INTEGER   REFERENCES genres (id),
    director     TEXT,
    runtime_min  INTEGER   CHECK (runtime_min > 0),
    mpaa_rating  TEXT,
    imdb_rating  REAL      CHECK (imdb_rating BETWEEN 0 AND 10),
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    UNIQUE (title, year)
);
CREATE INDEX films_genre_id ON films (genre_id);

CREATE TABLE reviews (
    film_id    INTEGER   NOT NULL REFERENCES films (id) ON DELETE CASCADE,
    user_id    TEXT      NOT NULL,
    rating     INTEGER   NOT NULL CHECK (rating BETWEEN 1 AND 10),
    text       TEXT      NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (film_id, user_id)
);
CREATE INDEX reviews_user_id ON reviews (user_id);

CREATE TABLE favorites (
    user_id    TEXT      NOT NULL,
    film_id    INTEGER   NOT NULL REFERENCES films (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, film_id)
);
CREATE INDEX favorites_film_id ON favorites (film_id);

-- +goose Down
DROP TABLE favorites;
DROP TABLE reviews;
DROP TABLE films;
DROP TABLE genres;
