package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"kinoteka/internal/catcher"
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
	if err := run(context.Background(), args, noEnv, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
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
	if err := run(context.Background(), args, noEnv, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for name, b := range read() {
		if !bytes.Equal(b, first[name]) {
			t.Errorf("%s changed on the second run", name)
		}
	}
}

// Every secret of the compose deployment comes from the folder: a variable
// set for the job replaces its file (and what is derived from it), and the
// rest are kept. The database passwords reach the services as pgpass files
// and Mailpit's as its auth file, so both sides always agree.
func TestDevSecretsAreTheOneSource(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	args := []string{"dev-secrets", "-dir", dir, "-smtp-host", "mailpit", "-group", strconv.Itoa(os.Getgid())}
	if err := run(context.Background(), args, noEnv, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	file := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, p := range devPasswords {
		if len(file(p.file)) < 32 {
			t.Errorf("%s: %q is too short", p.file, file(p.file))
		}
	}
	if got, want := file("auth.pgpass"), "*:*:auth:auth:"+file("auth-db-password")+"\n"; got != want {
		t.Errorf("auth.pgpass = %q, want %q", got, want)
	}
	kafkaFilms := file("kafka-films-password")

	env := map[string]string{"AUTH_DB_PASSWORD": `pa:ss\word`, "SMTP_PASSWORD": "smtp-from-the-host", "AUTH_CODE_SECRET": "a code secret set on the host, long enough"}
	if err := run(context.Background(), args, func(k string) string { return env[k] }, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	switch {
	case file("auth-db-password") != `pa:ss\word` || file("auth.pgpass") != "*:*:auth:auth:pa\\:ss\\\\word\n":
		t.Errorf("override not applied: %q, %q", file("auth-db-password"), file("auth.pgpass"))
	case file("smtp-password") != "smtp-from-the-host" || file("smtp-auth") != "kinoteka:smtp-from-the-host\n":
		t.Errorf("smtp override not applied: %q", file("smtp-auth"))
	case file("code-secret") != env["AUTH_CODE_SECRET"]:
		t.Errorf("code secret override not applied")
	case file("kafka-films-password") != kafkaFilms:
		t.Errorf("a secret without a variable changed")
	}

	// Readable by the group, by no one else; the folder too.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o640 {
			t.Errorf("%s is %#o, want 0640", e.Name(), info.Mode().Perm())
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o750 {
		t.Errorf("folder is %#o, want 0750", info.Mode().Perm())
	}
}

// The SMTP certificate lasts years, and one close to its end (as the 30-day
// certificates of older versions) is replaced.
func TestDevSecretsRenewsTheSMTPCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	oldCert, oldKey, err := catcher.SelfSignedPEM("mailpit")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "smtp.crt"), oldCert, 0o600)
	os.WriteFile(filepath.Join(dir, "smtp.key"), oldKey, 0o600)
	if err := run(context.Background(), []string{"dev-secrets", "-dir", dir, "-smtp-host", "mailpit"}, noEnv, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "smtp.crt"))
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("smtp.crt is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(cert.NotAfter); left < 365*24*time.Hour {
		t.Errorf("the certificate has %s left, want more than a year", left.Round(time.Hour))
	}
	if err := cert.VerifyHostname("mailpit"); err != nil {
		t.Error(err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "smtp.key"))
	if _, err := tls.X509KeyPair(b, key); err != nil {
		t.Errorf("the new pair does not match: %v", err)
	}
}
