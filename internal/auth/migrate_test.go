package auth

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"kinoteka/internal/events"
	"kinoteka/internal/outbox"
	"kinoteka/internal/sqldb"
	"kinoteka/internal/sqldb/sqldbtest"
)

// testdata/migrations-v4 is auth's migrations as they were released before
// the outbox package owned its table (versions 1 to 4, the outbox's DDL in
// 1, 2 and 4): a frozen record of what existing databases were made with,
// never edited.
const oldMigrations = "testdata/migrations-v4"

// engineURLs gives each test a new, empty database URL per engine.
func engineURLs(t *testing.T) map[string]func(t *testing.T) string {
	engines := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "auth.db") },
	}
	if os.Getenv(sqldbtest.EnvPostgres) != "" {
		engines["postgres"] = func(t *testing.T) string { return sqldbtest.FreshPostgresURL(t) }
	}
	return engines
}

func open(t *testing.T, url string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// makeOldDatabase migrates db with the released migrations up to version
// upTo, as an auth of that time left it, and leaves one pending mail in its
// outbox, written with the columns the table had since version 1.
func makeOldDatabase(t *testing.T, db *sqldb.DB, upTo int) {
	t.Helper()
	old := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(oldMigrations), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var version int
		if _, err := fmt.Sscanf(filepath.Base(path), "%05d_", &version); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if version <= upTo {
			b, err := os.ReadFile(filepath.Join(oldMigrations, path))
			old[path] = &fstest.MapFile{Data: b}
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := db.Migrate(ctx, old); err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO outbox (event_id, topic, msg_key, event_type, payload, headers, created_at)
		VALUES ('written-by-the-old-auth', $1, 'old-user', $2, $3, '{}', $4)`,
		events.Topic, events.TypeVerificationCode, []byte(`{"old":true}`), time.Now().UTC().Truncate(time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
}

// schema describes every table's columns and every index of db, in a form
// that compares equal when two databases have the same schema.
func schema(t *testing.T, db *sqldb.DB) []string {
	t.Helper()
	queries := []string{
		`SELECT m.name, p.cid, p.name, p.type, p."notnull", COALESCE(p.dflt_value, ''), p.pk
		FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' ORDER BY m.name, p.cid`,
		`SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' ORDER BY name`,
	}
	if db.Dialect == sqldb.Postgres {
		queries = []string{
			`SELECT table_name, ordinal_position, column_name, data_type, is_nullable, COALESCE(column_default, ''), is_identity
			FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`,
			`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname`,
		}
	}
	var out []string
	for _, q := range queries {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.TrimSpace(fmt.Sprint(vals...)))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func maxVersion(t *testing.T, db *sqldb.DB, table string) int {
	t.Helper()
	var v int
	if err := db.QueryRow("SELECT MAX(version_id) FROM " + table).Scan(&v); err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	return v
}

// A database made by any released auth — stopped at any of its versions —
// ends with exactly the schema of a new one once Migrate has run: the
// outbox's migration finds the table auth's old migrations made and the
// columns an older one lacked are added. The mail the old auth left pending
// is still pending, and running Migrate again changes nothing.
func TestMigrateUpgradesOldDatabases(t *testing.T) {
	ctx := context.Background()
	for engine, newURL := range engineURLs(t) {
		t.Run(engine, func(t *testing.T) {
			fresh := open(t, newURL(t))
			if err := Migrate(ctx, fresh); err != nil {
				t.Fatal(err)
			}
			want := schema(t, fresh)
			if !slices.ContainsFunc(want, func(s string) bool { return strings.Contains(s, "traceparent") }) {
				t.Fatalf("a new database has no complete outbox table: %v", want)
			}
			for upTo := 1; upTo <= 4; upTo++ {
				t.Run(fmt.Sprintf("from version %d", upTo), func(t *testing.T) {
					db := open(t, newURL(t))
					makeOldDatabase(t, db, upTo)
					for range 2 {
						if err := Migrate(ctx, db); err != nil {
							t.Fatal(err)
						}
					}
					if got := schema(t, db); !slices.Equal(got, want) {
						t.Errorf("upgraded schema differs from a new one:\n got %q\nwant %q", got, want)
					}
					if v := maxVersion(t, db, "goose_db_version"); v != 5 {
						t.Errorf("auth's version = %d, want 5", v)
					}
					if v := maxVersion(t, db, outbox.VersionTable); v != 1 {
						t.Errorf("the outbox's version = %d, want 1", v)
					}
					if n := count(t, db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND event_id = 'written-by-the-old-auth'"); n != 1 {
						t.Errorf("the old auth's pending mail: %d rows, want 1", n)
					}
				})
			}
		})
	}
}

// Run itself upgrades an old database and serves on it: the mail the old
// auth left pending goes out, then a new registration's.
func TestRunOnAnOldDatabase(t *testing.T) {
	for engine, newURL := range engineURLs(t) {
		for _, upTo := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s from version %d", engine, upTo), func(t *testing.T) {
				url := newURL(t)
				makeOldDatabase(t, open(t, url), upTo)
				cluster, err := kfake.NewCluster(kfake.SeedTopics(1, events.Topic))
				if err != nil {
					t.Fatal(err)
				}
				defer cluster.Close()
				srv := startRun(t, cluster.ListenAddrs(), func(c *Config) { c.DatabaseURL = url })
				if status, body := post(t, srv.url+"/v1/auth/register", `{"email":"new@example.com","password":"correct horse"}`); status != 202 {
					t.Fatalf("register: %d %s", status, body)
				}
				recs := consume(t, cluster.ListenAddrs(), 2)
				if string(recs[0].Key) != "old-user" || string(recs[0].Value) != `{"old":true}` {
					t.Errorf("first record: key %q value %s, want the old auth's pending mail", recs[0].Key, recs[0].Value)
				}
				if d, err := events.Decode(recs[1].Value, ""); err != nil || d.Mail.Email != "new@example.com" {
					t.Errorf("second record: %+v, %v; want the new registration's mail", d, err)
				}
			})
		}
	}
}
