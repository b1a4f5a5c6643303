// Package architecture holds, as tests, the rules of Kinoteka's import graph
// that docs/architecture.md states: services import no other service, shared
// packages import no service, the event contract imports no transport, and
// only tests import the test kits. It has no code of its own; `go test
// ./internal/architecture` reads the graph with `go list` and names, for each
// broken rule, the chain of imports and the files that make it.
package architecture
