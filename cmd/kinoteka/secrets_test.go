package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"kinoteka/internal/tokens"
)

func TestDevSecretsMakesOnceAndKeeps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	read := func() map[string][]byte {
		out := map[string][]byte{}
		for _, name := range []string{"signing-key.pem", "code-secret", "web-session-key", "smtp.crt", "smtp.key"} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			out[name] = b
		}
		return out
	}
	args := []string{"dev-secrets", "-dir", dir, "-smtp-host", "mailpit,localhost"}
	if err := run(context.Background(), args, os.Getenv, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	first := read()
	if _, err := tokens.LoadKey(filepath.Join(dir, "signing-key.pem")); err != nil {
		t.Fatal(err)
	}
	if len(first["code-secret"]) < 32 {
		t.Fatalf("code secret of %d bytes", len(first["code-secret"]))
	}
	if _, err := tls.X509KeyPair(first["smtp.crt"], first["smtp.key"]); err != nil {
		t.Fatalf("smtp pair: %v", err)
	}
	if err := run(context.Background(), args, os.Getenv, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for name, b := range read() {
		if !bytes.Equal(b, first[name]) {
			t.Errorf("%s changed on the second run", name)
		}
	}
}
