package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// config is the embedded mode's configuration: where each part listens and
// where the data lives. Every field has a flag and an environment variable;
// a flag wins over the variable, the variable over the default.
type config struct {
	DataDir    string
	KafkaAddr  string
	AuthAddr   string
	FilmsAddr  string
	MailerAddr string
	SMTPAddr   string
	MailUIAddr string
	WebAddr    string
	Partitions int
	LogLevel   string
	LogFile    string
	Throttle   string
}

type setting struct {
	name, env, def, usage string
	dst                   *string
}

func (c *config) settings() []setting {
	return []setting{
		{"data", "KINOTEKA_DATA", "data", "folder for the SQLite databases, the signing key and the code secret", &c.DataDir},
		{"kafka-addr", "KINOTEKA_KAFKA_ADDR", "127.0.0.1:9092", "address of the in-process Kafka broker", &c.KafkaAddr},
		{"web-addr", "KINOTEKA_WEB_ADDR", "127.0.0.1:8080", "the site people open in a browser", &c.WebAddr},
		{"auth-addr", "KINOTEKA_AUTH_ADDR", "127.0.0.1:8081", "auth service HTTP address", &c.AuthAddr},
		{"films-addr", "KINOTEKA_FILMS_ADDR", "127.0.0.1:8082", "films service HTTP address", &c.FilmsAddr},
		{"mailer-addr", "KINOTEKA_MAILER_ADDR", "127.0.0.1:8083", "mailer health/metrics address", &c.MailerAddr},
		{"smtp-addr", "KINOTEKA_SMTP_ADDR", "127.0.0.1:1025", "mail catcher SMTP address", &c.SMTPAddr},
		{"mail-ui-addr", "KINOTEKA_MAIL_UI_ADDR", "127.0.0.1:8025", "mail catcher inbox page and JSON API", &c.MailUIAddr},
		{"log-level", "KINOTEKA_LOG_LEVEL", "warn", "debug, info, warn or error", &c.LogLevel},
		{"log-file", "KINOTEKA_LOG_FILE", "", "write JSON logs to this file instead of standard error", &c.LogFile},
		{"throttle", "KINOTEKA_THROTTLE", "memory", "auth's attempt limits: memory, or off for load tests", &c.Throttle},
	}
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("kinoteka", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, s := range c.settings() {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		fs.StringVar(s.dst, s.name, def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	fs.IntVar(&c.Partitions, "partitions", 3, "partitions of the mail topic")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kinoteka [flags]   — runs web, auth, films, mailer, a Kafka broker and a mail catcher in one process")
		fmt.Fprintln(stderr, "       kinoteka films|keys|admin|dlq|dev-secrets …   — the tools; add -h to each")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.Partitions < 1 {
		return c, fmt.Errorf("-partitions must be at least 1")
	}
	return c, nil
}
