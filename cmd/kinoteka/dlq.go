package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"kinoteka/internal/mailer"
)

const dlqUsage = `usage: kinoteka dlq list   [-brokers host:port,...] [-topic mail.requests]
       kinoteka dlq replay [-brokers host:port,...] [-topic mail.requests] [-event-id ID,...] [-group NAME] [-dry-run]

list    shows the dead letters of the mail topic (never their content: it holds codes).
replay  puts dead letters back on the mail topic for the mailer to try again: by
        default every one not replayed before (the group remembers), or with
        -event-id only those events. The mailer's delivery log keeps an event
        that was sent meanwhile from being mailed twice.

Kafka security comes from the mailer's variables (KAFKA_TLS, KAFKA_SASL_*).
`

// runDLQ is the "kinoteka dlq" command: list or replay the mail topic's
// dead letters.
func runDLQ(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprint(stderr, dlqUsage)
		return errors.New("dlq: say list or replay")
	}
	sub := args[0]
	cfg, err := mailer.LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("dlq: %w", err)
	}
	brokers := getenv("KAFKA_BROKERS")
	if brokers == "" {
		brokers = getenv("KINOTEKA_KAFKA_ADDR") // the embedded broker's address
	}
	if brokers == "" {
		brokers = "127.0.0.1:9092"
	}
	fs := flag.NewFlagSet("kinoteka dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, dlqUsage) }
	fs.StringVar(&brokers, "brokers", brokers, "Kafka brokers, comma separated (env KAFKA_BROKERS or KINOTEKA_KAFKA_ADDR)")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "the mail topic (env MAIL_TOPIC); its dead letters are in <topic>.dlq")
	var (
		eventIDs string
		opts     mailer.ReplayOptions
	)
	if sub == "replay" {
		fs.StringVar(&eventIDs, "event-id", "", "replay only these events (comma separated), wherever they are")
		fs.StringVar(&opts.Group, "group", mailer.DefaultReplayGroup, "consumer group remembering how far replays got")
		fs.BoolVar(&opts.DryRun, "dry-run", false, "show what would be replayed, change nothing")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dlq: unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg.Kafka.Brokers = nil
	for b := range strings.SplitSeq(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Kafka.Brokers = append(cfg.Kafka.Brokers, b)
		}
	}
	cfg.Kafka.ClientID = "kinoteka-dlq"
	for id := range strings.SplitSeq(eventIDs, ",") {
		if id = strings.TrimSpace(id); id != "" {
			opts.EventIDs = append(opts.EventIDs, id)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	var letters []mailer.DeadLetter
	if sub == "list" {
		letters, err = mailer.ListDeadLetters(ctx, cfg.Kafka, cfg.Topic)
	} else {
		letters, err = mailer.ReplayDeadLetters(ctx, cfg.Kafka, cfg.Topic, opts)
	}
	if len(letters) > 0 {
		printDeadLetters(stdout, letters)
	}
	switch {
	case err != nil:
		return fmt.Errorf("dlq %s: %w", sub, err)
	case sub == "list":
		fmt.Fprintf(stdout, "%d dead letters in %s.dlq\n", len(letters), cfg.Topic)
	case opts.DryRun:
		fmt.Fprintf(stdout, "%d dead letters would be replayed to %s (dry run)\n", len(letters), cfg.Topic)
	default:
		fmt.Fprintf(stdout, "%d dead letters replayed to %s\n", len(letters), cfg.Topic)
	}
	return nil
}

func printDeadLetters(w io.Writer, letters []mailer.DeadLetter) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DLQ\tEVENT\tTYPE\tKIND\tATTEMPTS\tFROM\tAT\tERROR")
	for _, d := range letters {
		at := ""
		if !d.At.IsZero() {
			at = d.At.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d/%d\t%s\t%s\t%s\t%d\t%s/%d/%d\t%s\t%s\n", d.Partition, d.Offset, orDash(d.EventID), orDash(d.EventType),
			d.Kind, d.Attempts, d.OriginalTopic, d.OriginalPartition, d.OriginalOffset, at, d.Error)
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
