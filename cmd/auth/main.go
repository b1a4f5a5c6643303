// Command auth runs Kinoteka's auth service on its own, configured by environment
// variables (docs/operations.md). "auth healthcheck" probes a running one.
package main

import (
	"kinoteka/internal/auth"
	"kinoteka/internal/launch"
	"kinoteka/internal/telemetry"
)

func main() {
	launch.Main(launch.Service[auth.Config]{Name: "auth", AddrEnv: "AUTH_ADDR", DefaultAddr: "127.0.0.1:8081",
		OpsAddrEnv: "AUTH_OPS_ADDR", DefaultOpsAddr: "127.0.0.1:9081",
		Load: auth.LoadConfig, Run: auth.Run,
		Tracing: func(c *auth.Config, t *telemetry.Tracing) { c.Tracing = t }})
}
