package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
)

// jaeger is a real Jaeger (built from the Go module proxy into .bin/ by
// `make jaeger`) on free loopback ports, with in-memory storage.
type jaeger struct {
	otlpGRPC string
	queryURL string
	cmd      *exec.Cmd
}

const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: %s
    grpc:
      endpoint: %s
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startJaeger(t testing.TB) *jaeger {
	t.Helper()
	bin := os.Getenv("SWEETSPOT_JAEGER")
	if bin == "" {
		bin, _ = filepath.Abs("../../.bin/jaeger")
	}
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "no Jaeger at %s: `make jaeger` builds it", bin)
	}
	j := &jaeger{otlpGRPC: freePort(t)}
	queryHTTP := freePort(t)
	j.queryURL = "http://" + queryHTTP
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, queryHTTP, freePort(t), j.otlpGRPC, freePort(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	j.cmd = exec.Command(bin, "--config", "file:"+cfg)
	logf, err := os.Create(filepath.Join(t.TempDir(), "jaeger.log"))
	if err != nil {
		t.Fatal(err)
	}
	j.cmd.Stdout, j.cmd.Stderr = logf, logf
	if err := j.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = j.cmd.Process.Kill()
		_ = j.cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(j.queryURL + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return j
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("Jaeger did not come up: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jaegerSpan is a span as Jaeger's query API returns it.
type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	ProcessID string `json:"processID"`
	Tags      []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	service string
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func (s jaegerSpan) tag(key string) (any, bool) {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return nil, false
}

// trace fetches a trace, waiting until it holds at least minSpans spans,
// the host's root run span among them, and stops growing: each process
// exports in batches and Jaeger stores what it receives asynchronously, so
// the spans of one trace arrive over a short while and in no fixed order.
func (j *jaeger) trace(t testing.TB, id string, minSpans int) []jaegerSpan {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := -1
	for {
		spans, err := j.fetch(id)
		if err == nil && len(spans) >= minSpans && len(spans) == last && hasRunSpan(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: %d spans (want at least %d, the host's run span among them), last error %v", id, len(spans), minSpans, err)
		}
		last = len(spans)
		time.Sleep(500 * time.Millisecond)
	}
}

func hasRunSpan(spans []jaegerSpan) bool {
	for _, s := range spans {
		if s.service == "sweetspot" && strings.HasPrefix(s.OperationName, "run ") {
			return true
		}
	}
	return false
}

func (j *jaeger) fetch(id string) ([]jaegerSpan, error) {
	resp, err := http.Get(j.queryURL + "/api/traces/" + id)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data []struct {
			TraceID   string       `json:"traceID"`
			Spans     []jaegerSpan `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if len(body.Data) != 1 {
		return nil, fmt.Errorf("%d traces for id %s", len(body.Data), id)
	}
	spans := body.Data[0].Spans
	for i := range spans {
		spans[i].service = body.Data[0].Processes[spans[i].ProcessID].ServiceName
	}
	return spans, nil
}

var traceLine = regexp.MustCompile(`(?m)^trace:\s+([0-9a-f]{32})$`)

func TestRunIsOneTraceInJaeger(t *testing.T) {
	j := startJaeger(t)
	dir := t.TempDir()
	example, _ := filepath.Abs("../../examples/standardize")
	cmd := exec.Command(binary, "run", "--otlp", j.otlpGRPC, example)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	m := traceLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no trace id printed:\n%s", out)
	}
	traceID := string(m[1])
	// run + 4 host stage spans + 4 plugin stage spans at least.
	spans := j.trace(t, traceID, 9)

	byID := map[string]jaegerSpan{}
	var root jaegerSpan
	for _, s := range spans {
		byID[s.SpanID] = s
		if strings.HasPrefix(s.OperationName, "run ") {
			root = s
		}
	}
	if root.SpanID == "" || root.parent() != "" || root.service != "sweetspot" {
		t.Fatalf("no root run span from service sweetspot: %+v", root)
	}
	stages := map[string]jaegerSpan{}
	for _, s := range spans {
		if s.service == "sweetspot" && strings.HasPrefix(s.OperationName, "stage ") {
			if s.parent() != root.SpanID {
				t.Errorf("host span %q is not a child of the run span", s.OperationName)
			}
			stages[s.SpanID] = s
		}
	}
	if len(stages) != 4 {
		t.Errorf("want 4 host stage spans, got %d", len(stages))
	}
	pluginServices := map[string]bool{}
	children := map[string]int{}
	for _, s := range spans {
		if !strings.HasPrefix(s.service, "sweetspot-plugin-") || !strings.HasPrefix(s.OperationName, "stage ") {
			continue
		}
		host, ok := stages[s.parent()]
		if !ok {
			t.Errorf("plugin span %q (%s) has parent %s, not a host stage span", s.OperationName, s.service, s.parent())
			continue
		}
		pluginServices[s.service] = true
		children[host.OperationName]++
		hostPid, _ := host.tag("pid")
		pid, _ := s.tag("pid")
		if fmt.Sprint(hostPid) != fmt.Sprint(pid) {
			t.Errorf("plugin span %q ran in pid %v, the host's stage span says %v", s.OperationName, pid, hostPid)
		}
	}
	for _, want := range []string{"sweetspot-plugin-builtin", "sweetspot-plugin-standardize"} {
		if !pluginServices[want] {
			t.Errorf("no spans from service %s (got %v)", want, pluginServices)
		}
	}
	for _, s := range stages {
		if children[s.OperationName] == 0 {
			t.Errorf("host span %q has no plugin-side child", s.OperationName)
		}
	}
}

const tracedLoop = `
dataset "s" {
  generator = "spirals"
  rows      = 600
  seed      = 2
}
stage "requirements" "r" {
  dataset      = dataset.s
  min_accuracy = 0.8
}
stage "model_choice" "m" {
  input  = stage.requirements.r
  depth  = [1]
  width  = { min = 4, max = 64 }
  steps  = 3
  epochs = 30
}
stage "evaluation" "e" {
  input   = stage.model_choice.m
  dataset = dataset.s
}
stage "resize" "z" {
  input        = stage.evaluation.e
  requirements = stage.requirements.r
  loop_to      = stage.evaluation.e
  max_rounds   = 2
}
stage "broken_candidates" "bad" {}
stage "evaluation" "broken" {
  input   = stage.broken_candidates.bad
  dataset = dataset.s
}
`

func TestLoopTraceHasRoundsTrialsAndFailedTrials(t *testing.T) {
	j := startJaeger(t)
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", tracedLoop)
	cmd := exec.Command(binary, "run", "--otlp", j.otlpGRPC, "p.hcl")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir)
	out, err := cmd.CombinedOutput()
	// Two rounds find no model meeting 0.8: the run succeeds with exit 4.
	if code := cmd.ProcessState.ExitCode(); code != exitOK && code != exitNoAnswer {
		t.Fatalf("run: %v\n%s", err, out)
	}
	m := traceLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no trace id printed:\n%s", out)
	}
	spans := j.trace(t, string(m[1]), 20)
	byID := map[string]jaegerSpan{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	ancestors := func(s jaegerSpan) []string {
		var names []string
		for p := s.parent(); p != ""; p = byID[p].parent() {
			names = append(names, byID[p].OperationName)
		}
		return names
	}

	var rounds, trials, failed int
	for _, s := range spans {
		up := ancestors(s)
		switch {
		case strings.HasPrefix(s.OperationName, "round "):
			rounds++
			if len(up) != 1 || !strings.HasPrefix(up[0], "run ") {
				t.Errorf("%s is not a child of the run span: %v", s.OperationName, up)
			}
		case s.OperationName == "stage resize.z":
			if len(up) < 2 || !strings.HasPrefix(up[0], "round ") {
				t.Errorf("resize stage span is not inside a round: %v", up)
			}
		case strings.HasPrefix(s.OperationName, "trial "):
			trials++
			if s.service != "sweetspot-plugin-builtin" {
				t.Errorf("trial span from service %s", s.service)
			}
			if !contains(up, "stage evaluation.e") && !contains(up, "stage evaluation.broken") {
				t.Errorf("trial %s is not under an evaluation stage span: %v", s.OperationName, up)
			}
			if contains(up, "stage evaluation.broken") {
				failed++
				if e, _ := s.tag("error"); e != true {
					t.Errorf("failed trial %s has no error status: %+v", s.OperationName, s.Tags)
				}
				if msg, _ := s.tag("otel.status_description"); msg == nil || fmt.Sprint(msg) == "" {
					t.Errorf("failed trial %s carries no error message", s.OperationName)
				}
				continue
			}
			if !contains(up, "round 1") && !contains(up, "round 2") {
				t.Errorf("trial %s is not inside a round: %v", s.OperationName, up)
			}
			for _, key := range []string{"width", "depth", "params", "accuracy", "latency_p95_ms"} {
				if _, ok := s.tag(key); !ok {
					t.Errorf("trial %s lacks attribute %s", s.OperationName, key)
				}
			}
		}
	}
	if rounds == 0 || trials < 4 || failed != 1 {
		t.Errorf("rounds %d, trials %d, failed trials %d; want rounds, at least 4 trials and 1 failed", rounds, trials, failed)
	}
	// The decision and the fit are on the resize stage's spans.
	found := false
	for _, s := range spans {
		if _, ok := s.tag("decision"); ok && strings.Contains(s.OperationName, "resize") {
			found = true
		}
	}
	if !found {
		t.Error("no resize span carries the decision")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
