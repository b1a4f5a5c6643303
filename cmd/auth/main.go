// Command auth runs Kinoteka's auth service on its own, configured by environment
// variables (see docs/operations.md). "auth healthcheck" probes a running one.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"kinoteka/internal/auth"
	"kinoteka/internal/launch"
)

var service = launch.Service[auth.Config]{Name: "auth", AddrEnv: "AUTH_ADDR", DefaultAddr: "127.0.0.1:8081", Load: auth.LoadConfig, Run: auth.Run}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := launch.Run(ctx, service, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
