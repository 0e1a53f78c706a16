package replay

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/plugins/modelchoice"
	"github.com/sweetspot-ml/sweetspot/plugins/requirements"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// named is a candidate of a table family, as model_choice makes it: its
// params are the ones it declares (here deliberately not the table's).
func named(name, family string, size float64) tables.Candidate {
	return tables.Candidate{ID: name, Name: name, Family: family, Kind: tables.KindTable, Size: size, Params: 7,
		Knobs: tables.Knobs{"s": 99.0}, LearningRate: 0.001, BatchSize: 32, Epochs: 10, Preprocess: "none", Quantize: "none"}
}

func axisCand(family string, s float64) tables.Candidate {
	name := fmt.Sprintf("%s-s%g", family, s)
	return tables.Candidate{ID: name, Name: name, Family: family, Kind: tables.KindAxis, Size: s,
		Knobs: tables.Knobs{"s": s}, Preprocess: "none", Quantize: "none"}
}

// lineOf is the 1-based line of text that holds s, found in the test's own
// table text.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q is in no line", s)
	return 0
}

// Named models are looked up by name; the row keeps the candidate's name,
// family, kind and size, and takes params from the table.
func TestNamedLookups(t *testing.T) {
	mem := checked(t)
	path := writeFile(t, "zoo.csv", namedCSV)
	spans.Reset()
	cands := []tables.Candidate{named("mid-b", "b", 600), named("small-a", "a", 100)}
	out, err := runStage(t, mem, Config{Path: path}, cands...)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID, Name, Family, Kind string
		Size                   float64
		Params                 int64
		Accuracy, P95          float64
		Source                 string
	}
	var got []row
	for i, r := range out.results {
		got = append(got, row{r.ID, r.Name, r.Family, r.Kind, r.Size, r.Params, r.Accuracy, r.LatencyP95Ms, out.source[i]})
	}
	// From namedCSV: mid-b,b,600,0.87,0.25 and small-a,a,100,0.80,0.1.
	want := []row{
		{"mid-b", "mid-b", "b", tables.KindTable, 600, 600, 0.87, 0.25, SourceExact},
		{"small-a", "small-a", "a", tables.KindTable, 100, 100, 0.80, 0.1, SourceExact},
	}
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	for _, sp := range spans.Ended() {
		if sp.Name() != "trial mid-b" {
			continue
		}
		attrs := map[attribute.Key]string{}
		for _, kv := range sp.Attributes() {
			attrs[kv.Key] = kv.Value.Emit()
		}
		if attrs["replay.match"] != "name" || attrs["replay.row"] != fmt.Sprintf("line %d", lineOf(t, namedCSV, "mid-b")) {
			t.Errorf("span attributes %v", attrs)
		}
	}

	// A name the table lacks: an error naming the candidate and the
	// nearest names, interpolation or not.
	// The same table with mlp key columns too, so that interpolate may be
	// set.
	lines := strings.Split(strings.TrimSuffix(namedCSV, "\n"), "\n")
	for i := 1; i < len(lines); i++ {
		lines[i] += fmt.Sprintf(",1,%d", i)
	}
	lines[1] = strings.Replace(lines[1], fmt.Sprintf(",1,%d", 1), ",depth,width", 1)
	withKey := writeFile(t, "zoo.csv", strings.Join(lines, "\n")+"\n")
	for _, interp := range []string{"", InterpolateLogWidth} {
		_, err = runStage(t, mem, Config{Path: withKey, Interpolate: interp}, named("small-a", "a", 100), named("mid-c", "c", 400))
		var ie *sdk.InputError
		if !errors.As(err, &ie) {
			t.Fatalf("got %v, want an input error", err)
		}
		want := fmt.Sprintf(`no row of %s is named "mid-c" (candidate mid-c, family c; names are column "name"); did you mean "mid-a"?; nearest names: mid-a, mid-b, big-a, small-a, small-b`, withKey)
		if interp != "" {
			want += "; interpolate applies to mlp candidates only: a named model the table lacks is never invented"
		}
		if ie.Row != 1 || ie.Column != "name" || ie.Err.Error() != want {
			t.Errorf("row %d column %q:\n%s\nwant row 1 column name:\n%s", ie.Row, ie.Column, ie.Err, want)
		}
	}

	// The table has no depth or width: it cannot serve an mlp candidate.
	_, err = runStage(t, mem, Config{Path: path}, mlpCand(1, 16))
	if err == nil || !strings.Contains(err.Error(), "candidate mlp-d1-w16 is an mlp model, looked up by its key, and "+path+" cannot serve such lookups: "+path+`:2: the header has no column "depth"`) {
		t.Errorf("an mlp candidate against a table of names: %v", err)
	}

	// Names are mapped like any column.
	renamed := strings.Replace(namedCSV, "name,family", "model,family", 1)
	p2 := writeFile(t, "zoo.csv", renamed)
	out, err = runStage(t, mem, Config{Path: p2, Columns: map[string]string{"name": "model"}}, named("big-a", "a", 1600))
	if err != nil {
		t.Fatal(err)
	}
	if r := out.results[0]; r.Accuracy != 0.90 || r.Params != 1600 {
		t.Errorf("big-a replayed as accuracy %v, params %d; the table has 0.90 and 1600", r.Accuracy, r.Params)
	}
}

// Axis models are looked up by their knobs: every knob against the column
// of its name, numbers as numbers; the family column picks among rows
// with the same knobs.
func TestAxisLookups(t *testing.T) {
	mem := checked(t)
	path := writeFile(t, "zoo.csv", namedCSV)
	out, err := runStage(t, mem, Config{Path: path}, axisCand("a", 4), axisCand("b", 2), axisCand("a", 2))
	if err != nil {
		t.Fatal(err)
	}
	// s=4 is big-a alone; s=2 is mid-a and mid-b, told apart by family.
	var got []string
	for _, r := range out.results {
		got = append(got, fmt.Sprintf("%s %g %d", r.ID, r.Accuracy, r.Params))
	}
	want := []string{"a-s4 0.9 1600", "b-s2 0.87 600", "a-s2 0.85 400"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		cand tables.Candidate
		want string
	}{
		{axisCand("a", 3), fmt.Sprintf("no row of %s has the knobs of candidate a-s3 (family a): s=3; nearest: (s=4 on line 5), (s=2 on line 4), (s=2 on line 7), (s=1 on line 3), (s=1 on line 6); an axis model the table lacks is never invented", path)},
		{axisCand("c", 2), fmt.Sprintf("2 rows of %s have the knobs of candidate c-s2 (s=2): line 4, line 7; a lookup must find one row, so give the table a family column naming c, or keep one row per model", path)},
		{tables.Candidate{ID: "x", Name: "x", Family: "x", Kind: tables.KindAxis, Knobs: tables.Knobs{"s": 1.0, "heads": 4.0}},
			fmt.Sprintf("candidate x (family x, kind axis) is looked up by its knobs, and %s has no column (or two) for its knob heads; an axis model is found by the columns named as its knobs. Its columns are: name, family, param_count, accuracy, latency_p95_ms, s", path)},
	} {
		_, err := runStage(t, mem, Config{Path: path}, c.cand)
		var ie *sdk.InputError
		if !errors.As(err, &ie) || ie.Column != "knobs" {
			t.Fatalf("%s: got %v, want an input error on knobs", c.cand.ID, err)
		}
		if diff := cmp.Diff(c.want, ie.Err.Error()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.cand.ID, diff)
		}
	}
}

// badTable has numbers with thousands separators (params on one line,
// latency on another) and accuracy in percent; the config maps loss to a
// column it lacks.
const badTable = `# measured in percent, by a spreadsheet
name,family,param_count,accuracy,latency_p95_ms
tiny,a,100,81.5,0.12
small,a,"1,200",88.25,0.31
big,a,4000,93,"1,014.45"
`

// validate's semantics: New reports every problem of a bad table at
// once, each naming the file, the line and the column, on the attribute
// to fix.
func TestBadTableReportsEverything(t *testing.T) {
	path := writeFile(t, "bad.csv", badTable)
	_, err := New(Config{Path: path, Columns: map[string]string{"loss": "xent"}})
	if err == nil {
		t.Fatal("accepted")
	}
	header := lineOf(t, badTable, "name,family")
	tiny, small, big := lineOf(t, badTable, "tiny,"), lineOf(t, badTable, "small,"), lineOf(t, badTable, "big,")
	want := []string{
		fmt.Sprintf(`path: Accuracy in percent: %s:%d: column "accuracy": accuracy is 81.5, above 1: accuracy is a fraction in 0..1, and as every value of the column lies in 0..100, the table gives it in percent. Add scale = { accuracy = 0.01 } to the replay stage to read it as a fraction. Also on lines %d and %d.`, path, tiny, small, big),
		fmt.Sprintf(`columns.loss: No such table column: %s:%d: the header has no column "xent". Its columns are: name, family, param_count, accuracy, latency_p95_ms.`, path, header),
		fmt.Sprintf(`path: Thousands separators in a number: %s:%d: column "latency_p95_ms": "1,014.45" is written with thousands separators, which a number in a table must not have: remove them (1014.45).`, path, big),
		fmt.Sprintf(`path: Thousands separators in a number: %s:%d: column "param_count": "1,200" is written with thousands separators, which a number in a table must not have: remove them (1200).`, path, small),
	}
	got := diagPaths(err)
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}

	// Fixed as the messages say, the table replays: accuracy scaled.
	fixed := strings.NewReplacer(`"1,200"`, "1200", `"1,014.45"`, "1014.45").Replace(badTable)
	p2 := writeFile(t, "fixed.csv", fixed)
	out, err := runStage(t, checked(t), Config{Path: p2, Scale: map[string]float64{"accuracy": 0.01, "latency_p95_ms": 1000}},
		named("small", "a", 1200), named("big", "a", 4000))
	if err != nil {
		t.Fatal(err)
	}
	var res []string
	for _, r := range out.results {
		res = append(res, fmt.Sprintf("%s %.4f %g %d", r.ID, r.Accuracy, r.LatencyP95Ms, r.Params))
	}
	if diff := cmp.Diff([]string{"small 0.8825 310 1200", "big 0.9300 1.01445e+06 4000"}, res); diff != "" {
		t.Errorf("scaled (-want +got):\n%s", diff)
	}

	// The same over the real protocol: Configure answers with a
	// diagnostic on each attribute to fix.
	set := sdk.NewSet(sdk.WithName("replay-test"))
	Register(set)
	in := tables.BuildCandidates(memory.NewGoAllocator(), []tables.Candidate{named("tiny", "a", 100)})
	defer in.Release()
	sdktest.TestStage(t, set, Kind,
		sdktest.Case{
			Name:           "bad table",
			Config:         fmt.Sprintf("path = %q\ncolumns = { loss = \"xent\" }\n", path),
			WantErrorPaths: []string{"path", "columns.loss"},
		},
		sdktest.Case{
			Name:   "fixed table",
			Config: fmt.Sprintf("path = %q\nscale = { accuracy = 0.01 }\n", p2),
			Inputs: map[string][]arrow.RecordBatch{InputPort: {in}},
		},
	)
}

// Other config-time rules of the kinds: interpolation needs key lookups,
// scale names numeric columns, and names are unique.
func TestKindsConfig(t *testing.T) {
	path := writeFile(t, "zoo.csv", namedCSV)
	dup := strings.Replace(namedCSV, "small-b,", "mid-a,", 1)
	dupPath := writeFile(t, "dup.csv", dup)
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"interpolating a table of names", Config{Path: path, Interpolate: InterpolateLogWidth}, []string{
			`interpolate: Nothing to interpolate: log_width interpolates mlp candidates between measured widths, found by key (family, depth, width), and ` + path + `:2: the header has no column "depth" for the candidates' depth; if the table names it otherwise, map it: columns = { depth = "TABLE_COLUMN" }. Its columns are: name, family, param_count, accuracy, latency_p95_ms, s. ` +
				`A named model (family kind table) is looked up by name, and one the table lacks is never invented: remove interpolate.`}},
		{"bad scale", Config{Path: path, Scale: map[string]float64{"acuracy": 0.01, "loss": 0, "status": 2}}, []string{
			`scale.acuracy: Unknown numeric column: scale multiplies a numeric results column (or params) as it is read; "acuracy" is none. Did you mean "accuracy"? They are: ` + strings.Join(append([]string{"params"}, numericResultNames()...), ", ") + ".",
			`scale.loss: Invalid scale: A scale is a positive factor, such as 0.01 for percent; found 0.`,
			`scale.status: Unknown numeric column: scale multiplies a numeric results column (or params) as it is read; "status" is none. They are: ` + strings.Join(append([]string{"params"}, numericResultNames()...), ", ") + ".",
		}},
		{"duplicate names", Config{Path: dupPath}, []string{
			fmt.Sprintf(`path: Duplicate name: %s:%d: column "name": name "mid-a" on line %d is already on line %d; names must be unique.`, dupPath, 6, 6, lineOf(t, dup, "mid-a,")),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if diff := cmp.Diff(c.want, diagPaths(err)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// Named, axis and mlp candidates in one input, over the real protocol.
func TestConformanceKinds(t *testing.T) {
	mem := memory.NewGoAllocator()
	table := namedCSV + "" // names, and no mlp key columns
	path := writeFile(t, "zoo.csv", table)
	in := tables.BuildCandidates(mem, []tables.Candidate{named("mid-a", "a", 400), axisCand("b", 1)})
	defer in.Release()
	set := sdk.NewSet(sdk.WithName("replay-test"))
	Register(set)
	sdktest.TestStage(t, set, Kind,
		sdktest.Case{Name: "named and axis", Config: Config{Path: path}, Inputs: map[string][]arrow.RecordBatch{InputPort: {in}}},
		sdktest.Case{Name: "interpolating names", Config: Config{Path: path, Interpolate: InterpolateLogWidth}, WantErrorPaths: []string{"interpolate"}},
	)
}

// The zoo example's table read by both stages: model_choice's table family
// makes its rows named candidates (no dataset), and replay finds every one
// by name, with the accuracy and parameter count of its own row.
func TestZooThroughModelChoice(t *testing.T) {
	const zooPath = "../../examples/zoo/zoo.csv"
	raw, err := os.ReadFile(zooPath)
	if err != nil {
		t.Fatal(err)
	}
	// The expectations, read from the file independently.
	recs, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	type row struct {
		family   string
		params   int64
		accuracy float64
	}
	want := map[string]row{}
	for _, r := range recs[1:] {
		p, _ := strconv.ParseInt(r[col["param_count"]], 10, 64)
		a, _ := strconv.ParseFloat(r[col["accuracy"]], 64)
		want[r[col["name"]]] = row{r[col["family"]], p, a}
	}

	mc, err := modelchoice.New(modelchoice.Config{Families: []modelchoice.FamilyBlock{{
		Kind: "table", Path: zooPath, Size: "param_count", Group: "family", NameColumn: "name"}}})
	if err != nil {
		t.Fatal(err)
	}
	req := requirementsRow(t, requirements.Config{MinAccuracy: ptr(0.9)}, nil)
	defer req.Release()
	mcOut, err := stagetest.Run(t, context.Background(), modelchoice.Info(), mc, stagetest.Inputs{modelchoice.InputPort: {req}})
	if err != nil {
		t.Fatal(err)
	}
	space, err := tables.ReadCandidates(mcOut.Batches(modelchoice.SpacePort)[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(space) != len(want) {
		t.Fatalf("model_choice's space has %d models, the table %d rows", len(space), len(want))
	}
	for i := range space {
		space[i].Params = 0 // the table's must flow in again
	}
	out, err := runStage(t, checked(t), Config{Path: zooPath}, space...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.results {
		w := want[r.Name]
		if r.Kind != tables.KindTable || r.Family != w.family || r.Params != w.params || r.Accuracy != w.accuracy {
			t.Errorf("%s: kind %s family %s params %d accuracy %v; the table says family %s params %d accuracy %v",
				r.Name, r.Kind, r.Family, r.Params, r.Accuracy, w.family, w.params, w.accuracy)
		}
	}
}
