// Command kinoteka runs the whole system in one process — auth, films and
// mailer, each on its own port and still speaking HTTP, Kafka and SMTP to the
// others, with an in-process Kafka-protocol broker, SQLite files and a mail
// catcher — so that `go run ./cmd/kinoteka` is all a newcomer needs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) { // -h printed the usage: not a failure
		// One line, whatever joined errors it carries: a start-up error is
		// read by a person, and grepped for by scripts.
		fmt.Fprintln(os.Stderr, "kinoteka:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}
