package report

import (
	"bytes"
	"fmt"
	stdhtml "html"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// render writes the fixture's report with a checked allocator, so every
// Arrow buffer the report reads is released.
func render(t *testing.T, fx fixture) (string, fixtureRun) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fr := writeFixture(t, t.TempDir(), fx, mem)
	var buf bytes.Buffer
	if err := Write(&buf, fr.run, WithAllocator(mem)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.String(), fr
}

// figure returns the markup of one chart's figure, with HTML's escapes
// undone (the template writes + as &#43;).
func figure(t *testing.T, html, id string) string {
	t.Helper()
	i := strings.Index(html, `<figure id="chart-`+id+`"`)
	if i < 0 {
		t.Fatalf("no figure %q in the report", id)
	}
	j := strings.Index(html[i:], "</figure>")
	return stdhtml.UnescapeString(html[i : i+j])
}

var pathRE = regexp.MustCompile(`<path d="([^"]*)"\s*style="([^"]*)"`)

// svgPath is one drawn path: its points and its style.
type svgPath struct {
	d, style string
}

func paths(svg string) []svgPath {
	var out []svgPath
	for _, m := range pathRE.FindAllStringSubmatch(svg, -1) {
		out = append(out, svgPath{d: m[1], style: m[2]})
	}
	return out
}

// hexOf writes a colour as vgsvg does (un-premultiplied, truncated).
func hexOf(c color.Color) string {
	r, g, b, a := c.RGBA()
	k := 255.0 / float64(a)
	return fmt.Sprintf("#%02X%02X%02X", int(float64(r)*k), int(float64(g)*k), int(float64(b)*k))
}

var circleRE = regexp.MustCompile(`^M([-0-9.e]+),([-0-9.e]+)A([0-9.e]+),`)

// circleCenter returns the centre of a circle path as vgsvg draws one
// (a move to its rightmost point, then two arcs).
func circleCenter(d string) (x, y float64, ok bool) {
	m := circleRE.FindStringSubmatch(d)
	if m == nil {
		return 0, 0, false
	}
	mx, _ := strconv.ParseFloat(m[1], 64)
	my, _ := strconv.ParseFloat(m[2], 64)
	r, _ := strconv.ParseFloat(m[3], 64)
	return mx - r, my, true
}

// polyline parses "Mx,yLx,y..." into points.
func polyline(d string) [][2]float64 {
	var pts [][2]float64
	for _, seg := range regexp.MustCompile(`[ML]`).Split(d, -1) {
		if seg == "" {
			continue
		}
		xy := strings.SplitN(seg, ",", 2)
		if len(xy) != 2 {
			continue
		}
		x, err1 := strconv.ParseFloat(xy[0], 64)
		y, err2 := strconv.ParseFloat(strings.TrimSuffix(xy[1], "Z"), 64)
		if err1 == nil && err2 == nil {
			pts = append(pts, [2]float64{x, y})
		}
	}
	return pts
}

// yAt interpolates a polyline at x.
func yAt(pts [][2]float64, x float64) (float64, bool) {
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		if (a[0] <= x && x <= b[0]) || (b[0] <= x && x <= a[0]) {
			if a[0] == b[0] {
				return a[1], true
			}
			return a[1] + (b[1]-a[1])*(x-a[0])/(b[0]-a[0]), true
		}
	}
	return 0, false
}

// chosenRing finds the ring drawn around the chosen model.
func chosenRing(t *testing.T, svg string) (x, y float64) {
	t.Helper()
	for _, p := range paths(svg) {
		if strings.Contains(p.style, "stroke:"+hexOf(chosenColor)) && strings.Contains(p.style, "stroke-width:1.8") {
			if x, y, ok := circleCenter(p.d); ok {
				return x, y
			}
		}
	}
	t.Fatal("no ring marks the chosen model")
	return 0, 0
}

// curvePath finds the fitted curve: the long line in the curve's colour.
func curvePath(svg string) (svgPath, bool) {
	for _, p := range paths(svg) {
		if strings.Contains(p.style, "stroke:"+hexOf(curveColor)) && strings.Count(p.d, "L") > 100 {
			return p, true
		}
	}
	return svgPath{}, false
}

func TestReportMarksTheChosenModelOnTheFittedCurve(t *testing.T) {
	for _, tc := range []struct {
		name string
		fx   fixture
		axis string
		form string
	}{
		{"classification", fixture{fit: true, decisions: true, failed: true}, "test accuracy", "accuracy(N) = 0.975 − 2.2·N^−0.75"},
		{"regression", fixture{regression: true, fit: true, decisions: true}, "test loss (lower is better)", "loss(N) = 0.02 + 1.5·N^−0.70"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			html, fr := render(t, tc.fx)
			if fr.chosen == "" {
				t.Fatal("the fixture chose no model")
			}
			// The fixture's MLPs have fewer than a thousand parameters,
			// which the report writes as they are.
			if fr.chosenN >= 1000 {
				t.Fatalf("the fixture chose %d params; this test expects fewer than 1000", fr.chosenN)
			}
			if want := fmt.Sprintf("Ship %s (mlp, %d params)", fr.chosen, fr.chosenN); !strings.Contains(html, `<h1 id="headline">`+want+`</h1>`) {
				t.Errorf("headline does not say %q", want)
			}

			// The chosen row, and only it, is marked in the table.
			rows := regexp.MustCompile(`<tr class="chosen"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(html, -1)
			if len(rows) != 1 || !strings.Contains(rows[0][1], ">"+fr.chosen+"<") {
				t.Errorf("want one chosen row holding %s, got %d: %v", fr.chosen, len(rows), rows)
			}

			q := figure(t, html, "quality")
			for _, s := range []string{tc.axis, "chosen: " + fr.chosen, tc.form} {
				if !strings.Contains(q, s) {
					t.Errorf("quality chart lacks %q", s)
				}
			}

			// The ring sits on the chosen trial's own marker...
			rx, ry := chosenRing(t, q)
			onMarker := false
			for _, p := range paths(q) {
				if x, y, ok := circleCenter(p.d); ok && !strings.Contains(p.style, "stroke") && math.Hypot(x-rx, y-ry) < 0.01 {
					onMarker = true
				}
			}
			if !onMarker {
				t.Errorf("the ring at (%.2f, %.2f) is on no trial's marker", rx, ry)
			}
			// ...and on the fitted curve, which the fixture's trials
			// follow to within their noise (a point or two on the page).
			curve, ok := curvePath(q)
			if !ok {
				t.Fatal("no fitted curve in the quality chart")
			}
			if strings.Contains(curve.style, "dasharray") {
				t.Errorf("a trusted fit is drawn dashed: %s", curve.style)
			}
			cy, ok := yAt(polyline(curve.d), rx)
			if !ok {
				t.Fatalf("the curve does not span the chosen size (x=%.2f)", rx)
			}
			if math.Abs(cy-ry) > 4 {
				t.Errorf("the chosen model is %.1f pt off the fitted curve", cy-ry)
			}
			// The band is drawn around the curve.
			band := false
			for _, p := range paths(q) {
				band = band || strings.Contains(p.style, "fill:"+hexOf(bandColor))
			}
			if !band {
				t.Error("no confidence band in the quality chart")
			}

			// Requirements are lines with their names.
			target := "min_accuracy 0.95"
			if tc.fx.regression {
				target = "max_loss 0.035"
			}
			for _, s := range []string{target, "max_params 100k"} {
				if !strings.Contains(q, s) {
					t.Errorf("quality chart lacks the requirement %q", s)
				}
			}
			if !strings.Contains(figure(t, html, "cost-latency"), "max_latency_ms 0.05") {
				t.Error("latency chart lacks max_latency_ms")
			}
			if !strings.Contains(figure(t, html, "cost-bytes"), "max_model_bytes 1M") {
				t.Error("model size chart lacks max_model_bytes")
			}
			dashedRed := 0
			for _, p := range paths(q) {
				if strings.Contains(p.style, "stroke:"+hexOf(limitColor)) && strings.Contains(p.style, "dasharray") {
					dashedRed++
				}
			}
			if dashedRed != 2 {
				t.Errorf("quality chart has %d requirement lines, want 2", dashedRed)
			}

			// Each round's decision is told in words.
			if n := strings.Count(html, `<div class="round-head"><strong>Round `); n != fr.rounds {
				t.Errorf("%d rounds told, want %d", n, fr.rounds)
			}
			if tc.fx.regression {
				for _, h := range []string{">rmse<", ">r²<"} {
					if !strings.Contains(html, h) {
						t.Errorf("regression table lacks column %s", h)
					}
				}
			}
			if tc.fx.failed {
				if !regexp.MustCompile(`<tr class="failed" title="training diverged[^"]*"><td[^>]*></td><td[^>]*>0</td><td[^>]*>` + fr.failedID + `<`).MatchString(html) {
					t.Errorf("failed trial %s is not marked failed with its error", fr.failedID)
				}
				if !strings.Contains(html, "1 trial(s) did not finish") {
					t.Error("the failed trial is not mentioned as not plotted")
				}
			}
			assertSelfContained(t, html)
		})
	}
}

func TestReportUntrustedFitIsDashedAndHasNoBand(t *testing.T) {
	html, _ := render(t, fixture{fit: true, untrusted: true, decisions: true})
	q := figure(t, html, "quality")
	curve, ok := curvePath(q)
	if !ok {
		t.Fatal("no fitted curve")
	}
	if !strings.Contains(curve.style, "dasharray") {
		t.Errorf("an untrusted fit is drawn solid: %s", curve.style)
	}
	for _, p := range paths(q) {
		if strings.Contains(p.style, "fill:"+hexOf(bandColor)) {
			t.Error("an untrusted fit has a band")
		}
	}
	if !strings.Contains(q, "did not trust this fit") {
		t.Error("the caption does not say the fit is not trusted")
	}
}

func TestReportWithoutFitDrawsMeasurementsOnly(t *testing.T) {
	html, fr := render(t, fixture{decisions: true})
	q := figure(t, html, "quality")
	if _, ok := curvePath(q); ok {
		t.Error("a curve is drawn although the decisions carry no fit")
	}
	if !strings.Contains(q, "No curve was fitted") {
		t.Error("the caption does not say no curve was fitted")
	}
	chosenRing(t, q)
	markers := 0
	for _, p := range paths(q) {
		if _, _, ok := circleCenter(p.d); ok && !strings.Contains(p.style, "stroke") {
			markers++
		}
	}
	// Depth-1 trials are circles; depth-2 ones are triangles.
	if markers < fr.trials-3 {
		t.Errorf("%d circle markers for %d trials", markers, fr.trials)
	}
}

func TestReportWithoutDecisionShowsTheMeasurements(t *testing.T) {
	html, fr := render(t, fixture{})
	if !strings.Contains(html, `<h1 id="headline">No decision recorded</h1>`) {
		t.Error("headline does not say there is no decision")
	}
	if strings.Contains(html, `class="chosen"`) {
		t.Error("a model is marked chosen without a decision")
	}
	if n := strings.Count(html, `<svg class="chart"`); n != 7 {
		t.Errorf("%d charts, want 7", n)
	}
	if n := strings.Count(html, "<tr") - 1; n != fr.trials {
		t.Errorf("table has %d rows, want %d", n, fr.trials)
	}
}

func TestReportOfAnEmptyRun(t *testing.T) {
	run, err := runstore.Open(t.TempDir()).Create(runstore.Manifest{RunID: "empty", Status: runstore.StatusFailed, Error: "stage dataset.digits: open digits.csv: no such file"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, run); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, s := range []string{"The run failed before a decision", "open digits.csv: no such file", "No trial has values for this chart."} {
		if !strings.Contains(html, s) {
			t.Errorf("report of an empty run lacks %q", s)
		}
	}
	assertSelfContained(t, html)
}

func TestReportOfACorruptFileIsAnError(t *testing.T) {
	fr := writeFixture(t, t.TempDir(), fixture{decisions: true, fit: true}, nil)
	m := fr.run.Manifest()
	var path string
	for _, s := range m.Stages {
		for _, o := range s.Outputs {
			if o.Port == "decision" {
				path = fr.run.Path(o.Path)
			}
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	err = Write(&bytes.Buffer{}, fr.run)
	if err == nil || !strings.Contains(err.Error(), filepath.Base(path)) {
		t.Errorf("Write of a truncated decision file: %v; want an error naming it", err)
	}
}

// assertSelfContained checks that nothing in the page points off it: no
// src, href or CSS url() to anything but a data: URL or an in-page anchor,
// and a content security policy that forbids every fetch anyway.
func assertSelfContained(t *testing.T, html string) {
	t.Helper()
	refs := regexp.MustCompile(`(?i)(?:\b(?:src|href|xlink:href|action|poster|srcset)\s*=\s*["']?|url\(\s*["']?)([^"'\s)>]*)`)
	for _, m := range refs.FindAllStringSubmatch(html, -1) {
		if v := m[1]; !strings.HasPrefix(v, "data:") && !strings.HasPrefix(v, "#") {
			t.Errorf("the page refers to %q", v)
		}
	}
	if regexp.MustCompile(`(?i)<(?:link|iframe|object|embed|img|audio|video|source)\b`).MatchString(html) {
		t.Error("the page has an element that loads a resource")
	}
	if !strings.Contains(html, `content="default-src 'none';`) {
		t.Error("the page has no content security policy forbidding fetches")
	}
}

func TestFront(t *testing.T) {
	mk := func(id string, cost, q float64) *trial { return &trial{ID: id, LatencyP95: cost, Accuracy: q, Loss: q} }
	ts := []*trial{mk("a", 1, 0.5), mk("b", 2, 0.7), mk("c", 3, 0.6), mk("d", 3, 0.8), mk("e", 4, 0.8), mk("f", 0, 0.9), mk("g", math.NaN(), 0.99)}
	ids := func(ts []*trial) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return out
	}
	cost := func(t *trial) float64 { return t.LatencyP95 }
	acc := func(t *trial) float64 { return t.Accuracy }
	if diff := cmp.Diff([]string{"a", "b", "d"}, ids(front(ts, cost, acc, false))); diff != "" {
		t.Errorf("higher-is-better front (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a"}, ids(front(ts, cost, acc, true))); diff != "" {
		t.Errorf("lower-is-better front (-want +got):\n%s", diff)
	}
}

func TestLinearTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []string
	}{
		{0.58, 0.99, []string{"0.6", "0.7", "0.8", "0.9"}},
		{0.93, 0.97, []string{"0.93", "0.94", "0.95", "0.96", "0.97"}},
		{0, 100, []string{"0", "20", "40", "60", "80", "100"}},
		{0.02, 0.035, []string{"0.020", "0.025", "0.030", "0.035"}},
		{0.9, 0.96, []string{"0.90", "0.91", "0.92", "0.93", "0.94", "0.95", "0.96"}},
	} {
		var got []string
		for _, tk := range linearTicks(tc.lo, tc.hi, plainNumber) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("linearTicks(%g, %g) (-want +got):\n%s", tc.lo, tc.hi, diff)
		}
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(float64) string
		in   float64
		want string
	}{
		{"count", fmtCount, 38802, "38,802"},
		{"count small", fmtCount, 77, "77"},
		{"count million", fmtCount, 1234567, "1,234,567"},
		{"bytes", fmtBytes, 338, "338 B"},
		{"kilobytes", fmtBytes, 155243, "155 kB"},
		{"megabytes", fmtBytes, 1038432, "1.04 MB"},
		{"latency ns", fmtLatency, 0.000441, "441 ns"},
		{"latency us", fmtLatency, 0.25, "250 µs"},
		{"latency ms", fmtLatency, 12.5, "12.5 ms"},
		{"seconds", fmtSeconds, 0.1159, "0.116 s"},
		{"minutes", fmtSeconds, 120, "2m0s"},
		{"si", siNumber, 200000, "200k"},
		{"si fraction", siNumber, 1500, "1.5k"},
		{"plain", plainNumber, 0.0001, "0.0001"},
		{"params", FormatParams, 950, "950"},
		{"params thousands", FormatParams, 12500, "12.5k"},
		{"params millions", FormatParams, 35690000, "35.69M"},
		{"params rounded", FormatParams, 35694999, "35.69M"},
		{"params billions", FormatParams, 1200000000, "1.2B"},
		{"params ten billion", FormatParams, 1e10, "10B"},
		{"params up a unit", FormatParams, 999999, "1M"},
		{"params trillions", FormatParams, 1.75e12, "1.75T"},
		{"params missing", FormatParams, math.NaN(), "–"},
		{"missing", fmtAcc, math.NaN(), "–"},
	} {
		if got := tc.f(tc.in); got != tc.want {
			t.Errorf("%s(%g) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestBandHoldsTheCurve(t *testing.T) {
	r := round{Metric: metricAccuracy, QInf: 0.97, QInfLo: 0.965, QInfHi: 0.975, A: 2, ALo: 1.8, AHi: 2.2, Alpha: 0.7, AlphaLo: 0.65, AlphaHi: 0.75}
	for _, n := range []float64{10, 100, 1e3, 1e5} {
		lo, hi := r.bandAt(n)
		if q := r.curve(n); !(lo <= q && q <= hi) || !(hi-lo > 0) {
			t.Errorf("at %g: band [%g, %g] does not hold the curve %g", n, lo, hi, q)
		}
	}
	// The band narrows towards the asymptote's interval as size grows.
	lo1, hi1 := r.bandAt(100)
	lo2, hi2 := r.bandAt(1e5)
	if !(hi2-lo2 < hi1-lo1) || math.Abs((hi2-lo2)-0.01) > 0.005 {
		t.Errorf("band width %g at 100, %g at 1e5; want it to shrink towards 0.01", hi1-lo1, hi2-lo2)
	}
}

func TestAxisRangeShowsNearLimitsOnly(t *testing.T) {
	data := []float64{10, 1000}
	if _, hi, _ := axisRange(logAxis, data, []limitLine{{value: 50000}}); hi < 50000 {
		t.Errorf("a limit 1.7 decades away is left off the axis (hi %g)", hi)
	}
	if _, hi, _ := axisRange(logAxis, data, []limitLine{{value: 1e9}}); hi > 1e5 {
		t.Errorf("a limit 6 decades away squashes the data (hi %g)", hi)
	}
	if _, _, ok := axisRange(logAxis, []float64{0, -1, math.NaN()}, nil); ok {
		t.Error("a log axis with no positive value has a range")
	}
}

// TestReportOfOddData feeds values a broken or third-party stage could
// write: sizes of zero, costs of zero or below, a metric missing on an ok
// trial, a curve with a negative amplitude, infinities. The report must
// still be written, every chart in its place.
func TestReportOfOddData(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	run, err := runstore.Open(t.TempDir()).Create(runstore.Manifest{RunID: "odd", Status: runstore.StatusSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	ok := func(id string, params, acc, lat, bytes, train float64) map[string]any {
		return map[string]any{"candidate_id": id, "family": "mlp", "depth": 1, "width": 3, "params": params, "status": "ok",
			"accuracy": acc, "latency_p95_ms": lat, "model_bytes": bytes, "train_seconds": train}
	}
	writePort(t, run, mem, "evaluation.train", "results", 1, tables.ResultsSchema, []map[string]any{
		ok("zero", 0, 0.5, 0, 0, 0),
		ok("negative", 10, 0.6, -1, -5, -2),
		ok("no-metric", 20, math.NaN(), 0.1, 100, 1),
		ok("inf", 30, math.Inf(1), math.Inf(1), 100, math.Inf(-1)),
		ok("same-a", 40, 0.7, 0.2, 200, 1),
		ok("same-b", 40, 0.7, 0.2, 200, 1),
	})
	writePort(t, run, mem, "resize.fit", "decision", 1, tables.DecisionSchema, []map[string]any{{
		"round": 0, "status": "converged", "action": "stop", "strategy": "knee", "chosen_candidate_id": "same-a",
		"reason": "because", "metric": "accuracy", "target": 2.0,
		"fit_q_inf": 0.8, "fit_a": -3.0, "fit_alpha": 0.0, "fit_q_inf_lo": math.Inf(-1), "fit_q_inf_hi": 0.9,
		"fit_a_lo": -4.0, "fit_a_hi": -2.0, "fit_alpha_lo": 0.0, "fit_alpha_hi": 0.0, "fit_trusted": true,
		"fit_latency_coef": -1.0, "fit_latency_exp": 2.0,
	}})
	var buf bytes.Buffer
	if err := Write(&buf, run, WithAllocator(mem)); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if n := strings.Count(html, `<figure id="chart-`); n != 7 {
		t.Errorf("%d chart figures, want 7", n)
	}
	if !strings.Contains(html, "Ship same-a (mlp, 40 params)") {
		t.Error("the decision is not the headline")
	}
}
