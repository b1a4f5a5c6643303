package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"kinoteka/internal/catcher"
	"kinoteka/internal/tokens"
)

// runDevSecrets makes what a development deployment needs once and keeps it
// on later runs: auth's signing key, the HMAC secret for one-time codes, the
// key that seals web's session cookies, and
// a self-signed TLS certificate for the SMTP server, which the mailer trusts
// as its CA. docker-compose runs it as an init container.
func runDevSecrets(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kinoteka dev-secrets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "secrets", "folder to write into")
	smtpHosts := fs.String("smtp-host", "localhost", "comma-separated names of the SMTP server's certificate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	made := func(name string) bool {
		_, err := os.Stat(filepath.Join(*dir, name))
		return err == nil
	}
	keyPath := filepath.Join(*dir, "signing-key.pem")
	if _, err := tokens.LoadOrGenerateKey(keyPath); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if !made("code-secret") {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*dir, "code-secret"), []byte(hex.EncodeToString(raw[:])), 0o600); err != nil {
			return err
		}
	}
	if _, err := webSessionKey(*dir); err != nil {
		return fmt.Errorf("web session key: %w", err)
	}
	if made("smtp.crt") != made("smtp.key") {
		return errors.New("only one of smtp.crt and smtp.key exists; remove it to make a new pair")
	}
	if !made("smtp.crt") {
		certPEM, keyPEM, err := catcher.SelfSignedPEM(strings.Split(*smtpHosts, ",")...)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*dir, "smtp.key"), keyPEM, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*dir, "smtp.crt"), certPEM, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "secrets ready in %s: signing-key.pem, code-secret, web-session-key, smtp.crt, smtp.key\n", *dir)
	return nil
}
