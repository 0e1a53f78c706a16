package evaluation

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prune"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// diagText is every diagnostic of err, "path: summary | detail" a line.
func diagText(err error) string {
	var ds sdk.Diagnostics
	if !errors.As(err, &ds) {
		return ""
	}
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(strings.Join(d.Path, ".") + ": " + d.Summary + " | " + d.Detail + "\n")
	}
	return b.String()
}

// epochCurves runs the stage under a span of its own and returns each
// trial's validation accuracy and loss per epoch, read from its span's
// epoch events.
func epochCurves(t *testing.T, cfg Config, in stagetest.Inputs) (rs []tables.Result, out *stagetest.Outputs, acc, loss map[string][]float64) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := provider.Tracer("test").Start(context.Background(), "stage evaluation.pruning")
	out, err = stagetest.Run(t, ctx, Info(), st, in)
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	if rs, err = tables.ReadResults(concatBatches(t, out.Batches(OutputPort))); err != nil {
		t.Fatal(err)
	}
	acc, loss = map[string][]float64{}, map[string][]float64{}
	for _, s := range spans.Ended() {
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			continue
		}
		id := strings.TrimPrefix(s.Name(), "trial ")
		acc[id], loss[id] = []float64{}, []float64{}
		for _, e := range s.Events() {
			if e.Name != "epoch" {
				continue
			}
			for _, kv := range e.Attributes {
				switch kv.Key {
				case "val_accuracy":
					acc[id] = append(acc[id], kv.Value.AsFloat64())
				case "val_loss":
					loss[id] = append(loss[id], kv.Value.AsFloat64())
				}
			}
		}
	}
	return rs, out, acc, loss
}

// TestMedianPrunerStopsTrials trains four candidates one at a time,
// first without a pruner, then with the median pruner (two warm-up
// trials). Training is deterministic, so the pruned run's curves are the
// first run's, cut short: the epoch each later trial is stopped at is
// worked out from the first run's curves with the median rule (the mean
// of the two values of a and b, the finished trials, at the same epoch),
// apart from the pruner.
func TestMedianPrunerStopsTrials(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 400, 3, 0.25, 0.25)
	mk := func(id string, width int32, lr float64) tables.Candidate {
		c := cand(4, 3, 1, width, lr, 8)
		c.ID, c.Name = "prune-"+id, "prune-"+id
		return c
	}
	cs := []tables.Candidate{mk("a", 8, 1e-2), mk("b", 16, 1e-2), mk("c", 8, 1e-5), mk("d", 12, 1e-2)}
	in := func() stagetest.Inputs {
		return stagetest.Inputs{InputPort: candidates(t, mem, cs...), DatasetPort: ds}
	}
	base := Config{LatencySamples: ptr(5), Patience: ptr(0), Parallelism: ptr(1)}
	_, _, acc, loss := epochCurves(t, base, in())

	// Expected by hand from the unpruned curves.
	bar := func(e int) float64 { return (acc["prune-a"][e] + acc["prune-b"][e]) / 2 }
	// The last epoch's verdict stops nothing: a trial that reaches it ran
	// its budget.
	prunedAt := func(id string) int {
		best := math.Inf(-1)
		for e, v := range acc[id][:len(acc[id])-1] {
			best = max(best, v)
			if best < bar(e) {
				return e + 1
			}
		}
		return 0
	}
	wantC, wantD := prunedAt("prune-c"), prunedAt("prune-d")
	if wantC == 0 {
		t.Fatalf("the slow candidate c (val accuracy %v) is never below the median (a %v, b %v): the test proves nothing", acc["prune-c"], acc["prune-a"], acc["prune-b"])
	}

	withPruner := base
	withPruner.Pruner = &prune.Block{Kind: prune.KindMedian, WarmupTrials: ptr(2)}
	rs, out, _, _ := epochCurves(t, withPruner, in())
	got := byID(rs)
	for _, id := range []string{"prune-a", "prune-b"} {
		if r := got[id]; r.Status != tables.StatusOK || r.EpochsRun != 8 {
			t.Errorf("%s: status %s after %d epochs, want ok after 8 (a warm-up trial)", id, r.Status, r.EpochsRun)
		}
	}
	check := func(id string, want int) {
		r := got[id]
		if want == 0 {
			if r.Status != tables.StatusOK || r.EpochsRun != 8 {
				t.Errorf("%s: status %s after %d epochs, want ok after 8", id, r.Status, r.EpochsRun)
			}
			return
		}
		if r.Status != tables.StatusPruned || int(r.EpochsRun) != want || r.StoppedBy != "pruner" || !strings.Contains(r.Error, "median pruner") {
			t.Errorf("%s: status %s, epochs_run %d, stopped_by %q, error %q; want pruned at epoch %d by the median pruner", id, r.Status, r.EpochsRun, r.StoppedBy, r.Error, want)
		}
		// Its last values: the best weights of the epochs it ran.
		bestLoss := math.Inf(1)
		for _, v := range loss[id][:want] {
			bestLoss = min(bestLoss, v)
		}
		if r.ValLoss != bestLoss || math.IsNaN(r.Accuracy) {
			t.Errorf("%s: val_loss %g, accuracy %g; want the best val_loss %g of its %d epochs and a test accuracy", id, r.ValLoss, r.Accuracy, bestLoss, want)
		}
	}
	check("prune-c", wantC)
	check("prune-d", wantD)
	models, err := tables.ReadModels(concatBatches(t, out.Batches(ModelsPort)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range models {
		if r := got[m.ID]; r.Status != tables.StatusOK {
			t.Errorf("a model is kept for %s, whose trial is %s", m.ID, r.Status)
		}
	}

	// Resumed, a pruned trial is not trained again: its row comes back
	// as journalled.
	resume := tables.BuildResults(mem, []tables.Result{got["prune-c"]})
	defer resume.Release()
	r2 := in()
	r2[ResumePort] = []arrow.RecordBatch{resume}
	rs, _, acc, _ = epochCurves(t, withPruner, r2)
	if _, trained := acc["prune-c"]; trained {
		t.Error("the pruned trial c was trained again on resume")
	}
	if r := byID(rs)["prune-c"]; r.Status != tables.StatusPruned || r.TraceID != got["prune-c"].TraceID {
		t.Errorf("resumed c: %s (trace %s), want the journalled pruned row", r.Status, r.TraceID)
	}
}

func TestPrunerConfig(t *testing.T) {
	for _, tc := range []struct {
		block prune.Block
		want  string
	}{
		{prune.Block{Kind: "median", Metric: "val_los"}, `pruner.metric: Unknown pruner metric | The evaluation stage's pruner judges each epoch's accuracy or val_loss on the validation rows; found "val_los". Did you mean "val_loss"?`},
		{prune.Block{Kind: "asha", Grace: ptr(time.Second)}, "pruner.grace: Attribute of another stage"},
		{prune.Block{Kind: "mediam"}, `pruner: Unknown pruner`},
	} {
		_, err := New(Config{Pruner: &tc.block})
		if err == nil || !strings.Contains(diagText(err), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.block, diagText(err), tc.want)
		}
	}
	if _, err := New(Config{Pruner: &prune.Block{Kind: "asha", Metric: "val_loss"}, NoisePatience: ptr(true)}); err != nil {
		t.Errorf("a val_loss asha pruner: %v", err)
	}
}
