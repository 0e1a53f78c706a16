package telemetry

import (
	"strings"
	"testing"
)

// An OTLP endpoint is host:port or an http(s) URL; anything else is said
// before a run, naming what is wrong.
func TestCheckEndpoint(t *testing.T) {
	for _, ok := range []string{"localhost:4317", "127.0.0.1:4318", "[::1]:4317", ":4317", "http://collector:4318", "https://otel.example.com/v1/traces"} {
		if err := CheckEndpoint(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"http://[::1":      "missing ']'",
		"localhost":        "missing port",
		"localhost:0":      "port from 1 to 65535",
		"localhost:http":   "port from 1 to 65535",
		"localhost:70000":  "port from 1 to 65535",
		"grpc://host:4317": `the scheme is "grpc"`,
		"http://":          "no host",
	} {
		if err := CheckEndpoint(bad); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v, want an error naming it and saying %q", bad, err, want)
		}
	}
}
