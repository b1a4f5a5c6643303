// Command films runs Kinoteka's films service on its own, configured by environment
// variables (docs/operations.md). "films healthcheck" probes a running one.
package main

import (
	"kinoteka/internal/films"
	"kinoteka/internal/launch"
	"kinoteka/internal/telemetry"
)

func main() {
	launch.Main(launch.Service[films.Config]{Name: "films", AddrEnv: "FILMS_ADDR", DefaultAddr: "127.0.0.1:8082",
		OpsAddrEnv: "FILMS_OPS_ADDR", DefaultOpsAddr: "127.0.0.1:9082",
		Load: films.LoadConfig, Run: films.Run,
		Tracing: func(c *films.Config, t *telemetry.Tracing) { c.Tracing = t }})
}
