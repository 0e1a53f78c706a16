package report

import (
	"bytes"
	"math"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// zooModel is one named model of the zoo fixture.
type zooModel struct {
	name, family string
	params       int64
	acc          float64
}

// The zoo fixture: two table families whose sizes span a hundred to ten
// billion parameters, and a decision that ships big-model.
var zooModels = []zooModel{
	{"tiny-model", "zoo", 100, 0.60},
	{"small-model", "zoo", 50_000, 0.80},
	{"big-model", "zoo", 35_690_000, 0.951},
	{"huge-model", "zoo", 1_200_000_000, 0.97},
	{"giant-model", "zoo", 10_000_000_000, 0.975},
	{"vit-s", "vit", 22_000_000, 0.93},
	{"vit-b", "vit", 86_000_000, 0.955},
}

// writeBatch writes one batch as a stage's port file of one round and
// records it in the manifest, as the runner does.
func writeBatch(t testing.TB, run *runstore.Run, mem memory.Allocator, stage, port string, round int, b arrow.RecordBatch) {
	t.Helper()
	rel := runstore.OutputRel(stage, round, port)
	pw := runstore.NewPortWriter(run.Path(rel), b.Schema(), mem)
	if err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
	n, size, sum, err := pw.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.UpdateStage(stage, func(s *runstore.StageRecord) {
		s.Kind, _, _ = strings.Cut(stage, ".")
		s.Status = "succeeded"
		s.Outputs = append(s.Outputs, runstore.OutputFile{Port: port, Round: round, Path: rel, Rows: n, Bytes: size, SHA256: sum})
	}); err != nil {
		t.Fatal(err)
	}
}

func writeZoo(t *testing.T, mem memory.Allocator) *runstore.Run {
	t.Helper()
	run, err := runstore.Open(t.TempDir()).Create(runstore.Manifest{RunID: "zoo", Status: runstore.StatusSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	var rs []tables.Result
	for _, m := range zooModels {
		r := tables.NewResult(tables.Candidate{
			ID: m.name, Name: m.name, Family: m.family, Kind: tables.KindTable,
			Size: float64(m.params), Params: m.params, Knobs: tables.Knobs{"layers": 12.0},
		})
		r.Status, r.Accuracy, r.LatencyP95Ms = tables.StatusOK, m.acc, 1e-5*math.Pow(float64(m.params), 0.5)
		r.ModelBytes, r.TrainSeconds = 4*m.params, 1e-6*float64(m.params)
		rs = append(rs, r)
	}
	b := tables.BuildResults(mem, rs)
	writeBatch(t, run, mem, "replay.zoo", "results", 1, b)
	b.Release()
	writePort(t, run, mem, "resize.fit", "decision", 1, tables.DecisionSchema, []map[string]any{{
		tables.ColRound: 0, tables.ColStatus: tables.DecisionConverged, "action": "stop", "strategy": "smallest_meeting",
		tables.ColChosenCandidateID: "big-model", tables.ColChosenName: "big-model", tables.ColChosenFamily: "zoo",
		tables.ColChosenParams: int64(35_690_000), tables.ColReason: "big-model is the smallest model that meets 0.95",
		"metric": "accuracy", "target": 0.95,
	}})
	if err := run.Update(func(m *runstore.Manifest) {
		m.Decision = &runstore.Decision{Stage: "resize.fit", Rounds: 1, Status: tables.DecisionConverged, Chosen: "big-model"}
	}); err != nil {
		t.Fatal(err)
	}
	return run
}

func writeReport(t *testing.T, run *runstore.Run, mem memory.Allocator) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, run, WithAllocator(mem)); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// tableCells returns the trials table's header labels and each row's cells
// (text and title).
func tableCells(t *testing.T, html string) (heads []string, rows [][][2]string) {
	t.Helper()
	for _, h := range regexp.MustCompile(`<th[^>]*><button[^>]*>([^<]*)</button>`).FindAllStringSubmatch(html, -1) {
		heads = append(heads, h[1])
	}
	body := html[strings.Index(html, "<tbody>"):]
	cellRE := regexp.MustCompile(`<td[^>]*?(?: title="([^"]*)")?>([^<]*)</td>`)
	for _, row := range regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`).FindAllStringSubmatch(body, -1) {
		var cells [][2]string
		for _, c := range cellRE.FindAllStringSubmatch(row[1], -1) {
			cells = append(cells, [2]string{c[2], c[1]})
		}
		rows = append(rows, cells)
	}
	return heads, rows
}

func TestReportNamesModelsOfSeveralFamilies(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	html := writeReport(t, writeZoo(t, mem), mem)

	if want := `<h1 id="headline">Ship big-model (zoo, 35.69M params)</h1>`; !strings.Contains(html, want) {
		t.Errorf("the headline is not %s", want)
	}

	if want := `<p class="shape">zoo (table family) · layers 12</p>`; !strings.Contains(html, want) {
		t.Errorf("the chosen model's shape is not %s", want)
	}

	// The table names each model, gives its family and its readable
	// parameter count, with the exact count in the tooltip.
	heads, rows := tableCells(t, html)
	col := map[string]int{}
	for i, h := range heads {
		col[h] = i
	}
	for _, h := range []string{"model", "family", "params"} {
		if _, ok := col[h]; !ok {
			t.Fatalf("the trials table has no %s column: %q", h, heads)
		}
	}
	for _, h := range []string{"candidate", "depth", "width", "size"} {
		if _, ok := col[h]; ok {
			t.Errorf("the trials table has a %s column, which says nothing here: %q", h, heads)
		}
	}
	want := map[string][3]string{
		"tiny-model":  {"zoo", "100", "100"},
		"small-model": {"zoo", "50k", "50,000"},
		"big-model":   {"zoo", "35.69M", "35,690,000"},
		"huge-model":  {"zoo", "1.2B", "1,200,000,000"},
		"giant-model": {"zoo", "10B", "10,000,000,000"},
		"vit-s":       {"vit", "22M", "22,000,000"},
		"vit-b":       {"vit", "86M", "86,000,000"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for _, r := range rows {
		name := r[col["model"]][0]
		w, ok := want[name]
		if !ok {
			t.Errorf("row of an unknown model %q", name)
			continue
		}
		got := [3]string{r[col["family"]][0], r[col["params"]][0], r[col["params"]][1]}
		if got != w {
			t.Errorf("%s: family, params, exact params %q, want %q", name, got, w)
		}
		if tip := r[col["model"]][1]; tip != "layers 12" {
			t.Errorf("%s: the name's tooltip is %q, want its knobs", name, tip)
		}
	}
	chosen := regexp.MustCompile(`<tr class="chosen"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(html, -1)
	if len(chosen) != 1 || !strings.Contains(chosen[0][1], ">big-model<") {
		t.Errorf("want one chosen row, big-model's; got %q", chosen)
	}

	// The legend tells the families apart, and so do the points' colours.
	for _, l := range []string{"zoo (table)", "vit (table)"} {
		if !strings.Contains(html, l) {
			t.Errorf("the legend lacks %q", l)
		}
	}
	q := figure(t, html, "quality")
	fills := map[string]int{}
	for _, p := range paths(q) {
		for _, c := range seriesColors[:2] {
			if strings.Contains(p.style, "fill:"+hexOf(c)) {
				fills[hexOf(c)]++
			}
		}
	}
	// vit sorts before zoo: its two models take the first colour.
	if fills[hexOf(seriesColors[0])] != 2 || fills[hexOf(seriesColors[1])] != 5 {
		t.Errorf("markers per colour %v; want vit's 2 in %s and zoo's 5 in %s", fills, hexOf(seriesColors[0]), hexOf(seriesColors[1]))
	}

	// Size is the parameter count on a log axis: zoo's points, a hundred
	// to ten billion parameters, lie at x linear in log10(params). Its
	// markers are the second series' triangles, centred on their points.
	var xs []float64
	for _, p := range paths(q) {
		if !strings.Contains(p.style, "fill:"+hexOf(seriesColors[1])) {
			continue
		}
		pts := polyline(p.d)
		if len(pts) < 3 {
			t.Fatalf("a zoo marker is not a triangle: %s", p.d)
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, pt := range pts {
			lo, hi = math.Min(lo, pt[0]), math.Max(hi, pt[0])
		}
		xs = append(xs, (lo+hi)/2)
	}
	sort.Float64s(xs)
	logs := []float64{2, math.Log10(50_000), math.Log10(35_690_000), math.Log10(1.2e9), 10}
	if len(xs) != len(logs) {
		t.Fatalf("%d zoo markers on the quality chart, want %d", len(xs), len(logs))
	}
	perDecade := (xs[4] - xs[0]) / (logs[4] - logs[0])
	for i := range xs {
		if want := xs[0] + perDecade*(logs[i]-logs[0]); math.Abs(xs[i]-want) > 0.5 {
			t.Errorf("the %s marker is at x %.2f, want %.2f on a log axis", zooModels[i].name, xs[i], want)
		}
	}
	// The axis is labelled in readable counts, every other decade.
	for _, l := range []string{">100<", ">10k<", ">1M<", ">100M<", ">10B<"} {
		if !strings.Contains(q, l) {
			t.Errorf("the size axis lacks the label %s", l)
		}
	}
	// Points are named; the chosen one by its callout.
	for _, m := range zooModels {
		name := ">" + m.name + "<"
		if m.name == "big-model" {
			name = ">chosen: big-model<"
		}
		if !strings.Contains(q, name) {
			t.Errorf("the quality chart does not name %s", m.name)
		}
	}
}

func TestLogTicksAcrossEightDecades(t *testing.T) {
	var labels []string
	for _, tk := range (ticker{kind: logAxis, format: FormatParams}).Ticks(100, 1e10) {
		if e := math.Log10(tk.Value); math.Abs(e-math.Round(e)) > 1e-9 {
			t.Errorf("tick at %g: past six decades only powers of ten get a tick", tk.Value)
		}
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if want := []string{"100", "10k", "1M", "100M", "10B"}; strings.Join(labels, " ") != strings.Join(want, " ") {
		t.Errorf("labels %q, want %q", labels, want)
	}
}

// dropColumns returns schema without the named columns.
func dropColumns(schema *arrow.Schema, names ...string) *arrow.Schema {
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

// A run written before the name, family_kind, size, knobs and chosen_*
// columns existed still gets its report: names are the candidate ids,
// families the family column's.
func TestReportOfARunBeforeNames(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	run, err := runstore.Open(t.TempDir()).Create(runstore.Manifest{RunID: "old", Status: runstore.StatusSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	results := dropColumns(tables.ResultsSchema, tables.ColName, tables.ColFamilyKind, tables.ColSize, tables.ColKnobs)
	row := func(id string, width int, params int64, acc float64) map[string]any {
		return map[string]any{tables.ColCandidateID: id, tables.ColFamily: "mlp", tables.ColDepth: 1, tables.ColWidth: width,
			tables.ColParams: params, tables.ColStatus: "ok", tables.ColAccuracy: acc, tables.ColLatencyP95Ms: 0.01}
	}
	writePort(t, run, mem, "evaluation.train", "results", 1, results, []map[string]any{
		row("mlp-d1-w16", 16, 82, 0.9), row("mlp-d1-w64", 64, 322, 0.96),
	})
	decision := dropColumns(tables.DecisionSchema, tables.ColChosenName, tables.ColChosenFamily)
	writePort(t, run, mem, "resize.fit", "decision", 1, decision, []map[string]any{{
		tables.ColRound: 0, tables.ColStatus: "converged", "action": "stop", "strategy": "smallest_meeting",
		tables.ColChosenCandidateID: "mlp-d1-w64", tables.ColReason: "because", "metric": "accuracy", "target": 0.95,
	}})
	html := writeReport(t, run, mem)
	if want := `<h1 id="headline">Ship mlp-d1-w64 (mlp, 322 params)</h1>`; !strings.Contains(html, want) {
		t.Errorf("the headline is not %s", want)
	}
	heads, rows := tableCells(t, html)
	model := -1
	for i, h := range heads {
		if h == "model" {
			model = i
		}
	}
	if model < 0 || len(rows) != 2 || rows[0][model][0] != "mlp-d1-w16" || rows[1][model][0] != "mlp-d1-w64" {
		t.Errorf("an old run's models are not named by their ids: heads %q, rows %q", heads, rows)
	}
	if !strings.Contains(figure(t, html, "quality"), "chosen: mlp-d1-w64") {
		t.Error("the quality chart does not name the chosen model by its id")
	}
}
