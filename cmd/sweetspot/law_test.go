package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `law fit` on the shipped synthetic table, through the binary and its
// law tool mode: the intervals hold the law the table was drawn from
// (examples/law/runs.csv says which) and its compute-optimal size, worked
// out here in closed form; bad rows exit 2 naming file, line and column.
func TestLawFit(t *testing.T) {
	const E, A, alpha, B, beta = 0.5, 40.0, 0.45, 120.0, 0.38
	const c = 1e12
	example, err := filepath.Abs("../../examples/law/runs.csv")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := sweetspot(t, dir, "law", "fit", example, "--json", "--budget-flops", "1e12")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	type est struct{ Value, Lo, Hi float64 }
	var rep struct {
		Runs   int
		Law    map[string]est
		Budget struct {
			N, D est
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	// N*(C) = G·(C/6)^(β/(α+β)), G = (αA/(βB))^(1/(α+β)).
	g := math.Pow(alpha*A/(beta*B), 1/(alpha+beta))
	n := g * math.Pow(c/6, beta/(alpha+beta))
	for name, truth := range map[string]float64{"E": E, "A": A, "alpha": alpha, "B": B, "beta": beta} {
		if e := rep.Law[name]; !(truth >= e.Lo && truth <= e.Hi) {
			t.Errorf("%s: true %g outside [%g, %g]", name, truth, e.Lo, e.Hi)
		}
	}
	if e := rep.Budget.N; !(n >= e.Lo && n <= e.Hi) {
		t.Errorf("N*(C): true %g outside [%g, %g]", n, e.Lo, e.Hi)
	}
	if e := rep.Budget.D; !(c/6/n >= e.Lo && c/6/n <= e.Hi) {
		t.Errorf("D*(C): true %g outside [%g, %g]", c/6/n, e.Lo, e.Hi)
	}
	if rep.Runs != 25 {
		t.Errorf("%d runs", rep.Runs)
	}

	text := sweetspot(t, dir, "law", "fit", example, "--target", "0.8")
	for _, want := range []string{`columns: size "params", data "samples", loss "loss"`, "alpha", "RMSE of log residuals", "target loss 0.8"} {
		if text.code != 0 || !strings.Contains(text.stdout, want) {
			t.Errorf("exit %d, no %q in:\n%s%s", text.code, want, text.stdout, text.stderr)
		}
	}

	writeFile(t, dir, "bad.csv", "params,tokens,loss\n1e4,1e4,1\n0,1e5,oops\n")
	r = sweetspot(t, dir, "law", "fit", "bad.csv")
	for _, want := range []string{`bad.csv:3: column "params": the value is 0`, `bad.csv:3: column "loss": "oops" is not a number`} {
		if r.code != exitInvalid || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, no %q in:\n%s", r.code, want, r.stderr)
		}
	}
	if r = sweetspot(t, dir, "law", "fit", "bad.csv", "--confidence", "2"); r.code != exitInvalid || !strings.Contains(r.stderr, "--confidence 2") {
		t.Errorf("--confidence 2: exit %d: %s", r.code, r.stderr)
	}

	// docs/law.md shows the command and its output as the binary prints
	// them, from the repository's root.
	doc, err := os.ReadFile("../../docs/law.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```console\n$ sweetspot ")
	block, _, closed := strings.Cut(block, "```")
	if !ok || !closed {
		t.Fatal("docs/law.md has no console block")
	}
	command, shown, _ := strings.Cut(block, "\n")
	got := sweetspot(t, "../..", strings.Fields(command)...)
	if got.code != 0 || got.stdout != shown {
		t.Errorf("docs/law.md shows\n%s\nthe binary prints (exit %d)\n%s%s", shown, got.code, got.stdout, got.stderr)
	}

	help := sweetspot(t, dir, "law", "fit", "--help")
	for _, want := range []string{"--size", "--data", "--metric", "--run", "--accuracy", "--budget-flops", "--flops-per-param-sample", "--target", "--confidence", "--bootstrap", "--seed", "--json", "sweetspot law fit examples/law/runs.csv"} {
		if !strings.Contains(help.stdout, want) {
			t.Errorf("help lacks %s", want)
		}
	}
}
