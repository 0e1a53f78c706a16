package ui

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Runs are written here as the runner writes them: through runstore's
// PortWriter (committed files, and journals synced per finished trial),
// with the sdk/tables schemas and builders every stage uses.

// fxRun describes a run to write. Its trials follow q = qinf - a·N^-alpha
// over widths; the decision's fit is that same curve.
type fxRun struct {
	id     string
	qinf   float64
	widths []int
	status string
}

func fxParams(width int) int64 { return int64(2*width + width + width*2 + 2) }

func (fx fxRun) quality(width int) float64 {
	return fx.qinf - 2.2*math.Pow(float64(fxParams(width)), -0.75)
}

func fxResult(fx fxRun, round, width int) tables.Result {
	c := tables.Candidate{
		ID: fmt.Sprintf("mlp-d1-w%d", width), Name: fmt.Sprintf("mlp-d1-w%d", width), Round: int32(round),
		Family: tables.FamilyMLP, Kind: tables.KindMLP, Size: float64(width), Depth: 1, Width: int32(width),
		Params: fxParams(width), LearningRate: 0.01, BatchSize: 32, Epochs: 10, Preprocess: "none", Quantize: "none",
	}
	r := tables.NewResult(c)
	r.Status = tables.StatusOK
	r.Accuracy, r.Loss = fx.quality(width), 1-fx.quality(width)
	r.LatencyP50Ms, r.LatencyP95Ms = 0.001*float64(width), 0.0012*float64(width)
	r.ModelBytes, r.PeakBytes, r.TrainSeconds, r.EpochsRun = 4*fxParams(width), 1<<20, 0.01*float64(width), 10
	return r
}

// writeRun writes a finished run: requirements, one results file and one
// decision converging on the smallest width that reaches 0.9.
func writeRun(t testing.TB, store *runstore.Store, fx fxRun) *runstore.Run {
	t.Helper()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	end := start.Add(30 * time.Second)
	status := fx.status
	if status == "" {
		status = runstore.StatusSucceeded
	}
	run, err := store.Create(runstore.Manifest{RunID: fx.id, Pipeline: []string{"examples/fx/pipeline.hcl"}, Status: status,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", StartedAt: start, FinishedAt: &end})
	if err != nil {
		t.Fatal(err)
	}
	run.Unlock()
	var rs []tables.Result
	chosen := -1
	for _, w := range fx.widths {
		rs = append(rs, fxResult(fx, 1, w))
		if chosen < 0 && fx.quality(w) >= 0.9 {
			chosen = w
		}
	}
	mem := memory.DefaultAllocator
	b := tables.BuildResults(mem, rs)
	commitPort(t, run, "evaluation.train", "results", 1, b)
	b.Release()
	dec := decisionBatch(t, map[string]any{
		"round": 1, "status": "converged", "action": "stop", "strategy": "smallest_meeting",
		"chosen_candidate_id": fmt.Sprintf("mlp-d1-w%d", chosen), "chosen_params": fxParams(chosen),
		"reason": "the smallest width that meets 0.9", "metric": "accuracy", "target": 0.9,
		"fit_q_inf": fx.qinf, "fit_a": 2.2, "fit_alpha": 0.75, "fit_points": len(rs), "fit_trusted": true,
		"trials_used": len(rs), "proposals": 0, "pareto_front": "",
	})
	commitPort(t, run, "resize.fit", "decision", 1, dec)
	dec.Release()
	if err := run.Update(func(m *runstore.Manifest) {
		m.Decision = &runstore.Decision{Stage: "resize.fit", Rounds: 1, Status: "converged", Chosen: fmt.Sprintf("mlp-d1-w%d", chosen)}
	}); err != nil {
		t.Fatal(err)
	}
	return run
}

func commitPort(t testing.TB, run *runstore.Run, stage, port string, round int, b arrow.RecordBatch) {
	t.Helper()
	rel := runstore.OutputRel(stage, round, port)
	pw := runstore.NewPortWriter(run.Path(rel), b.Schema(), nil)
	if err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
	n, size, sum, err := pw.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.UpdateStage(stage, func(s *runstore.StageRecord) {
		s.Status = runstore.StatusSucceeded
		s.Outputs = append(s.Outputs, runstore.OutputFile{Port: port, Round: round, Path: rel, Rows: n, Bytes: size, SHA256: sum, BLAKE3: pw.BLAKE3()})
	}); err != nil {
		t.Fatal(err)
	}
}

// decisionBatch builds one decision row; columns it does not name are null.
func decisionBatch(t testing.TB, row map[string]any) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, tables.DecisionSchema)
	defer b.Release()
	for k := range row {
		if !tables.DecisionSchema.HasField(k) {
			t.Fatalf("decision has no column %q", k)
		}
	}
	for i, f := range tables.DecisionSchema.Fields() {
		v, ok := row[f.Name]
		switch fb := b.Field(i).(type) {
		case *array.StringBuilder:
			s, _ := v.(string)
			fb.Append(s)
		case *array.BooleanBuilder:
			x, _ := v.(bool)
			fb.Append(x)
		case *array.Int32Builder:
			if !ok {
				if f.Nullable {
					fb.AppendNull()
				} else {
					fb.Append(0)
				}
				continue
			}
			fb.Append(int32(v.(int)))
		case *array.Int64Builder:
			if !ok {
				fb.AppendNull()
				continue
			}
			fb.Append(v.(int64))
		case *array.Float64Builder:
			if !ok {
				fb.AppendNull()
				continue
			}
			fb.Append(v.(float64))
		default:
			t.Fatalf("decision column %s: %T", f.Name, fb)
		}
	}
	return b.NewRecordBatch()
}

// liveRun is a run in progress: its evaluation stage is running and
// journals each trial as it finishes, as the runner's PortWriter does.
type liveRun struct {
	run *runstore.Run
	pw  *runstore.PortWriter
	fx  fxRun
}

func startLiveRun(t testing.TB, store *runstore.Store, fx fxRun) *liveRun {
	t.Helper()
	run, err := store.Create(runstore.Manifest{RunID: fx.id, Pipeline: []string{"examples/fx/pipeline.hcl"},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", StartedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := run.UpdateStage("evaluation.train", func(s *runstore.StageRecord) {
		s.Kind, s.Status, s.StartedAt = "evaluation", runstore.StatusRunning, &now
	}); err != nil {
		t.Fatal(err)
	}
	pw := runstore.NewPortWriter(run.Path(runstore.OutputRel("evaluation.train", 1, "results")), tables.ResultsSchema, nil)
	pw.Journal(0)
	lr := &liveRun{run: run, pw: pw, fx: fx}
	t.Cleanup(pw.Abort)
	return lr
}

// finish journals one more finished trial.
func (lr *liveRun) finish(t testing.TB, width int) {
	t.Helper()
	b := tables.BuildResults(memory.DefaultAllocator, []tables.Result{fxResult(lr.fx, 1, width)})
	defer b.Release()
	if err := lr.pw.Write(b); err != nil {
		t.Fatal(err)
	}
}

// writeSpans writes a run's spans with OpenTelemetry's stdouttrace
// exporter, the span file format of internal/telemetry: run > stage >
// trials.
func writeSpans(t testing.TB, run *runstore.Run, trials ...string) string {
	t.Helper()
	path := run.Path("spans", "host.jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "sweetspot"))))
	tr := tp.Tracer("test")
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) trace.SpanStartEventOption {
		return trace.WithTimestamp(t0.Add(time.Duration(s) * time.Second))
	}
	ctx, root := tr.Start(context.Background(), "run", at(0))
	sctx, stage := tr.Start(ctx, "stage evaluation.train", at(1))
	for i, name := range trials {
		_, sp := tr.Start(sctx, "trial "+name, at(2+i), trace.WithAttributes(attribute.String("candidate_id", name)))
		sp.End(trace.WithTimestamp(t0.Add(time.Duration(3+i) * time.Second)))
	}
	stage.End(trace.WithTimestamp(t0.Add(20 * time.Second)))
	root.End(trace.WithTimestamp(t0.Add(30 * time.Second)))
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := root.SpanContext().TraceID().String()
	if err := run.Update(func(m *runstore.Manifest) { m.TraceID, m.TraceIDs = id, []string{id} }); err != nil {
		t.Fatal(err)
	}
	return id
}
