package zootruth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tiny is a zoo of two families, columns in another order than zoo.csv's
// and with a column Load ignores. Accuracy is not monotone in size
// (a-w16 is below a-w8), and a-w4 and b-w6 have the same size.
const tiny = `family,name,depth,accuracy,param_count,latency_p95_ms
a,a-w2,1,0.70,100,0.1
a,a-w4,1,0.85,200,0.2
a,a-w8,1,0.91,400,0.5
a,a-w16,1,0.90,800,1.5
a,a-w32,1,0.95,1600,3.0
b,b-w3,2,0.80,150,0.3
b,b-w6,2,0.88,200,0.4
b,b-w12,2,0.93,600,2.0
b,b-w24,2,0.96,1200,0.9
`

func loadTiny(t *testing.T) []Row {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.csv")
	if err := os.WriteFile(path, []byte(tiny), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func name(r *Row) string {
	if r == nil {
		return "<nil>"
	}
	return r.Name
}

func TestLoad(t *testing.T) {
	rows := loadTiny(t)
	if len(rows) != 9 {
		t.Fatalf("got %d rows, want 9", len(rows))
	}
	want := Row{Name: "b-w12", Family: "b", Params: 600, Accuracy: 0.93, LatencyP95Ms: 2.0}
	if rows[7] != want {
		t.Errorf("row 7 = %+v, want %+v", rows[7], want)
	}
}

// The expected answers below were worked out by hand from the table above.
func TestSmallestMeeting(t *testing.T) {
	rows := loadTiny(t)
	for _, tc := range []struct {
		minAcc, maxLat float64
		first, second  string
	}{
		// a-w4 and b-w6 both have 200 params and reach 0.85: the name decides.
		{0.85, 0, "a-w4", "b-w6"},
		// a-w4 (0.85) drops out; b-w6 (0.88) is next, then a-w8 (400).
		{0.86, 0, "b-w6", "a-w8"},
		// a-w8 (400, 0.91); b-w12 (600) comes before a-w16 (800, 0.90).
		{0.90, 0, "a-w8", "b-w12"},
		// b-w12 (600, 0.93), then b-w24 (1200) before a-w32 (1600).
		{0.92, 0, "b-w12", "b-w24"},
		// A negative latency limit is no limit.
		{0.92, -1, "b-w12", "b-w24"},
		// Latency at most 1 ms: b-w12 (2.0) and a-w32 (3.0) are out.
		{0.92, 1.0, "b-w24", "<nil>"},
		// Both bounds are inclusive: a-w8 has exactly 0.5 ms; a-w16, b-w12,
		// b-w24 and a-w32 are all slower.
		{0.90, 0.5, "a-w8", "<nil>"},
		// a-w2 has exactly 0.70; b-w3 (150) is next.
		{0.70, 0, "a-w2", "b-w3"},
		// Every row.
		{0, 0, "a-w2", "b-w3"},
		// Nothing reaches 0.99.
		{0.99, 0, "<nil>", "<nil>"},
	} {
		first, second := SmallestMeeting(rows, tc.minAcc, tc.maxLat)
		if name(first) != tc.first || name(second) != tc.second {
			t.Errorf("SmallestMeeting(%g, %g) = %s, %s; want %s, %s", tc.minAcc, tc.maxLat, name(first), name(second), tc.first, tc.second)
		}
	}
}

func TestSmallestMeetingReturnsCopies(t *testing.T) {
	rows := loadTiny(t)
	first, _ := SmallestMeeting(rows, 0.9, 0)
	first.Params = -1
	if rows[2].Params != 400 {
		t.Errorf("changing the answer changed the table: %+v", rows[2])
	}
}

func TestPerFamily(t *testing.T) {
	rows := loadTiny(t)
	for _, tc := range []struct {
		minAcc, maxLat float64
		want           map[string][2]string
	}{
		{0.90, 0, map[string][2]string{"a": {"a-w8", "a-w16"}, "b": {"b-w12", "b-w24"}}},
		{0.92, 0, map[string][2]string{"a": {"a-w32", "<nil>"}, "b": {"b-w12", "b-w24"}}},
		{0.92, 1.0, map[string][2]string{"a": {"<nil>", "<nil>"}, "b": {"b-w24", "<nil>"}}},
		{0.80, 0.35, map[string][2]string{"a": {"a-w4", "<nil>"}, "b": {"b-w3", "<nil>"}}},
		{0.99, 0, map[string][2]string{"a": {"<nil>", "<nil>"}, "b": {"<nil>", "<nil>"}}},
	} {
		got := PerFamily(rows, tc.minAcc, tc.maxLat)
		if len(got) != len(tc.want) {
			t.Errorf("PerFamily(%g, %g) has %d families, want %d", tc.minAcc, tc.maxLat, len(got), len(tc.want))
		}
		for f, w := range tc.want {
			a, ok := got[f]
			if !ok {
				t.Errorf("PerFamily(%g, %g) has no entry for %s", tc.minAcc, tc.maxLat, f)
				continue
			}
			if name(a.First) != w[0] || name(a.Second) != w[1] {
				t.Errorf("PerFamily(%g, %g)[%s] = %s, %s; want %s, %s", tc.minAcc, tc.maxLat, f, name(a.First), name(a.Second), w[0], w[1])
			}
		}
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct{ csv, want string }{
		{"", "no header"},
		{"name,family,param_count,accuracy\n", `no column "latency_p95_ms"`},
		{"name,family,param_count,accuracy,latency_p95_ms,name\n", "appears twice"},
		{"name,family,param_count,accuracy,latency_p95_ms\nx,a,10,0.5,1\nx,a,20,0.6,1\n", `name "x" already used on line 2`},
		{"name,family,param_count,accuracy,latency_p95_ms\nx,a,1e3,0.5,1\n", "line 2: param_count"},
		{"name,family,param_count,accuracy,latency_p95_ms\nx,a,10,high,1\n", "line 2: accuracy"},
		{"name,family,param_count,accuracy,latency_p95_ms\nx,a,10,0.5,\n", "line 2: latency_p95_ms"},
		{"name,family,param_count,accuracy,latency_p95_ms\n,a,10,0.5,1\n", "line 2: empty name"},
	} {
		_, err := Read(strings.NewReader(tc.csv))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Read(%q) = %v, want an error containing %q", tc.csv, err, tc.want)
		}
	}
}
