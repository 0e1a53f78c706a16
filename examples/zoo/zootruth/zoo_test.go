package zootruth

import (
	"fmt"
	"testing"
)

// TestZooTable checks the committed table's shape and that this package's
// answers agree with those examples/zoo/README.md lists, which the program
// that builds the table (examples/zoo/measure) computed on its own. After
// the table is measured again, the answers below change with it.
func TestZooTable(t *testing.T) {
	rows, err := Load("../zoo.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 220 {
		t.Errorf("%d rows, want at least 220", len(rows))
	}
	perFamily := map[string]int{}
	sizes := map[string]bool{}
	for i, r := range rows {
		perFamily[r.Family]++
		key := fmt.Sprintf("%s|%d", r.Family, r.Params)
		if sizes[key] {
			t.Errorf("%s: another %s row has %d params", r.Name, r.Family, r.Params)
		}
		sizes[key] = true
		if !(r.Accuracy >= 0 && r.Accuracy <= 1) || r.Params <= 0 || !(r.LatencyP95Ms > 0) {
			t.Errorf("%s: implausible row %+v", r.Name, r)
		}
		if i > 0 {
			p := rows[i-1]
			if p.Family > r.Family || (p.Family == r.Family && p.Params > r.Params) {
				t.Errorf("row %d (%s) is out of order after %s: want family, then param_count", i, r.Name, p.Name)
			}
		}
	}
	if len(perFamily) < 5 {
		t.Errorf("%d families, want at least 5", len(perFamily))
	}
	for f, n := range perFamily {
		if n < 40 {
			t.Errorf("family %s has %d rows, want at least 40", f, n)
		}
	}

	for _, tc := range []struct {
		target        float64
		first, second string
	}{
		{0.80, "mlp1-int8-w3", "mlp1-w3"},
		{0.85, "mlp1-int8-w4", "mlp1-w4"},
		{0.88, "mlp1-int8-w5", "mlp1-w5"},
		{0.90, "mlp1-int8-w5", "mlp1-w5"},
		{0.92, "mlp1-int8-w6", "mlp1-w6"},
		{0.94, "mlp1-int8-w7", "mlp1-w7"},
		{0.95, "mlp1-int8-w7", "mlp1-w7"},
		{0.955, "mlp1-int8-w7", "mlp1-w7"},
		{0.96, "mlp1-int8-w14", "mlp1-w14"},
		{0.965, "mlp1-int8-w14", "mlp1-w14"},
		{0.97, "mlp1-int8-w27", "mlp1-w27"},
		{0.975, "mlp1-w75", "mlp1-w119"},
		{0.98, "<nil>", "<nil>"},
	} {
		first, second := SmallestMeeting(rows, tc.target, 0)
		if name(first) != tc.first || name(second) != tc.second {
			t.Errorf("SmallestMeeting(%g) = %s, %s; want %s, %s", tc.target, name(first), name(second), tc.first, tc.second)
		}
	}

	want := map[string]string{
		"mlp1": "mlp1-w7", "mlp1-int8": "mlp1-int8-w7", "mlp2": "mlp2-w15",
		"mlp2-pruned": "mlp2-pruned-w72", "mlp3": "mlp3-w29",
	}
	got := PerFamily(rows, 0.95, 0)
	for f, w := range want {
		if name(got[f].First) != w {
			t.Errorf("PerFamily(0.95)[%s] = %s, want %s", f, name(got[f].First), w)
		}
	}
}
