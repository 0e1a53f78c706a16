package builtin_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/builtin"
)

var updateLawExample = flag.Bool("update-law-example", false, "rewrite examples/law/runs.csv")

// law is a known law the tests draw runs from; its loss is computed here,
// apart from the fitter.
type law struct{ E, A, Alpha, B, Beta float64 }

func (l law) at(n, d float64) float64 {
	return l.E + l.A*math.Pow(n, -l.Alpha) + l.B*math.Pow(d, -l.Beta)
}

// optimum is the compute-optimal size and data for C = k·N·D: setting
// the derivative of L(N, C/(kN)) in N to zero gives
// N^(α+β) = (αA)/(βB)·(C/k)^β, so N* = G·(C/k)^(β/(α+β)) with
// G = (αA/(βB))^(1/(α+β)), and D* = (C/k)/N*.
func (l law) optimum(c, k float64) (n, d float64) {
	s := l.Alpha + l.Beta
	g := math.Pow(l.Alpha*l.A/(l.Beta*l.B), 1/s)
	n = g * math.Pow(c/k, l.Beta/s)
	return n, c / k / n
}

// leastCompute is the least C = k·N·D reaching loss target: on the
// frontier αA·N^(−α) = βB·D^(−β), so target − E = A·N^(−α)(1 + α/β) =
// B·D^(−β)(1 + β/α).
func (l law) leastCompute(target, k float64) (c, n, d float64) {
	gap := target - l.E
	n = math.Pow(l.A*(1+l.Alpha/l.Beta)/gap, 1/l.Alpha)
	d = math.Pow(l.B*(1+l.Beta/l.Alpha)/gap, 1/l.Beta)
	return k * n * d, n, d
}

// exampleLaw is the law examples/law/runs.csv is drawn from (synthetic:
// no published measurement).
var exampleLaw = law{E: 0.5, A: 40, Alpha: 0.45, B: 120, Beta: 0.38}

var (
	lawSizes = []float64{1e4, 3e4, 1e5, 3e5, 1e6}
	lawData  = []float64{3e4, 1e5, 3e5, 1e6, 3e6}
)

// lawTable writes one run per size and data amount, the loss off the law
// by a log-normal factor of spread sigma, as CSV.
func lawTable(l law, sigma float64, seed uint64, header string) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("run,params,samples,loss\n")
	i := 0
	for _, n := range lawSizes {
		for _, d := range lawData {
			fmt.Fprintf(&b, "r%02d,%g,%g,%.6g\n", i, n, d, l.at(n, d)*math.Exp(sigma*rng.NormFloat64()))
			i++
		}
	}
	return b.Bytes()
}

func writeTable(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// lawFit runs the tool as `sweetspot law fit --json` does and decodes its
// report.
func lawFit(t *testing.T, args ...string) builtin.LawReport {
	t.Helper()
	var out, errb bytes.Buffer
	if code := builtin.LawTool(append([]string{"fit", "--json"}, args...), &out, &errb); code != 0 {
		t.Fatalf("law fit %v: exit %d: %s", args, code, errb.String())
	}
	var rep builtin.LawReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return rep
}

// lawFails runs the tool and returns its exit status and message.
func lawFails(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := builtin.LawTool(append([]string{"fit"}, args...), &out, &errb)
	if code == 0 {
		t.Fatalf("law fit %v succeeded:\n%s", args, out.String())
	}
	return code, errb.String()
}

func within(t *testing.T, what string, truth float64, e builtin.Estimate) {
	t.Helper()
	lo, hi := float64(e.Lo), float64(e.Hi)
	if !(truth >= lo && truth <= hi) {
		t.Errorf("%s: true %.5g outside [%.5g, %.5g] (estimate %.5g)", what, truth, lo, hi, float64(e.Value))
	}
}

func near(t *testing.T, what string, truth, got, rel float64) {
	t.Helper()
	if math.Abs(got-truth) > rel*math.Abs(truth) {
		t.Errorf("%s: %.6g, want %.6g within %g%%", what, got, truth, 100*rel)
	}
}

// On runs exactly on a known law the fit gives the law back, and the
// compute-optimal answers are the closed forms computed from the true law.
func TestLawFitExact(t *testing.T) {
	path := writeTable(t, "exact.csv", lawTable(exampleLaw, 0, 1, ""))
	const c, target = 1e12, 0.8
	rep := lawFit(t, "--bootstrap", "0", "--budget-flops", fmt.Sprint(c), "--target", fmt.Sprint(target), path)
	near(t, "E", exampleLaw.E, float64(rep.Law.E.Value), 0.005)
	near(t, "A", exampleLaw.A, float64(rep.Law.A.Value), 0.02)
	near(t, "alpha", exampleLaw.Alpha, float64(rep.Law.Alpha.Value), 0.005)
	near(t, "B", exampleLaw.B, float64(rep.Law.B.Value), 0.02)
	near(t, "beta", exampleLaw.Beta, float64(rep.Law.Beta.Value), 0.005)
	if rep.Quality.RMSLE > 1e-4 || !rep.Quality.Converged {
		t.Errorf("quality on exact data: %+v", rep.Quality)
	}
	n, d := exampleLaw.optimum(c, 6)
	near(t, "N*(C)", n, float64(rep.Budget.N.Value), 0.02)
	near(t, "D*(C)", d, float64(rep.Budget.D.Value), 0.02)
	near(t, "L(N*, D*)", exampleLaw.at(n, d), float64(rep.Budget.Predicted.Value), 0.002)
	cc, tn, td := exampleLaw.leastCompute(target, 6)
	near(t, "least compute", cc, float64(rep.Target.FLOPs.Value), 0.03)
	near(t, "its N", tn, float64(rep.Target.N.Value), 0.03)
	near(t, "its D", td, float64(rep.Target.D.Value), 0.03)
	if rep.Rows != 25 || rep.Runs != 25 || rep.Sizes != 5 || rep.Datas != 5 {
		t.Errorf("counts: %+v", rep)
	}
	if rep.Columns.Size != "params" || rep.Columns.Data != "samples" || rep.Columns.Metric != "loss" || len(rep.Columns.Guessed) != 3 {
		t.Errorf("columns: %+v", rep.Columns)
	}
}

// With 1% noise the intervals hold the true parameters, the true N*(C) and
// D*(C) and the true loss there.
func TestLawFitNoisy(t *testing.T) {
	path := writeTable(t, "noisy.csv", lawTable(exampleLaw, 0.01, 5, ""))
	const c = 1e12
	rep := lawFit(t, "--budget-flops", fmt.Sprint(c), "--seed", "3", path)
	if rep.Bootstrap < 150 {
		t.Fatalf("%d bootstrap laws", rep.Bootstrap)
	}
	within(t, "E", exampleLaw.E, rep.Law.E)
	within(t, "A", exampleLaw.A, rep.Law.A)
	within(t, "alpha", exampleLaw.Alpha, rep.Law.Alpha)
	within(t, "B", exampleLaw.B, rep.Law.B)
	within(t, "beta", exampleLaw.Beta, rep.Law.Beta)
	n, d := exampleLaw.optimum(c, 6)
	within(t, "N*(C)", n, rep.Budget.N)
	within(t, "D*(C)", d, rep.Budget.D)
	within(t, "L(N*, D*)", exampleLaw.at(n, d), rep.Budget.Predicted)
	if r := float64(rep.Quality.RMSLE); r < 0.005 || r > 0.02 {
		t.Errorf("RMSE of log residuals %g on 1%% noise", r)
	}
	// Huber(r) is at most delta·|r|, and the sum of |r| at most n times
	// the RMSE: the objective lies in (0, delta·n·RMSE].
	r, h, delta := float64(rep.Quality.RMSLE), float64(rep.Quality.Huber), float64(rep.Quality.HuberDelta)
	if !(h > 0 && h <= delta*float64(rep.Rows)*r) || delta != 1e-3 {
		t.Errorf("Huber objective %g (delta %g) for %d rows of RMSE %g", h, delta, rep.Rows, r)
	}
}

// The accuracy form fits 1 − accuracy; the least compute reaching an
// accuracy is the closed form's for the loss 1 − accuracy.
func TestLawFitAccuracy(t *testing.T) {
	l := law{E: 0.04, A: 6, Alpha: 0.4, B: 20, Beta: 0.35}
	var b bytes.Buffer
	b.WriteString("N,D,accuracy\n")
	for _, n := range lawSizes {
		for _, d := range lawData {
			fmt.Fprintf(&b, "%g,%g,%.9g\n", n, d, 1-l.at(n, d))
		}
	}
	path := writeTable(t, "acc.csv", b.Bytes())
	rep := lawFit(t, "--accuracy", "--bootstrap", "0", "--target", "0.9", path)
	if rep.Metric != "accuracy" || rep.Columns.Metric != "accuracy" || rep.Columns.Size != "N" || rep.Columns.Data != "D" {
		t.Errorf("metric %q, columns %+v", rep.Metric, rep.Columns)
	}
	near(t, "alpha", l.Alpha, float64(rep.Law.Alpha.Value), 0.01)
	near(t, "beta", l.Beta, float64(rep.Law.Beta.Value), 0.01)
	near(t, "E", l.E, float64(rep.Law.E.Value), 0.01)
	c, n, d := l.leastCompute(1-0.9, 6)
	near(t, "least compute", c, float64(rep.Target.FLOPs.Value), 0.05)
	near(t, "its N", n, float64(rep.Target.N.Value), 0.05)
	near(t, "its D", d, float64(rep.Target.D.Value), 0.05)
	if code, msg := lawFails(t, "--accuracy", "--metric", "accuracy", writeTable(t, "pct.csv", []byte("N,D,accuracy\n1e4,1e4,87.5\n"))); code != builtin.LawExitInput ||
		!strings.Contains(msg, `pct.csv:2: column "accuracy": the accuracy is 87.5`) {
		t.Errorf("percent accuracy: exit %d: %s", code, msg)
	}
}

// --run resamples runs, not rows: rows of one run (checkpoints of one
// training) count once; too few runs are refused even with many rows.
func TestLawFitRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var b bytes.Buffer
	b.WriteString("seed,params,tokens,final_loss\n")
	runs := 0
	for _, n := range []float64{1e4, 1e5, 1e6, 1e7} {
		for s := range 2 {
			luck := 0.01 * rng.NormFloat64() // shared by a run's checkpoints
			for _, d := range []float64{1e4, 1e5, 1e6, 1e7} {
				fmt.Fprintf(&b, "%g-%d,%g,%g,%.6g\n", n, s, n, d, exampleLaw.at(n, d)*math.Exp(luck+0.002*rng.NormFloat64()))
			}
			runs++
		}
	}
	path := writeTable(t, "runs.csv", b.Bytes())
	rep := lawFit(t, "--run", "seed", "--bootstrap", "100", path)
	if rep.Runs != runs || rep.Rows != 4*runs || rep.Columns.Run != "seed" || rep.Columns.Metric != "final_loss" || rep.Columns.Data != "tokens" {
		t.Errorf("runs %d rows %d columns %+v", rep.Runs, rep.Rows, rep.Columns)
	}
	within(t, "alpha", exampleLaw.Alpha, rep.Law.Alpha)
	within(t, "beta", exampleLaw.Beta, rep.Law.Beta)
	alone := lawFit(t, "--bootstrap", "100", path)
	if alone.Runs != 4*runs {
		t.Errorf("without --run: %d runs", alone.Runs)
	}

	// Five runs of four checkpoints: 20 rows, but five runs for a law of
	// five parameters.
	lines := strings.SplitAfter(b.String(), "\n")
	few := writeTable(t, "few.csv", []byte(strings.Join(lines[:1+5*4], "")))
	code, msg := lawFails(t, "--run", "seed", few)
	if code != builtin.LawExitInput || !strings.Contains(msg, "few.csv: 5 runs (20 rows)") || !strings.Contains(msg, "5 parameters") {
		t.Errorf("five runs: exit %d: %s", code, msg)
	}
}

// A bad cell is named by file, CSV line (comments counted) and column;
// every problem of the file at once.
func TestLawFitBadRows(t *testing.T) {
	path := writeTable(t, "bad.csv", []byte(`# measured on the lab machine
run,params,samples,loss
a,1e4,3e4,0.9
b,abc,3e4,0.9
c,-5,3e4,0.9
d,1e4,0,0.9
e,1e4,3e4,
f,1e4,3e4,NaN
g,1e4,3e4,-0.2
`))
	code, msg := lawFails(t, path)
	if code != builtin.LawExitInput {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{
		`bad.csv:4: column "params": "abc" is not a number`,
		`bad.csv:5: column "params": the value is -5`,
		`bad.csv:6: column "samples": the value is 0`,
		`bad.csv:7: column "loss": the run has no loss`,
		`Also on line 8.`,
		`bad.csv:9: column "loss": the loss is -0.2`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("no %q in:\n%s", want, msg)
		}
	}
}

// Columns not found by their common names are refused with the file's
// columns and the closest name.
func TestLawFitColumns(t *testing.T) {
	path := writeTable(t, "cols.csv", []byte("param,tokens,val_loss\n1,2,3\n"))
	code, msg := lawFails(t, path)
	for _, want := range []string{
		"cols.csv:1: no size column: looked for params, N, n_params; name it with --size. Did you mean --size param?",
		"cols.csv:1: no loss column: looked for loss, final_loss; name it with --metric.",
		"The file's columns: param, tokens, val_loss.",
	} {
		if code != builtin.LawExitInput || !strings.Contains(msg, want) {
			t.Errorf("exit %d, no %q in:\n%s", code, want, msg)
		}
	}
	_, msg = lawFails(t, "--size", "param", "--metric", "val_los", path)
	if !strings.Contains(msg, `cols.csv:1: --metric "val_los": the table has no such column. Did you mean "val_loss"?`) {
		t.Errorf("misspelt --metric: %s", msg)
	}
	dup := writeTable(t, "dup.csv", []byte("params,loss,tokens,loss\n1,2,3,4\n"))
	if _, msg = lawFails(t, dup); !strings.Contains(msg, `dup.csv:1: the file has two columns named "loss"`) {
		t.Errorf("duplicate column: %s", msg)
	}
	if _, msg = lawFails(t, "--confidence", "1.5", path); !strings.Contains(msg, "--confidence 1.5") {
		t.Errorf("confidence: %s", msg)
	}
}

// An Arrow IPC file with integer sizes reads as the CSV does.
func TestLawFitArrow(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "n_params", Type: arrow.PrimitiveTypes.Int64},
		{Name: "samples", Type: arrow.PrimitiveTypes.Int64},
		{Name: "loss", Type: arrow.PrimitiveTypes.Float32},
	}, nil)
	bld := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bld.Release()
	for _, n := range lawSizes {
		for _, d := range lawData {
			bld.Field(0).(*array.Int64Builder).Append(int64(n))
			bld.Field(1).(*array.Int64Builder).Append(int64(d))
			bld.Field(2).(*array.Float32Builder).Append(float32(exampleLaw.at(n, d)))
		}
	}
	rec := bld.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep := lawFit(t, "--bootstrap", "0", writeTable(t, "runs.arrow", buf.Bytes()))
	near(t, "alpha", exampleLaw.Alpha, float64(rep.Law.Alpha.Value), 0.01)
	near(t, "beta", exampleLaw.Beta, float64(rep.Law.Beta.Value), 0.01)
	if rep.Columns.Size != "n_params" {
		t.Errorf("columns %+v", rep.Columns)
	}
}

const lawExampleHeader = `# Synthetic runs, drawn from the known law
#   L(N, D) = 0.5 + 40/N^0.45 + 120/D^0.38
# with a log-normal error of 1% (seed 11): one row per run, N the
# parameters, D the samples seen. Made by TestLawExampleTable in
# plugins/builtin (go test ./plugins/builtin -run TestLawExampleTable
# -update-law-example).
`

// The shipped example is what the generator draws from exampleLaw, and
// the fit on it holds that law.
func TestLawExampleTable(t *testing.T) {
	const path = "../../examples/law/runs.csv"
	want := lawTable(exampleLaw, 0.01, 11, lawExampleHeader)
	if *updateLawExample {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what the generator makes; rewrite it with -update-law-example", path)
	}
	rep := lawFit(t, path)
	within(t, "alpha", exampleLaw.Alpha, rep.Law.Alpha)
	within(t, "beta", exampleLaw.Beta, rep.Law.Beta)
	within(t, "E", exampleLaw.E, rep.Law.E)
}

// Whatever the table's bytes, the tool answers or refuses, never panics,
// and a refusal says something.
func FuzzLawTable(f *testing.F) {
	f.Add(lawTable(exampleLaw, 0.01, 1, ""))
	f.Add([]byte("params,tokens,loss\n1,1,1\n2,2,\n3,x,0\n"))
	f.Add([]byte("N,D,loss\n1e4,1e4,1e300\n1e5,1e5,1e-300\n1,1,1\n2,2,2\n3,3,3\n4,4,4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := writeTable(t, "f.csv", data)
		var out, errb bytes.Buffer
		code := builtin.LawTool([]string{"fit", "--bootstrap", "0", "--budget-flops", "1e12", "--target", "1", path}, &out, &errb)
		if code != 0 && strings.TrimSpace(errb.String()) == "" {
			t.Fatalf("exit %d with no message", code)
		}
		if code == 0 && out.Len() == 0 {
			t.Fatal("no report")
		}
	})
}
