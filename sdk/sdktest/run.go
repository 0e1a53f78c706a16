package sdktest

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
)

// Run runs one stage of set once, in process and over the real protocol,
// and returns the batches it wrote on each output port: the shortest way
// to test a stage, with no host package in sight. config takes the forms
// of Case.Config (HCL text, the config struct, a map, a cty.Value, nil);
// inputs gives each connected input port its batches, which the caller
// keeps. The returned batches stay valid until the test ends, when Run
// also checks that neither side leaked Arrow memory.
//
// The error is the run's, as a host sees it: a config the stage rejects
// unwraps to sdk.Diagnostics, a batch that does not fit its port matches
// sdk.ErrSchemaMismatch, an *sdk.InputError comes back as one (its port
// and message; its row and column are in the message).
func Run(t testing.TB, set *sdk.Set, kind string, config any, inputs map[string][]arrow.RecordBatch) (map[string][]arrow.RecordBatch, error) {
	t.Helper()
	desc := set.Describe().Stage(kind)
	if desc == nil {
		t.Fatalf("sdktest.Run: the set has no stage kind %q", kind)
	}
	cfg, err := ConfigValue(desc.Config, config)
	if err != nil {
		t.Fatalf("sdktest.Run: %v", err)
	}
	p := Start(t, set)
	req := stagehost.RunRequest{Kind: kind, Stage: kind + ".test", Config: cfg,
		Inputs: map[string]array.RecordReader{}, Outputs: map[string]func(arrow.RecordBatch) error{}}
	ports := make([]string, 0, len(inputs))
	for port := range inputs {
		ports = append(ports, port)
	}
	sort.Strings(ports)
	for _, port := range ports {
		batches := inputs[port]
		var schema *arrow.Schema
		if len(batches) > 0 {
			schema = batches[0].Schema()
		} else if pd := inputPort(desc.Inputs, port); pd != nil {
			schema, _ = pd.PortSchema()
		}
		if schema == nil {
			t.Fatalf("sdktest.Run: input port %q has no batch and no declared schema to send", port)
		}
		rd, err := array.NewRecordReader(schema, batches)
		if err != nil {
			t.Fatalf("sdktest.Run: input port %q: %v", port, err)
		}
		defer rd.Release()
		req.Inputs[port] = rd
		req.InputOrder = append(req.InputOrder, port)
	}
	col := NewCollector()
	t.Cleanup(col.Release)
	for _, o := range desc.Outputs {
		req.Outputs[o.Name] = col.Port(o.Name)
	}
	_, err = p.Run(context.Background(), req)
	if err != nil {
		return col.Batches, fmt.Errorf("stage %s: %w", kind, err)
	}
	return col.Batches, nil
}

func inputPort(ports []describe.PortDescription, name string) *describe.PortDescription {
	for i := range ports {
		if ports[i].Name == name {
			return &ports[i]
		}
	}
	return nil
}
