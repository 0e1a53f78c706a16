package report

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// The fixture is a run directory written the way the runner writes one,
// with the real stages' schemas, so a change to the table contract breaks
// these tests rather than the report in users' hands. Its trials follow a
// saturating power law with a little deterministic noise, and its
// decisions are derived from those trials: smallest size meeting every
// requirement, bracketed by bisection in log width over three rounds.

type fixture struct {
	regression bool // loss/rmse/r2 instead of accuracy
	fit        bool // decisions carry a fitted curve
	untrusted  bool // the fit is marked not trusted
	decisions  bool // write the decision port at all
	failed     bool // one trial fails with an error
}

// fixtureRun is what the fixture wrote, for the tests to check against.
type fixtureRun struct {
	run      *runstore.Run
	chosen   string
	chosenN  int64
	target   float64
	trials   int
	rounds   int
	failedID string
}

// truth is the curve the fixture's trials are drawn from, in the metric's
// units.
type truth struct{ qinf, a, alpha float64 }

func (fx fixture) truth() truth {
	if fx.regression {
		return truth{qinf: 0.02, a: 1.5, alpha: 0.7}
	}
	return truth{qinf: 0.975, a: 2.2, alpha: 0.75}
}

func (fx fixture) quality(n float64, i int) float64 {
	tr := fx.truth()
	noise := 0.0008 * math.Sin(float64(i)*1.7)
	if fx.regression {
		return tr.qinf + tr.a*math.Pow(n, -tr.alpha) + noise/4
	}
	return tr.qinf - tr.a*math.Pow(n, -tr.alpha) + noise
}

func mlpParams(depth, width int) int64 {
	w := int64(width)
	if depth == 1 {
		return 2*w + w + w*2 + 2
	}
	return 2*w + w + w*w + w + w*2 + 2
}

type fxTrial struct {
	id            string
	round, depth  int
	width         int
	params        int64
	q, lat, train float64
	bytes         int64
	failed        bool
}

const (
	fxMaxLatency = 0.05
	fxMaxParams  = 100000
	fxMaxBytes   = 1000000
	fxMaxTrain   = 60.0
	fxMinAcc     = 0.95
	fxMaxLoss    = 0.035
)

func writeFixture(t testing.TB, root string, fx fixture, mem memory.Allocator) fixtureRun {
	t.Helper()
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	target := fxMinAcc
	if fx.regression {
		target = fxMaxLoss
	}
	meets := func(tr *fxTrial) bool {
		if tr.failed || tr.lat > fxMaxLatency || tr.params > fxMaxParams {
			return false
		}
		if fx.regression {
			return tr.q <= target
		}
		return tr.q >= target
	}
	var trials []*fxTrial
	add := func(round, depth, width int, failed bool) {
		n := mlpParams(depth, width)
		tr := &fxTrial{
			id: fmt.Sprintf("mlp-d%d-w%d", depth, width), round: round, depth: depth, width: width, params: n,
			q:     fx.quality(float64(n), len(trials)),
			lat:   2e-5 * math.Pow(float64(n), 0.55),
			train: 1e-3 * math.Pow(float64(n), 0.85),
			bytes: 4*n + 64, failed: failed,
		}
		trials = append(trials, tr)
	}
	for _, w := range []int{4, 8, 16, 32, 64, 128, 256, 512} {
		add(0, 1, w, false)
	}
	for _, w := range []int{8, 32, 128} {
		add(0, 2, w, false)
	}
	failedID := ""
	if fx.failed {
		add(0, 2, 512, true)
		failedID = trials[len(trials)-1].id
	}

	// Three rounds of bisection in log width at depth 1.
	type decisionRow = map[string]any
	var decisions []decisionRow
	var chosen *fxTrial
	for round := 0; round < 3; round++ {
		var lo, hi *fxTrial
		for _, tr := range trials {
			if tr.depth != 1 || tr.failed {
				continue
			}
			if meets(tr) {
				if hi == nil || tr.params < hi.params {
					hi = tr
				}
			}
		}
		for _, tr := range trials {
			if tr.depth == 1 && !tr.failed && !meets(tr) && tr.params < hi.params && (lo == nil || tr.params > lo.params) {
				lo = tr
			}
		}
		chosen = hi
		status, action := "continue", "shrink"
		var proposals []int
		switch round {
		case 0:
			r := float64(hi.width) / float64(lo.width)
			proposals = []int{int(math.Round(float64(lo.width) * math.Pow(r, 1.0/3))), int(math.Round(float64(lo.width) * math.Pow(r, 2.0/3)))}
		case 1:
			proposals = []int{int(math.Round(math.Sqrt(float64(lo.width * hi.width))))}
		default:
			status, action = "converged", "stop"
		}
		reason := fmt.Sprintf("%s meets every requirement; trying widths between %s and it", hi.id, lo.id)
		if status == "converged" {
			reason = fmt.Sprintf("%s is the smallest model that meets %g within every cost limit; %s below it does not", hi.id, target, lo.id)
		}
		metric := "accuracy"
		if fx.regression {
			metric = "loss"
		}
		row := decisionRow{
			"round": round, "status": status, "action": action, "strategy": "smallest_meeting",
			"chosen_candidate_id": hi.id, "chosen_width": hi.width, "chosen_params": hi.params,
			"reason": reason, "metric": metric, "target": target, "chosen_measured": hi.q,
			"fit_points": len(trials), "fit_trusted": fx.fit && !fx.untrusted,
			"bracket_lo_width": lo.width, "bracket_hi_width": hi.width,
			"trials_used": len(trials), "trials_left": 30 - len(trials), "proposals": len(proposals),
			"pareto_front": "", "confidence": 0.9, "tolerance": 0.25,
			"fit_latency_coef": 2e-5, "fit_latency_exp": 0.55,
			"fit_bytes_coef": 4.0, "fit_bytes_exp": 1.0,
			"fit_train_coef": 1e-3, "fit_train_exp": 0.85,
		}
		if fx.fit {
			tr := fx.truth()
			n := float64(hi.params)
			pred := curveAt(metric, tr.qinf, tr.a, tr.alpha, n)
			for k, v := range map[string]float64{
				"fit_q_inf": tr.qinf, "fit_q_inf_lo": tr.qinf - 0.003, "fit_q_inf_hi": tr.qinf + 0.003,
				"fit_a": tr.a, "fit_a_lo": tr.a * 0.9, "fit_a_hi": tr.a * 1.1,
				"fit_alpha": tr.alpha, "fit_alpha_lo": tr.alpha - 0.03, "fit_alpha_hi": tr.alpha + 0.03,
				"fit_rmse": 0.0008, "fit_r2": 0.995,
				"predicted_accuracy": pred, "predicted_lo": pred - 0.004, "predicted_hi": pred + 0.004,
			} {
				row[k] = v
			}
		}
		decisions = append(decisions, row)
		for _, w := range proposals {
			add(round+1, 1, w, false)
		}
	}

	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	end := start.Add(42 * time.Second)
	run, err := runstore.Open(root).Create(runstore.Manifest{
		RunID: "20261128-120000-abc123", Pipeline: []string{"examples/fixture/pipeline.hcl"},
		Status: runstore.StatusSucceeded, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		StartedAt: start, FinishedAt: &end,
	})
	if err != nil {
		t.Fatal(err)
	}

	// requirements
	reqRow := map[string]any{
		"task": "classification", "metric": "accuracy", "min_accuracy": fxMinAcc,
		"max_latency_ms": fxMaxLatency, "max_params": fxMaxParams, "max_model_bytes": fxMaxBytes,
		"max_train_seconds": fxMaxTrain, "max_trials": 30, "max_wall_seconds": 900.0,
		"n_rows": 2000, "n_features": 2, "n_classes": 2, "cores": 2,
	}
	if fx.regression {
		delete(reqRow, "min_accuracy")
		reqRow["task"], reqRow["metric"], reqRow["max_loss"], reqRow["n_classes"] = "regression", "rmse", fxMaxLoss, nil
	}
	writePort(t, run, mem, "requirements.sla", "requirements", 0, tables.RequirementsSchema, []map[string]any{reqRow})

	// results, one file per round
	rounds := 0
	for _, tr := range trials {
		rounds = max(rounds, tr.round+1)
	}
	for round := 0; round < rounds; round++ {
		var rows []map[string]any
		for _, tr := range trials {
			if tr.round != round {
				continue
			}
			row := map[string]any{
				"candidate_id": tr.id, "round": tr.round, "family": "mlp", "depth": tr.depth, "width": tr.width,
				"params": tr.params, "flops": 2 * tr.params, "learning_rate": 0.01, "batch_size": 64, "epochs": 30,
				"preprocess": "standardize", "quantize": "none", "prune_fraction": 0.0,
				"status": "ok", "epochs_run": 30, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
			}
			if tr.failed {
				row["status"], row["error"] = "failed", "training diverged: loss is NaN after epoch 3"
			} else {
				p95 := tr.lat
				row["latency_p95_ms"], row["latency_p50_ms"] = p95, 0.8*p95
				row["throughput_per_s"] = 1000 / (0.8 * p95)
				row["model_bytes"], row["peak_bytes"] = tr.bytes, 20000+40*tr.params
				row["train_seconds"] = tr.train
				if fx.regression {
					row["loss"], row["rmse"], row["r2"] = tr.q, math.Sqrt(tr.q), 1-tr.q/0.5
				} else {
					row["accuracy"], row["loss"] = tr.q, 1-tr.q
				}
			}
			rows = append(rows, row)
		}
		writePort(t, run, mem, "evaluation.train", "results", round+1, tables.ResultsSchema, rows)
	}
	if fx.decisions {
		for i, row := range decisions {
			writePort(t, run, mem, "resize.fit", "decision", i+1, tables.DecisionSchema, []map[string]any{row})
		}
		last := decisions[len(decisions)-1]
		if err := run.Update(func(m *runstore.Manifest) {
			m.Decision = &runstore.Decision{Stage: "resize.fit", Rounds: len(decisions), Status: last["status"].(string),
				Reason: last["reason"].(string), Chosen: last["chosen_candidate_id"].(string)}
		}); err != nil {
			t.Fatal(err)
		}
	}
	fr := fixtureRun{run: run, target: target, trials: len(trials), rounds: len(decisions), failedID: failedID}
	if fx.decisions {
		fr.chosen, fr.chosenN = chosen.id, chosen.params
	}
	return fr
}

// writePort writes rows as one stage's port file of one round and records
// it in the manifest, as the runner does.
func writePort(t testing.TB, run *runstore.Run, mem memory.Allocator, stage, port string, round int, schema *arrow.Schema, rows []map[string]any) {
	t.Helper()
	b := buildRecord(t, mem, schema, rows)
	defer b.Release()
	rel := runstore.OutputRel(stage, round, port)
	pw := runstore.NewPortWriter(run.Path(rel), schema, mem)
	if err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
	n, size, sum, err := pw.Commit()
	if err != nil {
		t.Fatal(err)
	}
	err = run.UpdateStage(stage, func(s *runstore.StageRecord) {
		s.Kind, _, _ = strings.Cut(stage, ".")
		s.Status = "succeeded"
		s.Outputs = append(s.Outputs, runstore.OutputFile{Port: port, Round: round, Path: rel, Rows: n, Bytes: size, SHA256: sum})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// buildRecord fills a batch of schema from rows keyed by column name. A
// column a row leaves out is null, or the zero value when the column is
// not nullable; a key the schema lacks is a mistake in the test.
func buildRecord(t testing.TB, mem memory.Allocator, schema *arrow.Schema, rows []map[string]any) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, row := range rows {
		keys := make([]string, 0, len(row))
		for k := range row {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !schema.HasField(k) {
				t.Fatalf("fixture column %q is not in the schema", k)
			}
		}
		for i, f := range schema.Fields() {
			v := row[f.Name]
			if fv, ok := v.(float64); ok && math.IsNaN(fv) {
				v = nil
			}
			if v == nil && f.Nullable {
				b.Field(i).AppendNull()
				continue
			}
			switch fb := b.Field(i).(type) {
			case *array.Float64Builder:
				fb.Append(toFloat(v))
			case *array.Int64Builder:
				fb.Append(int64(toFloat(v)))
			case *array.Int32Builder:
				fb.Append(int32(toFloat(v)))
			case *array.StringBuilder:
				s, _ := v.(string)
				fb.Append(s)
			case *array.BooleanBuilder:
				x, _ := v.(bool)
				fb.Append(x)
			default:
				t.Fatalf("fixture: column %s has unsupported type %s", f.Name, f.Type)
			}
		}
	}
	return b.NewRecordBatch()
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	default:
		panic(fmt.Sprintf("fixture value %v of type %T", v, v))
	}
}
