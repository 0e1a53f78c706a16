package builtin_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/plugins/builtin"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

func TestDescribe(t *testing.T) {
	d := builtin.Set("1.2.3").Describe()
	if d.Name != "builtin" || d.Version != "1.2.3" {
		t.Errorf("name %q version %q", d.Name, d.Version)
	}
	type port struct {
		Name     string
		Optional bool
		Columns  int
	}
	// Ports are the contract between stages; attributes are each stage's
	// own business, so they are only checked for documentation here.
	type stage struct {
		Kind    string
		Inputs  []port
		Outputs []port
	}
	var got []stage
	for _, s := range d.Stages {
		st := stage{Kind: s.Kind}
		for _, p := range s.Inputs {
			st.Inputs = append(st.Inputs, port{p.Name, p.Optional, len(p.Fields)})
		}
		for _, p := range s.Outputs {
			st.Outputs = append(st.Outputs, port{p.Name, p.Optional, len(p.Fields)})
		}
		for _, a := range s.Config.Attributes {
			if a.Description == "" {
				t.Errorf("%s.%s has no description", s.Kind, a.Name)
			}
		}
		for _, b := range s.Config.Blocks {
			if b.Description == "" {
				t.Errorf("block %s.%s has no description", s.Kind, b.Name)
			}
		}
		got = append(got, st)
	}
	want := []stage{
		{Kind: "dataset", Outputs: []port{{"data", false, 1}}},
		{Kind: "requirements", Inputs: []port{{"dataset", true, 1}}, Outputs: []port{{"requirements", false, 15}}},
		{Kind: "model_choice", Inputs: []port{{"input", false, 15}}, Outputs: []port{{"candidates", false, 19}, {"space", false, 19}}},
		{Kind: "optimization", Inputs: []port{{"input", false, 19}, {"dataset", false, 1}}, Outputs: []port{{"candidates", false, 19}, {"tuning", false, 11}}},
		{Kind: "evaluation", Inputs: []port{{"input", false, 19}, {"dataset", false, 1}, {"resume", true, 47}, {"resume_models", true, 15}}, Outputs: []port{{"results", false, 47}, {"models", false, 15}}},
		{Kind: "exec", Inputs: []port{{"input", false, 19}, {"dataset", true, 1}, {"resume", true, 47}, {"resume_models", true, 15}}, Outputs: []port{{"results", false, 47}, {"models", false, 15}}},
		{Kind: "resize", Inputs: []port{{"input", false, 25}, {"requirements", true, 15}, {"space", true, 19}}, Outputs: []port{{"decision", false, 46}, {"proposals", false, 19}}},
		{Kind: "replay", Inputs: []port{{"input", false, 19}}, Outputs: []port{{"results", false, 50}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	// width is an object of two required numbers.
	for _, a := range d.Stage("model_choice").Config.Attributes {
		if a.Name == "width" {
			var ty any
			if err := json.Unmarshal(a.Type, &ty); err != nil {
				t.Fatal(err)
			}
			want := []any{"object", map[string]any{"min": "number", "max": "number"}}
			if diff := cmp.Diff(want, ty); diff != "" {
				t.Errorf("width type (-want +got):\n%s", diff)
			}
		}
	}
}

// run runs one stage over the real wire and returns the batches of its
// output port.
func run(t *testing.T, p *sdktest.Plugin, kind, port string, config cty.Value, inputs map[string]array.RecordReader) ([]arrow.RecordBatch, error) {
	t.Helper()
	c := sdktest.NewCollector()
	t.Cleanup(c.Release)
	_, err := p.Run(context.Background(), stagehost.RunRequest{
		Kind: kind, Stage: kind + ".test", Config: config, Inputs: inputs,
		Outputs: map[string]func(arrow.RecordBatch) error{port: c.Port(port)},
	})
	return c.Batches[port], err
}

// The three stages chained as examples/standardize chains them (without
// the scaling), over the real protocol with checked allocators on both
// sides.
func TestChain(t *testing.T) {
	p := sdktest.Start(t, builtin.Set("test"))

	data, err := run(t, p, "dataset", "data", cty.ObjectVal(map[string]cty.Value{
		"generator": cty.StringVal("blobs"),
		"rows":      cty.NumberIntVal(300),
		"features":  cty.NumberIntVal(5),
		"seed":      cty.NumberIntVal(3),
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	dataReader := sdktest.Table(data[0].Schema(), data...)
	defer dataReader.Release()

	req, err := run(t, p, "requirements", "requirements", cty.ObjectVal(map[string]cty.Value{
		"min_accuracy": cty.NumberFloatVal(0.9),
		"max_params":   cty.NumberIntVal(1000),
		"budget": cty.ObjectVal(map[string]cty.Value{
			"max_trials": cty.NumberIntVal(10),
			"max_wall":   cty.StringVal("15m"),
		}),
	}), map[string]array.RecordReader{"dataset": dataReader})
	if err != nil {
		t.Fatal(err)
	}
	if len(req) != 1 {
		t.Fatalf("%d requirements batches, want 1", len(req))
	}
	row, err := tables.ReadRequirements(req[0])
	if err != nil {
		t.Fatal(err)
	}
	type profile struct {
		Task, Metric              string
		Rows                      int64
		Features, Classes, Trials int32
		Wall                      float64
	}
	gotP := profile{row.Task, row.Metric, *row.Rows, *row.Features, *row.Classes, *row.MaxTrials, *row.MaxWallSeconds}
	if diff := cmp.Diff(profile{"classification", "accuracy", 300, 5, 3, 10, 900}, gotP); diff != "" {
		t.Errorf("requirements (-want +got):\n%s", diff)
	}

	reqReader := sdktest.Table(req[0].Schema(), req...)
	defer reqReader.Release()
	cands, err := run(t, p, "model_choice", "candidates", cty.ObjectVal(map[string]cty.Value{
		"depth": cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)}),
		"width": cty.ObjectVal(map[string]cty.Value{"min": cty.NumberIntVal(4), "max": cty.NumberIntVal(64)}),
		"steps": cty.NumberIntVal(3),
	}), map[string]array.RecordReader{"input": reqReader})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tables.ReadCandidates(cands[0])
	if err != nil {
		t.Fatal(err)
	}
	// 5 inputs, 3 classes. Depth 1, width w: 9w+3 params (39, 147, 579);
	// depth 2: w²+10w+3 (59, 419, 4739): the last is over 1000.
	var ids []string
	var params []int64
	for _, c := range got {
		ids = append(ids, c.ID)
		params = append(params, c.Params)
	}
	if diff := cmp.Diff([]string{"linear-d0-w0", "mlp-d1-w4", "mlp-d1-w16", "mlp-d1-w64", "mlp-d2-w4", "mlp-d2-w16"}, ids); diff != "" {
		t.Errorf("candidates (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{18, 39, 147, 579, 59, 419}, params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
}

// Config problems reach the host as diagnostics on the attribute, and data
// problems as run errors naming file, line and column.
func TestErrorsOverTheWire(t *testing.T) {
	p := sdktest.Start(t, builtin.Set("test"))
	diags, err := p.Configure(context.Background(), "dataset", cty.ObjectVal(map[string]cty.Value{
		"generator": cty.StringVal("spiral"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 1 || diags[0].Summary != "Unknown generator" || !cmp.Equal(diags[0].Path, []string{"generator"}) {
		t.Errorf("diagnostics %+v, want one Unknown generator on generator", diags)
	}

	bad, err := filepath.Abs("../../testdata/datasets/bad")
	if err != nil {
		t.Fatal(err)
	}
	_, err = run(t, p, "dataset", "data", cty.ObjectVal(map[string]cty.Value{
		"path":     cty.StringVal("non_numeric.csv"),
		"base_dir": cty.StringVal(bad),
	}), nil)
	var re *stagehost.RunError
	if !errors.As(err, &re) {
		t.Fatalf("got %v (%T), want a *stagehost.RunError", err, err)
	}
	want := filepath.Join(bad, "non_numeric.csv") + `:3: column "sepal_width" (field 2): "abc" is not a number`
	if re.Message != want {
		t.Errorf("message %q, want %q", re.Message, want)
	}

	// An unknown target column is a config problem found at run time: it
	// comes back as a diagnostic on target.
	_, err = run(t, p, "dataset", "data", cty.ObjectVal(map[string]cty.Value{
		"path":     cty.StringVal("non_numeric.csv"),
		"base_dir": cty.StringVal(bad),
		"target":   cty.StringVal("specis"),
	}), nil)
	if !errors.As(err, &re) || re.Kind != stagehost.KindConfig || len(re.Diagnostics) != 1 || !cmp.Equal(re.Diagnostics[0].Path, []string{"target"}) {
		t.Errorf("got %#v, want a config error with one diagnostic on target", err)
	}
}
