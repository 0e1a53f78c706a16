package report

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/internal/telemetry"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// writeSpans records a run's tree of spans into spanFile with
// OpenTelemetry's own stdouttrace exporter (the one internal/telemetry
// writes span files with), at chosen times, and returns the trace id.
// The run lasts 10 s: stage a from 0 to 2 s, stage b from 2 to 10 s with
// two trials in it, the second failing.
func writeSpans(t *testing.T, spanFile string, t0 time.Time, resAttrs ...attribute.KeyValue) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(spanFile), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(spanFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(append([]attribute.KeyValue{attribute.String("service.name", "sweetspot")}, resAttrs...)...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	tr := tp.Tracer("test")
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ctx, run := tr.Start(context.Background(), "run", trace.WithTimestamp(at(0)))
	_, a := tr.Start(ctx, "stage dataset.a", trace.WithTimestamp(at(0)), trace.WithAttributes(attribute.Int("rows_out", 2000)))
	a.End(trace.WithTimestamp(at(2)))
	bctx, b := tr.Start(ctx, "stage evaluation.b", trace.WithTimestamp(at(2)))
	_, t1 := tr.Start(bctx, "trial mlp-d1-w8", trace.WithTimestamp(at(2)), trace.WithAttributes(attribute.String("candidate_id", "mlp-d1-w8")))
	t1.AddEvent("epoch", trace.WithTimestamp(at(3)), trace.WithAttributes(attribute.Float64("loss", 0.25)))
	t1.End(trace.WithTimestamp(at(6)))
	_, t2 := tr.Start(bctx, "trial mlp-d1-w4", trace.WithTimestamp(at(6)))
	t2.SetStatus(codes.Error, "diverged")
	t2.End(trace.WithTimestamp(at(7)))
	b.End(trace.WithTimestamp(at(10)))
	run.End(trace.WithTimestamp(at(10)))
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return run.SpanContext().TraceID().String()
}

func TestTraceWaterfall(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	id := writeSpans(t, filepath.Join(dir, "spans", "host.jsonl"), t0)
	// A process killed while it wrote leaves a torn last line.
	f, err := os.OpenFile(filepath.Join(dir, "spans", "host.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"Name":"stage torn","SpanCon`)
	f.Close()

	tv := buildTrace(readSpanFiles(filepath.Join(dir, "spans")), []string{id})
	type row struct {
		Name, Kind, Left, Width string
		Depth                   int
	}
	var got []row
	for _, r := range tv.Rows {
		got = append(got, row{r.Name, r.Kind, r.Left, r.Width, r.Depth})
	}
	// Places on the 10 s axis, in percent, from the times chosen above.
	want := []row{
		{"run", "run", "0.000%", "100.000%", 0},
		{"stage dataset.a", "stage", "0.000%", "20.000%", 1},
		{"stage evaluation.b", "stage", "20.000%", "80.000%", 1},
		{"trial mlp-d1-w8", "trial", "20.000%", "40.000%", 2},
		{"trial mlp-d1-w4", "error", "60.000%", "10.000%", 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("waterfall rows (-want +got):\n%s", diff)
	}
	if tv.Total != "10s" || tv.Spans != 5 {
		t.Errorf("total %q over %d spans, want 10s over 5", tv.Total, tv.Spans)
	}
	trial := tv.Rows[3]
	if diff := cmp.Diff([]keyValue{{"candidate_id", "mlp-d1-w8"}}, trial.Attrs); diff != "" {
		t.Errorf("trial attributes (-want +got):\n%s", diff)
	}
	if len(trial.Events) != 1 || trial.Events[0].Name != "epoch" || trial.Events[0].At != "+1s" ||
		len(trial.Events[0].Attrs) != 1 || trial.Events[0].Attrs[0] != (keyValue{"loss", "0.25"}) {
		t.Errorf("trial events: %+v", trial.Events)
	}
	if tv.Rows[4].Status != "error: diverged" {
		t.Errorf("failed trial's status %q", tv.Rows[4].Status)
	}
	if len(tv.Problems) != 1 || !strings.Contains(tv.Problems[0], "spans/host.jsonl: 1 line(s) are not spans") || !strings.Contains(tv.Problems[0], "line 6") {
		t.Errorf("problems %q: want the torn line 6 named", tv.Problems)
	}
	if len(tv.Jaeger) != 0 {
		t.Errorf("a run without OTLP links to Jaeger: %v", tv.Jaeger)
	}
}

func TestTraceLinksJaegerWhenExportedOverOTLP(t *testing.T) {
	dir := t.TempDir()
	id := writeSpans(t, filepath.Join(dir, "spans", "host.jsonl"), time.Now(), attribute.String(telemetry.OTLPEndpointAttr, "localhost:4317"))
	tv := buildTrace(readSpanFiles(filepath.Join(dir, "spans")), nil)
	want := []jaegerLink{{TraceID: id, URL: "http://localhost:16686/trace/" + id}}
	if diff := cmp.Diff(want, tv.Jaeger); diff != "" {
		t.Errorf("Jaeger links (-want +got):\n%s", diff)
	}
}

// The span reader follows no link out of the run directory.
func TestTraceSkipsLinks(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	writeSpans(t, filepath.Join(outside, "secret.jsonl"), time.Now())
	if err := os.MkdirAll(filepath.Join(dir, "spans"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.jsonl"), filepath.Join(dir, "spans", "host.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "spans", "worker-x")); err != nil {
		t.Fatal(err)
	}
	if set := readSpanFiles(filepath.Join(dir, "spans")); len(set.spans) != 0 {
		t.Errorf("read %d spans through links out of the run directory", len(set.spans))
	}
}

// The offline report carries the same waterfall.
func TestReportHasTheTrace(t *testing.T) {
	fr := writeFixture(t, t.TempDir(), fixture{decisions: true, fit: true}, nil)
	m := fr.run.Manifest()
	id := writeSpans(t, fr.run.Path("spans", "host.jsonl"), m.StartedAt)
	if err := fr.run.Update(func(m *runstore.Manifest) { m.TraceID, m.TraceIDs = id, []string{id} }); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, fr.run); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, s := range []string{`<section id="trace">`, `class="sp-trial"`, "trial mlp-d1-w8", "5 span(s) over 10s", "candidate_id"} {
		if !strings.Contains(html, s) {
			t.Errorf("report lacks %q", s)
		}
	}
	assertSelfContained(t, html)
}

// A manifest that names a file outside its run directory is refused, and
// the file is never read.
func TestReportRefusesPathsOutsideTheRun(t *testing.T) {
	fr := writeFixture(t, t.TempDir(), fixture{decisions: true}, nil)
	if err := fr.run.Update(func(m *runstore.Manifest) {
		for _, s := range m.Stages {
			for i := range s.Outputs {
				if s.Outputs[i].Port == "results" {
					s.Outputs[i].Path = "../../../etc/passwd"
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	run, err := runstore.Open(filepath.Dir(fr.run.Dir)).Load(filepath.Base(fr.run.Dir))
	if err != nil {
		t.Fatal(err)
	}
	err = Write(&bytes.Buffer{}, run)
	if err == nil || !strings.Contains(err.Error(), "outside the run directory") {
		t.Errorf("Write with a path leaving the run: %v", err)
	}
}

func FuzzParseSpans(f *testing.F) {
	f.Add([]byte(`{"Name":"run","SpanContext":{"TraceID":"0af7651916cd43dd8448eb211c80319c","SpanID":"b7ad6b7169203331"},"Attributes":[{"Key":"k","Value":{"Type":"STRING","Value":"v"}}]}` + "\n"))
	f.Add([]byte("{\"Name\":\n\n{}"))
	f.Add([]byte(`{"SpanContext":{"TraceID":"a","SpanID":"b"},"Parent":{"SpanID":"b"},"StartTime":"2026-01-01T00:00:00Z","EndTime":"2025-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set := &spanSet{}
		parseSpans(bytes.NewReader(data), "fuzz.jsonl", set)
		tv := buildTrace(set, nil)
		if len(tv.Rows) > len(set.spans) {
			t.Fatalf("%d rows from %d spans", len(tv.Rows), len(set.spans))
		}
		var buf bytes.Buffer
		if err := pageTemplate.ExecuteTemplate(&buf, "trace", tv); err != nil {
			t.Fatal(err)
		}
	})
}
