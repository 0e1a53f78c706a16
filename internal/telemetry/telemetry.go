// Package telemetry sets up OpenTelemetry tracing the same way for the host
// and for plugin processes, so that one run is one trace wherever its spans
// are recorded.
//
// Spans always go to a JSON-lines file when one is named (a run keeps its
// spans even with no collector), and additionally to OTLP when an endpoint is
// configured by the caller or by the standard OTEL_* environment variables.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// Environment variables the host sets for its plugins.
const (
	// EnvTraceFile names the JSON-lines file a plugin records its spans in.
	EnvTraceFile = "SWEETSPOT_TRACE_FILE"
	// EnvOTLPEndpoint and EnvOTLPProtocol carry the host's --otlp choice.
	EnvOTLPEndpoint = "SWEETSPOT_OTLP_ENDPOINT"
	EnvOTLPProtocol = "SWEETSPOT_OTLP_PROTOCOL"
)

// OTLPEndpointAttr is the resource attribute of every span a process
// exports over OTLP as well as to its span file: the endpoint (without
// any user or password in it), so that a reader of the span file knows
// the trace is in a collector too and can link to it (JaegerTraceURL).
const OTLPEndpointAttr = "sweetspot.otlp.endpoint"

// Config says where spans go.
type Config struct {
	// Service is the service.name resource attribute.
	Service string
	// TraceFile, when set, receives every span as one JSON object per line.
	TraceFile string
	// OTLPEndpoint overrides OTEL_EXPORTER_OTLP_ENDPOINT: "host:port" or a URL.
	OTLPEndpoint string
	// OTLPProtocol is "grpc" or "http/protobuf"; empty follows
	// OTEL_EXPORTER_OTLP_PROTOCOL, then "grpc".
	OTLPProtocol string
	// Attributes are added to the resource.
	Attributes []attribute.KeyValue
	// IDGenerator, when set, makes the span ids (pipeline/temporal uses one
	// that can give a span an id chosen ahead, so that activities on other
	// machines can start its children before it is recorded).
	IDGenerator sdktrace.IDGenerator
}

// FromEnv completes cfg with the values a host handed to its plugin.
func FromEnv(cfg Config) Config {
	if cfg.TraceFile == "" {
		cfg.TraceFile = os.Getenv(EnvTraceFile)
	}
	if cfg.OTLPEndpoint == "" {
		cfg.OTLPEndpoint = os.Getenv(EnvOTLPEndpoint)
	}
	if cfg.OTLPProtocol == "" {
		cfg.OTLPProtocol = os.Getenv(EnvOTLPProtocol)
	}
	return cfg
}

// OTLPEnabled reports whether spans will be exported over OTLP.
func (cfg Config) OTLPEnabled() bool {
	if cfg.OTLPEndpoint != "" {
		return true
	}
	switch os.Getenv("OTEL_TRACES_EXPORTER") {
	case "none", "console", "":
	default:
		return true
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Endpoint is the OTLP endpoint in use, for messages; "" when none.
func (cfg Config) Endpoint() string {
	if cfg.OTLPEndpoint != "" {
		return cfg.OTLPEndpoint
	}
	if e := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
		return e
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
}

// PluginEnv returns the environment a plugin needs to send its spans where
// the host sends its own; traceFile is the plugin's own span file.
func (cfg Config) PluginEnv(traceFile string) []string {
	var env []string
	if traceFile != "" {
		env = append(env, EnvTraceFile+"="+traceFile)
	}
	if cfg.OTLPEndpoint != "" {
		env = append(env, EnvOTLPEndpoint+"="+cfg.OTLPEndpoint)
	}
	if cfg.OTLPProtocol != "" {
		env = append(env, EnvOTLPProtocol+"="+cfg.OTLPProtocol)
	}
	return env
}

// Provider is a configured tracer provider with its shutdown.
type Provider struct {
	*sdktrace.TracerProvider
	file *os.File
	// otlp is the batch processor of the OTLP exporter; nil without one.
	otlp sdktrace.SpanProcessor
}

// otlpFlushTimeout bounds one background export started by ForceFlush.
const otlpFlushTimeout = 10 * time.Second

// ForceFlush makes every span ended so far durable without waiting on a
// collector: the span file has them already (it is written as each span
// ends), and the OTLP batch is handed to its exporter in the background.
// A plugin flushes at the end of every stage run, before its result goes
// out; waiting there for a round trip to the collector put that latency on
// every stage of a traced run. Shutdown still waits for every export.
func (p *Provider) ForceFlush(context.Context) error {
	if p.otlp != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), otlpFlushTimeout)
			defer cancel()
			// The batch processor reports a failed export to otel's error
			// handler, as it does for its own scheduled exports.
			_ = p.otlp.ForceFlush(ctx)
		}()
	}
	return nil
}

// Shutdown flushes and stops every exporter and closes the span file.
func (p *Provider) Shutdown(ctx context.Context) error {
	err := p.TracerProvider.Shutdown(ctx)
	if p.file != nil {
		err = errors.Join(err, p.file.Close())
	}
	return err
}

// Setup builds a tracer provider for cfg, installs it and the W3C trace
// context propagator globally, and returns it. The global propagator is
// explicit because OpenTelemetry's default is a no-op, which would cut the
// trace at the plugin boundary.
func Setup(ctx context.Context, cfg Config) (*Provider, error) {
	attrs := cfg.Attributes
	if cfg.OTLPEnabled() {
		if ep := withoutUserinfo(cfg.Endpoint()); ep != "" {
			attrs = append(attrs[:len(attrs):len(attrs)], attribute.String(OTLPEndpointAttr, ep))
		}
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(cfg.Service)),
		resource.WithAttributes(attrs...),
		resource.WithProcessPID(),
		resource.WithHost(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if cfg.IDGenerator != nil {
		opts = append(opts, sdktrace.WithIDGenerator(cfg.IDGenerator))
	}
	p := &Provider{}
	if cfg.TraceFile != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.TraceFile), 0o755); err != nil {
			return nil, fmt.Errorf("span file: %w", err)
		}
		f, err := os.OpenFile(cfg.TraceFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("span file: %w", err)
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("span file exporter: %w", err)
		}
		p.file = f
		// Synchronous, so a span is on disk as soon as it ends: a killed
		// process keeps every span it finished.
		opts = append(opts, sdktrace.WithSyncer(exp))
	}
	if cfg.OTLPEnabled() {
		exp, err := otlpExporter(ctx, cfg)
		if err != nil {
			if p.file != nil {
				p.file.Close()
			}
			return nil, err
		}
		p.otlp = sdktrace.NewBatchSpanProcessor(exp)
		opts = append(opts, sdktrace.WithSpanProcessor(p.otlp))
	}
	p.TracerProvider = sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(p.TracerProvider)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return p, nil
}

func otlpExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	proto := cfg.OTLPProtocol
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	}
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto == "" {
		proto = "grpc"
	}
	switch proto {
	case "grpc":
		var opts []otlptracegrpc.Option
		if e := cfg.OTLPEndpoint; e != "" {
			if hasScheme(e) {
				opts = append(opts, otlptracegrpc.WithEndpointURL(e))
			} else {
				opts = append(opts, otlptracegrpc.WithEndpoint(e), otlptracegrpc.WithInsecure())
			}
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP gRPC exporter: %w", err)
		}
		return exp, nil
	case "http/protobuf", "http":
		var opts []otlptracehttp.Option
		if e := cfg.OTLPEndpoint; e != "" {
			if hasScheme(e) {
				opts = append(opts, otlptracehttp.WithEndpointURL(e))
			} else {
				opts = append(opts, otlptracehttp.WithEndpoint(e), otlptracehttp.WithInsecure())
			}
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("OTLP HTTP exporter: %w", err)
		}
		return exp, nil
	default:
		return nil, fmt.Errorf("OTLP protocol %q is not supported: use grpc or http/protobuf", proto)
	}
}

// CheckEndpoint says what is wrong with an OTLP endpoint as --otlp takes
// it ("host:port", or an http or https URL), so that a typo is a usage
// error before the run, not spans lost in silence after it.
func CheckEndpoint(endpoint string) error {
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return fmt.Errorf("OTLP endpoint %q: %w", endpoint, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("OTLP endpoint %q: the scheme is %q; use http, https or host:port", endpoint, u.Scheme)
		}
		if u.Host == "" {
			return fmt.Errorf("OTLP endpoint %q: no host", endpoint)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return fmt.Errorf("OTLP endpoint %q: want host:port or a URL (%v)", endpoint, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("OTLP endpoint %q: want host:port with a port from 1 to 65535", endpoint)
	}
	return nil
}

func hasScheme(endpoint string) bool {
	u, err := url.Parse(endpoint)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.Contains(endpoint, "://")
}

// withoutUserinfo drops a user and password from an endpoint URL: they
// are credentials, and the span file is not a place for them.
func withoutUserinfo(endpoint string) string {
	if !hasScheme(endpoint) {
		return endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	u.User = nil
	return u.String()
}

// JaegerTraceURL is the page of a trace in the Jaeger UI that an OTLP
// endpoint on Jaeger's default ports (4317 gRPC, 4318 HTTP) belongs to:
// the UI listens on 16686 on the same host. SWEETSPOT_JAEGER_UI names
// another UI address. It is "" for an endpoint on other ports, which is
// some other collector.
func JaegerTraceURL(endpoint, traceID string) string {
	if endpoint == "" || traceID == "" {
		return ""
	}
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		host = u.Host
	}
	h, port, err := net.SplitHostPort(host)
	if err != nil || (port != "4317" && port != "4318") {
		return ""
	}
	if ui := os.Getenv("SWEETSPOT_JAEGER_UI"); ui != "" {
		return strings.TrimRight(ui, "/") + "/trace/" + traceID
	}
	return fmt.Sprintf("http://%s/trace/%s", net.JoinHostPort(h, "16686"), traceID)
}
