// Command mailer runs Kinoteka's mailer service on its own, configured by environment
// variables (docs/operations.md). "mailer healthcheck" probes a running one.
package main

import (
	"kinoteka/internal/launch"
	"kinoteka/internal/mailer"
	"kinoteka/internal/telemetry"
)

func main() {
	launch.Main(launch.Service[mailer.Config]{Name: "mailer",
		// The mailer has no public API: its one listener is the operators'.
		OpsAddrEnv: "MAILER_ADDR", DefaultOpsAddr: "127.0.0.1:8083",
		Load: mailer.LoadConfig, Run: mailer.Run,
		Tracing: func(c *mailer.Config, t *telemetry.Tracing) { c.Tracing = t }})
}
