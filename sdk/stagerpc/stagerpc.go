// Package stagerpc holds what both ends of the sweetspot.stage.v1 protocol
// share: the go-plugin handshake, the gRPC options, and the streaming
// machinery of a Run call (Arrow IPC messages in Flight framing, batches split
// by rows, per-port credit flow control).
//
// Plugin authors never need it: the sdk package uses it to serve, and hosts
// (sweetspot's plugin host, sdktest) use it to call. It does not import the
// sdk package, so that the sdk's serving code can.
package stagerpc

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
)

const (
	// PluginName is the key of the stage service in go-plugin's plugin set.
	PluginName = "stage"

	// The magic cookie tells a plugin binary it was started by a sweetspot
	// host. It is a UX guard, not a security measure.
	MagicCookieKey   = "SWEETSPOT_PLUGIN"
	MagicCookieValue = "7c1d3a52b08e4f6a9d51e0f2c4b86a13"

	// MaxMessageBytes is the gRPC message size limit both ends configure.
	MaxMessageBytes = 32 << 20

	// DefaultChunkBytes is the target body size of one Arrow message: batches
	// are split by rows to stay under it, far below MaxMessageBytes so that
	// a skewed row estimate still fits.
	DefaultChunkBytes = 4 << 20

	// InitialCredit is how many ArrowData messages of one port a sender may
	// have unacknowledged when a Run starts. The receiver returns credit as its
	// consumer takes messages, so at most InitialCredit messages per port are
	// ever buffered at the receiver.
	InitialCredit = 8
)

// Handshake is the go-plugin handshake for a protocol version.
func Handshake(protocolVersion int) plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  uint(protocolVersion),
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}

// Plugin is the go-plugin plugin of the stage service. A plugin process sets
// Impl; a host leaves it nil and dispenses a stagepb.StageServiceClient.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl stagepb.StageServiceServer
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	stagepb.RegisterStageServiceServer(s, p.Impl)
	return nil
}

func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return stagepb.NewStageServiceClient(cc), nil
}

// propagator is explicit on both ends: the global default is a no-op, which
// would cut every trace at the process boundary.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// ServerOptions are the gRPC server options of a plugin process: message
// limits, and an otelgrpc handler that continues the host's trace.
func ServerOptions(tp trace.TracerProvider) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.ForceServerCodecV2(newCodec()),
		grpc.ReadBufferSize(transportBufferBytes),
		grpc.WriteBufferSize(transportBufferBytes),
		grpc.InitialWindowSize(windowBytes),
		grpc.InitialConnWindowSize(windowBytes),
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tp),
			otelgrpc.WithPropagators(propagator),
			otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
				// Run gets no server span: the plugin's "stage KIND" span
				// takes its place as the direct child of the host's span,
				// and unlike a server span it ends (and is flushed) before
				// the run's result goes out, so a plugin killed right after
				// a run still leaves a whole trace. The handler still
				// extracts the host's span context for it.
				return isStageMethod(info.FullMethodName) && info.FullMethodName != stagepb.StageService_Run_FullMethodName
			}),
		)),
	}
}

// DialOptions are the gRPC dial options of a host. The client handler records
// no span of its own (its filter says no) but still injects the caller's
// span context, so a plugin's server span is a direct child of the host span
// that made the call.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
			grpc.ForceCodecV2(newCodec()),
		),
		grpc.WithReadBufferSize(transportBufferBytes),
		grpc.WithWriteBufferSize(transportBufferBytes),
		grpc.WithInitialWindowSize(windowBytes),
		grpc.WithInitialConnWindowSize(windowBytes),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithPropagators(propagator),
			otelgrpc.WithFilter(func(*stats.RPCTagInfo) bool { return false }),
		)),
	}
}

// isStageMethod keeps go-plugin's own services (health, stdio, controller)
// out of the plugin's spans.
func isStageMethod(fullMethod string) bool {
	const prefix = "/" + "sweetspot.stage.v1.StageService/"
	return len(fullMethod) > len(prefix) && fullMethod[:len(prefix)] == prefix
}

// The transport's settings for bulk data (BenchmarkBoundaryThroughput in
// pipeline/pluginhost measures them). gRPC's defaults suit many small
// messages: 32 KiB socket buffers, and a flow-control window that starts
// at 64 KiB and grows by probing. Arrow messages are megabytes, so each
// cost hundreds of reads, writes and window updates. A fixed window of
// 16 MiB holds four messages; it does not raise what a receiver can be
// made to hold, which the per-port credit bounds (InitialCredit messages).
const (
	transportBufferBytes = 1 << 20
	windowBytes          = 16 << 20
)
