package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	envconfig "kinoteka/internal/config" // config is this package's own type
	"kinoteka/internal/films"
)

const filmsUsage = "usage: kinoteka films import [-db URL] [-rejects FILE] [-century-shift-after YEAR] [-batch N] FILE.json"

// runFilms is `kinoteka films …`, the films service's admin tools; args
// start after "films". Today there is one subcommand:
//
//	import [-db URL] [-rejects FILE] [-century-shift-after YEAR] [-batch N] FILE.json
//
// It loads a film file in the shape of the demo catalogue (movies.json) with
// the code that seeds the demo (films.Import), so a row the service would
// refuse is refused here too. Progress goes to stderr (a bar when stderr is
// a terminal), the summary to stderr, and the reject report, CSV
// (index,title,reason), to stdout or to -rejects FILE. Re-running an import
// adds nothing. The database is -db, else FILMS_DATABASE_URL, else films'
// default (sqlite:data/films.db).
func runFilms(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "--help" {
		fmt.Fprintln(stderr, filmsUsage)
		if len(args) == 0 {
			return errors.New("films: a subcommand is required")
		}
		return nil
	}
	switch args[0] {
	case "import":
		return filmsImport(ctx, args[1:], getenv, stdout, stderr)
	}
	return fmt.Errorf("films: unknown subcommand %q (try: import)", args[0])
}

func filmsImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kinoteka films import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbDefault := films.DefaultConfig().DatabaseURL
	env := envconfig.NewEnv(getenv)
	env.String("FILMS_DATABASE_URL", &dbDefault)
	if err := env.Err(); err != nil {
		return fmt.Errorf("films import: %w", err)
	}
	dbURL := fs.String("db", dbDefault, "films database: sqlite:PATH or postgres://… (env FILMS_DATABASE_URL)")
	rejects := fs.String("rejects", "-", `write the reject report (CSV: index,title,reason) to this file; "-" is standard output`)
	shift := fs.Int("century-shift-after", 0, "move release years after this one back 100 years (2011 for the demo catalogue's two-digit years); 0: off")
	batch := fs.Int("batch", 500, "rows per transaction")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kinoteka films import [flags] FILE.json")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("films import: exactly one FILE.json is required")
	}
	if *batch < 1 {
		return errors.New("films import: -batch must be at least 1")
	}
	path := fs.Arg(0)
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("films import: %w", err)
	}
	defer in.Close()

	store, err := films.OpenStore(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("films import: database: %w", err)
	}
	defer store.Close()

	bar := newProgress(stderr)
	start := time.Now()
	rep, err := films.Import(ctx, store, in, films.ImportOptions{CenturyShiftAfter: *shift, BatchSize: *batch, Progress: bar.update})
	bar.done()
	if err != nil {
		return fmt.Errorf("films import: %s: %w", path, err)
	}
	where := "standard output"
	if *rejects != "-" {
		where = *rejects
	}
	if err := writeRejects(*rejects, stdout, rep.Rejected); err != nil {
		return fmt.Errorf("films import: reject report: %w", err)
	}
	fmt.Fprintf(stderr, "imported %s in %s\n", path, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stderr, "  rows read        %6d\n", rep.Rows)
	fmt.Fprintf(stderr, "  films added      %6d\n", rep.Kept)
	fmt.Fprintf(stderr, "  duplicates       %6d  (same title and year earlier in the file or already in the catalogue)\n", rep.Duplicates)
	fmt.Fprintf(stderr, "  rejected         %6d  (report: %s)\n", len(rep.Rejected), where)
	if *shift > 0 {
		fmt.Fprintf(stderr, "  years corrected  %6d  (after %d, moved back 100 years)\n", rep.Corrected, *shift)
	}
	return nil
}

// writeRejects writes the reject report to path or, for "-", to stdout. An
// empty report is still written (its header), so a script can tell "nothing
// rejected" from "no report".
func writeRejects(path string, stdout io.Writer, rows []films.RejectedRow) error {
	if path == "-" {
		return writeRejectsCSV(stdout, rows)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeRejectsCSV(f, rows); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeRejectsCSV writes index (the row's position in the file's array,
// from 0, as jq's .[N] counts), title and reason, with a header.
func writeRejectsCSV(out io.Writer, rows []films.RejectedRow) error {
	w := csv.NewWriter(out)
	_ = w.Write([]string{"index", "title", "reason"})
	for _, r := range rows {
		_ = w.Write([]string{strconv.Itoa(r.Index), r.Title, r.Reason})
	}
	w.Flush()
	return w.Error()
}

// progress draws a bar on a terminal and stays silent elsewhere (a log file
// or a pipe gets only the summary).
type progress struct {
	w       io.Writer
	tty     bool
	drawn   bool
	lastPct int
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())), lastPct: -1}
}

const barWidth = 40

func (p *progress) update(done, total int) {
	if !p.tty {
		return
	}
	pct := 100
	if total > 0 {
		pct = done * 100 / total
	}
	if pct == p.lastPct {
		return
	}
	p.lastPct, p.drawn = pct, true
	filled := pct * barWidth / 100
	fmt.Fprintf(p.w, "\r[%s%s] %3d%%  %d/%d films", strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), pct, done, total)
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
