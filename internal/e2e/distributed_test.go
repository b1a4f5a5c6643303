package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"kinoteka/internal/apidocs/apidocstest"
	"kinoteka/internal/catcher"
	"kinoteka/internal/events"
	"kinoteka/internal/sqldb/sqldbtest"
	"kinoteka/internal/testkit"
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
	bins := testkit.Build(t, "../..", "./cmd/auth", "./cmd/films", "./cmd/mailer")
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
	smtpAddr, mailAPI := testkit.FreeAddr(t), testkit.FreeAddr(t)
	mp := testkit.Start(t, "mailpit", mailpit, nil,
		"--smtp", smtpAddr, "--listen", mailAPI, "--smtp-disable-rdns", "--disable-version-check",
		"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-starttls",
		"--smtp-auth-file", authFile, "--database", filepath.Join(dir, "mailpit.db"),
		// Keep every message: Mailpit keeps only the newest 500 by default.
		"--max", "0")
	testkit.WaitHTTP(t, mp, "http://"+mailAPI+"/readyz", 30*time.Second)

	authAddr, authOpsAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	authURL, authOpsURL := "http://"+authAddr, "http://"+authOpsAddr
	signingKey := filepath.Join(dir, "auth-key.pem")
	common := []string{"KAFKA_BROKERS=" + brokers, "LOG_LEVEL=info", "MAIL_TOPIC=" + events.Topic}
	auth := testkit.Start(t, "auth", bins["./cmd/auth"], append(common,
		"AUTH_ADDR="+authAddr,
		"AUTH_OPS_ADDR="+authOpsAddr,
		"AUTH_DATABASE_URL="+sqldbtest.FreshPostgresURL(t),
		"AUTH_ISSUER="+authURL,
		"AUTH_SIGNING_KEY_FILE="+signingKey,
		"AUTH_GENERATE_KEY=true",
		"AUTH_CODE_SECRET=distributed-test-secret-of-at-least-32-bytes",
	))
	testkit.WaitHTTP(t, auth, authOpsURL+"/readyz", 60*time.Second)

	// Two films replicas on one database, two mailers in one consumer group:
	// the services are stateless, so any replica answers any request.
	filmsDB := sqldbtest.FreshPostgresURL(t)
	var filmsURLs, filmsOpsURLs []string
	var procs []*testkit.Process
	for i := range 2 {
		addr, opsAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
		p := testkit.Start(t, fmt.Sprintf("films-%d", i+1), bins["./cmd/films"], append(common,
			"FILMS_ADDR="+addr,
			"FILMS_OPS_ADDR="+opsAddr,
			"FILMS_DATABASE_URL="+filmsDB,
			"FILMS_JWKS_URL="+authURL+"/.well-known/jwks.json",
			"FILMS_ISSUER="+authURL,
		))
		testkit.WaitHTTP(t, p, "http://"+opsAddr+"/readyz", 60*time.Second)
		filmsURLs, filmsOpsURLs = append(filmsURLs, "http://"+addr), append(filmsOpsURLs, "http://"+opsAddr)
		procs = append(procs, p)
	}
	mailerDB := sqldbtest.FreshPostgresURL(t) // replicas share one delivery log
	for i := range 2 {
		addr := testkit.FreeAddr(t)
		p := testkit.Start(t, fmt.Sprintf("mailer-%d", i+1), bins["./cmd/mailer"], append(common,
			"MAILER_ADDR="+addr,
			"MAILER_DATABASE_URL="+mailerDB,
			"SMTP_ADDR="+smtpAddr,
			"SMTP_SECURITY=starttls",
			"SMTP_SERVER_NAME=localhost",
			"SMTP_CA_FILE="+certFile,
			"SMTP_USERNAME=kinoteka",
			"SMTP_PASSWORD=s3cret-pass",
		))
		testkit.WaitHTTP(t, p, "http://"+addr+"/readyz", 60*time.Second)
		procs = append(procs, p)
	}

	// Every exchange is recorded and checked against the services' OpenAPI
	// documents: the contract holds on PostgreSQL and across processes too.
	rec := &apidocstest.Recorder{}
	env := Env{AuthURL: authURL, FilmsURL: filmsURLs[0], MailURL: "http://" + mailAPI, KeyFile: signingKey,
		Client: &http.Client{Timeout: 15 * time.Second, Transport: rec}}
	env.Walkthrough(t)

	// Several sign-ups spread over the partitions, so both mailers send; a
	// favourite written through one films replica is read through the other.
	for i := range 6 {
		tk := env.SignUp(t, fmt.Sprintf("replica-%d-%d@example.com", i, time.Now().UnixNano()), "correct horse battery")
		if r := env.Do(t, http.MethodPut, filmsURLs[0]+"/v1/me/favorites/7", nil, tk.AccessToken); r.Status >= 300 {
			t.Fatalf("favourite through films-1: %d %s", r.Status, r.Body)
		}
		r := env.Do(t, http.MethodGet, filmsURLs[1]+"/v1/me/favorites", nil, tk.AccessToken)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"id":7`) {
			t.Fatalf("favourites through films-2: %d %s", r.Status, r.Body)
		}
	}

	if _, checked := apidocstest.CheckServices(t, rec, map[string]apidocstest.Service{
		"auth":  {API: authURL, Ops: authOpsURL},
		"films": {API: filmsURLs[0], Ops: filmsOpsURLs[0]},
	}); checked < 20 {
		t.Errorf("only %d exchanges were checked against the OpenAPI documents", checked)
	}
	// The binaries keep metrics and probes off the API's listener.
	for _, u := range []string{authURL + "/metrics", authURL + "/readyz", filmsURLs[0] + "/metrics", filmsURLs[0] + "/docs"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404 (operators' listener only)", u, resp.StatusCode)
		}
	}

	// Each binary stops cleanly on SIGTERM.
	for _, p := range append(procs, auth) {
		p.Stop()
		if code := p.ExitCode(); code != 0 {
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
