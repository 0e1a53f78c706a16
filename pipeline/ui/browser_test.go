//go:build unix

package ui

import (
	"encoding/json"
	"image"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/internal/browsertest"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// These tests drive the UI in a real headless Chromium (Debian's chromium
// package; `make chromium` installs it), as the report's browser test
// does: they read the DOM the page's scripts left, look at screenshots,
// and list every request the page made from Chromium's net log.

func chromium(t *testing.T) string { return browsertest.Chromium(t) }

func browse(t *testing.T, bin, url, netlog string, extra ...string) string {
	t.Helper()
	out, _ := browsertest.Browse(t, bin, url, netlog, extra...)
	return out
}

func pageRequests(t *testing.T, netlog, base string) []string {
	t.Helper()
	return browsertest.PageRequests(t, netlog, base)
}

// requestLog counts what the server was asked, path by path.
type requestLog struct {
	mu     sync.Mutex
	paths  []string
	events chan struct{}
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.paths = append(l.paths, r.URL.Path)
		l.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/events") && l.events != nil {
			select {
			case l.events <- struct{}{}:
			default:
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.paths
	l.paths = nil
	sort.Strings(out)
	return out
}

// checkRequests asserts that every request the page made went to the
// test server, and that the server saw each of them: none left it.
func checkRequests(t *testing.T, netlog, base string, served []string) {
	t.Helper()
	reqs := pageRequests(t, netlog, base)
	var paths []string
	for _, u := range reqs {
		if !strings.HasPrefix(u, base+"/") {
			t.Errorf("the page asked for %s, outside the server", u)
			continue
		}
		paths = append(paths, strings.TrimPrefix(u, base))
	}
	sort.Strings(paths)
	// The net log has the path with its query and fragment; the server,
	// the path.
	var stripped []string
	for _, p := range paths {
		p, _, _ = strings.Cut(p, "#")
		p, _, _ = strings.Cut(p, "?")
		stripped = append(stripped, p)
	}
	if strings.Join(stripped, " ") != strings.Join(served, " ") {
		t.Errorf("requests in the net log %q, served %q", stripped, served)
	}
	if len(served) == 0 {
		t.Error("the server saw no request")
	}
}

func TestUIInBrowser(t *testing.T) {
	bin := chromium(t)
	store := newStore(t)
	a := writeRun(t, store, fxRun{id: idA, qinf: 0.97, widths: []int{2, 4, 8, 16, 32, 64}})
	writeRun(t, store, fxRun{id: idB, qinf: 0.93, widths: []int{4, 8, 16, 64, 128}, status: runstore.StatusFailed})
	writeSpans(t, a, "mlp-d1-w2", "mlp-d1-w4", "mlp-d1-w8")
	// A run whose names try to load from elsewhere: escaped, never fetched.
	hostile := "20261201-140000-eeeeee"
	if err := os.MkdirAll(filepath.Join(store.Root, hostile), 0o755); err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(runstore.Manifest{RunID: hostile, Status: `<img src="http://evil.invalid/s.png">`,
		Pipeline: []string{`<script src="http://evil.invalid/x.js"></script><link rel=stylesheet href="//evil.invalid/c.css">`}})
	if err := os.WriteFile(filepath.Join(store.Root, hostile, "manifest.json"), m, 0o644); err != nil {
		t.Fatal(err)
	}
	live := startLiveRun(t, store, fxRun{id: idC, qinf: 0.97})
	live.finish(t, 2)

	rl := &requestLog{events: make(chan struct{}, 1)}
	srv := httptest.NewServer(rl.wrap(New(store, WithPollInterval(100*time.Millisecond))))
	defer srv.Close()
	dir := t.TempDir()

	t.Run("runs list loads and filters", func(t *testing.T) {
		netlog := filepath.Join(dir, "runs.json")
		dom := browse(t, bin, srv.URL+"/#filter=failed", netlog, "--dump-dom", "--virtual-time-budget=2000")
		rows := regexp.MustCompile(`<tr class="run-row[^"]*"`).FindAllString(dom, -1)
		if len(rows) != 4 {
			t.Fatalf("%d runs listed, want 4", len(rows))
		}
		shown := regexp.MustCompile(`<tr class="run-row[^"]*" data-status="([^"]*)"`).FindAllStringSubmatch(dom, -1)
		var visible []string
		for _, r := range shown {
			if !strings.Contains(r[0], "hidden") {
				visible = append(visible, r[1])
			}
		}
		if strings.Join(visible, ",") != runstore.StatusFailed {
			t.Errorf("rows left by the filter 'failed': %q, want the failed run's only", visible)
		}
		if strings.Contains(dom, `<img src="http://evil`) || !strings.Contains(dom, "evil.invalid/x.js") {
			t.Error("the hostile run's names are not shown escaped")
		}
		checkRequests(t, netlog, srv.URL, rl.take())
	})

	t.Run("a new trial appears on the live page", func(t *testing.T) {
		netlog := filepath.Join(dir, "live.json")
		c := openCDP(t, bin, srv.URL+"/runs/"+idC, netlog)
		trials := `(document.getElementById("live-trials") || {innerHTML: ""}).innerHTML`
		if !c.waitFor(t, `document.readyState === "complete" && `+trials+`.includes("mlp-d1-w2")`, 60*time.Second) {
			t.Fatal("the live page did not load with its first trial")
		}
		select {
		case <-rl.events:
		case <-time.After(30 * time.Second):
			t.Fatal("the page opened no event stream")
		}
		// A mark a reload would wipe out.
		c.eval(t, `window.sweetspotMark = 42; true`)
		live.finish(t, 16)
		if !c.waitFor(t, trials+`.includes("mlp-d1-w16")`, 30*time.Second) {
			t.Fatalf("the trial that finished did not appear: %s", c.eval(t, trials))
		}
		if got := string(c.eval(t, `window.sweetspotMark`)); got != "42" {
			t.Errorf("the page was reloaded (mark %s)", got)
		}
		if got := string(c.eval(t, `document.querySelectorAll("#trials-table tbody tr").length`)); got != "2" {
			t.Errorf("%s trial rows, want 2", got)
		}
		// The trials table filters and sorts as the page is.
		filter := `(function (q) { var f = document.getElementById("trial-filter"); f.value = q; f.dispatchEvent(new Event("input")); ` +
			`return Array.prototype.filter.call(document.querySelectorAll("#trials-table tbody tr"), function (r) { return !r.classList.contains("hidden"); }).length; })`
		if got := string(c.eval(t, filter+`("w16")`)); got != "1" {
			t.Errorf("%s rows match the filter w16, want 1", got)
		}
		if got := string(c.eval(t, filter+`("")`)); got != "2" {
			t.Errorf("%s rows with no filter, want 2", got)
		}
		order := `(function () { Array.prototype.forEach.call(document.querySelectorAll("#trials-table th button"), function (b) { if (b.textContent === "params") { b.click(); b.click(); } }); ` +
			`return Array.prototype.map.call(document.querySelectorAll("#trials-table tbody tr"), function (r) { return r.textContent.indexOf("mlp-d1-w16") >= 0 ? 16 : 2; }).join(","); })()`
		if got := string(c.eval(t, order)); got != `"16,2"` {
			t.Errorf("trials by params, descending: %s, want width 16 (82 params) before width 2 (12)", got)
		}
		// The run ends: the page says so and its stream closes.
		if _, err := live.run.End(nil); err != nil {
			t.Fatal(err)
		}
		if !c.waitFor(t, `document.getElementById("live-note").textContent === "the run has ended"`, 30*time.Second) {
			t.Error("the page did not see the run end")
		}
		_, _ = c.call("", "Browser.close", nil)
		_ = c.cmd.Wait()
		checkRequests(t, netlog, srv.URL, rl.take())
	})

	t.Run("compare draws both runs", func(t *testing.T) {
		netlog := filepath.Join(dir, "compare.json")
		shot := filepath.Join(dir, "compare.png")
		browse(t, bin, srv.URL+"/compare?run="+idA+"&run="+idB, netlog, "--screenshot="+shot, "--window-size=1280,900")
		img := browsertest.ReadPNG(t, shot)
		for _, c := range []struct {
			name string
			rgb  [3]uint8
		}{{"first run", [3]uint8{0x4e, 0x79, 0xa7}}, {"second run", [3]uint8{0xf2, 0x8e, 0x2b}}} {
			// Inside the chart: its curve and markers, not the legend.
			if n := browsertest.CountColor(img, image.Rect(60, 140, 1220, 620), c.rgb, 24); n < 400 {
				t.Errorf("the compare chart has %d pixels of the %s' colour, want its curve and markers (400+)", n, c.name)
			}
		}
		if t.Failed() {
			browsertest.Keep(t, shot, "sweetspot-ui-"+filepath.Base(shot))
		}
		checkRequests(t, netlog, srv.URL, rl.take())
	})

	t.Run("trace shows stage and trial spans", func(t *testing.T) {
		netlog := filepath.Join(dir, "trace.json")
		dom := browse(t, bin, srv.URL+"/runs/"+idA+"/trace", netlog, "--dump-dom")
		for _, want := range []string{`<details class="sp-stage"><summary><span class="sp-name"`, "stage evaluation.train", "trial mlp-d1-w2", "trial mlp-d1-w4", "trial mlp-d1-w8"} {
			if !strings.Contains(dom, want) {
				t.Errorf("the trace view lacks %q", want)
			}
		}
		if n := strings.Count(dom, `class="sp-trial"`); n != 3 {
			t.Errorf("%d trial spans, want 3", n)
		}
		checkRequests(t, netlog, srv.URL, rl.take())

		shot := filepath.Join(dir, "trace.png")
		browse(t, bin, srv.URL+"/runs/"+idA+"/trace", filepath.Join(dir, "trace-shot.json"), "--screenshot="+shot, "--window-size=1280,900")
		img := browsertest.ReadPNG(t, shot)
		// Trial bars are 1 s of the run's 30 s each, in the trial colour;
		// the stage bar 19 s in the stage colour.
		for _, c := range []struct {
			name string
			rgb  [3]uint8
			min  int
		}{{"trial bars", [3]uint8{0x59, 0xa1, 0x4f}, 3 * 10 * 6}, {"stage bar", [3]uint8{0xf2, 0x8e, 0x2b}, 200 * 6}} {
			if n := browsertest.CountColor(img, image.Rectangle{}, c.rgb, 16); n < c.min {
				t.Errorf("the waterfall has %d pixels of the %s' colour, want at least %d", n, c.name, c.min)
			}
		}
		if t.Failed() {
			browsertest.Keep(t, shot, "sweetspot-ui-"+filepath.Base(shot))
		}
		rl.take()
	})
}

// The server's content security policy is what keeps a page from reaching
// out, whatever a run wrote: the same page of outside references makes
// requests that the net log shows without the policy, and none with it.
func TestUIPolicyBlocksOutsideOrigins(t *testing.T) {
	bin := chromium(t)
	const page = `<!doctype html><html><head><link rel="stylesheet" href="http://cdn.example.invalid/x.css"></head>
<body><img src="http://img.example.invalid/a.png"><script src="http://js.example.invalid/y.js"></script></body></html>`
	for _, withPolicy := range []bool{false, true} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if withPolicy {
				w.Header().Set("Content-Security-Policy", ContentSecurityPolicy)
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(page))
		}))
		netlog := filepath.Join(t.TempDir(), "net.json")
		browse(t, bin, srv.URL+"/", netlog, "--dump-dom")
		srv.Close()
		var outside []string
		for _, u := range pageRequests(t, netlog, srv.URL) {
			if !strings.HasPrefix(u, srv.URL+"/") {
				outside = append(outside, u)
			}
		}
		switch {
		case withPolicy && len(outside) > 0:
			t.Errorf("with the policy, the page still asked for %q", outside)
		case !withPolicy && len(outside) != 3:
			t.Errorf("without the policy, the net log shows %q: want the page's 3 outside requests (is the net log still read right?)", outside)
		}
	}
}
