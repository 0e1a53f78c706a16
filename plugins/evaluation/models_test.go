package evaluation

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/modelfile"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Every ok trial keeps its model, a failed one none; each kept file,
// decoded, predicts the raw test rows to the accuracy its results row
// records (float32, int8 and pruned alike); and a resumed stage writes
// the journalled models again without training their trials.
func TestModelsKept(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 400, 6, 0.25, 0)
	base := cand(4, 3, 1, 16, 1e-2, 6)
	q := base
	q.ID, q.Quantize = base.ID+"-int8", "int8"
	p := base
	p.ID, p.PruneFraction, p.Preprocess = base.ID+"-p50", 0.5, "minmax"
	p.Params = 0
	bad := cand(4, 3, 1, 16, 1e-2, 6)
	bad.ID, bad.Family = "bad", "convnet"
	st, err := New(Config{LatencySamples: ptr(5)})
	if err != nil {
		t.Fatal(err)
	}
	in := stagetest.Inputs{InputPort: candidates(t, mem, base, q, p, bad), DatasetPort: ds}
	out, err := stagetest.Run(t, context.Background(), Info(), st, in)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := tables.ReadResults(concatBatches(t, out.Batches(OutputPort)))
	if err != nil {
		t.Fatal(err)
	}
	models, err := tables.ReadModels(concatBatches(t, out.Batches(ModelsPort)))
	if err != nil {
		t.Fatal(err)
	}
	byTrial := map[string]tables.Model{}
	for _, m := range models {
		byTrial[trialKey(tables.Candidate{ID: m.ID, Round: m.Round, Repeat: m.Repeat})] = m
	}
	if len(models) != 3 || len(byTrial) != 3 {
		t.Fatalf("%d models rows (%d trials), want one per ok trial: 3", len(models), len(byTrial))
	}

	rd, err := array.NewRecordReader(ds[0].Schema(), ds)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := prep.ReadDataset(DatasetPort, rd)
	rd.Release()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		m, ok := byTrial[trialKey(r.Candidate)]
		if r.Status != tables.StatusOK {
			if ok {
				t.Errorf("failed trial %s has a model", r.ID)
			}
			continue
		}
		if !ok {
			t.Fatalf("ok trial %s has no model", r.ID)
		}
		if m.Format != tables.FormatSweetspotMLP || m.Quantize != r.Quantize || m.PruneFraction != r.PruneFraction || m.Accuracy != r.Accuracy {
			t.Errorf("%s: models row %+v does not match its result", r.ID, m)
		}
		f, err := modelfile.Decode(m.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", r.ID, err)
		}
		classes, _, err := f.Predict(raw.Test.X, raw.Test.N)
		if err != nil {
			t.Fatal(err)
		}
		correct := 0
		for i, k := range classes {
			if k == raw.Test.Labels[i] {
				correct++
			}
		}
		if got := float64(correct) / float64(raw.Test.N); got != r.Accuracy {
			t.Errorf("%s: the kept model predicts accuracy %v, the trial recorded %v", r.ID, got, r.Accuracy)
		}
	}

	// Resume: the first two trials finished (their rows journalled, with
	// marks no training gives); they are not trained again and their
	// models come back byte for byte.
	var journal []tables.Result
	var kept []tables.Model
	for _, r := range rs {
		if r.ID == base.ID || r.ID == q.ID {
			r.TraceID = "journalled"
			journal = append(journal, r)
			kept = append(kept, byTrial[trialKey(r.Candidate)])
		}
	}
	jr, jm := tables.BuildResults(mem, journal), tables.BuildModels(mem, kept)
	defer jr.Release()
	defer jm.Release()
	st, _ = New(Config{LatencySamples: ptr(5)})
	in[ResumePort], in[ResumeModelsPort] = []arrow.RecordBatch{jr}, []arrow.RecordBatch{jm}
	out, err = stagetest.Run(t, context.Background(), Info(), st, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := tables.ReadModels(concatBatches(t, out.Batches(ModelsPort)))
	if err != nil {
		t.Fatal(err)
	}
	rs2, _ := tables.ReadResults(concatBatches(t, out.Batches(OutputPort)))
	for _, r := range rs2 {
		if (r.ID == base.ID || r.ID == q.ID) != (r.TraceID == "journalled") {
			t.Errorf("%s: trace %q: a finished trial was trained again, or an unfinished one not", r.ID, r.TraceID)
		}
	}
	if len(again) != 3 {
		t.Fatalf("resumed: %d models rows, want 3", len(again))
	}
	for _, m := range again {
		if m.ID == base.ID || m.ID == q.ID {
			if m.Digest != byTrial[trialKey(tables.Candidate{ID: m.ID})].Digest {
				t.Errorf("%s: the journalled model changed on resume", m.ID)
			}
		}
	}
}
