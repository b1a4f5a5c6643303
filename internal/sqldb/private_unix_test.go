//go:build unix

package sqldb

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A SQLite database and its journals are the owner's alone, with the usual
// umask, whether the file is new or was left 0644 by an older version.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.db")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "new.db"), existing} {
		db, err := Open(context.Background(), "sqlite:"+path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('secret')"); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			info, err := os.Stat(p)
			if err != nil {
				t.Fatal(err) // WAL mode: both journals exist while the database is open
			}
			if mode := info.Mode().Perm(); mode&0o077 != 0 {
				t.Errorf("%s is %#o, want no group or other bits", filepath.Base(p), mode)
			}
		}
		db.Close()
	}
}
