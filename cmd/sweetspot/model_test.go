package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// A small search without a loop: four blobs classes, a float and an int8
// variant of two widths.
const modelPipeline = `
dataset "b" {
  generator     = "blobs"
  rows          = 400
  test_fraction = 0.25
  seed          = 3
}
stage "requirements" "r" {
  dataset      = dataset.b
  min_accuracy = 0.5
}
stage "model_choice" "m" {
  input = stage.requirements.r
  depth = [1]
  width = { min = 4, max = 8 }
  steps = 2
}
stage "optimization" "o" {
  input      = stage.model_choice.m
  dataset    = dataset.b
  preprocess = ["standardize"]
  quantize   = ["none", "int8"]
}
stage "evaluation" "e" {
  input           = stage.optimization.o
  dataset         = dataset.b
  epochs          = 5
  latency_samples = 3
}
`

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func column(t *testing.T, recs [][]string, name string) int {
	t.Helper()
	for i, h := range recs[0] {
		if h == name {
			return i
		}
	}
	t.Fatalf("no column %s in %v", name, recs[0])
	return -1
}

// Every trial keeps its model; `model predict` on the run's own dataset,
// as CSV, gives the test rows the accuracy each trial recorded (float32
// and int8); export writes the kept bytes; bad input columns and a
// damaged models file are refused, named; a cached run brings its models.
func TestModelExportAndPredict(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", modelPipeline)
	if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	m := onlyRun(t, dir)
	id := m.RunID
	runDir := filepath.Join(dir, runstore.DefaultRoot, id)
	var modelsFile, resultsFile string
	for _, s := range m.Stages {
		for _, f := range s.Outputs {
			if s.Addr == "evaluation.e" && f.Port == "models" {
				modelsFile = f.Path
			}
			if s.Addr == "evaluation.e" && f.Port == "results" {
				resultsFile = f.Path
			}
		}
	}
	if modelsFile == "" {
		t.Fatalf("the evaluation stage recorded no models port: %+v", m.Stages)
	}
	rb := readArrowFile(t, filepath.Join(runDir, resultsFile))
	results, err := tables.ReadResults(rb)
	rb.Release()
	if err != nil {
		t.Fatal(err)
	}
	mb := readArrowFile(t, filepath.Join(runDir, modelsFile))
	models, err := tables.ReadModels(mb)
	mb.Release()
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 4 || len(models) != len(results) {
		t.Fatalf("%d results and %d models; want at least 4 trials, one model each", len(results), len(models))
	}

	data := filepath.Join(dir, "data.csv")
	if r := sweetspot(t, dir, "runs", "export", id, "--port", "data", "--format", "csv", "-o", data); r.code != 0 {
		t.Fatalf("export data: exit %d\n%s", r.code, r.stderr)
	}
	rows := readCSV(t, data)
	split, target := column(t, rows, "split"), column(t, rows, "target")
	for _, res := range results {
		pred := filepath.Join(dir, res.ID+".csv")
		if r := sweetspot(t, dir, "model", "predict", id, res.ID, "--input", data, "-o", pred); r.code != 0 {
			t.Fatalf("predict %s: exit %d\n%s", res.ID, r.code, r.stderr)
		}
		got := readCSV(t, pred)
		class := column(t, got, "class")
		if len(got) != len(rows) {
			t.Fatalf("%s: %d prediction lines for %d input lines", res.ID, len(got), len(rows))
		}
		correct, n := 0, 0
		for i := 1; i < len(rows); i++ {
			if rows[i][split] != "test" {
				continue
			}
			n++
			if got[i][class] == rows[i][target] {
				correct++
			}
		}
		if acc := float64(correct) / float64(n); acc != res.Accuracy {
			t.Errorf("%s: predict gives the test rows accuracy %v, the trial recorded %v", res.ID, acc, res.Accuracy)
		}
	}

	// The native export is the kept file, byte for byte.
	want := models[0]
	out := filepath.Join(dir, "m.ssm")
	r := sweetspot(t, dir, "model", "export", id, want.ID, "--repeat", "0", "-o", out)
	if r.code != 0 {
		t.Fatalf("export: exit %d\n%s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(out); tables.Digest(got) != want.Digest || !strings.Contains(r.stdout, want.Digest) {
		t.Errorf("exported %s: digest %s, the run keeps %s; printed %q", want.ID, tables.Digest(got), want.Digest, r.stdout)
	}

	// ONNX: a protobuf ModelProto (field 1, ir_version, first) carrying
	// the input columns in its metadata.
	onnxOut := filepath.Join(dir, "m.onnx")
	if r := sweetspot(t, dir, "model", "export", id, want.ID, "--format", "onnx", "-o", onnxOut); r.code != 0 {
		t.Fatalf("export onnx: exit %d\n%s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(onnxOut); len(b) < 2 || b[0] != 0x08 || !strings.Contains(string(b), "sweetspot.features") {
		t.Errorf("the ONNX export is not an ONNX model with sweetspot's metadata (%d bytes)", len(b))
	}

	// A file without the model's columns: the file, what is missing and
	// what the model expects.
	bad := writeFile(t, dir, "bad.csv", "a,b,target\n1,2,0\n")
	r = sweetspot(t, dir, "model", "predict", id, want.ID, "--input", bad)
	if r.code != exitFailed || !strings.Contains(r.stderr, "bad.csv") || !strings.Contains(r.stderr, "no column x0, x1, x2, x3") || !strings.Contains(r.stderr, "the model takes 4 numeric columns, by name: x0, x1, x2, x3") {
		t.Errorf("wrong columns: exit %d, stderr %q", r.code, r.stderr)
	}
	text := writeFile(t, dir, "text.csv", "x0,x1,x2,x3\n1,2,3,4\n1,2,abc,4\n")
	r = sweetspot(t, dir, "model", "predict", id, want.ID, "--input", text)
	if r.code != exitFailed || !strings.Contains(r.stderr, "text.csv:3") || !strings.Contains(r.stderr, "x2") {
		t.Errorf("a value that is not a number: exit %d, stderr %q", r.code, r.stderr)
	}

	// The same pipeline again comes from the cache, models included.
	if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	ids, _ := runstore.Open(filepath.Join(dir, runstore.DefaultRoot)).IDs()
	var second string
	for _, x := range ids {
		if x != id {
			second = x
		}
	}
	r = sweetspot(t, dir, "model", "export", second, want.ID, "--repeat", "0", "-o", filepath.Join(dir, "cached.ssm"))
	if r.code != 0 || !strings.Contains(r.stdout, want.Digest) {
		t.Errorf("export from the cached run: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	// A damaged models file is refused, naming run, stage, port and file.
	path := filepath.Join(runDir, modelsFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	os.Chmod(path, 0o644)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	r = sweetspot(t, dir, "model", "export", id, want.ID, "-o", filepath.Join(dir, "damaged.ssm"))
	for _, s := range []string{"run " + id, "stage evaluation.e", "port models", modelsFile, "damaged"} {
		if r.code != exitFailed || !strings.Contains(r.stderr, s) {
			t.Errorf("damaged models file: exit %d, stderr %q lacks %q", r.code, r.stderr, s)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "damaged.ssm")); err == nil {
		t.Error("a model was exported from a damaged file")
	}
}

// An exec stage's trials keep the model.onnx their trainer wrote: export
// --format onnx writes its bytes as written, with their digest, from the
// run and from a run served by the cache; a foreign model is refused, and
// said so, by a native export and by predict.
func TestModelExportArtifact(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "train.sh", `printf 'onnx bytes of %s\000\377' "$SWEETSPOT_CANDIDATE_ID" > model.onnx
echo '{"accuracy": 0.5, "loss": 1.0}'
`)
	writeFile(t, dir, "p.hcl", `
dataset "d" {
  generator = "blobs"
  rows      = 200
}
stage "requirements" "r" {
  dataset = dataset.d
}
stage "model_choice" "m" {
  input = stage.requirements.r
  width = { min = 4, max = 8 }
  steps = 2
}
stage "exec" "e" {
  input    = stage.model_choice.m
  command  = ["sh", "train.sh"]
  artifact = "model.onnx"
}
`)
	for i := range 2 {
		if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, r.code, r.stderr)
		}
	}
	runs := runIDs(t, dir)
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	for _, s := range loadRun(t, dir, runs[1]).Stages {
		if src := s.Executions[0].Source; s.Addr == "exec.e" && src == "ran" {
			t.Errorf("stage %s ran again; want it from the cache", s.Addr)
		}
	}
	want := []byte("onnx bytes of mlp-d1-w4\x00\xff")
	sum := sha256.Sum256(want)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	for _, id := range runs {
		out := filepath.Join(dir, id+".onnx")
		r := sweetspot(t, dir, "model", "export", id, "mlp-d1-w4", "--format", "onnx", "-o", out)
		if r.code != 0 {
			t.Fatalf("export %s: exit %d\n%s", id, r.code, r.stderr)
		}
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("run %s: exported %q (%v), want %q", id, got, err, want)
		}
		if !strings.Contains(r.stdout, fmt.Sprintf("(onnx), %d bytes, %s", len(want), digest)) {
			t.Errorf("run %s: export printed %q, want the size and %s", id, r.stdout, digest)
		}
	}
	id := runs[0]
	r := sweetspot(t, dir, "model", "export", id, "mlp-d1-w4", "--format", "native", "-o", filepath.Join(dir, "x.ssm"))
	if r.code != exitInvalid || !strings.Contains(r.stderr, "model mlp-d1-w4 is a trainer's artifact (model.onnx, format onnx)") ||
		!strings.Contains(r.stderr, "not a foreign one natively; export it as it is with --format onnx") {
		t.Errorf("native export of an ONNX artifact: exit %d, %q", r.code, r.stderr)
	}
	writeFile(t, dir, "rows.csv", "x0,x1\n1,2\n")
	r = sweetspot(t, dir, "model", "predict", id, "mlp-d1-w4", "--input", filepath.Join(dir, "rows.csv"))
	if r.code != exitInvalid || !strings.Contains(r.stderr, "run it in ONNX Runtime") {
		t.Errorf("predict with an ONNX artifact: exit %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.ssm")); err == nil {
		t.Error("a refused export wrote its file")
	}
}
