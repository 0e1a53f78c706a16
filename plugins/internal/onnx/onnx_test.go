package onnx_test

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/onnx"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
)

// floatTol is how far a float32 model's output in ONNX Runtime may be from
// sweetspot's: 1e-5, relative above magnitude 1 (a regression target in the
// hundreds carries float32's relative precision, not an absolute one).
func floatTol(want float64) float64 { return 1e-5 * max(1, math.Abs(want)) }

// TestONNXRuntime trains real models on scikit-learn's datasets, exports
// them and runs them in ONNX Runtime, which judges the encoder: a float32
// model's outputs match sweetspot's predictions, an int8 model's classes
// agree with sweetspot's int8 predictions, and the test split's accuracy
// (or RMSE) from ONNX Runtime's outputs is the one sweetspot measures.
func TestONNXRuntime(t *testing.T) {
	ortDir(t)
	digits := classTable(t, "digits.csv.gz", 0)
	cancer := classTable(t, "breast_cancer.csv", 1)
	iris := classTable(t, "iris.csv", 1)
	diab := diabetes(t)
	cases := []struct {
		name   string
		t      *table
		prep   string
		hidden []int
		comp   nn.Compression
		// reread takes the model and the preprocessing back from their
		// serialized forms, as a model file holds them.
		reread bool
	}{
		{"digits/standardize/float32", digits, "standardize", []int{32}, nn.Compression{}, false},
		{"digits/standardize/float32_reread", digits, "standardize", []int{32}, nn.Compression{}, true},
		{"digits/standardize/int8", digits, "standardize", []int{32}, nn.Compression{Int8: true}, false},
		{"digits/standardize/pruned", digits, "standardize", []int{32}, nn.Compression{PruneFraction: 0.6}, false},
		{"digits/standardize/pruned_int8", digits, "standardize", []int{32}, nn.Compression{PruneFraction: 0.6, Int8: true}, false},
		{"digits/standardize+pca/int8", digits, "standardize+pca:0.9", []int{24, 16}, nn.Compression{Int8: true}, false},
		{"digits/standardize+pca/int8_reread", digits, "standardize+pca:0.9", []int{24, 16}, nn.Compression{Int8: true}, true},
		{"cancer/minmax/float32", cancer, "minmax", []int{16, 16}, nn.Compression{}, false},
		{"iris/none/linear", iris, "none", nil, nn.Compression{}, false},
		{"diabetes/standardize+pca/float32", diab, "standardize+pca:0.99", []int{16}, nn.Compression{}, false},
		{"diabetes/standardize/pruned_int8", diab, "standardize", []int{16}, nn.Compression{PruneFraction: 0.3, Int8: true}, false},
	}
	// Train and export every model, run them all in one node process,
	// then judge each.
	models := make([]*trained, len(cases))
	jobs := make([]ortJob, len(cases))
	for i, c := range cases {
		tr := train(t, c.t, c.prep, c.hidden, c.comp)
		if c.reread {
			raw, err := tr.model.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			re := *tr
			if re.model, err = nn.UnmarshalCompact(raw); err != nil {
				t.Fatal(err)
			}
			if raw, err = tr.tf.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
			if re.tf, err = prep.DecodeTransform(raw); err != nil {
				t.Fatal(err)
			}
			tr = &re
		}
		model, err := onnx.Encode(tr.model, tr.tf, onnx.Options{Preprocessing: c.prep})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		models[i] = tr
		jobs[i] = ortJob{Model: model, X: c.t.x, Rows: c.t.rows, Cols: c.t.cols}
	}
	results := runORT(t, jobs)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, outs := models[i], results[i]
			want := predict(tr.model, tr.all)
			metrics, err := nn.Evaluate(tr.model, tr.test)
			if err != nil {
				t.Fatal(err)
			}
			if tr.model.Spec().Task == nn.Classification {
				checkClassifier(t, outs, want, tr, metrics, c.comp.Int8)
			} else {
				checkRegressor(t, outs, want, tr, metrics, c.comp.Int8)
			}
		})
	}
}

func checkClassifier(t *testing.T, outs map[string]ortOutput, want []float32, tr *trained, metrics nn.Metrics, int8 bool) {
	rows, k := tr.all.Rows, tr.model.Spec().Outputs
	logits := output(t, outs, onnx.Logits, "float32", rows, k)
	probs := output(t, outs, onnx.Probabilities, "float32", rows, k)
	class := output(t, outs, onnx.Class, "int64", rows)
	var worst float64
	agree := 0
	for r := range rows {
		z := want[r*k : (r+1)*k]
		// The softmax of sweetspot's logits, in float64.
		mx := float64(z[argmax(z)])
		var sum float64
		for _, v := range z {
			sum += math.Exp(float64(v) - mx)
		}
		for j, v := range z {
			d := math.Abs(logits[r*k+j] - float64(v))
			worst = max(worst, d/max(1, math.Abs(float64(v))))
			if !int8 && d > floatTol(float64(v)) {
				t.Fatalf("row %d logit %d: ONNX Runtime %g, sweetspot %g", r, j, logits[r*k+j], v)
			}
			if p := math.Exp(float64(v)-mx) / sum; !int8 && math.Abs(probs[r*k+j]-p) > 1e-5 {
				t.Fatalf("row %d probability %d: ONNX Runtime %g, softmax of sweetspot's logits %g", r, j, probs[r*k+j], p)
			}
		}
		if int(class[r]) == argmax(z) {
			agree++
		} else if !int8 {
			t.Errorf("row %d: ONNX Runtime's class %d, sweetspot's %d (logits %v)", r, int(class[r]), argmax(z), z)
		}
	}
	share := float64(agree) / float64(rows)
	t.Logf("%d rows: class agreement %.4f, largest logit difference %.3g (relative above 1)", rows, share, worst)
	if share < 0.999 {
		t.Errorf("ONNX Runtime agrees with sweetspot on the class of %d of %d rows (%.4f), want at least 99.9%%", agree, rows, share)
	}
	// The test split's accuracy from ONNX Runtime's classes.
	correct, n := 0, 0
	for r := range rows {
		if isTest(r) {
			n++
			if int32(class[r]) == tr.t.labels[r] {
				correct++
			}
		}
	}
	if acc := float64(correct) / float64(n); acc != metrics.Accuracy {
		t.Errorf("test accuracy from ONNX Runtime %.6f (%d of %d), sweetspot measured %.6f", acc, correct, n, metrics.Accuracy)
	}
	if metrics.Accuracy < 0.8 {
		t.Errorf("test accuracy %.3f: the model did not learn, so the comparison says little", metrics.Accuracy)
	}
}

func checkRegressor(t *testing.T, outs map[string]ortOutput, want []float32, tr *trained, metrics nn.Metrics, int8 bool) {
	rows := tr.all.Rows
	value := output(t, outs, onnx.Value, "float32", rows)
	var worst float64
	for r, v := range want {
		d := math.Abs(value[r] - float64(v))
		worst = max(worst, d/max(1, math.Abs(float64(v))))
		if d > floatTol(float64(v)) && !int8 {
			t.Fatalf("row %d: ONNX Runtime %g, sweetspot %g", r, value[r], v)
		}
		if int8 && d > 1e-3*max(1, math.Abs(float64(v))) {
			t.Errorf("row %d: int8 ONNX Runtime %g, sweetspot %g", r, value[r], v)
		}
	}
	var ss float64
	n := 0
	for r := range rows {
		if isTest(r) {
			d := value[r] - float64(tr.all.Targets[r])
			ss += d * d
			n++
		}
	}
	rmse := math.Sqrt(ss / float64(n))
	t.Logf("%d rows: largest difference %.3g (relative above 1); test RMSE %.6g (sweetspot %.6g)", rows, worst, rmse, metrics.RMSE)
	if math.Abs(rmse-metrics.RMSE) > 1e-5*metrics.RMSE {
		t.Errorf("test RMSE from ONNX Runtime %.8g, sweetspot measured %.8g", rmse, metrics.RMSE)
	}
	if metrics.R2 < 0.3 {
		t.Errorf("test R² %.3f: the model did not learn, so the comparison says little", metrics.R2)
	}
}

// foreign is a model of a backend the encoder does not know.
type foreign struct{ nn.Model }

// TestEncodeRefuses checks that what the graph cannot hold is refused with
// a message that names it.
func TestEncodeRefuses(t *testing.T) {
	iris := classTable(t, "iris.csv", 1)
	tr := train(t, iris, "standardize", []int{8}, nn.Compression{})
	other, err := prep.Fit(nil, iris.x, iris.rows, iris.cols) // "none": 4 features
	if err != nil {
		t.Fatal(err)
	}
	pcaFit, err := prep.Fit(prep.Spec{{Kind: prep.PCA, Variance: 0.5}}, iris.x, iris.rows, iris.cols)
	if err != nil {
		t.Fatal(err)
	}

	// A model whose last bias is NaN: its serialized form ends with it.
	raw, err := tr.model.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(raw[len(raw)-4:], math.Float32bits(float32(math.NaN())))
	nan, err := nn.UnmarshalCompact(raw)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name  string
		model nn.Model
		tf    *prep.Transform
		opt   onnx.Options
		want  string
	}{
		{"no model", nil, nil, onnx.Options{}, "no model"},
		{"foreign backend", foreign{tr.model}, nil, onnx.Options{}, "onnx_test.foreign has no layers"},
		{"prep output", tr.model, pcaFit, onnx.Options{}, "the preprocessing gives 1 features, the model takes 4 inputs"},
		{"feature names", tr.model, other, onnx.Options{Features: []string{"a", "b"}}, "2 feature names for 4 input columns"},
		{"class names", tr.model, other, onnx.Options{Classes: []string{"setosa"}}, "1 class names for a classification model of 3 outputs"},
		{"nan bias", nan, other, onnx.Options{}, "layer 2 (8→3) biases: value 2 is NaN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := onnx.Encode(c.model, c.tf, c.opt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Encode = %d bytes, %v; want an error saying %q", len(got), err, c.want)
			}
		})
	}
}
