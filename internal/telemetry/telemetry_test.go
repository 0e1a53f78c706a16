package telemetry

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// collector is an OTLP gRPC trace receiver whose Export waits until the
// test opens its gate, the stand-in for a slow or distant collector.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	gate     chan struct{}
	mu       sync.Mutex
	names    []string
	received chan struct{}
}

func (c *collector) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	select {
	case <-c.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.names = append(c.names, s.GetName())
			}
		}
	}
	c.mu.Unlock()
	select {
	case c.received <- struct{}{}:
	default:
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func startCollector(t *testing.T) (*collector, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{gate: make(chan struct{}), received: make(chan struct{}, 1)}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return c, lis.Addr().String()
}

// A stage's end-of-run flush must not wait for the collector (that wait
// was the cost of tracing on every stage), yet no span may be lost: the
// span file has it at once and the collector gets it by Shutdown.
func TestForceFlushDoesNotWaitForTheCollector(t *testing.T) {
	c, addr := startCollector(t)
	file := filepath.Join(t.TempDir(), "spans", "host.jsonl")
	p, err := Setup(context.Background(), Config{Service: "test", TraceFile: file, OTLPEndpoint: addr, OTLPProtocol: "grpc"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer("test").Start(context.Background(), "stage x.y")
	span.End()

	flushed := make(chan error, 1)
	go func() { flushed <- p.ForceFlush(context.Background()) }()
	select {
	case err := <-flushed:
		if err != nil {
			t.Fatalf("ForceFlush: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ForceFlush waited for a collector that does not answer")
	}
	if got := spanNames(t, file); len(got) != 1 || got[0] != "stage x.y" {
		t.Errorf("span file after ForceFlush: %q, want [stage x.y]", got)
	}

	close(c.gate)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.names) != 1 || c.names[0] != "stage x.y" {
		t.Errorf("collector received %q, want [stage x.y] exactly once", c.names)
	}
}

func spanNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s struct{ Name string }
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("span file line %q: %v", sc.Text(), err)
		}
		names = append(names, s.Name)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestJaegerTraceURL(t *testing.T) {
	t.Setenv("SWEETSPOT_JAEGER_UI", "")
	for _, tc := range []struct{ endpoint, want string }{
		{"localhost:4317", "http://localhost:16686/trace/abc"},
		{"http://10.1.2.3:4318/v1/traces", "http://10.1.2.3:16686/trace/abc"},
		{"[::1]:4317", "http://[::1]:16686/trace/abc"},
		{"collector:9999", ""},
		{"", ""},
	} {
		if got := JaegerTraceURL(tc.endpoint, "abc"); got != tc.want {
			t.Errorf("JaegerTraceURL(%q) = %q, want %q", tc.endpoint, got, tc.want)
		}
	}
}

func TestEndpointRecordedWithoutCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:secret@otel.example:4318/v1/traces": "https://otel.example:4318/v1/traces",
		"localhost:4317": "localhost:4317",
	} {
		if got := withoutUserinfo(in); got != want {
			t.Errorf("withoutUserinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
