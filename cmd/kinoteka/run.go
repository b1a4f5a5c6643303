package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/template"

	"kinoteka/internal/launch"
)

// command is one "kinoteka NAME …" tool beside the embedded mode.
type command func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

var commands = map[string]command{
	"dev-secrets": runDevSecrets,
	"keys":        runKeys,
	"admin":       runAdmin,
	"films":       runFilms,
	"dlq":         runDLQ,
}

// run is the embedded mode — parse the configuration, start everything, print
// the banner once the services answer, and stop cleanly when ctx ends — or,
// when the first argument names one, a tool.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if cmd, ok := commands[args[0]]; ok {
			return cmd(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logOut := stderr
	if cfg.LogFile != "" {
		f, err := openLogFile(cfg.LogFile)
		if err != nil {
			return err
		}
		defer f.Close()
		logOut = f
	}
	log, flush := launch.BufferedLogger(logOut, cfg.LogLevel)
	defer flush()
	tracing, stopTracing, err := tracingFromEnv(ctx, getenv)
	if err != nil {
		return err
	}
	defer stopTracing()
	s, err := newSystem(cfg, log)
	if err != nil {
		return err
	}
	s.tracing = tracing
	return s.run(ctx, func() { printBanner(stdout, s) })
}

var banner = template.Must(template.New("banner").Parse(`
Kinoteka is running (embedded mode; data in {{.Data}}). Ctrl-C stops it.

  Open {{.Web}} in your browser.

  auth     {{.Auth}}    JWK set: {{.Auth}}/.well-known/jwks.json
  films    {{.Films}}
  ops      auth: {{.AuthOps}}  films: {{.FilmsOps}}  mailer: {{.Mailer}}  web: {{.WebOps}}
           /healthz, /readyz, /metrics and the API docs at /docs: for operators, never to publish
  kafka    {{.Kafka}}     (in-process broker; topics mail.requests, users and their .dlq)
  mail     smtp://{{.SMTP}}  inbox: {{.MailUI}}
           SMTP requires STARTTLS (certificate {{.CatcherCert}}) and AUTH: user {{.CatcherUser}}, password in {{.CatcherPassword}}

Try it (copy and paste):

  curl -i -H 'Content-Type: application/json' -d '{"email":"me@example.com","password":"correct horse battery"}' {{.Auth}}/v1/auth/register
  CODE=$(curl -s {{.MailUI}}/view/latest.txt | grep -oE '[0-9]{6}' | head -1); echo $CODE   # or read it at {{.MailUI}}
  TOKEN=$(curl -s -H 'Content-Type: application/json' -d '{"email":"me@example.com","code":"'$CODE'","password":"correct horse battery"}' {{.Auth}}/v1/auth/verify | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  curl -s -H "Authorization: Bearer $TOKEN" {{.Auth}}/v1/auth/me
  curl -s '{{.Films}}/v1/films?limit=3'
  curl -i -H "Authorization: Bearer $TOKEN" -X PUT {{.Films}}/v1/me/favorites/1
  curl -s -H "Authorization: Bearer $TOKEN" {{.Films}}/v1/me/favorites
`))

func printBanner(w io.Writer, s *system) {
	data, _ := filepath.Abs(s.cfg.DataDir)
	_ = banner.Execute(w, map[string]string{
		"Data":   data,
		"Web":    s.webURL(),
		"Auth":   s.authURL(),
		"Films":  s.filmsURL(),
		"Mailer": s.mailerOpsURL(),
		"Kafka":  s.kafkaAddr(),
		"SMTP":   s.smtpLn.Addr().String(),
		"MailUI": s.mailUIURL(),

		"AuthOps":  s.authOpsURL(),
		"FilmsOps": s.filmsOpsURL(),
		"WebOps":   s.webOpsURL(),

		"CatcherCert":     filepath.Join(data, catcherCertFile),
		"CatcherUser":     catcherUser,
		"CatcherPassword": filepath.Join(data, catcherPasswordFile),
	})
	fmt.Fprintln(w)
}
