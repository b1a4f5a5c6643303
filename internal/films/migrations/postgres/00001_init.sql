-- films' own database: the catalogue, our users' reviews and favourites.
-- Users belong to auth; user_id columns hold the access token's sub only.

-- +goose Up
CREATE TABLE genres (
    id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text    NOT NULL UNIQUE
);

CREATE TABLE films (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title        text        NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    year         integer     NOT NULL CHECK (year BETWEEN 1850 AND 2200),
    release_date date,
    genre_id     integer     REFERENCES genres (id),
    director     text,
    runtime_min  integer     CHECK (runtime_min > 0),
    mpaa_rating  text,
    -- double precision, not real: 6.1 must read back as 6.1.
    imdb_rating  double precision CHECK (imdb_rating BETWEEN 0 AND 10),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    UNIQUE (title, year)
);
CREATE INDEX films_genre_id ON films (genre_id);

CREATE TABLE reviews (
    film_id    bigint      NOT NULL REFERENCES films (id) ON DELETE CASCADE,
    user_id    text        NOT NULL,
    rating     smallint    NOT NULL CHECK (rating BETWEEN 1 AND 10),
    text       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (film_id, user_id)
);
CREATE INDEX reviews_user_id ON reviews (user_id);

CREATE TABLE favorites (
    user_id    text        NOT NULL,
    film_id    bigint      NOT NULL REFERENCES films (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, film_id)
);
CREATE INDEX favorites_film_id ON favorites (film_id);

-- +goose Down
DROP TABLE favorites;
DROP TABLE reviews;
DROP TABLE films;
DROP TABLE genres;
