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
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) { // -h printed the usage: not a failure
		fmt.Fprintln(os.Stderr, "kinoteka:", err)
		os.Exit(1)
	}
}
