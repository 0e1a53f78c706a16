package main

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// reportPipeline is the quickstart made small: the same stages on fewer
// rows and sizes, so a real run converges in a couple of seconds.
const reportPipeline = `
dataset "spirals" {
  generator     = "spirals"
  rows          = 1000
  noise         = 0.05
  test_fraction = 0.25
  seed          = 7
}

stage "requirements" "sla" {
  dataset        = dataset.spirals
  min_accuracy   = 0.9
  max_latency_ms = 0.5
  max_params     = 20000
  budget {
    max_trials = 16
  }
}

stage "model_choice" "mlp" {
  input = stage.requirements.sla
  depth = [1]
  width = { min = 4, max = 256 }
  steps = 5
}

stage "optimization" "tune" {
  input         = stage.model_choice.mlp
  dataset       = dataset.spirals
  learning_rate = [0.03]
  preprocess    = ["standardize"]
}

stage "evaluation" "train" {
  input   = stage.optimization.tune
  dataset = dataset.spirals
  epochs  = 60
}

stage "resize" "fit" {
  input        = stage.evaluation.train
  requirements = stage.requirements.sla
  loop_to      = stage.evaluation.train
  max_rounds   = 10
}
`

func TestReportOfARealRun(t *testing.T) {
	dir := t.TempDir()
	pipeline := writeFile(t, dir, "pipeline.hcl", reportPipeline)
	if r := sweetspot(t, dir, "run", "-q", pipeline); r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	m := onlyRun(t, dir)
	if m.Decision == nil || m.Decision.Status != "converged" || m.Decision.Chosen == "" {
		t.Fatalf("the run did not converge on a model: %+v", m.Decision)
	}

	// By default the report goes into the run directory, and its path is
	// printed.
	r := sweetspot(t, dir, "report", m.RunID)
	if r.code != 0 {
		t.Fatalf("report: exit %d\n%s", r.code, r.stderr)
	}
	want := filepath.Join(dir, ".sweetspot", "runs", m.RunID, "report.html")
	if got := strings.TrimSpace(r.stdout); got != want {
		t.Errorf("report printed %q, want %q", got, want)
	}
	data, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	html := string(data)
	if n := strings.Count(html, `<svg class="chart"`); n != 7 {
		t.Errorf("%d charts, want 7", n)
	}
	// The headline names the model, its family and its parameter count:
	// an MLP of width w on the spirals' 2 features and 2 classes has
	// 2w+w + 2w+2 parameters, written in thousands from a thousand on.
	head := regexp.MustCompile(`<h1 id="headline">Ship (mlp-d1-w(\d+)) \(mlp, ([0-9.]+)(k?) params\)</h1>`).FindStringSubmatch(html)
	if head == nil || head[1] != m.Decision.Chosen {
		t.Errorf("the headline does not say to ship %s with its family and params: %q", m.Decision.Chosen, head)
	} else {
		width, _ := strconv.Atoi(head[2])
		shown, _ := strconv.ParseFloat(head[3], 64)
		if head[4] == "k" {
			shown *= 1000
		}
		if want := float64(5*width + 2); math.Abs(shown-want) > 5 {
			t.Errorf("the headline gives %s%s params for width %d; want %g", head[3], head[4], width, want)
		}
	}
	rows := regexp.MustCompile(`<tr class="chosen"[^>]*>.*?</tr>`).FindAllString(html, -1)
	if len(rows) != 1 || !strings.Contains(rows[0], ">"+m.Decision.Chosen+"<") {
		t.Errorf("want the one chosen row to be %s, got %q", m.Decision.Chosen, rows)
	}
	if !strings.Contains(html, "chosen: "+m.Decision.Chosen) {
		t.Errorf("the quality chart does not name the chosen model %s", m.Decision.Chosen)
	}
	if !strings.Contains(html, m.Decision.Reason) {
		t.Error("the report does not give the decision's reason")
	}
	// The fitted curve: a long polyline in the curve's colour.
	quality := html[strings.Index(html, `<figure id="chart-quality"`):]
	quality = quality[:strings.Index(quality, "</figure>")]
	curve := false
	for _, p := range regexp.MustCompile(`<path d="([^"]*)"\s*style="[^"]*stroke:#1E293B`).FindAllStringSubmatch(quality, -1) {
		curve = curve || strings.Count(p[1], "L") > 100
	}
	if !curve {
		t.Error("no fitted curve on the quality chart of a real run")
	}
	if info, err := os.Stat(want); err != nil || info.Mode().Perm()&0o044 != 0o044 {
		t.Errorf("report mode %v: want it readable by others, like any document", info.Mode())
	}

	// A run id prefix and -o work too; the directory is created.
	out := filepath.Join(dir, "reports", "latest.html")
	if r := sweetspot(t, dir, "report", m.RunID[:17], "-o", out); r.code != 0 || strings.TrimSpace(r.stdout) != out {
		t.Errorf("report -o: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}

	if r := sweetspot(t, dir, "report", "20200101-000000-000000"); r.code != exitInvalid || !strings.Contains(r.stderr, `no run "20200101-000000-000000"`) {
		t.Errorf("report of an unknown run: exit %d, stderr %q", r.code, r.stderr)
	}
}
