package main

import (
	"context"
	"encoding/json"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// rogueMessageBytes is well over stagerpc.MaxMessageBytes: what a plugin
// written without the SDK sends when it puts a whole table in one message.
const rogueMessageBytes = stagerpc.MaxMessageBytes + 8<<20

// serveRogue serves the stage protocol by hand, with the send limit the SDK
// keeps lifted, and answers every Run with one oversized message on the
// stage's first output port.
func serveRogue(set *sdk.Set) error {
	desc := set.Describe()
	js, err := json.Marshal(desc)
	if err != nil {
		return err
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: stagerpc.Handshake(sdk.ProtocolVersion),
		VersionedPlugins: map[int]plugin.PluginSet{
			sdk.ProtocolVersion: {stagerpc.PluginName: &stagerpc.Plugin{Impl: &rogue{desc: desc, js: js}}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.MaxSendMsgSize(1<<30))...)
		},
	})
	return nil
}

type rogue struct {
	stagepb.UnimplementedStageServiceServer
	desc *describe.PluginDescription
	js   []byte
}

func (r *rogue) Describe(context.Context, *stagepb.DescribeRequest) (*stagepb.DescribeResponse, error) {
	return &stagepb.DescribeResponse{DescriptionJson: r.js}, nil
}

func (r *rogue) Configure(context.Context, *stagepb.ConfigureRequest) (*stagepb.ConfigureResponse, error) {
	return &stagepb.ConfigureResponse{}, nil
}

func (r *rogue) Run(stream stagepb.StageService_RunServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	port := "table"
	if st := r.desc.Stage(first.GetStart().GetKind()); st != nil && len(st.Outputs) > 0 {
		port = st.Outputs[0].Name
	}
	if err := stream.Send(&stagepb.RunResponse{Msg: &stagepb.RunResponse_Data{Data: &stagepb.ArrowData{
		Port:     port,
		DataBody: make([]byte, rogueMessageBytes),
	}}}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}
