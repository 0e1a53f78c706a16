package ui

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/pipeline/report"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

const (
	idA = "20261201-100000-aaaaaa"
	idB = "20261201-110000-bbbbbb"
	idC = "20261201-120000-cccccc"
)

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Host = "127.0.0.1:8765"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func newStore(t *testing.T) *runstore.Store {
	return runstore.Open(filepath.Join(t.TempDir(), "runs"))
}

func TestRunsList(t *testing.T) {
	store := newStore(t)
	writeRun(t, store, fxRun{id: idA, qinf: 0.97, widths: []int{2, 4, 8, 16, 32}})
	writeRun(t, store, fxRun{id: idB, qinf: 0.95, widths: []int{4, 8, 16, 64}, status: runstore.StatusFailed})
	// Damaged: a manifest that is not JSON, and a run directory with none.
	if err := os.MkdirAll(filepath.Join(store.Root, idC), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store.Root, idC, "manifest.json"), []byte(`{"run_id": "x`), 0o644); err != nil {
		t.Fatal(err)
	}
	const noManifest = "20261201-130000-dddddd"
	if err := os.MkdirAll(filepath.Join(store.Root, noManifest), 0o755); err != nil {
		t.Fatal(err)
	}
	// Not runs: the cache, a stray directory.
	for _, d := range []string{".cache", "notes"} {
		if err := os.MkdirAll(filepath.Join(store.Root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := New(store)
	rec := get(t, s, "/api/runs")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/runs: %d %s", rec.Code, rec.Body)
	}
	var runs []runEntry
	if err := json.Unmarshal(rec.Body.Bytes(), &runs); err != nil {
		t.Fatal(err)
	}
	type row struct{ ID, Status, Decision, Chosen string }
	var got []row
	for _, r := range runs {
		got = append(got, row{r.ID, r.Status, r.Decision, r.Chosen})
	}
	// params are 5w+2; q = q∞ - 2.2·N^-0.75 reaches 0.9 first at width 32
	// for q∞ 0.97 (162 params: 0.922; width 16, 82 params: 0.889) and at
	// width 64 for q∞ 0.95 (322 params: 0.921; width 16: 0.869).
	want := []row{
		{noManifest, StatusDamaged, "", ""},
		{idC, StatusDamaged, "", ""},
		{idB, runstore.StatusFailed, "converged", "mlp-d1-w64"},
		{idA, runstore.StatusSucceeded, "converged", "mlp-d1-w32"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	if !strings.Contains(runs[0].Damaged, "manifest.json is missing") || !strings.Contains(runs[1].Damaged, "manifest.json: unexpected end of JSON input") {
		t.Errorf("damaged reasons: %q, %q", runs[0].Damaged, runs[1].Damaged)
	}
	if runs[3].Duration != "30s" || runs[3].TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("run A: duration %q trace %q", runs[3].Duration, runs[3].TraceID)
	}

	page := get(t, s, "/").Body.String()
	for _, want := range []string{`href="/runs/` + idA + `"`, "unexpected end of JSON input", `<span class="pill bad">damaged</span>`, "examples/fx/pipeline.hcl"} {
		if !strings.Contains(page, want) {
			t.Errorf("runs page lacks %q", want)
		}
	}

	// A run deleted while the server runs is gone from the list.
	if err := os.RemoveAll(filepath.Join(store.Root, idB)); err != nil {
		t.Fatal(err)
	}
	if body := get(t, s, "/api/runs").Body.String(); strings.Contains(body, idB) {
		t.Errorf("deleted run still listed: %s", body)
	}
	if rec := get(t, s, "/runs/"+idB); rec.Code != http.StatusNotFound {
		t.Errorf("page of a deleted run: %d", rec.Code)
	}
}

func TestRunPage(t *testing.T) {
	store := newStore(t)
	widths := []int{2, 4, 8, 16, 32}
	run := writeRun(t, store, fxRun{id: idA, qinf: 0.97, widths: widths})
	writeSpans(t, run, "mlp-d1-w2", "mlp-d1-w4")
	s := New(store)
	rec := get(t, s, "/runs/"+idA)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET run: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{`id="chart-quality"`, `id="trials-table"`, `id="rounds"`, "Ship mlp-d1-w32", "evaluation.train", `id="trial-filter"`} {
		if !strings.Contains(body, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	if n := len(regexp.MustCompile(`<tr[^>]*><td class="star"`).FindAllString(body, -1)); n != len(widths) {
		t.Errorf("trials table has %d rows, want %d", n, len(widths))
	}
	if strings.Contains(body, `data-live="1"`) {
		t.Error("a finished run's page asks for live updates")
	}
	tr := get(t, s, "/runs/"+idA+"/trace").Body.String()
	for _, want := range []string{`class="sp-trial"`, "trial mlp-d1-w2", "trial mlp-d1-w4", "stage evaluation.train", "4 span(s) over 30s"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace page lacks %q", want)
		}
	}
}

func TestDamagedRun(t *testing.T) {
	store := newStore(t)
	run := writeRun(t, store, fxRun{id: idA, qinf: 0.97, widths: []int{2, 4, 8}})
	m := run.Manifest()
	var rel string
	for _, st := range m.Stages {
		for _, o := range st.Outputs {
			if o.Port == "results" {
				rel = o.Path
			}
		}
	}
	path := run.Path(rel)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(store)
	rec := get(t, s, "/runs/"+idA)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `id="damaged"`) || !strings.Contains(body, "results.arrow") {
		t.Errorf("page of a run with a changed file: %d, want the damage shown naming results.arrow:\n%s", rec.Code, body)
	}
	// A manifest damaged while the server runs.
	if err := os.WriteFile(run.Path("manifest.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	body = get(t, s, "/runs/"+idA).Body.String()
	if !strings.Contains(body, "This run cannot be read") || !strings.Contains(body, "manifest.json") {
		t.Errorf("page of a run with a damaged manifest:\n%s", body)
	}
}

func TestHostilePaths(t *testing.T) {
	store := newStore(t)
	writeRun(t, store, fxRun{id: idA, qinf: 0.97, widths: []int{2, 4, 8}})
	// A secret beside the store, in a directory named like a run.
	parent := filepath.Dir(store.Root)
	const secret = "SECRET-7f3a9c"
	if err := os.WriteFile(filepath.Join(parent, "manifest.json"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(store)
	for _, target := range []string{
		"/runs/..", "/runs/../secret.txt", "/runs/%2e%2e", "/runs/..%2fsecret.txt", "/runs/%2e%2e%2fsecret.txt",
		"/runs/" + idA + "%2f..%2f..%2fsecret.txt", "/runs/" + idA + "/../../secret.txt", "/runs/2026", "/runs/" + idA[:20],
		"/runs/20261201-100000-aaaaa%00", "/runs/" + strings.ToUpper(idA), "/runs/..%2f/trace", "/runs/%2e%2e/events",
		"/static/..%2fserver.go", "/static/../server.go", "/static/%2e%2e%2fui.go", "/static/app.js%00", "/static/templates%2frun.html",
		"/compare?run=..&run=../secret.txt", "/compare?run=" + idA + "&run=%2e%2e%2f", "/compare?run=" + idA,
		"//etc/passwd", "/runs//etc/passwd", "/runs/" + idA + "/events/../../../secret.txt",
	} {
		rec := get(t, s, target)
		body := rec.Body.String()
		if strings.Contains(body, secret) {
			t.Errorf("GET %s served the secret", target)
		}
		if rec.Code == http.StatusOK && !strings.HasPrefix(target, "/compare?run="+idA+"&") {
			t.Errorf("GET %s: 200, want a refusal:\n%.300s", target, body)
		}
	}
}

func TestReadOnlyAndHeaders(t *testing.T) {
	store := newStore(t)
	writeRun(t, store, fxRun{id: idA, qinf: 0.97, widths: []int{2, 4, 8}})
	s := New(store)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, target := range []string{"/", "/runs/" + idA, "/api/runs"} {
			req := httptest.NewRequest(method, target, strings.NewReader("x"))
			req.Host = "localhost:8765"
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", method, target, rec.Code)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(store.Root, idA, "manifest.json")); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/", "/runs/" + idA, "/runs/" + idA + "/trace", "/static/app.js", "/static/report.css", "/nope", "/runs/bad"} {
		rec := get(t, s, target)
		h := rec.Header()
		if h.Get("Content-Security-Policy") != ContentSecurityPolicy || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", target, h)
		}
	}
	if !strings.Contains(ContentSecurityPolicy, "default-src 'none'") || strings.Contains(ContentSecurityPolicy, "http") || strings.Contains(ContentSecurityPolicy, "*") {
		t.Errorf("policy allows outside origins: %s", ContentSecurityPolicy)
	}
	// DNS rebinding: a page of another site that resolves its name to
	// 127.0.0.1 sends its own Host.
	for host, want := range map[string]int{"evil.example:8765": http.StatusMisdirectedRequest, "localhost:8765": 200, "[::1]:8765": 200, "127.0.0.1": 200} {
		req := httptest.NewRequest(http.MethodGet, "/api/runs", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: %d, want %d", host, rec.Code, want)
		}
	}
}

func TestCompare(t *testing.T) {
	store := newStore(t)
	writeRun(t, store, fxRun{id: idA, qinf: 0.97, widths: []int{2, 4, 8, 16, 32}})
	writeRun(t, store, fxRun{id: idB, qinf: 0.93, widths: []int{4, 8, 16, 64}})
	s := New(store)
	rec := get(t, s, "/compare?run="+idA+"&run="+idB)
	if rec.Code != http.StatusOK {
		t.Fatalf("compare: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	svg := strings.ToLower(regexp.MustCompile(`(?s)<figure id="chart-compare".*?</figure>`).FindString(body)) // vgsvg writes upper-case hex
	// Each run's curve and trials in its colour: the first two of the
	// palette (the report's Tableau 10), 5 and 4 trials.
	for col, trials := range map[string]int{"#4e79a7": 5, "#f28e2b": 4} {
		if n := strings.Count(svg, "stroke:"+col); n != 1 {
			t.Errorf("compare chart has %d lines of %s, want the run's curve", n, col)
		}
		if n := strings.Count(svg, "fill:"+col); n != trials {
			t.Errorf("compare chart has %d markers of %s, want %d", n, col, trials)
		}
	}
	if n := strings.Count(body, `class="decision-card"`); n != 2 {
		t.Errorf("%d decision cards, want 2", n)
	}
	if rec := get(t, s, "/compare?run="+idA); rec.Code != http.StatusBadRequest {
		t.Errorf("compare of one run: %d", rec.Code)
	}
}

// readEvent reads one server-sent event.
func readEvent(t *testing.T, r *bufio.Reader) (event string, data []byte) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && event != "":
			return event, data
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: ")...)
		}
	}
}

func TestLiveEvents(t *testing.T) {
	store := newStore(t)
	lr := startLiveRun(t, store, fxRun{id: idA, qinf: 0.97})
	lr.finish(t, 2)
	srv := httptest.NewServer(New(store, WithPollInterval(20*time.Millisecond), WithHosts()))
	defer srv.Close()
	page, err := http.Get(srv.URL + "/runs/" + idA)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(html), `data-live="1"`) || !strings.Contains(string(html), "mlp-d1-w2") {
		t.Fatalf("a running run's page is not live, or lacks its journalled trial:\n%.500s", html)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/runs/"+idA+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	trials := func(data []byte) string {
		var u update
		if err := json.Unmarshal(data, &u); err != nil {
			t.Fatal(err)
		}
		return u.Parts["trials"]
	}
	ev, data := readEvent(t, rd)
	if ev != "update" || !strings.Contains(trials(data), "mlp-d1-w2") || strings.Contains(trials(data), "mlp-d1-w4") {
		t.Fatalf("first event %s: want the one trial so far", ev)
	}
	lr.finish(t, 4)
	// The journal and its digests are written one after the other, and a
	// look between them sees the trial as torn; the next shows it.
	for i := 0; ; i++ {
		ev, data = readEvent(t, rd)
		if ev == "update" && strings.Contains(trials(data), "mlp-d1-w4") {
			break
		}
		if ev != "update" || i == 5 {
			t.Fatalf("after a trial finished, event %s lacks it", ev)
		}
	}
	if _, err := lr.run.End(nil); err != nil {
		t.Fatal(err)
	}
	for {
		ev, data = readEvent(t, rd)
		if ev == "end" {
			break
		}
	}
	if !strings.Contains(string(data), runstore.StatusSucceeded) {
		t.Errorf("end event %s", data)
	}
}

func TestEventsOfADeletedRun(t *testing.T) {
	store := newStore(t)
	lr := startLiveRun(t, store, fxRun{id: idA, qinf: 0.97})
	lr.finish(t, 2)
	srv := httptest.NewServer(New(store, WithPollInterval(20*time.Millisecond), WithHosts()))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/runs/"+idA+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if ev, _ := readEvent(t, rd); ev != "update" {
		t.Fatalf("first event %s", ev)
	}
	lr.pw.Abort()
	lr.run.Unlock()
	if err := os.RemoveAll(lr.run.Dir); err != nil {
		t.Fatal(err)
	}
	// Updates may come while the directory goes; then "gone", and the
	// stream ends.
	for i := 0; ; i++ {
		ev, _ := readEvent(t, rd)
		if ev == "gone" {
			break
		}
		if ev != "update" || i > 10 {
			t.Fatalf("event after the run was deleted: %s, want gone", ev)
		}
	}
}

// The run page shows the report's ship line, the same paragraph the
// offline report shows: the export command of the chosen model (here a
// trainer's ONNX artifact), its size and digest.
func TestRunPageShipLine(t *testing.T) {
	store := newStore(t)
	run := writeRun(t, store, fxRun{id: idA, qinf: 0.97, widths: []int{2, 4, 8, 16, 32}})
	if strings.Contains(get(t, New(store), "/runs/"+idA).Body.String(), `id="ship"`) {
		t.Error("a run that kept no model offers an export")
	}
	chosen := run.Manifest().Decision.Chosen
	file := []byte("an onnx file of " + chosen)
	m := tables.NewModel(fxResult(fxRun{qinf: 0.97}, 1, 32), tables.FormatONNX, file)
	m.ID, m.Name, m.Artifact = chosen, chosen, "model.onnx"
	b := tables.BuildModels(memory.DefaultAllocator, []tables.Model{m})
	commitPort(t, run, "exec.train", "models", 1, b)
	b.Release()

	page := get(t, New(store), "/runs/"+idA).Body.String()
	var offline bytes.Buffer
	if err := report.Write(&offline, run); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`<p class="ship" id="ship">.*?</p>`)
	got, want := line.FindString(page), line.FindString(offline.String())
	if got == "" || got != want {
		t.Fatalf("run page's ship line %q, the report's %q", got, want)
	}
	sum := sha256.Sum256(file)
	for _, part := range []string{
		"sweetspot model export " + idA + " " + chosen + " --format onnx -o " + chosen + ".onnx",
		fmt.Sprintf("model file %d bytes", len(file)),
		"sha256:" + hex.EncodeToString(sum[:]),
		"latency p95 float32 ",
	} {
		if !strings.Contains(html.UnescapeString(got), part) {
			t.Errorf("ship line %q lacks %q", got, part)
		}
	}
}

// Runs started within one second are listed newest first by their start
// times: their ids' random suffixes say nothing of the order.
func TestRunsListWithinOneSecond(t *testing.T) {
	store := newStore(t)
	base := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
	for i, id := range []string{"20261206-060000-ffffff", "20261206-060000-000000", "20261206-060000-888888"} {
		run, err := store.Create(runstore.Manifest{RunID: id, StartedAt: base.Add(time.Duration(i) * 200 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		run.Unlock()
	}
	runs, err := New(store).listRuns()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.ID)
	}
	want := []string{"20261206-060000-888888", "20261206-060000-000000", "20261206-060000-ffffff"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("runs, newest first (-want +got):\n%s", diff)
	}
}
