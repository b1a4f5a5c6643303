package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"kinoteka/internal/films"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

func runCommand(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = runFilms(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// summaryFigure reads one figure of the import summary, e.g. "films added".
func summaryFigure(t *testing.T, summary, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  ` + name + ` +(\d+)`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no %q in the summary:\n%s", name, summary)
	}
	return m[1]
}

// demoFile writes the demo catalogue (movies.json) to a file to import.
func demoFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "movies.json")
	if err := os.WriteFile(path, films.DemoCatalogue, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// `kinoteka films import` on the shipped file: exact figures, the reject
// report, and a second run that changes nothing — on both engines.
func TestImportCommandShippedFile(t *testing.T) {
	file := demoFile(t)
	urls := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "films.db")}
	if os.Getenv(sqldbtest.EnvPostgres) != "" {
		urls["postgres"] = sqldbtest.FreshPostgresURL(t)
	}
	for engine, dbURL := range urls {
		t.Run(engine, func(t *testing.T) {
			stdout, stderr, err := runCommand(t, "import", "-db", dbURL, "-century-shift-after", "2011", file)
			if err != nil {
				t.Fatalf("import: %v\n%s", err, stderr)
			}
			for name, want := range map[string]string{"rows read": "3201", "films added": "3200", "duplicates": "0", "rejected": "1", "years corrected": "22"} {
				if got := summaryFigure(t, stderr, name); got != want {
					t.Errorf("%s: %s, want %s", name, got, want)
				}
			}
			if want := "index,title,reason\n3053,,missing title\n"; stdout != want {
				t.Errorf("reject report:\n%q\nwant %q", stdout, want)
			}
			if strings.Contains(stderr, "\r") {
				t.Error("a progress bar was drawn on a non-terminal")
			}

			// Again, the report to a file: nothing added, every film a duplicate.
			report := filepath.Join(t.TempDir(), "rejects.csv")
			stdout, stderr, err = runCommand(t, "import", "-db", dbURL, "-century-shift-after", "2011", "-rejects", report, "-batch", "700", file)
			if err != nil {
				t.Fatalf("second import: %v\n%s", err, stderr)
			}
			if got, dup := summaryFigure(t, stderr, "films added"), summaryFigure(t, stderr, "duplicates"); got != "0" || dup != "3200" {
				t.Errorf("second import: added %s, duplicates %s; want 0, 3200", got, dup)
			}
			if b, err := os.ReadFile(report); err != nil || string(b) != "index,title,reason\n3053,,missing title\n" || stdout != "" {
				t.Errorf("report file %q (%v), stdout %q", b, err, stdout)
			}
			db, err := sqldb.Open(context.Background(), dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM films`).Scan(&n); err != nil || n != 3200 {
				t.Errorf("%d films in the database (%v), want 3200", n, err)
			}
			// The import went through the same rules and keys as the API:
			// the search finds an imported film by words of its title.
			s := films.NewStore(db, nil)
			p, err := s.Films(context.Background(), films.FilmQuery{Words: []string{"gone", "wind"}, Limit: 5})
			if err != nil || len(p.Items) != 1 || p.Items[0].Title != "Gone with the Wind" || p.Items[0].Year != 1939 {
				t.Errorf("search after import: %+v, %v", p.Items, err)
			}
		})
	}
}

func TestImportCommandErrors(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "films.db")
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte(`[{"Title":"A","Release Date":"2000"}, {"Title":`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		mention string
	}{
		{"no subcommand", nil, "subcommand"},
		{"unknown subcommand", []string{"export"}, "export"},
		{"no file", []string{"import", "-db", db}, "FILE.json"},
		{"two files", []string{"import", "-db", db, "a.json", "b.json"}, "FILE.json"},
		{"missing file", []string{"import", "-db", db, filepath.Join(dir, "none.json")}, "none.json"},
		{"broken file", []string{"import", "-db", db, broken}, "broken.json"},
		{"bad batch", []string{"import", "-db", db, "-batch", "0", broken}, "-batch"},
		{"bad database", []string{"import", "-db", "mysql://x", broken}, "database"},
		{"unknown flag", []string{"import", "-fast", broken}, "-fast"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := runCommand(t, tc.args...)
			if err == nil || !strings.Contains(err.Error()+stderr, tc.mention) {
				t.Errorf("err %v, stderr %q; want an error mentioning %q", err, stderr, tc.mention)
			}
		})
	}
	// The broken file wrote nothing.
	sdb, err := sqldb.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var n int
	if err := sdb.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM films`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d films after a broken file (%v)", n, err)
	}
	if _, stderr, err := runCommand(t, "help"); err != nil || !strings.Contains(stderr, "usage") {
		t.Errorf("help: %v %q", err, stderr)
	}
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, tty: true, lastPct: -1}
	p.update(0, 200)
	p.update(1, 200) // still 0 %: not redrawn
	p.update(100, 200)
	p.update(200, 200)
	p.done()
	want := "\r[" + strings.Repeat(" ", 40) + "]   0%  0/200 films" +
		"\r[" + strings.Repeat("=", 20) + strings.Repeat(" ", 20) + "]  50%  100/200 films" +
		"\r[" + strings.Repeat("=", 40) + "] 100%  200/200 films\n"
	if b.String() != want {
		t.Errorf("bar:\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	quiet := newProgress(&b) // a buffer is not a terminal
	quiet.update(5, 10)
	quiet.done()
	if b.Len() != 0 {
		t.Errorf("progress on a non-terminal wrote %q", b.String())
	}
}

// The embedded films runs with films' defaults, its read cache among them:
// the public catalogue answers say how long they may be reused.
func TestEmbeddedFilmsCachesCatalogueReads(t *testing.T) {
	_, env, _ := runSystem(t)
	for _, path := range []string{"/v1/films?limit=20", "/v1/films/1"} {
		for range 2 { // a miss, then a hit
			resp, err := http.Get(env.FilmsURL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cc, want := resp.Header.Get("Cache-Control"), fmt.Sprintf("public, max-age=%d", int(films.DefaultConfig().ReadCacheTTL.Seconds()))
			if resp.StatusCode != http.StatusOK || cc != want || resp.Header.Get("ETag") == "" {
				t.Errorf("GET %s: %d, Cache-Control %q, ETag %q; want 200, %q and an ETag", path, resp.StatusCode, cc, resp.Header.Get("ETag"), want)
			}
		}
	}
}
