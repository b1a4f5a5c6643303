package films

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// BenchmarkLoadReadPath is the read path's load run (docs/benchmarks.md, "Films
// read path"). It is a measurement, not a check, and runs only when asked:
//
//	KINOTEKA_FILMS_LOAD=6s go test -run '^$' -bench LoadReadPath -benchtime=1x -v ./internal/films/
//
// KINOTEKA_TEST_POSTGRES_URL adds the PostgreSQL rows;
// KINOTEKA_FILMS_LOAD_TOOL=wrk drives the load with wrk (must be on PATH)
// instead of vegeta; KINOTEKA_FILMS_LOAD_WORKERS sets the connections
// (default 32).
//
// It sends GET /v1/films/{id} (ids 1…3200 in turn) and GET
// /v1/films?limit=20, with a valid Bearer token, at full speed over
// keep-alive connections, to three servers on loopback: a bare net/http
// handler that returns the very bytes films returns (the baseline); films
// with its read cache (the default); films with the cache off, where every
// request queries the database. Films runs with its production middleware:
// request id, one JSON log line per request at info level (to io.Discard),
// token verification (with its cache of verified tokens), ETag.
//
// The load is cut into rounds of one second, each measuring the three
// servers back to back, so that a ratio compares neighbours in time on a
// shared machine; "of bare" is the median of the rounds' ratios, the other
// figures the median round's. Beside throughput it reports the CPU time one
// request costs the whole setup: this process (the servers, and vegeta when
// it drives the load), the load generator's process (wrk) and, on
// PostgreSQL, the database's backends serving films. On two saturated cores
// throughput is the inverse of that cost, but the cost moves much less when
// other work shares the machine, so its ratio ("of bare, CPU") is the steadier
// figure.
//
// It is a benchmark only so that go test runs it on request (-bench) and
// never as a test; the load's length comes from KINOTEKA_FILMS_LOAD (default
// 6s per target), not from b.N, so run it with -benchtime=1x.
func BenchmarkLoadReadPath(b *testing.B) {
	var t testing.TB = b
	total := os.Getenv("KINOTEKA_FILMS_LOAD")
	if total == "" {
		total = "6s"
	}
	per, err := time.ParseDuration(total)
	if err != nil || per < 3*time.Second {
		t.Fatalf("KINOTEKA_FILMS_LOAD: %q, want a duration of at least 3s", total)
	}
	workers := 32
	if w := os.Getenv("KINOTEKA_FILMS_LOAD_WORKERS"); w != "" {
		if workers, err = strconv.Atoi(w); err != nil || workers < 1 {
			t.Fatalf("KINOTEKA_FILMS_LOAD_WORKERS: %q", w)
		}
	}
	const round = time.Second
	rounds := int(per / round)
	var tool loadTool = vegetaTool{workers: workers}
	if os.Getenv("KINOTEKA_FILMS_LOAD_TOOL") == "wrk" {
		tool = wrkTool{workers: workers, dir: t.TempDir()}
	}
	engines := []sqldb.Dialect{sqldb.SQLite}
	if os.Getenv(sqldbtest.EnvPostgres) != "" {
		engines = append(engines, sqldb.Postgres)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	auth := newAuthServer(t)
	authz := "Bearer " + auth.token(t, "load-user")
	header := http.Header{"Authorization": {authz}}

	rows := []string{fmt.Sprintf("%s, %d connections, %d × %s per target, %s, GOMAXPROCS %d",
		tool, workers, rounds, round, runtime.Version(), runtime.GOMAXPROCS(0)),
		"", "| server | route | requests/s | of bare | CPU per request | of bare, CPU | p50 | p99 |",
		"|---|---|---|---|---|---|---|---|"}
	for _, engine := range engines {
		var db *sqldb.DB
		if engine == sqldb.SQLite {
			db = sqldbtest.SQLite(t, Migrations)
		} else {
			db = sqldbtest.Postgres(t, Migrations)
		}
		store := NewStore(db, nil)
		if _, _, err := SeedDemo(context.Background(), store); err != nil {
			t.Fatal(err)
		}
		servers := []struct {
			name string
			url  string
		}{
			{"bare net/http, same bytes", ""},
			{string(engine) + ": films, read cache on", httptest.NewServer(apiOnly(routes(log, store, auth.verifier(), DefaultConfig().ReadCacheTTL, nil))).URL},
			{string(engine) + ": films, read cache off", httptest.NewServer(apiOnly(routes(log, store, auth.verifier(), 0, nil))).URL},
		}
		// One request each before the load: internal/tokens answers 401 to
		// tokens that arrive while a verifier's first JWK set fetch is in
		// flight, which a burst on a fresh verifier would hit.
		fetch(t, servers[2].url+"/v1/films/1", header)
		filmBody := fetch(t, servers[1].url+"/v1/films/1", header)
		listBody := fetch(t, servers[1].url+"/v1/films?limit=20", header)
		bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body := filmBody
			if r.URL.Path == "/v1/films" {
				body = listBody
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}))
		defer bare.Close()
		servers[0].url = bare.URL

		for _, route := range []loadRoute{{"GET /v1/films/{id}", "/v1/films/", demoKept}, {"GET /v1/films?limit=20", "/v1/films?limit=20", 0}} {
			for _, s := range servers { // warm-up: connections, caches, the planner
				tool.run(t, s.url, authz, route, time.Second)
			}
			meter := cpuMeter{backends: postgresBackends(t, db)}
			results := make([][]loadResult, len(servers))
			for range rounds {
				for i, s := range servers {
					runtime.GC()
					before := meter.read()
					r := tool.run(t, s.url, authz, route, round)
					r.cpu = (meter.read() - before) / time.Duration(max(r.rps*round.Seconds(), 1))
					results[i] = append(results[i], r)
				}
			}
			for i, s := range servers {
				ratio, cpuRatio := "—", "—"
				if i > 0 {
					ratios, cpuRatios := make([]float64, rounds), make([]float64, rounds)
					for r := range rounds {
						ratios[r] = results[i][r].rps / results[0][r].rps
						cpuRatios[r] = float64(results[0][r].cpu) / float64(results[i][r].cpu)
					}
					ratio = fmt.Sprintf("%.0f %%", 100*median(ratios))
					cpuRatio = fmt.Sprintf("%.0f %%", 100*median(cpuRatios))
				}
				m := medianResult(results[i])
				cpus := make([]float64, rounds)
				for r := range rounds {
					cpus[r] = float64(results[i][r].cpu)
				}
				row := fmt.Sprintf("| %s | %s | %.0f | %s | %s | %s | %s | %s |", s.name, route.name, m.rps, ratio,
					roundLatency(time.Duration(median(cpus))), cpuRatio, roundLatency(m.p50), roundLatency(m.p99))
				if engine != engines[0] && i == 0 {
					row = strings.Replace(row, "bare net/http", "bare net/http (again)", 1)
				}
				rows = append(rows, row)
			}
		}
	}
	t.Logf("\n%s", strings.Join(rows, "\n"))
}

// cpuMeter reads the CPU time this process, its finished children (wrk)
// and the given processes (PostgreSQL backends) have used.
type cpuMeter struct{ backends []int }

func (m cpuMeter) read() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	d := time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
	for _, pid := range m.backends {
		d += processCPU(pid)
	}
	return d
}

// postgresBackends are the pids of the server processes serving db's
// connections, or none when db is not PostgreSQL. They are read from /proc,
// so they count only when the server runs on this machine.
func postgresBackends(t testing.TB, db *sqldb.DB) []int {
	if db.Dialect != sqldb.Postgres {
		return nil
	}
	rows, err := db.Query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return pids
}

// processCPU is the time process pid has run on a CPU, from
// /proc/PID/schedstat (nanoseconds; /proc/PID/stat counts in 10 ms ticks,
// too coarse for a one-second round), zero when it cannot be read.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/schedstat")
	if err != nil {
		return 0
	}
	ns, _, _ := strings.Cut(string(b), " ")
	n, _ := strconv.ParseInt(ns, 10, 64)
	return time.Duration(n)
}

// loadRoute is one route under load: path alone, or path + 1…ids in turn.
type loadRoute struct {
	name string
	path string
	ids  int
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration // per request, see cpuMeter
}

type loadTool interface {
	run(t testing.TB, base, authorization string, route loadRoute, d time.Duration) loadResult
}

// vegetaTool drives the load with vegeta as a library, in this process.
type vegetaTool struct{ workers int }

func (v vegetaTool) String() string { return "vegeta v12.13.0 (library)" }

func (v vegetaTool) run(t testing.TB, base, authorization string, route loadRoute, d time.Duration) loadResult {
	header := http.Header{"Authorization": {authorization}}
	targets := []vegeta.Target{{Method: "GET", URL: base + route.path, Header: header}}
	if route.ids > 0 {
		targets = make([]vegeta.Target, route.ids)
		for i := range targets {
			targets[i] = vegeta.Target{Method: "GET", URL: base + route.path + strconv.Itoa(i+1), Header: header}
		}
	}
	a := vegeta.NewAttacker(vegeta.Workers(uint64(v.workers)), vegeta.MaxWorkers(uint64(v.workers)),
		vegeta.Connections(v.workers), vegeta.KeepAlive(true))
	var m vegeta.Metrics
	for res := range a.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: 0}, d, "load") {
		m.Add(res)
	}
	m.Close()
	if m.Success < 1 {
		t.Errorf("%s%s: success %.4f, errors %v", base, route.path, m.Success, m.Errors)
	}
	return loadResult{rps: m.Throughput, p50: m.Latencies.P50, p99: m.Latencies.P99}
}

// wrkTool drives the load with wrk, a separate C program: its own cost per
// request is smaller than vegeta's, so the servers' differences show more.
type wrkTool struct {
	workers int
	dir     string
}

func (w wrkTool) String() string { return "wrk 4.1.0, 2 threads" }

func (w wrkTool) run(t testing.TB, base, authorization string, route loadRoute, d time.Duration) loadResult {
	script := filepath.Join(w.dir, "films.lua")
	lua := fmt.Sprintf("wrk.headers[\"Authorization\"] = %q\n", authorization)
	if route.ids > 0 {
		lua += fmt.Sprintf("local i = 0\nrequest = function()\n  i = i %% %d + 1\n  return wrk.format(\"GET\", %q .. i)\nend\n", route.ids, route.path)
	} else {
		lua += fmt.Sprintf("request = function() return wrk.format(\"GET\", %q) end\n", route.path)
	}
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(w.workers), "-d"+strconv.Itoa(int(d.Seconds()))+"s",
		"--latency", "-s", script, base).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	text := string(out)
	// wrk stops mid-request when its time is up; the few answers it then
	// counts as failed (the server's 499 to a vanished client) are noise,
	// anything more is not.
	requests := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(text)
	non2xx := regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`).FindStringSubmatch(text)
	if requests == nil || (non2xx != nil && atoi(non2xx[1])*10_000 > atoi(requests[1])) || strings.Contains(text, "Socket errors") {
		t.Errorf("wrk reported errors:\n%s", text)
	}
	rps := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindStringSubmatch(text)
	if rps == nil {
		t.Fatalf("wrk output without Requests/sec:\n%s", text)
	}
	r := loadResult{p50: wrkLatency(t, text, "50%"), p99: wrkLatency(t, text, "99%")}
	r.rps, _ = strconv.ParseFloat(rps[1], 64)
	return r
}

func wrkLatency(t testing.TB, text, pct string) time.Duration {
	m := regexp.MustCompile(`(?m)^\s+` + pct + `\s+([\d.]+)(us|ms|s)\s*$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("wrk output without the %s latency:\n%s", pct, text)
	}
	d, err := time.ParseDuration(m[1] + m[2])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianResult(rs []loadResult) loadResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b loadResult) int { return int(math.Copysign(1, a.rps-b.rps)) })
	return s[len(s)/2]
}

func fetch(t testing.TB, url string, header http.Header) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header = header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

func roundLatency(d time.Duration) string {
	if d >= time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// BenchmarkReadPath measures the handlers alone, in process, without the
// network or a load generator: what one request costs the server's CPU
// (on PostgreSQL, without the backend's). SQLite always, PostgreSQL when
// KINOTEKA_TEST_POSTGRES_URL is set.
//
//	go test -run '^$' -bench ReadPath -benchmem ./internal/films/
func BenchmarkReadPath(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchmarkReadPath(b, sqldbtest.SQLite(b, Migrations)) })
	if os.Getenv(sqldbtest.EnvPostgres) != "" {
		b.Run("postgres", func(b *testing.B) { benchmarkReadPath(b, sqldbtest.Postgres(b, Migrations)) })
	}
}

func benchmarkReadPath(b *testing.B, db *sqldb.DB) {
	store := NewStore(db, nil)
	if _, _, err := SeedDemo(context.Background(), store); err != nil {
		b.Fatal(err)
	}
	auth := newAuthServer(b)
	authz := "Bearer " + auth.token(b, "load-user")
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cached := apiOnly(routes(log, store, auth.verifier(), DefaultConfig().ReadCacheTTL, nil))
	uncached := apiOnly(routes(log, store, auth.verifier(), 0, nil))
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", authz)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, route := range []struct{ name, path string }{{"film", "/v1/films/1"}, {"list", "/v1/films?limit=20"}} {
		body := get(cached, route.path).Body.Bytes()
		bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		})
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"bare", bare}, {"cache-on", cached}, {"cache-off", uncached}} {
			b.Run(route.name+"/"+h.name, func(b *testing.B) {
				before := cpuMeter{}.read()
				for b.Loop() {
					if w := get(h.h, route.path); w.Code != http.StatusOK {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
				// The process's CPU, not the wall clock: on PostgreSQL a
				// request mostly waits for the server.
				b.ReportMetric(float64(cpuMeter{}.read()-before)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// BenchmarkReviewAggregate is the measurement behind keeping each film's
// review count and rating sum on its row (store_reviews.go) rather than
// computing them per read: the demo catalogue with 20 reviews per film
// (64,000), read both ways, and the write that keeps the stored aggregate.
//
//	go test -run '^$' -bench ReviewAggregate -benchtime 200x ./internal/films/
func BenchmarkReviewAggregate(b *testing.B) {
	engines := map[string]func(testing.TB) *sqldb.DB{"sqlite": func(t testing.TB) *sqldb.DB { return sqldbtest.SQLite(t, Migrations) }}
	if os.Getenv(sqldbtest.EnvPostgres) != "" {
		engines["postgres"] = func(t testing.TB) *sqldb.DB { return sqldbtest.Postgres(t, Migrations) }
	}
	for engine, open := range engines {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			db := open(b)
			store := NewStore(db, nil)
			if _, _, err := SeedDemo(ctx, store); err != nil {
				b.Fatal(err)
			}
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				for u := range 20 {
					if _, err := tx.ExecContext(ctx, `INSERT INTO reviews (film_id, user_id, rating, text, created_at, updated_at, seq)
						SELECT id, $1, 1 + (id + $2) % 10, '', $3, $3, $2 + 1 FROM films`, fmt.Sprintf("u%02d", u), u, testNow); err != nil {
						return err
					}
				}
				_, err := tx.ExecContext(ctx, `UPDATE films SET
					review_count = (SELECT COUNT(*) FROM reviews r WHERE r.film_id = films.id),
					rating_sum = (SELECT SUM(r.rating) FROM reviews r WHERE r.film_id = films.id), review_seq = 20`)
				if err != nil {
					return err
				}
				_, err = tx.ExecContext(ctx, `UPDATE films SET rating_key = (rating_sum * 1000 + review_count / 2) / review_count`)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			computed := `SELECT f.id, f.title,
				(SELECT CAST(AVG(r.rating) AS DOUBLE PRECISION) FROM reviews r WHERE r.film_id = f.id),
				(SELECT COUNT(*) FROM reviews r WHERE r.film_id = f.id) FROM films f `
			stored := `SELECT f.id, f.title, f.rating_sum, f.review_count FROM films f `
			for _, q := range []struct{ name, sql string }{
				{"read-page-of-20/stored", stored + `WHERE f.id > 1000 ORDER BY f.id LIMIT 21`},
				{"read-page-of-20/computed", computed + `WHERE f.id > 1000 ORDER BY f.id LIMIT 21`},
				{"sort-by-rating/stored", stored + `ORDER BY f.rating_key DESC, f.id DESC LIMIT 21`},
				{"sort-by-rating/computed", computed + `ORDER BY 3 DESC, f.id DESC LIMIT 21`},
			} {
				b.Run(q.name, func(b *testing.B) {
					for b.Loop() {
						rows, err := db.QueryContext(ctx, q.sql)
						if err != nil {
							b.Fatal(err)
						}
						n := 0
						for rows.Next() {
							n++
						}
						rows.Close()
						if n != 21 {
							b.Fatalf("%d rows", n)
						}
					}
				})
			}
			b.Run("write-review/locked-with-aggregate", func(b *testing.B) {
				i := 0
				for b.Loop() {
					i++
					if _, _, err := store.PutReview(ctx, int64(1+i%3200), "writer", ReviewInput{Rating: 1 + i%10}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("write-review/plain-upsert", func(b *testing.B) {
				i := 0
				for b.Loop() {
					i++
					_, err := db.ExecContext(ctx, `INSERT INTO reviews (film_id, user_id, rating, text, created_at, updated_at, seq)
						VALUES ($1, 'plain', $2, '', $3, $3, 1000000 + $4) ON CONFLICT (film_id, user_id) DO UPDATE SET rating = excluded.rating`,
						1+i%3200, 1+i%10, testNow, i)
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
