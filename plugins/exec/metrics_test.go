package exec

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

func TestParseLine(t *testing.T) {
	cases := []struct {
		line    string
		kind    lineKind
		wantErr string
	}{
		{"", lineText, ""},
		{"Epoch 1/3 ...", lineText, ""},
		{"  [1, 2]", lineText, ""},
		{` {"accuracy": 0.5} `, lineMetrics, ""},
		{`{"epoch": 3, "loss": 1}`, lineEpoch, ""},
		{`{"accuracy": 0.5`, lineMetrics, "unexpected EOF"},
		{`{"loss": -Infinity}`, lineMetrics, "NaN and Infinity are not JSON numbers"},
		{`{"a": 1}x`, lineMetrics, "text after the JSON object"},
		{`{"loss": 1e400}`, lineMetrics, "loss: the number 1e400 is out of range"},
	}
	for _, tc := range cases {
		kind, _, err := parseLine([]byte(tc.line))
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if kind != tc.kind || !strings.Contains(gotErr, tc.wantErr) || (tc.wantErr == "") != (err == nil) {
			t.Errorf("%q: kind %d error %q, want %d and %q", tc.line, kind, gotErr, tc.kind, tc.wantErr)
		}
	}
}

func TestDecodeMetrics(t *testing.T) {
	m, err := decodeMetrics(map[string]any{"rmse": 0.5, "r2": -3.0, "params": 1e6, "best_epoch": nil, "stopped_by": "x", "mystery": true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]float64{"rmse": 0.5, "r2": -3, "params": 1e6}, m.num); diff != "" {
		t.Errorf("numbers (-want +got):\n%s", diff)
	}
	if m.text["stopped_by"] != "x" || !cmp.Equal(m.unknown, []string{"mystery"}) {
		t.Errorf("text %v unknown %v", m.text, m.unknown)
	}
	_, err = decodeMetrics(map[string]any{"accuracy": 0.5, "epochs_run": float64(1 << 31), "peak_bytes": -1.0, "params": 0.0, "flops": 0.0})
	want := "epochs_run is 2.147483648e+09: want a whole number from 0 to 2147483647\n" +
		"params is 0: want a parameter count: a whole number, at least 1 and below 2^62\n" +
		"peak_bytes is -1: want a whole number from 0 to 9223372036854775807"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// params is a parameter count: a whole number, at least 1 and below 2⁶²
// (the largest float64 below is 2⁶²-512).
func TestParamsBounds(t *testing.T) {
	for v, ok := range map[float64]bool{1: true, 12345: true, 4611686018427387392: true, 4611686018427387904: false, 0: false, -1: false, 0.5: false} {
		if err := checkNumber(knownMetrics["params"], v); (err == nil) != ok {
			t.Errorf("params %v: error %v, want accepted %v", v, err, ok)
		}
	}
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", maxLineBytes+10)
	in := "a\r\nb\n\n" + long + "\nlast"
	type line struct {
		Text string
		Cut  bool
	}
	var got []line
	readLines(strings.NewReader(in), func(l []byte, cut bool) { got = append(got, line{string(l), cut}) })
	want := []line{{"a", false}, {"b", false}, {"", false}, {long[:maxLineBytes], true}, {"last", false}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%.500s", diff)
	}
}

func TestTail(t *testing.T) {
	// 23 bytes in all: the cut at byte 12 falls inside the ü, so the tail
	// starts after it.
	tl := tail{max: 11}
	tl.add([]byte("first line"))
	tl.add([]byte("ünïcödé"))
	if got := tl.String(); got != "…nïcödé" || !utf8.ValidString(got) {
		t.Errorf("tail %q, want …nïcödé", got)
	}
	small := tail{max: 100}
	small.add([]byte("a"))
	small.add([]byte("b"))
	if small.String() != "a\nb" {
		t.Errorf("tail %q, want a\\nb", small.String())
	}
}

// Whatever a command prints, reading it neither panics nor accepts a
// value the results table cannot hold.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		`{"accuracy": 0.9, "loss": 0.3, "model_bytes": 100}`,
		`{"epoch": 1, "loss": 0.5, "tag": "x", "ok": true}`,
		`{"epoch": -1}`,
		`{"accuracy": NaN}`,
		`{"params": 1e300, "stopped_by": ["a"]}`,
		`not json`,
		`{"best_epoch": 2147483647.5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		kind, obj, err := parseLine(line)
		if err != nil || kind == lineText {
			return
		}
		if kind == lineEpoch {
			epochAttributes(obj)
			return
		}
		m, err := decodeMetrics(obj)
		if err != nil {
			return
		}
		for k, v := range m.num {
			if err := checkNumber(knownMetrics[k], v); err != nil {
				t.Errorf("%s = %v accepted: %v", k, v, err)
			}
		}
	})
}

// A JSON line longer than maxLineBytes is cut there; the trial's error
// says so, not what the JSON parser says of the cut text.
func TestOverlongMetricsLine(t *testing.T) {
	line := `{"accuracy": 0.5, "pad": "` + strings.Repeat("x", maxLineBytes) + `"}`
	o := &outcome{jsonl: true}
	readLines(strings.NewReader("{\"epochs_run\": 1, \"accuracy\": 0.1}\n"+line+"\n"), o.onStdout)
	want := "stdout line 2: the line is longer than 1048576 bytes"
	if o.parseErr == nil || o.parseErr.Error() != want {
		t.Errorf("got %v, want %q", o.parseErr, want)
	}
}

// A trial's progress line names its latency only when the command
// measured one.
func TestProgressLineWithoutLatency(t *testing.T) {
	r := failedResult(tables.Candidate{ID: "m1", Name: "m1"})
	r.Status, r.Accuracy = tables.StatusOK, 0.9
	if got, want := progressMessage(r), "trial m1: accuracy 0.9000"; got != want {
		t.Errorf("no latency: got %q, want %q", got, want)
	}
	r.LatencyP95Ms = 1.5
	if got, want := progressMessage(r), "trial m1: accuracy 0.9000, p95 1.500 ms"; got != want {
		t.Errorf("with latency: got %q, want %q", got, want)
	}
	r.Accuracy, r.RMSE, r.LatencyP95Ms = math.NaN(), 0.25, math.NaN()
	if got, want := progressMessage(r), "trial m1: rmse 0.25"; got != want {
		t.Errorf("regression, no latency: got %q, want %q", got, want)
	}
}
