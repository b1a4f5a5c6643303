package main

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"

	"kinoteka/internal/catcher"
)

// The catcher in the embedded mode asks what a production SMTP server asks —
// STARTTLS first, then AUTH — so the mailer's TLS and AUTH code runs in every
// embedded start and every test of it, not only against Mailpit.
const (
	catcherUser         = "kinoteka"
	catcherCertFile     = "catcher.crt"      // the catcher's certificate, which the mailer trusts
	catcherPasswordFile = "catcher-password" // catcherUser's password, made once per data folder
)

// catcherSecrets is what the catcher and the mailer share.
type catcherSecrets struct {
	tls      *tls.Config
	certFile string // PEM, for the mailer's CAFile and for anyone else's client
	password string
}

// newCatcherSecrets makes a fresh self-signed certificate on every start
// (its key never touches the disk, and no old certificate can expire under
// a long-lived data folder) and keeps the password in the data folder, so a
// client set up once by hand keeps working across restarts.
func newCatcherSecrets(dir string) (catcherSecrets, error) {
	tlsCfg, certPEM, err := catcher.SelfSignedTLS("localhost", "127.0.0.1", "::1")
	if err != nil {
		return catcherSecrets{}, err
	}
	certFile := filepath.Join(dir, catcherCertFile)
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return catcherSecrets{}, err
	}
	password, err := loadOrMakeSecret(filepath.Join(dir, catcherPasswordFile))
	if err != nil {
		return catcherSecrets{}, err
	}
	return catcherSecrets{tls: tlsCfg, certFile: certFile, password: string(password)}, nil
}

// loadOrMakeSecret reads a secret from path, or writes a new random one
// (64 hex digits, readable by the owner only) when there is none.
func loadOrMakeSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 64 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	b = []byte(hex.EncodeToString(raw[:]))
	return b, os.WriteFile(path, b, 0o600)
}
