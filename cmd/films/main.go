// Command films runs Kinoteka's films service on its own, configured by environment
// variables (see docs/operations.md). "films healthcheck" probes a running one.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"kinoteka/internal/films"
	"kinoteka/internal/launch"
)

var service = launch.Service[films.Config]{Name: "films", AddrEnv: "FILMS_ADDR", DefaultAddr: "127.0.0.1:8082", Load: films.LoadConfig, Run: films.Run}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := launch.Run(ctx, service, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
