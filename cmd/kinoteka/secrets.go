package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kinoteka/internal/catcher"
	"kinoteka/internal/tokens"
)

// devPasswords are the secrets dev-secrets makes as random hex, each in a
// file of its name, unless the variable beside it is set: then its value is
// written (again on every run, so changing the variable and running the job
// changes the secret everywhere it is read). The files are the one source:
// every service, PostgreSQL, Kafka and Mailpit read them.
var devPasswords = []struct{ file, env string }{
	{"code-secret", "AUTH_CODE_SECRET"},
	{"web-session-key", "WEB_SESSION_KEY"},
	{"postgres-password", "POSTGRES_PASSWORD"},
	{"auth-db-password", "AUTH_DB_PASSWORD"},
	{"films-db-password", "FILMS_DB_PASSWORD"},
	{"mailer-db-password", "MAILER_DB_PASSWORD"},
	{"smtp-password", "SMTP_PASSWORD"},
	{"kafka-admin-password", "KAFKA_ADMIN_PASSWORD"},
	{"kafka-auth-password", "KAFKA_AUTH_PASSWORD"},
	{"kafka-mailer-password", "KAFKA_MAILER_PASSWORD"},
	{"kafka-films-password", "KAFKA_FILMS_PASSWORD"},
}

// devDatabases get a pgpass file each (NAME.pgpass, for the passfile
// parameter of the service's database URL), derived from NAME-db-password.
var devDatabases = []string{"auth", "films", "mailer"}

// smtpUser is the SMTP account Mailpit accepts and the mailer logs in as.
const smtpUser = "kinoteka"

// smtpCertValidity is how long the development SMTP certificate lasts, and
// smtpCertRenew how close to its end a run replaces it (a certificate made
// by an older version lasted 30 days).
const (
	smtpCertValidity = 5 * 365 * 24 * time.Hour
	smtpCertRenew    = 30 * 24 * time.Hour
)

// runDevSecrets makes what a development deployment needs once and keeps it
// on later runs: auth's signing key, the HMAC secret for one-time codes, the
// key that seals web's session cookies, every password of the compose
// deployment (see devPasswords), and a self-signed TLS certificate for the
// SMTP server, which the mailer trusts as its CA. docker-compose runs it as
// an init container. With -group the folder and files are readable by that
// group (0750/0640): the containers that are not our services (PostgreSQL,
// Kafka, Mailpit) run as other users and join the group; without it they are
// the owner's alone (0700/0600).
func runDevSecrets(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kinoteka dev-secrets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "secrets", "folder to write into")
	smtpHosts := fs.String("smtp-host", "localhost", "comma-separated names of the SMTP server's certificate")
	group := fs.Int("group", -1, "a group id that may read the secrets (0750 folder, 0640 files); -1: the owner alone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	path := func(name string) string { return filepath.Join(*dir, name) }
	made := func(name string) bool {
		_, err := os.Stat(path(name))
		return err == nil
	}
	if _, err := tokens.LoadOrGenerateKey(path("signing-key.pem")); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	for _, p := range devPasswords {
		v := getenv(p.env)
		if v == "" && made(p.file) {
			continue
		}
		if v == "" {
			var raw [32]byte
			if _, err := rand.Read(raw[:]); err != nil {
				return err
			}
			v = hex.EncodeToString(raw[:])
		}
		if err := writeSecret(path(p.file), []byte(v)); err != nil {
			return err
		}
	}
	for _, db := range devDatabases {
		pw, err := os.ReadFile(path(db + "-db-password"))
		if err != nil {
			return err
		}
		// host:port:database:user:password; ':' and '\' escaped.
		esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(string(pw))
		if err := writeSecret(path(db+".pgpass"), fmt.Appendf(nil, "*:*:%s:%s:%s\n", db, db, esc)); err != nil {
			return err
		}
	}
	pw, err := os.ReadFile(path("smtp-password"))
	if err != nil {
		return err
	}
	// Mailpit's MP_SMTP_AUTH_FILE: one "user:password" line.
	if err := writeSecret(path("smtp-auth"), fmt.Appendf(nil, "%s:%s\n", smtpUser, pw)); err != nil {
		return err
	}
	if made("smtp.crt") != made("smtp.key") {
		return errors.New("only one of smtp.crt and smtp.key exists; remove it to make a new pair")
	}
	if renew, err := certEndsWithin(path("smtp.crt"), smtpCertRenew); err != nil {
		return err
	} else if renew {
		certPEM, keyPEM, err := catcher.SelfSignedPEMFor(smtpCertValidity, strings.Split(*smtpHosts, ",")...)
		if err != nil {
			return err
		}
		if err := writeSecret(path("smtp.key"), keyPEM); err != nil {
			return err
		}
		if err := writeSecret(path("smtp.crt"), certPEM); err != nil {
			return err
		}
	}
	if err := shareSecrets(*dir, *group); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "secrets ready in %s\n", *dir)
	return nil
}

// writeSecret replaces path's content, private to the owner until
// shareSecrets opens it to the group.
func writeSecret(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // an existing file keeps its mode through WriteFile
}

// certEndsWithin reports whether the PEM certificate at path is missing or
// expires within d.
func certEndsWithin(path string, d time.Duration) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return true, nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return true, nil
	}
	return time.Until(cert.NotAfter) < d, nil
}

// shareSecrets sets the folder and every file in it to the owner alone
// (group < 0) or to the owner and group, read-only for the group. Changing a
// file's group needs no privilege when the owner is in that group.
func shareSecrets(dir string, group int) error {
	dirMode, fileMode := os.FileMode(0o700), os.FileMode(0o600)
	if group >= 0 {
		dirMode, fileMode = 0o750, 0o640
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if group >= 0 {
			if err := os.Chown(p, -1, group); err != nil {
				return fmt.Errorf("give %s to group %d (is this process in it?): %w", p, group, err)
			}
		}
		if err := os.Chmod(p, fileMode); err != nil {
			return err
		}
	}
	if group >= 0 {
		if err := os.Chown(dir, -1, group); err != nil {
			return fmt.Errorf("give %s to group %d (is this process in it?): %w", dir, group, err)
		}
	}
	return os.Chmod(dir, dirMode)
}
