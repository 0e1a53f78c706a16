package evaluation

import (
	"context"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Repeat 0 trains from the seed the stage used before repeats existed
// (the stage's seed times the golden ratio constant, xor the FNV-1a hash
// of the training key), and every later repeat from a seed of its own.
func TestRepeatSeeds(t *testing.T) {
	key := TrainingKey(cand(4, 3, 1, 8, 1e-2, 3), 3)
	h := fnv.New64a()
	h.Write([]byte(key))
	var seed uint64 = 7
	before := seed*0x9e3779b97f4a7c15 ^ h.Sum64()
	if got := RepeatSeed(seed, key, 0); got != before {
		t.Errorf("repeat 0's seed %d, want the seed without repeats %d", got, before)
	}
	seen := map[uint64]int32{}
	for r := range int32(5) {
		s := RepeatSeed(seed, key, r)
		if prev, dup := seen[s]; dup {
			t.Errorf("repeats %d and %d share seed %d", prev, r, s)
		}
		seen[s] = r
	}
}

// repeatsOf sorts a candidate's rows by repeat.
func repeatsOf(rs []tables.Result, id string) []tables.Result {
	var out []tables.Result
	for _, r := range rs {
		if r.ID == id {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b tables.Result) int { return int(a.Repeat - b.Repeat) })
	return out
}

// repeats = 3 measures each candidate three times, one row and one span
// per repeat, each trained from its own seed; repeat 0 is the trial a
// stage without repeats runs, to the bit.
func TestRepeatsMeasureAgain(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenSpirals, 300, 5, 0.25, 0.1)
	c := cand(2, 2, 1, 8, 1e-2, 4)
	c.ID = "rep-mlp-d1-w8"
	ctx, parent := provider.Tracer("test").Start(context.Background(), "stage evaluation.repeats")
	rs, _, err := run(t, ctx, Config{LatencySamples: ptr(5), Repeats: ptr(3)}, candidates(t, mem, c), ds)
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	got := repeatsOf(rs, c.ID)
	if len(got) != 3 || len(rs) != 3 {
		t.Fatalf("%d rows (%d of the candidate), want 3", len(rs), len(got))
	}
	for r, row := range got {
		if row.Repeat != int32(r) || row.Status != tables.StatusOK || !row.Repeatable {
			t.Errorf("row %d: repeat %d, status %s %q, repeatable %t", r, row.Repeat, row.Status, row.Error, row.Repeatable)
		}
	}
	if got[0].Loss == got[1].Loss || got[1].Loss == got[2].Loss || got[0].Loss == got[2].Loss {
		t.Errorf("repeats measured the same loss: %g, %g, %g (one seed for all?)", got[0].Loss, got[1].Loss, got[2].Loss)
	}
	single, _, err := run(t, context.Background(), Config{LatencySamples: ptr(5)}, candidates(t, mem, c), ds)
	if err != nil {
		t.Fatal(err)
	}
	eq := cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) })
	if diff := cmp.Diff(single[0], got[0], timing, eq, cmpopts.IgnoreFields(tables.Result{}, "PeakBytes")); diff != "" {
		t.Errorf("repeat 0 differs from the trial without repeats (-without +repeat 0):\n%s", diff)
	}

	var names []string
	for _, s := range spans.Ended() {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() {
			names = append(names, s.Name())
			if rep := attr(s, "repeat"); !strings.HasPrefix(s.Name(), "trial "+c.ID) || rep == "" {
				t.Errorf("span %q has repeat %q", s.Name(), rep)
			}
		}
	}
	slices.Sort(names)
	want := []string{"trial rep-mlp-d1-w8", "trial rep-mlp-d1-w8 repeat 1", "trial rep-mlp-d1-w8 repeat 2"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("trial spans (-want +got):\n%s", diff)
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// A resumed stage with repeats trains only the repeats that had not
// finished: the journalled ones come back unchanged (values no training
// gives), and no repeat is taken for another.
func TestRepeatsResume(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenSpirals, 300, 5, 0.25, 0.1)
	c := cand(2, 2, 1, 8, 1e-2, 3)
	c.ID = "resume-mlp-d1-w8"
	var journal []tables.Result
	for _, r := range []int32{0, 2} {
		j := tables.NewResult(c)
		j.Repeat, j.Status, j.Accuracy, j.Loss, j.TraceID = r, tables.StatusOK, 0.5+float64(r)/100, 9+float64(r), "journalled"
		journal = append(journal, j)
	}
	resume := tables.BuildResults(mem, journal)
	defer resume.Release()
	st, err := New(Config{LatencySamples: ptr(5), Repeats: ptr(3)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := provider.Tracer("test").Start(context.Background(), "stage evaluation.resume")
	out, err := stagetest.Run(t, ctx, Info(), st, stagetest.Inputs{InputPort: candidates(t, mem, c), DatasetPort: ds, ResumePort: {resume}})
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := tables.ReadResults(concatBatches(t, out.Batches(OutputPort)))
	if err != nil {
		t.Fatal(err)
	}
	got := repeatsOf(rs, c.ID)
	if len(got) != 3 {
		t.Fatalf("%d rows, want 3", len(got))
	}
	for _, r := range []int{0, 2} {
		if got[r].TraceID != "journalled" || got[r].Loss != 9+float64(r) {
			t.Errorf("repeat %d was trained again or changed: trace %q, loss %g", r, got[r].TraceID, got[r].Loss)
		}
	}
	if got[1].TraceID == "journalled" || got[1].Status != tables.StatusOK || !(got[1].Loss < 9) {
		t.Errorf("repeat 1 was not trained: %+v", got[1])
	}
	var trained []string
	for _, s := range spans.Ended() {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() {
			trained = append(trained, s.Name())
		}
	}
	if diff := cmp.Diff([]string{"trial resume-mlp-d1-w8 repeat 1"}, trained); diff != "" {
		t.Errorf("trials trained on resume (-want +got):\n%s", diff)
	}
}

// A candidate naming a later repeat (resize asking for one more) is
// measured once, as that repeat, whatever repeats says.
func TestRepeatsOfProposals(t *testing.T) {
	a := tables.Candidate{ID: "a"}
	b := tables.Candidate{ID: "b", Repeat: 3}
	got := Repeats([]tables.Candidate{a, b}, 2)
	want := []tables.Candidate{{ID: "a"}, {ID: "a", Repeat: 1}, {ID: "b", Repeat: 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
