package replay

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/requirements"
	"github.com/sweetspot-ml/sweetspot/plugins/resize"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// row renders a result for comparison: id/repeat, status, accuracy,
// repeats_held, repeatable, measured_from, and the error.
func row(r tables.Result) string {
	s := fmt.Sprintf("%s/%d %s %g held=%d more=%t from=%s", r.ID, r.Repeat, r.Status, r.Accuracy, r.RepeatsHeld, r.Repeatable, r.MeasuredFrom)
	if r.Error != "" {
		s += " error=" + r.Error
	}
	return s
}

func rows(rs []tables.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, row(r))
	}
	slices.Sort(out)
	return out
}

// A table whose repeat column (here "seed", mapped) tells a model's rows
// apart holds repeats: repeat r is the model's r-th row in order of the
// column, whatever the file's order; every repeat names the model's first
// row as measured_from and how many the table holds; a repeat beyond them
// is a failed trial saying so, never a row handed out twice.
func TestReplayRepeats(t *testing.T) {
	mem := checked(t)
	p := writeFile(t, "seeds.csv", `family,depth,width,seed,accuracy
mlp,1,16,7,0.73
mlp,1,16,3,0.71
mlp,1,32,3,0.81
mlp,1,16,5,0.72
mlp,1,32,4,0.82
`)
	out, err := runStage(t, mem, Config{Path: p, Columns: map[string]string{"repeat": "seed"}, Repeats: ptr(3)}, mlpCand(1, 16), mlpCand(1, 32))
	if err != nil {
		t.Fatal(err)
	}
	got := rows(out.results)
	want := []string{
		"mlp-d1-w16/0 ok 0.71 held=3 more=true from=seeds.csv:2",
		"mlp-d1-w16/1 ok 0.72 held=3 more=true from=seeds.csv:2",
		"mlp-d1-w16/2 ok 0.73 held=3 more=false from=seeds.csv:2",
		"mlp-d1-w32/0 ok 0.81 held=2 more=true from=seeds.csv:4",
		"mlp-d1-w32/1 ok 0.82 held=2 more=false from=seeds.csv:4",
		"mlp-d1-w32/2 failed NaN held=2 more=false from=seeds.csv:4 error=seeds.csv holds 2 measurements of mlp-d1-w32 (from line 4; repeats 0 to 1) and repeat 2 was asked for: a replay table has no more, and never invents one",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A table without a repeat column is exact: one measurement per model,
// repeats_held 1, and a second repeat is refused with the way to give it
// more.
func TestReplayExactTable(t *testing.T) {
	mem := checked(t)
	p := writeFile(t, "exact.csv", "family,depth,width,accuracy\nmlp,1,16,0.7\n")
	c := mlpCand(1, 16)
	again := c
	again.Repeat = 1
	out, err := runStage(t, mem, Config{Path: p}, c, again)
	if err != nil {
		t.Fatal(err)
	}
	got := rows(out.results)
	if got[0] != "mlp-d1-w16/0 ok 0.7 held=1 more=false from=exact.csv:2" {
		t.Errorf("repeat 0: %s", got[0])
	}
	if !strings.HasPrefix(got[1], "mlp-d1-w16/1 failed NaN held=1 more=false from=exact.csv:2 error=exact.csv holds 1 measurement of mlp-d1-w16") ||
		!strings.Contains(got[1], `give the table a repeat column (columns = { repeat = "seed" } names another)`) {
		t.Errorf("repeat 1: %s", got[1])
	}
}

// Named models and axis models hold repeats too; two rows of one model
// with the same repeat are refused at configuration, naming both lines.
func TestReplayRepeatsByNameAndKnobs(t *testing.T) {
	mem := checked(t)
	p := writeFile(t, "zoo.csv", `name,family,repeat,accuracy,channels
net-s,zoo,1,0.62,8
net-s,zoo,0,0.60,8
net-l,zoo,0,0.80,32
`)
	named := tables.Candidate{ID: "net-s", Name: "net-s", Family: "zoo", Kind: tables.KindTable, Size: 1, Params: 7}
	axis := tables.Candidate{ID: "ax-8", Name: "ax-8", Family: "zoo", Kind: tables.KindAxis, Size: 8, Params: 7, Knobs: tables.Knobs{"channels": 8.0}}
	out, err := runStage(t, mem, Config{Path: p, Repeats: ptr(2)}, named, axis)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ax-8/0 ok 0.6 held=2 more=true from=zoo.csv:2",
		"ax-8/1 ok 0.62 held=2 more=false from=zoo.csv:2",
		"net-s/0 ok 0.6 held=2 more=true from=zoo.csv:2",
		"net-s/1 ok 0.62 held=2 more=false from=zoo.csv:2",
	}
	if diff := cmp.Diff(want, rows(out.results)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	dup := writeFile(t, "dup.csv", "name,family,repeat,accuracy\nnet-s,zoo,0,0.6\nnet-s,zoo,0,0.61\n")
	_, err = New(Config{Path: dup})
	if err == nil || !strings.Contains(err.Error(), `name "net-s" on line 3 is already on line 2 with the same repeat (0)`) {
		t.Errorf("duplicate repeat: %v", err)
	}
}

// An interpolated repeat lies between the r-th rows of the models either
// side, and names the nearer model as measured_from, so that the fit
// counts it with that measurement rather than as one of its own.
func TestReplayInterpolatedRepeats(t *testing.T) {
	mem := checked(t)
	p := writeFile(t, "ladder.csv", `family,depth,width,repeat,accuracy
mlp,1,16,0,0.60
mlp,1,16,1,0.64
mlp,1,64,0,0.80
mlp,1,64,1,0.90
`)
	// Width 32 is the log midpoint of 16 and 64; width 20 lies nearer 16.
	out, err := runStage(t, mem, Config{Path: p, Interpolate: InterpolateLogWidth, Repeats: ptr(2)}, mlpCand(1, 32), mlpCand(1, 20))
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]tables.Result{}
	for _, r := range out.results {
		byKey[fmt.Sprintf("%d/%d", r.Width, r.Repeat)] = r
	}
	for _, c := range []struct {
		key  string
		acc  float64
		from string
	}{
		{"32/0", 0.70, "ladder.csv:4"}, {"32/1", 0.77, "ladder.csv:4"},
		{"20/0", 0.60 + 0.20*0.16096404744368115, "ladder.csv:2"}, {"20/1", 0.64 + 0.26*0.16096404744368115, "ladder.csv:2"},
	} {
		r := byKey[c.key]
		if diff := r.Accuracy - c.acc; diff > 1e-12 || diff < -1e-12 || r.MeasuredFrom != c.from || r.RepeatsHeld != 2 {
			t.Errorf("%s: accuracy %.15g from %q held %d, want %.15g from %q held 2", c.key, r.Accuracy, r.MeasuredFrom, r.RepeatsHeld, c.acc, c.from)
		}
	}
	if slices.Index(out.source, SourceInterpolated) < 0 {
		t.Errorf("no row marked interpolated: %v", out.source)
	}
}

// seededTable writes every depth-1 width from 1 to 1024 three times, as
// three seeds: the seeds' accuracies lie 0.002 above, 0.002 below and on
// synthAccuracy, so each model's mean is the curve and its sd 0.002. With
// seeds false it writes the first seed's rows alone, with no repeat
// column: an exact table.
func seededTable(t *testing.T, seeds bool) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("family,depth,width,seed,accuracy,train_seconds\n")
	for w := int32(1); w <= 1024; w++ {
		c := synthCand(1, w)
		for seed, d := range []float64{0.002, -0.002, 0} {
			if !seeds && seed > 0 {
				break
			}
			fmt.Fprintf(&b, "mlp,1,%d,%d,%s,1\n", w, seed, canonical(synthAccuracy(c.Params)+d, 64))
		}
	}
	name := "exact.csv"
	if seeds {
		name = "seeded.csv"
	}
	return writeFile(t, name, b.String())
}

// In a loop, a table holding three seeds per model is asked for the
// repeats of the models the answer rests on when they lie within the
// noise of the target, and the answer is their mean; the same table's
// first seed alone is exact, asked for none, and says so.
func TestLoopRepeatsNearTheTarget(t *testing.T) {
	// Width 64's first seed reads 0.95295: the target lies 0.00095 below
	// it, within the noise (sd 0.002).
	const target = 0.952
	req := requirementsRow(t, requirements.Config{MinAccuracy: ptr(target)}, nil)
	start := ladder(4, 1024, 6)[1:]

	seeded := runLoop(t, Config{Path: seededTable(t, true), Columns: map[string]string{"repeat": "seed"}}, resize.Config{}, req, start, 30)
	d := seeded.last()
	if d.status != resize.StatusConverged {
		t.Fatalf("seeded: status %s: %s", d.status, d.reason)
	}
	if seeded.repeats == 0 {
		t.Errorf("seeded: no repeat was looked up: %s", d.reason)
	}
	if !strings.Contains(d.reason, "repeats, sd 0.00") {
		t.Errorf("seeded: the reason cites no repeats: %s", d.reason)
	}
	// The chosen model's measurement is the mean of its repeats: on
	// the curve itself once all three are in, 0.002 off with one.
	if c := synthAccuracy(synthCand(1, d.chosenWidth).Params); math.Abs(d.chosenMeasured-c) > 0.0021 {
		t.Errorf("seeded: chose width %d measured %g; its seeds' mean is %g", d.chosenWidth, d.chosenMeasured, c)
	}
	t.Logf("seeded: %d lookups, %d of later repeats, %d rounds: %s", seeded.lookups, seeded.repeats, len(seeded.decisions), d.reason)

	exact := runLoop(t, Config{Path: seededTable(t, false)}, resize.Config{}, req, start, 30)
	d = exact.last()
	if d.status != resize.StatusConverged || exact.repeats != 0 {
		t.Errorf("exact: status %s with %d repeats looked up: %s", d.status, exact.repeats, d.reason)
	}
	if !strings.Contains(d.reason, "(exact: its table holds one measurement)") {
		t.Errorf("exact: the reason does not say the table is exact: %s", d.reason)
	}
}
