package resize

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

func TestConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string // "path: summary"
	}{
		{"defaults", Config{}, nil},
		{"every strategy", Config{Strategy: MaxUtility, Price: ptr(0.01), Cost: CostLatency}, nil},
		{"unknown strategy", Config{Strategy: "smallest"}, []string{"strategy: Unknown strategy"}},
		{"max_utility without price", Config{Strategy: MaxUtility}, []string{"price: Missing price"}},
		{"price elsewhere", Config{Strategy: KneeStrategy, Price: ptr(0.01)}, []string{"price: Price without max_utility"}},
		{"compute_optimal", Config{Strategy: ComputeOptimal, BudgetSeconds: ptr(600.0)}, nil},
		{"compute_optimal without a budget", Config{Strategy: ComputeOptimal}, []string{"strategy: Missing compute budget"}},
		{"two budgets", Config{Strategy: ComputeOptimal, BudgetFLOPs: ptr(1e12), BudgetSeconds: ptr(60.0)}, []string{"budget_seconds: Two compute budgets"}},
		{"budget elsewhere", Config{Strategy: KneeStrategy, BudgetFLOPs: ptr(1e12)}, []string{"budget_flops: Budget without compute_optimal"}},
		{"bad budget", Config{Strategy: ComputeOptimal, BudgetFLOPs: ptr(-1.0)}, []string{"budget_flops: Invalid budget"}},
		{"cost with smallest_meeting", Config{Cost: CostBytes}, []string{"cost: Cost without a trade-off strategy"}},
		{"unknown cost", Config{Strategy: KneeStrategy, Cost: "latncy"}, []string{"cost: Unknown cost"}},
		{"samples resource", Config{Strategy: ComputeOptimal, BudgetFLOPs: ptr(1e12), Resource: "samples"}, nil},
		{"unknown resource", Config{Strategy: ComputeOptimal, BudgetFLOPs: ptr(1e12), Resource: "sample"}, []string{"resource: Unknown resource"}},
		{"resource elsewhere", Config{Strategy: KneeStrategy, Resource: "samples"}, []string{"resource: Resource without compute_optimal"}},
		{"many at once", Config{
			Tolerance: ptr(0.0), ProposalsPerRound: ptr(0), Confidence: ptr(1.0), Sensitivity: ptr(-1.0),
			Bootstrap: ptr(5), MinWidth: ptr(64), MaxWidth: ptr(8), MinAccuracy: ptr(1.5), MaxLoss: ptr(-1.0),
			MaxLatencyMs: ptr(0.0), MaxParams: ptr(int64(0)), MaxModelBytes: ptr(int64(0)),
			MaxTrainTime: ptr(time.Duration(0)), MaxTrials: ptr(0), MaxWall: ptr(-time.Second),
		}, []string{
			"tolerance: Invalid tolerance", "proposals_per_round: Invalid proposals per round", "confidence: Invalid confidence",
			"sensitivity: Invalid sensitivity", "bootstrap: Invalid bootstrap", "min_width: Empty width range",
			"min_accuracy: Invalid min accuracy", "max_loss: Invalid max loss", "max_latency_ms: Invalid max latency ms",
			"max_params: Invalid max params", "max_model_bytes: Invalid max model bytes",
			"max_train_time: Invalid max train time", "max_wall: Invalid max wall", "max_trials: Invalid max trials",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			var got []string
			var diags sdk.Diagnostics
			if errors.As(err, &diags) {
				for _, d := range diags {
					got = append(got, strings.Join(d.Path, ".")+": "+d.Summary)
				}
			} else if err != nil {
				t.Fatalf("error is not diagnostics: %v", err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
	_, err := New(Config{Strategy: "kne"})
	if err == nil || !strings.Contains(err.Error(), `Did you mean "knee"?`) {
		t.Errorf("no suggestion in %v", err)
	}
}

// Bad input is an error naming what is wrong, never a panic.
func TestInputErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	w := world{acc: defaultCurve, baseline: 0.85}
	good := func() []result {
		var rs []result
		for _, c := range ladder(4, 1024, 6, true) {
			rs = append(rs, w.evaluate(c))
		}
		return rs
	}
	cases := []struct {
		name   string
		mutate func([]result) []result
		cfg    Config
		reqs   *reqs
		want   string
	}{
		{"no rows", func([]result) []result { return nil }, Config{}, &reqs{minAccuracy: ptr(0.9)}, "the results table has no rows"},
		{"accuracy above 1", func(rs []result) []result { rs[2].accuracy = 1.5; return rs }, Config{}, &reqs{minAccuracy: ptr(0.9)}, `row 2, column "accuracy": accuracy 1.5 is not between 0 and 1`},
		{"unknown status", func(rs []result) []result { rs[3].status = "done"; return rs }, Config{}, &reqs{minAccuracy: ptr(0.9)}, `row 3, column "status"`},
		{"no target", func(rs []result) []result { return rs }, Config{}, &reqs{}, "No quality target"},
		{"no target, no requirements", func(rs []result) []result { return rs }, Config{}, nil, "No quality target"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := c.mutate(good())
			st, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var batches []arrow.RecordBatch
			if rs != nil {
				b := resultsBatch(mem, rs)
				defer b.Release()
				batches = []arrow.RecordBatch{b}
			} else {
				b := resultsBatch(mem, nil)
				defer b.Release()
				batches = []arrow.RecordBatch{b}
			}
			in := stagetest.Inputs{InputPort: batches}
			if c.reqs != nil {
				rb := reqBatch(mem, *c.reqs)
				defer rb.Release()
				in[RequirementsPort] = []arrow.RecordBatch{rb}
			}
			_, err = stagetest.Run(t, context.Background(), Info(), st, in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}

	// A results table without a column the stage reads.
	st, _ := New(Config{MinAccuracy: ptr(0.9)})
	b := resultsBatch(mem, good())
	defer b.Release()
	idx := b.Schema().FieldIndices("latency_p95_ms")[0]
	fields := append(append([]arrow.Field{}, b.Schema().Fields()[:idx]...), b.Schema().Fields()[idx+1:]...)
	cols := append(append([]arrow.Array{}, b.Columns()[:idx]...), b.Columns()[idx+1:]...)
	cut := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, b.NumRows())
	defer cut.Release()
	_, err := stagetest.Run(t, context.Background(), Info(), st, stagetest.Inputs{InputPort: {cut}})
	var ie *sdk.InputError
	if !errors.As(err, &ie) || ie.Column != "latency_p95_ms" {
		t.Errorf("error %v, want an input error on latency_p95_ms", err)
	}
}

// The decision goes on the stage's span: status, fit and reason.
func TestSpanAttributes(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "stage resize.fit")

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	w := world{acc: defaultCurve, baseline: 0.85}
	var rs []result
	for _, c := range ladder(4, 1024, 6, true) {
		rs = append(rs, w.evaluate(c))
	}
	res := resultsBatch(mem, rs)
	defer res.Release()
	st, _ := New(Config{MinAccuracy: ptr(0.95)})
	if _, err := stagetest.Run(t, ctx, Info(), st, stagetest.Inputs{InputPort: {res}}); err != nil {
		t.Fatal(err)
	}
	span.End()
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range spans[0].Attributes() {
		attrs[kv.Key] = kv.Value
	}
	if got := attrs["decision"].AsString(); got != StatusContinue {
		t.Errorf("decision attribute %q", got)
	}
	if got := attrs["resize.chosen"].AsString(); got != "mlp-d1-w111" {
		t.Errorf("chosen attribute %q", got)
	}
	if q := attrs["resize.fit.q_inf"].AsFloat64(); q < 0.97 || q > 0.99 {
		t.Errorf("q_inf attribute %g", q)
	}
	for _, k := range []attribute.Key{"resize.fit.alpha", "resize.fit.alpha_lo", "resize.fit.a_hi", "resize.reason", "resize.proposed_widths"} {
		if _, ok := attrs[k]; !ok {
			t.Errorf("no attribute %s", k)
		}
	}
	if len(spans[0].Events()) != 1 {
		t.Errorf("%d events, want the decision", len(spans[0].Events()))
	}
}

// Over the real protocol, with checked allocators on both sides: config
// decoding, both output ports and their schemas, and no leaked batch.
func TestOverTheWire(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("resize-test"))
	Register(set)
	p := sdktest.Start(t, set)

	w := world{acc: defaultCurve, baseline: 0.85}
	var rs []result
	for _, c := range ladder(4, 1024, 6, true) {
		rs = append(rs, w.evaluate(c))
	}
	res := resultsBatch(p.HostMem, rs)
	defer res.Release()
	rd := sdktest.Table(res.Schema(), res)
	defer rd.Release()
	req := reqBatch(p.HostMem, reqs{minAccuracy: ptr(0.95), maxTrials: ptr(int32(20))})
	defer req.Release()
	rq := sdktest.Table(req.Schema(), req)
	defer rq.Release()

	// One collector per port: the host consumes each output port on its
	// own goroutine, and a Collector's map is not guarded.
	c, cp := sdktest.NewCollector(), sdktest.NewCollector()
	defer c.Release()
	defer cp.Release()
	_, err := p.Run(context.Background(), stagehost.RunRequest{
		Kind: Kind, Stage: "resize.fit", Round: 1,
		Config:  cty.ObjectVal(map[string]cty.Value{"tolerance": cty.NumberFloatVal(0.3), "max_wall": cty.StringVal("10m")}),
		Inputs:  map[string]array.RecordReader{InputPort: rd, RequirementsPort: rq},
		Outputs: map[string]func(arrow.RecordBatch) error{DecisionPort: c.Port(DecisionPort), ProposalsPort: cp.Port(ProposalsPort)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ds := c.Batches[DecisionPort]
	if len(ds) != 1 || ds[0].NumRows() != 1 {
		t.Fatalf("decision: %d batches", len(ds))
	}
	d := readDecision(t, ds[0])[0]
	if d["status"] != StatusContinue || d["tolerance"] != 0.3 || d["trials_left"] != int32(13) {
		t.Errorf("decision %v", d)
	}
	if !ds[0].Schema().Equal(tables.DecisionSchema) {
		t.Errorf("decision schema %s", ds[0].Schema())
	}
	if got := cp.Rows(ProposalsPort); got != 2 {
		t.Errorf("%d proposals, want 2", got)
	}
	props, err := tables.ReadCandidates(cp.Batches[ProposalsPort][0])
	if err != nil || props[0].Round != 1 {
		t.Errorf("proposals %+v, %v", props, err)
	}
}
