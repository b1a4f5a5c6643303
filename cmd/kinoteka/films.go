package main

import (
	"context"
	"io"

	"kinoteka/internal/films"
)

// runFilms is `kinoteka films …`, the films service's admin tools; args
// start after "films". `kinoteka films import [-db URL] [-rejects FILE]
// [-century-shift-after YEAR] [-batch N] FILE.json` loads a film file with
// the code that seeds the demo catalogue: a progress bar on a terminal, a
// plain summary on stderr, the reject report (CSV) on stdout or in FILE.
// The database is -db, else FILMS_DATABASE_URL, else sqlite:data/films.db.
func runFilms(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return films.Command(ctx, args, getenv, stdout, stderr)
}
