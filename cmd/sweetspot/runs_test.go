package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sweetspot-ml/sweetspot/internal/telemetry"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// These tests write run directories as the runner does, with the tables'
// real builders, and read them back through the binary: a run over a zoo
// of named models, and one written before models had names.

// storeBatch writes one batch as a stage's port file of one round and
// records it in the manifest.
func storeBatch(t *testing.T, run *runstore.Run, stage, port string, round int, b arrow.RecordBatch) {
	t.Helper()
	defer b.Release()
	rel := runstore.OutputRel(stage, round, port)
	pw := runstore.NewPortWriter(run.Path(rel), b.Schema(), memory.DefaultAllocator)
	if err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
	n, size, sum, err := pw.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.UpdateStage(stage, func(s *runstore.StageRecord) {
		s.Kind, _, _ = strings.Cut(stage, ".")
		s.Status = runstore.StatusSucceeded
		s.Outputs = append(s.Outputs, runstore.OutputFile{Port: port, Round: round, Path: rel, Rows: n, Bytes: size, SHA256: sum})
	}); err != nil {
		t.Fatal(err)
	}
}

// decisionBatch is one decision row of schema (tables.DecisionSchema or
// an older one without some of its columns): every column null or zero but
// the ones given.
func decisionBatch(t *testing.T, schema *arrow.Schema, values map[string]any) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, f := range schema.Fields() {
		v, ok := values[f.Name]
		switch fb := b.Field(i).(type) {
		case *array.StringBuilder:
			if ok {
				fb.Append(v.(string))
			} else if f.Nullable {
				fb.AppendNull()
			} else {
				fb.Append("")
			}
		case *array.Int64Builder:
			if ok {
				fb.Append(v.(int64))
			} else {
				fb.AppendNull()
			}
		case *array.Int32Builder:
			if ok {
				fb.Append(int32(v.(int)))
			} else if f.Nullable {
				fb.AppendNull()
			} else {
				fb.Append(0)
			}
		case *array.Float64Builder:
			if ok {
				fb.Append(v.(float64))
			} else {
				fb.AppendNull()
			}
		default:
			if f.Nullable {
				fb.AppendNull()
			} else {
				fb.AppendEmptyValue()
			}
		}
	}
	return b.NewRecordBatch()
}

// without returns schema without the named columns: a table as stages
// wrote it before those columns existed.
func without(schema *arrow.Schema, names ...string) *arrow.Schema {
	var keep []arrow.Field
	for _, f := range schema.Fields() {
		drop := false
		for _, n := range names {
			drop = drop || f.Name == n
		}
		if !drop {
			keep = append(keep, f)
		}
	}
	return arrow.NewSchema(keep, nil)
}

// project keeps the columns of schema from b.
func project(t *testing.T, b arrow.RecordBatch, schema *arrow.Schema) arrow.RecordBatch {
	t.Helper()
	defer b.Release()
	var cols []arrow.Array
	for _, f := range schema.Fields() {
		cols = append(cols, b.Column(b.Schema().FieldIndices(f.Name)[0]))
	}
	return array.NewRecordBatch(schema, cols, b.NumRows())
}

const zooRunID = "20261205-100000-a1b2c3"

// writeZooRun writes a converged run whose results hold named models of
// two table families, big-model (35,690,000 params) the chosen one, and
// big-model's int8 variant.
func writeZooRun(t *testing.T, dir string) *runstore.Run {
	t.Helper()
	run, err := runstore.Open(filepath.Join(dir, runstore.DefaultRoot)).Create(runstore.Manifest{RunID: zooRunID, Status: runstore.StatusSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	result := func(id, name, family string, params int64, acc float64) tables.Result {
		r := tables.NewResult(tables.Candidate{ID: id, Name: name, Family: family, Kind: tables.KindTable, Size: float64(params), Params: params, Quantize: tables.None})
		r.Status, r.Accuracy, r.LatencyP95Ms, r.TrainSeconds = tables.StatusOK, acc, 0.5, 12
		return r
	}
	int8 := result("big-model-int8", "big-model", "zoo", 35_690_000, 0.949)
	int8.Quantize = "int8"
	storeBatch(t, run, "replay.zoo", "results", 1, tables.BuildResults(memory.DefaultAllocator, []tables.Result{
		result("small-model", "small-model", "zoo", 50_000, 0.80),
		result("big-model", "big-model", "zoo", 35_690_000, 0.951),
		int8,
		result("huge-model", "huge-model", "zoo", 1_200_000_000, 0.97),
		result("vit-b", "vit-b", "vit", 86_000_000, 0.955),
	}))
	storeBatch(t, run, "resize.fit", "decision", 1, decisionBatch(t, tables.DecisionSchema, map[string]any{
		tables.ColStatus: tables.DecisionConverged, tables.ColChosenCandidateID: "big-model",
		tables.ColChosenName: "big-model", tables.ColChosenFamily: "zoo", tables.ColChosenParams: int64(35_690_000),
		tables.ColReason: "the smallest model that meets 0.95",
	}))
	if err := run.Update(func(m *runstore.Manifest) {
		m.Decision = &runstore.Decision{Stage: "resize.fit", Rounds: 1, Status: tables.DecisionConverged, Chosen: "big-model"}
	}); err != nil {
		t.Fatal(err)
	}
	return run
}

const oldRunID = "20251205-100000-d4e5f6"

// writeOldRun writes a run as stages wrote it before the name,
// family_kind, size, knobs, chosen_name and chosen_family columns.
func writeOldRun(t *testing.T, dir string) *runstore.Run {
	t.Helper()
	run, err := runstore.Open(filepath.Join(dir, runstore.DefaultRoot)).Create(runstore.Manifest{RunID: oldRunID, Status: runstore.StatusSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	result := func(id string, width int32, params int64, acc float64) tables.Result {
		r := tables.NewResult(tables.Candidate{ID: id, Family: tables.FamilyMLP, Depth: 1, Width: width, Params: params})
		r.Status, r.Accuracy = tables.StatusOK, acc
		return r
	}
	old := without(tables.ResultsSchema, tables.ColName, tables.ColFamilyKind, tables.ColSize, tables.ColKnobs)
	storeBatch(t, run, "evaluation.train", "results", 1, project(t,
		tables.BuildResults(memory.DefaultAllocator, []tables.Result{result("mlp-d1-w16", 16, 82, 0.9), result("mlp-d1-w64", 64, 322, 0.96)}), old))
	storeBatch(t, run, "resize.fit", "decision", 1, decisionBatch(t, without(tables.DecisionSchema, tables.ColChosenName, tables.ColChosenFamily), map[string]any{
		tables.ColStatus: tables.DecisionConverged, tables.ColChosenCandidateID: "mlp-d1-w64", tables.ColChosenParams: int64(322),
		tables.ColReason: "mlp-d1-w64 meets 0.95",
	}))
	if err := run.Update(func(m *runstore.Manifest) {
		m.Decision = &runstore.Decision{Stage: "resize.fit", Rounds: 1, Status: tables.DecisionConverged, Chosen: "mlp-d1-w64"}
	}); err != nil {
		t.Fatal(err)
	}
	return run
}

// trialsTable parses the trials table of a stage that runs show printed:
// each row's cells by header, and the chosen row's model.
func trialsTable(t *testing.T, out, stage string) (rows []map[string]string, chosen string) {
	t.Helper()
	i := strings.Index(out, "trials of "+stage+":\n")
	if i < 0 {
		t.Fatalf("no trials of %s in:\n%s", stage, out)
	}
	lines := strings.Split(out[i:], "\n")[1:]
	// Two headers are two words.
	head := strings.Fields(strings.NewReplacer("P95 MS", "P95_MS", "TRAIN S", "TRAIN_S").Replace(lines[0]))
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		f := strings.Fields(l)
		mark := f[0] == "*"
		if mark {
			f = f[1:]
		}
		if len(f) != len(head) {
			t.Fatalf("row %q has %d cells for %d headers %q", l, len(f), len(head), head)
		}
		row := map[string]string{}
		for j, h := range head {
			row[h] = f[j]
		}
		if mark {
			chosen = row["MODEL"]
		}
		rows = append(rows, row)
	}
	return rows, chosen
}

func TestRunsShowNamesModelsWithFamilyAndParams(t *testing.T) {
	dir := t.TempDir()
	writeZooRun(t, dir)
	r := sweetspot(t, dir, "runs", "show", zooRunID)
	if r.code != 0 {
		t.Fatalf("runs show: exit %d\n%s", r.code, r.stderr)
	}
	rows, chosen := trialsTable(t, r.stdout, "replay.zoo")
	// Ordered by size; the variant named by its model's name, told apart
	// by its candidate id.
	want := []map[string]string{
		{"ROUND": "0", "MODEL": "small-model", "CANDIDATE": "small-model", "FAMILY": "zoo", "PARAMS": "50k", "ACCURACY": "0.8000"},
		{"ROUND": "0", "MODEL": "big-model", "CANDIDATE": "big-model", "FAMILY": "zoo", "PARAMS": "35.69M", "ACCURACY": "0.9510"},
		{"ROUND": "0", "MODEL": "big-model", "CANDIDATE": "big-model-int8", "FAMILY": "zoo", "PARAMS": "35.69M", "ACCURACY": "0.9490"},
		{"ROUND": "0", "MODEL": "vit-b", "CANDIDATE": "vit-b", "FAMILY": "vit", "PARAMS": "86M", "ACCURACY": "0.9550"},
		{"ROUND": "0", "MODEL": "huge-model", "CANDIDATE": "huge-model", "FAMILY": "zoo", "PARAMS": "1.2B", "ACCURACY": "0.9700"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d trials shown, want %d:\n%s", len(rows), len(want), r.stdout)
	}
	for i, w := range want {
		for k, v := range w {
			if rows[i][k] != v {
				t.Errorf("trial %d: %s is %q, want %q", i, k, rows[i][k], v)
			}
		}
	}
	if chosen != "big-model" {
		t.Errorf("the chosen row is %q, want big-model", chosen)
	}
	for _, line := range []string{
		"resize.fit round 1: converged, chosen big-model (zoo, 35.69M params)\n",
		"decision: converged after 1 round(s): big-model (zoo, 35.69M params)\n",
	} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("runs show lacks the line %q:\n%s", line, r.stdout)
		}
	}
}

func TestRunsShowOfARunBeforeNames(t *testing.T) {
	dir := t.TempDir()
	writeOldRun(t, dir)
	r := sweetspot(t, dir, "runs", "show", oldRunID)
	if r.code != 0 {
		t.Fatalf("runs show: exit %d\n%s", r.code, r.stderr)
	}
	rows, chosen := trialsTable(t, r.stdout, "evaluation.train")
	if len(rows) != 2 || rows[0]["MODEL"] != "mlp-d1-w16" || rows[1]["MODEL"] != "mlp-d1-w64" {
		t.Errorf("an old run's models are not named by their ids: %v", rows)
	}
	for _, row := range rows {
		if _, ok := row["CANDIDATE"]; ok {
			t.Error("a candidate column, though every id is its model's name")
		}
		if row["FAMILY"] != "mlp" {
			t.Errorf("family %q, want mlp", row["FAMILY"])
		}
	}
	if rows[1]["PARAMS"] != "322" || chosen != "mlp-d1-w64" {
		t.Errorf("rows %v, chosen %q", rows, chosen)
	}
	for _, line := range []string{
		"resize.fit round 1: converged, chosen mlp-d1-w64 (mlp, 322 params)\n",
		"decision: converged after 1 round(s): mlp-d1-w64 (mlp, 322 params)\n",
	} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("runs show lacks the line %q:\n%s", line, r.stdout)
		}
	}
}

// The summary a run ends with names the chosen model as runs show does.
func TestRunSummaryNamesTheChosenModel(t *testing.T) {
	dir := t.TempDir()
	run := writeZooRun(t, dir)
	m := run.Manifest()
	var out bytes.Buffer
	printSummary(&out, run, &m, telemetry.Config{})
	if want := "decision: converged after 1 round(s), chosen big-model (zoo, 35.69M params)"; !strings.Contains(out.String(), want) {
		t.Errorf("the summary lacks %q:\n%s", want, out.String())
	}
	rows, chosen := trialsTable(t, out.String(), "replay.zoo")
	if len(rows) != 5 || chosen != "big-model" || rows[4]["PARAMS"] != "1.2B" {
		t.Errorf("summary trials %v, chosen %q", rows, chosen)
	}
}

func TestRunsExportKeepsNamesAndExactParams(t *testing.T) {
	dir := t.TempDir()
	writeZooRun(t, dir)
	// params of each model, by candidate id, as exported.
	want := map[string]int64{"small-model": 50_000, "big-model": 35_690_000, "big-model-int8": 35_690_000, "huge-model": 1_200_000_000, "vit-b": 86_000_000}
	check := func(format string, ids, names []string, params []int64) {
		t.Helper()
		if len(ids) != len(want) {
			t.Fatalf("%s: %d rows, want %d", format, len(ids), len(want))
		}
		for i, id := range ids {
			if params[i] != want[id] {
				t.Errorf("%s: %s has params %d, want %d", format, id, params[i], want[id])
			}
			if wantName := strings.TrimSuffix(id, "-int8"); names[i] != wantName {
				t.Errorf("%s: %s is named %q, want %q", format, id, names[i], wantName)
			}
		}
	}
	for _, format := range []string{"csv", "arrow", "parquet"} {
		out := filepath.Join(dir, "results."+format)
		if r := sweetspot(t, dir, "runs", "export", zooRunID, "--format", format, "-o", out); r.code != 0 {
			t.Fatalf("export %s: exit %d\n%s", format, r.code, r.stderr)
		}
		var ids, names []string
		var params []int64
		switch format {
		case "csv":
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(f).ReadAll()
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			col := map[string]int{}
			for i, h := range recs[0] {
				col[h] = i
			}
			for _, rec := range recs[1:] {
				ids, names = append(ids, rec[col[tables.ColCandidateID]]), append(names, rec[col[tables.ColName]])
				// The exact count, as digits: never 3.569e+07.
				if p := rec[col[tables.ColParams]]; strings.ContainsAny(p, ".eE") {
					t.Errorf("csv: params written as %q", p)
				}
				var p int64
				for _, c := range rec[col[tables.ColParams]] {
					p = p*10 + int64(c-'0')
				}
				params = append(params, p)
			}
		case "arrow", "parquet":
			var b arrow.RecordBatch
			if format == "arrow" {
				b = readArrowFile(t, out)
			} else {
				b = readParquet(t, out)
			}
			rs, err := tables.ReadResults(b)
			b.Release()
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			for _, r := range rs {
				ids, names, params = append(ids, r.ID), append(names, r.Name), append(params, r.Params)
			}
		}
		check(format, ids, names, params)
	}
}

func readParquet(t *testing.T, path string) arrow.RecordBatch {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, tbl.NumRows())
	defer tr.Release()
	if !tr.Next() {
		t.Fatal("empty parquet file")
	}
	b := tr.RecordBatch()
	b.Retain()
	return b
}

func TestLiveLineNamesTheBestModel(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"trial big-model: accuracy 0.9510, p95 0.060 ms", "big-model"},
		{"trial mlp-d1-w64-int8: rmse 0.12, p95 0.010 ms", "mlp-d1-w64-int8"},
		{"trial big-model failed: out of memory", ""},
		{"5 candidates replayed (0 interpolated)", ""},
	} {
		if got := progressTrial(tc.msg); got != tc.want {
			t.Errorf("progressTrial(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
	var acc liveBest
	acc.offer(tables.ColAccuracy, 0.90, true, "small-model", 50_000)
	acc.offer(tables.ColAccuracy, 0.951, true, "big-model", 35_690_000)
	acc.offer(tables.ColAccuracy, 0.93, true, "vit-s", 22_000_000)
	if got, want := acc.String(), "accuracy 0.9510 · big-model (35.69M params)"; got != want {
		t.Errorf("best accuracy %q, want %q", got, want)
	}
	var rmse liveBest
	rmse.offer(tables.ColRMSE, 0.2, false, "a", math.NaN())
	rmse.offer(tables.ColRMSE, 0.1, false, "b", math.NaN())
	rmse.offer(tables.ColRMSE, 0.3, false, "c", math.NaN())
	if got, want := rmse.String(), "rmse 0.1000 · b"; got != want {
		t.Errorf("best rmse %q, want %q", got, want)
	}
}

// runs list names the chosen model as the decision's chosen_name says,
// read from the decision file the way the runner records it, not by its
// candidate id.
func TestRunsListNamesTheChosenModel(t *testing.T) {
	dir := t.TempDir()
	run := writeZooRun(t, dir)
	storeBatch(t, run, "resize.named", "decision", 1, decisionBatch(t, tables.DecisionSchema, map[string]any{
		tables.ColStatus: tables.DecisionConverged, tables.ColChosenCandidateID: "c-0007",
		tables.ColChosenName: "resnet-18", tables.ColChosenParams: int64(11_689_512),
	}))
	d, err := runner.ReadDecision("resize.named", "decision", run.Path(runstore.OutputRel("resize.named", 1, "decision")), memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Update(func(m *runstore.Manifest) { m.Decision = d }); err != nil {
		t.Fatal(err)
	}
	r := sweetspot(t, dir, "runs", "list")
	if r.code != 0 {
		t.Fatalf("runs list: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "converged resnet-18") || strings.Contains(r.stdout, "c-0007") {
		t.Errorf("runs list should name the chosen model resnet-18, not its candidate id c-0007:\n%s", r.stdout)
	}
}
