// Command web runs Kinoteka's site for people on its own, configured by
// environment variables (docs/operations.md). "web healthcheck" probes a
// running one.
package main

import (
	"kinoteka/internal/launch"
	"kinoteka/internal/telemetry"
	"kinoteka/internal/web"
)

func main() {
	launch.Main(launch.Service[web.Config]{Name: "web", AddrEnv: "WEB_ADDR", DefaultAddr: "127.0.0.1:8080",
		OpsAddrEnv: "WEB_OPS_ADDR", DefaultOpsAddr: "127.0.0.1:9080",
		Load: web.LoadConfig, Run: web.Run,
		Tracing: func(c *web.Config, t *telemetry.Tracing) { c.Tracing = t }})
}
