//go:build unix

package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The data folder holds password hashes, the signing key, the code secret
// and the broker's log with live codes: whatever the umask and however the
// folder came to exist, everything in it is the owner's alone after a run —
// the folder and its subfolders 0700, every file without group or other
// bits. The folder is made first with 0755 (as mkdir does), and holds a file
// from an older version that was written 0644.
func TestDataFolderIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "code-secret"), []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, done := startEmbedded(t, ctx, freeArgs(t, data))
	env.SignUp(t, "private@example.com", "correct horse battery")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var files int
	kafkaFiles := 0
	err := filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(data, path)
		switch {
		case d.IsDir() && info.Mode().Perm() != 0o700:
			t.Errorf("folder %s is %#o, want 0700", rel, info.Mode().Perm())
		case !d.IsDir() && info.Mode().Perm()&0o077 != 0:
			t.Errorf("file %s is %#o, want no group or other bits", rel, info.Mode().Perm())
		}
		if !d.IsDir() {
			files++
			if strings.HasPrefix(rel, "kafka"+string(filepath.Separator)) {
				kafkaFiles++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The check must have seen the databases and the broker's log.
	for _, f := range []string{"auth.db", "films.db", "mailer.db", "auth-signing-key.pem"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Errorf("expected %s: %v", f, err)
		}
	}
	if kafkaFiles == 0 {
		t.Errorf("no file under kafka/ among %d files: the broker's log was not checked", files)
	}
}
