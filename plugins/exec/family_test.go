package exec

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// echoTrainer is testdata/echo-trainer.sh: it keeps its stdin,
// candidate.json and environment in $OUT/<candidate_id>/ and reports
// params $REPORT_PARAMS (default 12345), flops 678 and gpu_hours.
func echoTrainer(t *testing.T) []string {
	t.Helper()
	p, err := filepath.Abs("testdata/echo-trainer.sh")
	if err != nil {
		t.Fatal(err)
	}
	return []string{p}
}

// received is what the echo trainer kept for one candidate.
type received struct {
	stdin, file string
	env         map[string]string
}

func receivedBy(t *testing.T, out, id string) received {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, id, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	r := received{stdin: read("stdin.json"), file: read("candidate.json"), env: map[string]string{}}
	for _, line := range strings.Split(read("env.txt"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			r.env[k] = v
		}
	}
	return r
}

// convnet is an axis family's candidate: depth, width and params 0, its
// shape in its knobs.
func convnet(id, name string, size float64, knobs tables.Knobs) tables.Candidate {
	return tables.Candidate{
		ID: id, Name: name, Family: "convnet", Kind: tables.KindAxis, Size: size, Round: 1,
		LearningRate: 0.01, BatchSize: 32, Epochs: 8, Preprocess: "none", Quantize: "none", Knobs: knobs,
	}
}

// An axis family's knobs reach the command by name: at the top level of
// the JSON object and as SWEETSPOT_<KNOB>, and all of them under "knobs".
// A knob named like a column is only under "knobs"; the column wins at the
// top level and in the environment. depth and width are columns of the mlp
// kind only, so an axis family's width knob is at the top level. The
// params the trainer reports is the row's.
func TestFamilyKnobs(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	s4 := convnet("convnet-s4", "convnet-s4", 4, tables.Knobs{
		"channels": 32.0, "layers": 3.0, "head": "gap", "flag": true, "width": 7.0,
		"epochs": 99.0, "Batch-Size": 5.0, "knobs": "x",
	})
	mlpCand := cand(4, 3, 1, 8)
	mlpCand.Knobs = tables.Knobs{"depth": 1.0, "width": 8.0}
	rs, err := run(t, context.Background(), Config{Command: echoTrainer(t), Env: map[string]string{"OUT": out}},
		stagetest.Inputs{InputPort: candidates(t, mem, s4, mlpCand)})
	if err != nil {
		t.Fatal(err)
	}

	got := receivedBy(t, out, "convnet-s4")
	want := `{"candidate_id":"convnet-s4","name":"convnet-s4","family":"convnet","family_kind":"axis","size":4,` +
		`"params":0,"flops":0,"learning_rate":0.01,"batch_size":32,"epochs":8,"preprocess":"none","quantize":"none",` +
		`"prune_fraction":0,"round":1,"repeat":0,` +
		`"Batch-Size":5,"channels":32,"flag":true,"head":"gap","layers":3,"width":7,` +
		`"knobs":{"Batch-Size":5,"channels":32,"epochs":99,"flag":true,"head":"gap","knobs":"x","layers":3,"width":7}}` + "\n"
	if diff := cmp.Diff(want, got.stdin); diff != "" {
		t.Errorf("stdin (-want +got):\n%s", diff)
	}
	if got.file != want {
		t.Errorf("candidate.json %q, want the stdin object", got.file)
	}
	if j := got.env["SWEETSPOT_CANDIDATE_JSON"] + "\n"; j != want {
		t.Errorf("SWEETSPOT_CANDIDATE_JSON %q, want the stdin object", j)
	}
	for k, v := range map[string]string{
		"SWEETSPOT_CANDIDATE_ID": "convnet-s4", "SWEETSPOT_NAME": "convnet-s4", "SWEETSPOT_FAMILY": "convnet",
		"SWEETSPOT_FAMILY_KIND": "axis", "SWEETSPOT_SIZE": "4", "SWEETSPOT_PARAMS": "0", "SWEETSPOT_ROUND": "1",
		"SWEETSPOT_CHANNELS": "32", "SWEETSPOT_LAYERS": "3", "SWEETSPOT_HEAD": "gap", "SWEETSPOT_FLAG": "true",
		"SWEETSPOT_WIDTH": "7",
		// Columns win over knobs of their name, or of their variable's.
		"SWEETSPOT_EPOCHS": "8", "SWEETSPOT_BATCH_SIZE": "32",
		"SWEETSPOT_KNOBS": `{"Batch-Size":5,"channels":32,"epochs":99,"flag":true,"head":"gap","knobs":"x","layers":3,"width":7}`,
	} {
		if got.env[k] != v {
			t.Errorf("%s=%q, want %q", k, got.env[k], v)
		}
	}
	if v, ok := got.env["SWEETSPOT_DEPTH"]; ok {
		t.Errorf("SWEETSPOT_DEPTH=%q for an axis candidate, want it unset", v)
	}

	// The mlp kind: depth and width are columns, its knobs of those names
	// only under "knobs".
	got = receivedBy(t, out, mlpCand.ID)
	want = `{"candidate_id":"mlp-d1-w8","name":"mlp-d1-w8","family":"mlp","family_kind":"mlp","size":8,"depth":1,"width":8,` +
		`"params":` + jsonNumber(mlpCand.Params) + `,"flops":` + jsonNumber(mlpCand.FLOPs) + `,"learning_rate":0.03,"batch_size":16,"epochs":5,` +
		`"preprocess":"standardize","quantize":"none","prune_fraction":0,"round":0,"repeat":0,"knobs":{"depth":1,"width":8}}` + "\n"
	if diff := cmp.Diff(want, got.stdin); diff != "" {
		t.Errorf("mlp stdin (-want +got):\n%s", diff)
	}
	if got.env["SWEETSPOT_DEPTH"] != "1" || got.env["SWEETSPOT_WIDTH"] != "8" || got.env["SWEETSPOT_KNOBS"] != `{"depth":1,"width":8}` {
		t.Errorf("mlp env: depth %q width %q knobs %q", got.env["SWEETSPOT_DEPTH"], got.env["SWEETSPOT_WIDTH"], got.env["SWEETSPOT_KNOBS"])
	}

	// The trainer's counts are the rows'; its own metric is not an error.
	for _, r := range rs {
		if r.Status != "ok" || r.Params != 12345 || r.FLOPs != 678 || r.Accuracy != 0.5 {
			t.Errorf("%s: %s %q params %d flops %d accuracy %g, want ok 12345 678 0.5", r.ID, r.Status, r.Error, r.Params, r.FLOPs, r.Accuracy)
		}
	}
	r := byID(rs)["convnet-s4"]
	if r.Name != "convnet-s4" || r.Kind != "axis" || r.Size != 4 || r.Knobs["channels"] != 32.0 {
		t.Errorf("the row lost the candidate's columns: %+v", r.Candidate)
	}
	a := attrs(trialSpan(t, "convnet-s4"))
	for k, v := range map[string]string{
		"candidate_id": "convnet-s4", "name": "convnet-s4", "family_kind": "axis", "size": "4", "params": "12345",
		"candidate_params": "0", "ignored_metrics": `["gpu_hours"]`, "status": "ok",
		"knobs": `{"Batch-Size":5,"channels":32,"epochs":99,"flag":true,"head":"gap","knobs":"x","layers":3,"width":7}`,
	} {
		if a[k] != v {
			t.Errorf("span attribute %s = %q, want %q", k, a[k], v)
		}
	}
}

func jsonNumber(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Spans are named by the model's name; a variant's (a quantized copy)
// adds its candidate_id, which is unique.
func TestSpanNames(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	base := convnet("convnet-s8", "convnet-s8", 8, tables.Knobs{"channels": 64.0})
	variant := base
	variant.ID, variant.Quantize = "convnet-s8-int8", "int8"
	rs, err := run(t, context.Background(), Config{Command: echoTrainer(t), Env: map[string]string{"OUT": out}},
		stagetest.Inputs{InputPort: candidates(t, mem, base, variant)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Status != "ok" {
			t.Fatalf("%s: %s %s", r.ID, r.Status, r.Error)
		}
	}
	for name, id := range map[string]string{"convnet-s8": "convnet-s8", "convnet-s8 (convnet-s8-int8)": "convnet-s8-int8"} {
		if got := attrs(trialSpan(t, name))["candidate_id"]; got != id {
			t.Errorf("span trial %s has candidate_id %q, want %q", name, got, id)
		}
	}
	if got := receivedBy(t, out, "convnet-s8-int8").env["SWEETSPOT_NAME"]; got != "convnet-s8" {
		t.Errorf("the variant's SWEETSPOT_NAME %q, want convnet-s8", got)
	}
	if got := progressMessage(byID(rs)["convnet-s8-int8"]); !strings.HasPrefix(got, "trial convnet-s8 (convnet-s8-int8): accuracy 0.5000") {
		t.Errorf("progress %q", got)
	}
}

// A reported params must be a parameter count; a candidate whose params is
// 0 needs one.
func TestReportedParams(t *testing.T) {
	cases := []struct {
		name, report string
		candParams   int64
		wantParams   int64
		wantErr      string
	}{
		{"replaces the candidate's", "12345", 99, 12345, ""},
		{"counted by the trainer", "12345", 0, 12345, ""},
		{"largest", "4611686018427387392", 0, 4611686018427387392, ""},
		{"null keeps the candidate's", "null", 99, 99, ""},
		{"zero", "0", 99, 0, "params is 0: want a parameter count: a whole number, at least 1 and below 2^62"},
		{"negative", "-3", 99, 0, "params is -3: want a parameter count"},
		{"fraction", "2.5", 99, 0, "params is 2.5: want a parameter count"},
		{"2^62", "4611686018427387904", 99, 0, "params is 4.611686018427388e+18: want a parameter count"},
		{"huge", "1e300", 99, 0, "params is 1e+300: want a parameter count"},
		{"text", `"12345"`, 99, 0, `params is "12345", want a number`},
		{"none for a count left to the trainer", "null", 0, 0, `no params: the candidate's params is 0, which leaves the count to the trainer, and the command reported none`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := checked(t)
			c := convnet("convnet-s2", "convnet-s2", 2, tables.Knobs{"channels": 8.0})
			c.Params = tc.candParams
			rs, err := run(t, context.Background(), Config{Command: echoTrainer(t), Env: map[string]string{"OUT": t.TempDir(), "REPORT_PARAMS": tc.report}},
				stagetest.Inputs{InputPort: candidates(t, mem, c)})
			if err != nil {
				t.Fatal(err)
			}
			r := rs[0]
			if tc.wantErr == "" {
				if r.Status != "ok" || r.Params != tc.wantParams {
					t.Errorf("got %s %q params %d, want ok with %d", r.Status, r.Error, r.Params, tc.wantParams)
				}
				return
			}
			if r.Status != "failed" || !strings.Contains(r.Error, tc.wantErr) {
				t.Errorf("got %s %q, want failed with %q", r.Status, r.Error, tc.wantErr)
			}
			if r.Params != tc.candParams {
				t.Errorf("failed row has params %d, want the candidate's %d", r.Params, tc.candParams)
			}
		})
	}
}

// Two sizes of an axis family differ only in size and knobs (depth, width
// and params are 0): they get different seeds, each the same in every run.
func TestAxisSeeds(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	s2 := convnet("convnet-s2", "convnet-s2", 2, tables.Knobs{"channels": 8.0})
	s4 := convnet("convnet-s4", "convnet-s4", 4, tables.Knobs{"channels": 16.0})
	seeds := func() (string, string) {
		rs, err := run(t, context.Background(), Config{Command: echoTrainer(t), Env: map[string]string{"OUT": out}},
			stagetest.Inputs{InputPort: candidates(t, mem, s2, s4)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Status != "ok" {
				t.Fatalf("%s: %s %s", r.ID, r.Status, r.Error)
			}
		}
		return receivedBy(t, out, s2.ID).env["SWEETSPOT_SEED"], receivedBy(t, out, s4.ID).env["SWEETSPOT_SEED"]
	}
	a2, a4 := seeds()
	b2, b4 := seeds()
	if a2 == "" || a2 == a4 || a2 != b2 || a4 != b4 {
		t.Errorf("seeds %s and %s, then %s and %s: want two different ones, the same in both runs", a2, a4, b2, b4)
	}
}

// Columns an upstream stage adds reach the command as they are, and win
// over a knob of their name; a seed column replaces SWEETSPOT_SEED.
func TestExtraColumns(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	c := convnet("convnet-s2", "convnet-s2", 2, tables.Knobs{"channels": 8.0, "teacher": "knob"})
	base := tables.BuildCandidates(mem, []tables.Candidate{c})
	defer base.Release()
	teacher := stringArray(mem, "column")
	defer teacher.Release()
	seed := int64Array(mem, 42)
	defer seed.Release()
	cols := append(append([]arrow.Array{}, base.Columns()...), teacher, seed)
	fields := append(append([]arrow.Field{}, base.Schema().Fields()...),
		arrow.Field{Name: "teacher", Type: arrow.BinaryTypes.String}, arrow.Field{Name: "seed", Type: arrow.PrimitiveTypes.Int64})
	b := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, 1)
	defer b.Release()
	rs, err := run(t, context.Background(), Config{Command: echoTrainer(t), Env: map[string]string{"OUT": out}},
		stagetest.Inputs{InputPort: {b}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Status != "ok" {
		t.Fatalf("%s %s", rs[0].Status, rs[0].Error)
	}
	got := receivedBy(t, out, c.ID)
	want := `"round":1,"repeat":0,"teacher":"column","seed":42,"channels":8,"knobs":{"channels":8,"teacher":"knob"}}` + "\n"
	if !strings.HasSuffix(got.stdin, want) {
		t.Errorf("stdin %s, want it to end with %s", got.stdin, want)
	}
	if got.env["SWEETSPOT_TEACHER"] != "column" || got.env["SWEETSPOT_SEED"] != "42" {
		t.Errorf("SWEETSPOT_TEACHER=%q SWEETSPOT_SEED=%q, want column and 42", got.env["SWEETSPOT_TEACHER"], got.env["SWEETSPOT_SEED"])
	}
}

func stringArray(mem memory.Allocator, v string) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Append(v)
	return b.NewArray()
}

func int64Array(mem memory.Allocator, v int64) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Append(v)
	return b.NewArray()
}
