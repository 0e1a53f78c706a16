//go:build unix

package report

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/internal/browsertest"
)

// These tests open the report in a real headless Chromium (Debian's
// chromium package; `make chromium` installs it), as a user would open the
// file: they look at what it drew and at every request it made.

// The browser helpers are internal/browsertest's, shared with
// sweetspot ui's browser test; these name them as this file uses them.

func chromium(t *testing.T) string { return browsertest.Chromium(t) }

func browse(t *testing.T, bin, page, netlog string, extra ...string) (stdout, stderr string) {
	t.Helper()
	return browsertest.Browse(t, bin, "file://"+page, netlog, extra...)
}

func pageRequests(t *testing.T, netlog string) []string {
	t.Helper()
	return browsertest.PageRequests(t, netlog, "")
}

func consoleErrors(stderr string) []string { return browsertest.ConsoleErrors(stderr) }

// TestNetLogSeesPageRequests is the control for the no-network check: a
// page that does reach out is caught, request by request.
func TestReportNetLogSeesPageRequests(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "control.html")
	src := `<!doctype html><html><head><link rel="stylesheet" href="https://cdn.example.com/x.css"></head>
<body><img src="http://img.example.invalid/a.png"><svg><image href="https://svg.example.invalid/z.png"/></svg>
<script>fetch("http://api.example.invalid/y").catch(function () {});</script></body></html>`
	if err := os.WriteFile(page, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	netlog := filepath.Join(dir, "net.json")
	browse(t, bin, page, netlog, "--dump-dom")
	got := pageRequests(t, netlog)
	want := []string{"http://api.example.invalid/y", "http://img.example.invalid/a.png", "https://cdn.example.com/x.css", "https://svg.example.invalid/z.png"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("page requests seen in the net log:\n got %q\nwant %q", got, want)
	}
}

func TestReportInBrowser(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	html, fr := render(t, fixture{fit: true, decisions: true, failed: true})
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	assertSelfContained(t, html)

	t.Run("draws every chart", func(t *testing.T) {
		netlog := filepath.Join(dir, "dom-net.json")
		dom, stderr := browse(t, bin, page, netlog, "--dump-dom")
		charts := regexp.MustCompile(`(?s)<figure id="chart-([a-z-]+)"[^>]*>(.*?)</figure>`).FindAllStringSubmatch(dom, -1)
		if len(charts) != 7 {
			t.Fatalf("the browser's DOM has %d chart figures, want 7", len(charts))
		}
		for _, c := range charts {
			id, body := c[1], c[2]
			svg := regexp.MustCompile(`(?s)<svg class="chart"[^>]*viewBox="0 0 ([0-9.]+) ([0-9.]+)"[^>]*>(.*)</svg>`).FindStringSubmatch(body)
			if svg == nil {
				t.Errorf("chart %s has no SVG in the DOM", id)
				continue
			}
			if w, _ := strconv.ParseFloat(svg[1], 64); w < 100 {
				t.Errorf("chart %s is %s pt wide", id, svg[1])
			}
			if n := strings.Count(svg[3], "<path"); n < 20 {
				t.Errorf("chart %s has %d paths: axes, grid and points should make dozens", id, n)
			}
			if n := strings.Count(svg[3], "<text"); n < 5 {
				t.Errorf("chart %s has %d texts: its tick labels are missing", id, n)
			}
		}
		if !strings.Contains(dom, "chosen: "+fr.chosen) {
			t.Errorf("the chosen model %s is not named on the chart", fr.chosen)
		}
		if errs := consoleErrors(stderr); len(errs) > 0 {
			t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
		}
		if reqs := pageRequests(t, netlog); len(reqs) > 0 {
			t.Errorf("the report made network requests: %q", reqs)
		}
	})

	t.Run("screenshot shows the charts", func(t *testing.T) {
		shot := filepath.Join(dir, "report.png")
		netlog := filepath.Join(dir, "shot-net.json")
		browse(t, bin, page, netlog, "--screenshot="+shot, "--window-size=1280,2000")
		if reqs := pageRequests(t, netlog); len(reqs) > 0 {
			t.Errorf("the report made network requests: %q", reqs)
		}
		f, err := os.Open(shot)
		if err != nil {
			t.Fatalf("no screenshot: %v", err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
			t.Errorf("screenshot is %v, want 1280×2000", b.Size())
		}
		// The first screen holds the quality chart and the cost charts:
		// their markers, requirement lines and band must be painted.
		for _, c := range []struct {
			name string
			rgb  [3]uint8
			min  int
		}{
			{"depth-1 markers", [3]uint8{0x4e, 0x79, 0xa7}, 300},
			{"depth-2 markers", [3]uint8{0xf2, 0x8e, 0x2b}, 50},
			{"requirement lines", [3]uint8{0xdc, 0x26, 0x26}, 300},
			{"fitted curve", [3]uint8{0x1e, 0x29, 0x3b}, 200},
		} {
			if n := countColor(img, c.rgb, 24); n < c.min {
				t.Errorf("screenshot has %d pixels of the %s' colour, want at least %d", n, c.name, c.min)
			}
		}
		if t.Failed() {
			keep := filepath.Join(os.TempDir(), "sweetspot-report-screenshot.png")
			if data, err := os.ReadFile(shot); err == nil && os.WriteFile(keep, data, 0o644) == nil {
				t.Logf("screenshot kept at %s", keep)
			}
		}
	})

	t.Run("sorts the trials table", func(t *testing.T) {
		// The page's own script sorts; a click on the params heading,
		// scripted at the end of a copy of the page, drives it.
		click := `<script>Array.prototype.forEach.call(document.querySelectorAll("#trials-table th button"), function (b) { if (b.textContent === "params") { b.click(); b.click(); } });</script>`
		copyPage := filepath.Join(dir, "sorted.html")
		if err := os.WriteFile(copyPage, []byte(strings.Replace(html, "</body>", click+"</body>", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		dom, stderr := browse(t, bin, copyPage, filepath.Join(dir, "sort-net.json"), "--dump-dom")
		if errs := consoleErrors(stderr); len(errs) > 0 {
			t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
		}
		if !strings.Contains(dom, `aria-sort="descending"`) {
			t.Error("no column is marked sorted after two clicks")
		}
		col := -1
		heads := regexp.MustCompile(`<th[^>]*><button[^>]*>([^<]*)</button>`).FindAllStringSubmatch(dom, -1)
		for i, h := range heads {
			if h[1] == "params" {
				col = i
			}
		}
		if col < 0 {
			t.Fatal("no params column")
		}
		var params []float64
		body := dom[strings.Index(dom, "<tbody>"):]
		for _, row := range regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`).FindAllStringSubmatch(body, -1) {
			cells := regexp.MustCompile(`data-v="([^"]*)"`).FindAllStringSubmatch(row[1], -1)
			if col >= len(cells) {
				t.Fatalf("row with %d cells", len(cells))
			}
			v, err := strconv.ParseFloat(cells[col][1], 64)
			if err != nil {
				t.Fatalf("params cell %q: %v", cells[col][1], err)
			}
			params = append(params, v)
		}
		if len(params) != fr.trials {
			t.Fatalf("%d rows after sorting, want %d", len(params), fr.trials)
		}
		if !sort.IsSorted(sort.Reverse(sort.Float64Slice(params))) {
			t.Errorf("params not in descending order after two clicks: %v", params)
		}
	})
}

func countColor(img image.Image, rgb [3]uint8, tol int) int {
	return browsertest.CountColor(img, image.Rectangle{}, rgb, tol)
}
