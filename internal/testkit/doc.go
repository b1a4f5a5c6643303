// Package testkit is what Kinoteka's tests share beyond one package: a clock
// the test moves by hand, an output buffer several goroutines may write, and
// child processes with their output kept for a failing test.
//
// Only tests import it, and it imports no Kinoteka package, so the tests of
// any package — tokens, outbox, a service — may use it without an import
// cycle (internal/architecture holds both rules).
package testkit
