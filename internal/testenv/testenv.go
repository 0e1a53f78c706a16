// Package testenv decides what a test does when something it needs from
// the machine is missing: a tool `make test` installs (Jaeger, Temporal,
// Chromium, ONNX Runtime, python3, Debian's datasets), or a facility of
// the host (mounting a file system, /proc).
//
// Under `make test` and in CI nothing may be missing: every tool the tests
// need is installed by the Makefile's own targets before the tests run, so
// a missing one is a broken setup and the test fails. Only a developer's
// plain `go test`, outside both, may skip such a test, and it says how to
// get what is missing. This is the one place that rule is written.
package testenv

import (
	"os"
	"testing"
)

// StrictVar is the variable `make test` sets: with it (or with CI set) a
// test whose requirement is missing fails instead of skipping.
const StrictVar = "SWEETSPOT_TEST_STRICT"

// Strict reports whether missing requirements are failures here.
func Strict() bool {
	return os.Getenv(StrictVar) != "" || os.Getenv("CI") != ""
}

// Missing ends the test because something it needs is missing: it fails
// under `make test` and in CI, and skips elsewhere. The message should say
// what is missing and how to get it (the make target that installs it).
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf("missing under make test or CI, where everything the tests need is installed first: "+format, args...)
	}
	t.Skipf(format, args...)
}
