package launch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileEnv(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"PLAIN":        "direct",
		"BOTH":         "from env",
		"BOTH_FILE":    secret,
		"SECRET_FILE":  secret,
		"MISSING_FILE": filepath.Join(dir, "nope"),
	}
	env := &FileEnv{Getenv: func(k string) string { return vars[k] }}
	for name, want := range map[string]string{"PLAIN": "direct", "BOTH": "from env", "SECRET": "s3cret value", "UNSET": ""} {
		if got := env.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if env.Err() != nil {
		t.Fatalf("error before reading a missing file: %v", env.Err())
	}
	if got := env.Get("MISSING"); got != "" {
		t.Errorf("MISSING = %q", got)
	}
	if err := env.Err(); err == nil || !strings.Contains(err.Error(), "MISSING_FILE") {
		t.Fatalf("want an error naming MISSING_FILE, got %v", err)
	}
}
