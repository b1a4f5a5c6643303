package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
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

	// The operators' listeners (probes, metrics, API docs), kept off the
	// public ones as in the separate binaries; the mailer's MailerAddr is
	// its only listener and already the operators'.
	AuthOpsAddr, FilmsOpsAddr, WebOpsAddr string
}

type setting struct {
	name, env, def, usage string
	dst                   *string
}

func (c *config) settings() []setting {
	return []setting{
		{"data", "KINOTEKA_DATA", "data", "folder for the SQLite databases, the broker's log, the keys and secrets; one process at a time", &c.DataDir},
		{"kafka-addr", "KINOTEKA_KAFKA_ADDR", "127.0.0.1:9092", "address of the in-process Kafka broker (loopback only)", &c.KafkaAddr},
		{"web-addr", "KINOTEKA_WEB_ADDR", "127.0.0.1:8080", "the site people open in a browser", &c.WebAddr},
		{"auth-addr", "KINOTEKA_AUTH_ADDR", "127.0.0.1:8081", "auth service HTTP address", &c.AuthAddr},
		{"films-addr", "KINOTEKA_FILMS_ADDR", "127.0.0.1:8082", "films service HTTP address", &c.FilmsAddr},
		{"mailer-addr", "KINOTEKA_MAILER_ADDR", "127.0.0.1:8083", "mailer health/metrics address", &c.MailerAddr},
		{"web-ops-addr", "KINOTEKA_WEB_OPS_ADDR", "127.0.0.1:9080", "web health/metrics address", &c.WebOpsAddr},
		{"auth-ops-addr", "KINOTEKA_AUTH_OPS_ADDR", "127.0.0.1:9081", "auth health/metrics/API docs address", &c.AuthOpsAddr},
		{"films-ops-addr", "KINOTEKA_FILMS_OPS_ADDR", "127.0.0.1:9082", "films health/metrics/API docs address", &c.FilmsOpsAddr},
		{"smtp-addr", "KINOTEKA_SMTP_ADDR", "127.0.0.1:1025", "mail catcher SMTP address (STARTTLS and AUTH required)", &c.SMTPAddr},
		{"mail-ui-addr", "KINOTEKA_MAIL_UI_ADDR", "127.0.0.1:8025", "mail catcher inbox page and JSON API", &c.MailUIAddr},
		{"log-level", "KINOTEKA_LOG_LEVEL", "warn", "debug, info, warn or error", &c.LogLevel},
		{"log-file", "KINOTEKA_LOG_FILE", "", "write JSON logs to this file instead of standard error", &c.LogFile},
		{"throttle", "KINOTEKA_THROTTLE", "memory", "auth's attempt limits: memory, database, or off for load tests", &c.Throttle},
	}
}

const partitionsEnv = "KINOTEKA_PARTITIONS"

// envOf returns the environment variable beside a flag name ("smtp-addr").
func envOf(flagName string) string {
	if flagName == "partitions" {
		return partitionsEnv
	}
	for _, s := range (&config{}).settings() {
		if s.name == flagName {
			return s.env
		}
	}
	return ""
}

// changeWith is the advice that ends a start-up error about a setting.
func changeWith(flagName string) string {
	return fmt.Sprintf("change it with -%s or %s", flagName, envOf(flagName))
}

// parseConfig reads the flags and variables. Every error is one line naming
// the flag or variable it came from; several bad values are reported at once.
// The flag package's own messages and usage text are held back so that a
// mistake is not buried under the whole -h page.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	var errs []string
	fs := flag.NewFlagSet("kinoteka", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, s := range c.settings() {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		fs.StringVar(s.dst, s.name, def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	c.Partitions = 3
	wholeNumber := func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("want a whole number")
		}
		c.Partitions = n
		return nil
	}
	if v := getenv(partitionsEnv); v != "" {
		if err := wholeNumber(v); err != nil {
			errs = append(errs, fmt.Sprintf("%s=%s: %v", partitionsEnv, v, err))
		}
	}
	fs.Func("partitions", fmt.Sprintf("`number` of partitions of the mail topic, default 3 (env %s)", partitionsEnv), wholeNumber)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, stderr)
			return c, err
		}
		return c, fmt.Errorf("%v (kinoteka -h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s (kinoteka -h lists the flags and tools)", strings.Join(fs.Args(), " "))
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// source names where a bad value came from, as the person typed it.
	source := func(flagName, value string) string {
		if set[flagName] {
			return fmt.Sprintf("-%s %q", flagName, value)
		}
		return fmt.Sprintf("%s=%s", envOf(flagName), value)
	}
	if c.DataDir == "" {
		errs = append(errs, source("data", c.DataDir)+": want a folder")
	}
	if c.Partitions < 1 {
		errs = append(errs, source("partitions", strconv.Itoa(c.Partitions))+": want at least 1")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, source("log-level", c.LogLevel)+": want debug, info, warn or error")
	}
	if !slices.Contains([]string{"memory", "database", "off"}, c.Throttle) {
		errs = append(errs, source("throttle", c.Throttle)+": want memory, database or off")
	}
	if len(errs) > 0 {
		return c, errors.New(strings.Join(errs, "; "))
	}
	return c, nil
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintln(w, "usage: kinoteka [flags]   — runs web, auth, films, mailer, a Kafka broker and a mail catcher in one process")
	fmt.Fprintln(w, "       kinoteka films|keys|admin|dlq|dev-secrets …   — the tools; add -h to each")
	fs.SetOutput(w)
	fs.PrintDefaults()
}
