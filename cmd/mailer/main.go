// Command mailer runs Kinoteka's mailer service on its own, configured by environment
// variables (see docs/operations.md). "mailer healthcheck" probes a running one.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"kinoteka/internal/launch"
	"kinoteka/internal/mailer"
)

var service = launch.Service[mailer.Config]{Name: "mailer", AddrEnv: "MAILER_ADDR", DefaultAddr: "127.0.0.1:8083", Load: mailer.LoadConfig, Run: mailer.Run}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := launch.Run(ctx, service, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
