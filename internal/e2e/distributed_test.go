package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"kinoteka/internal/catcher"
	"kinoteka/internal/events"
	"kinoteka/internal/sqldb/sqldbtest"
)

// EnvMailpit names the variable holding the path of a Mailpit binary
// (go install github.com/axllent/mailpit@v1.33.1); .ci/run sets it.
const EnvMailpit = "KINOTEKA_TEST_MAILPIT"

// TestDistributed runs the three services as separate OS processes on
// loopback: auth and films on PostgreSQL, a Kafka-protocol broker, and the
// mailer sending to Mailpit with STARTTLS required and AUTH, trusting
// Mailpit's self-signed certificate through SMTP_CA_FILE.
func TestDistributed(t *testing.T) {
	mailpit := os.Getenv(EnvMailpit)
	if mailpit == "" || os.Getenv(sqldbtest.EnvPostgres) == "" {
		t.Skipf("needs a PostgreSQL server (%s) and Mailpit (%s); .ci/run provides both", sqldbtest.EnvPostgres, EnvMailpit)
	}
	if _, err := exec.LookPath(mailpit); err != nil {
		t.Fatalf("%s=%s: %v", EnvMailpit, mailpit, err)
	}
	bins := Build(t, "../..", "./cmd/auth", "./cmd/films", "./cmd/mailer")
	dir := t.TempDir()

	// The broker: a real Kafka-protocol server on loopback, outside the services.
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, events.Topic, events.DLQ(events.Topic)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	brokers := strings.Join(broker.ListenAddrs(), ",")

	// Mailpit with STARTTLS required and a password file.
	certPEM, keyPEM, err := catcher.SelfSignedPEM("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, authFile := filepath.Join(dir, "smtp.crt"), filepath.Join(dir, "smtp.key"), filepath.Join(dir, "smtp.htpasswd")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	writeFile(t, authFile, []byte("kinoteka:s3cret-pass\n"))
	smtpAddr, mailAPI := FreeAddr(t), FreeAddr(t)
	mp := Start(t, "mailpit", mailpit, nil,
		"--smtp", smtpAddr, "--listen", mailAPI, "--smtp-disable-rdns", "--disable-version-check",
		"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-starttls",
		"--smtp-auth-file", authFile, "--database", filepath.Join(dir, "mailpit.db"))
	WaitHTTP(t, mp, "http://"+mailAPI+"/readyz", 30*time.Second)

	authAddr, filmsAddr, mailerAddr := FreeAddr(t), FreeAddr(t), FreeAddr(t)
	authURL := "http://" + authAddr
	signingKey := filepath.Join(dir, "auth-key.pem")
	common := []string{"KAFKA_BROKERS=" + brokers, "LOG_LEVEL=info", "MAIL_TOPIC=" + events.Topic}
	auth := Start(t, "auth", bins["./cmd/auth"], append(common,
		"AUTH_ADDR="+authAddr,
		"AUTH_DATABASE_URL="+sqldbtest.FreshPostgresURL(t),
		"AUTH_ISSUER="+authURL,
		"AUTH_SIGNING_KEY_FILE="+signingKey,
		"AUTH_GENERATE_KEY=true",
		"AUTH_CODE_SECRET=distributed-test-secret-of-at-least-32-bytes",
	))
	films := Start(t, "films", bins["./cmd/films"], append(common,
		"FILMS_ADDR="+filmsAddr,
		"FILMS_DATABASE_URL="+sqldbtest.FreshPostgresURL(t),
		"FILMS_JWKS_URL="+authURL+"/.well-known/jwks.json",
		"FILMS_ISSUER="+authURL,
	))
	mailer := Start(t, "mailer", bins["./cmd/mailer"], append(common,
		"MAILER_ADDR="+mailerAddr,
		"SMTP_ADDR="+smtpAddr,
		"SMTP_SECURITY=starttls",
		"SMTP_SERVER_NAME=localhost",
		"SMTP_CA_FILE="+certFile,
		"SMTP_USERNAME=kinoteka",
		"SMTP_PASSWORD=s3cret-pass",
	))
	WaitHTTP(t, auth, authURL+"/readyz", 60*time.Second)
	WaitHTTP(t, films, "http://"+filmsAddr+"/readyz", 60*time.Second)
	WaitHTTP(t, mailer, "http://"+mailerAddr+"/readyz", 60*time.Second)

	env := Env{AuthURL: authURL, FilmsURL: "http://" + filmsAddr, MailURL: "http://" + mailAPI, KeyFile: signingKey}
	env.Walkthrough(t)

	// Each binary stops cleanly on SIGTERM.
	for _, p := range []*Process{mailer, films, auth} {
		p.Stop()
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM", p.Name, code)
		}
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
