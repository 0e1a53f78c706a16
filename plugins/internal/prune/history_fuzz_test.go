package prune

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// FuzzHistory reads back any history file: a host killed mid-write, a
// disk that lost a block. Open never panics, takes only whole, valid
// lines, and leaves a pruner that judges.
func FuzzHistory(f *testing.F) {
	f.Add([]byte(`{"trial": "r0/a", "curve": [[1, 0.5], [2, 0.6]], "complete": true, "model": "m"}` + "\n"))
	f.Add([]byte(`{"trial": "r0/x", "curve": [[1, 0.99]], "comp` + "\n" + `{"trial": "r0/y", "curve": [[1.5, 0.1]], "complete": true}` + "\n"))
	f.Add([]byte(`{"trial": "", "curve": null}` + "\n" + `{"trial": "t", "curve": [[-1, 1e308]], "complete": true}`))
	s, diags := Check("pruner", Block{Kind: KindMedian, WarmupTrials: new(int)})
	if diags.HasErrors() {
		f.Fatal(diags)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		work := t.TempDir()
		if err := os.WriteFile(filepath.Join(work, HistoryFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		st := Open(s, work, hclog.NewNullLogger())
		st.Report("fuzz/new", 1, 0.5)
		st.Done("fuzz/new", "fuzz-model", [][2]float64{{1, 0.5}}, true)
		if !st.Trained("fuzz-model") {
			t.Error("a model just recorded is not trained")
		}
	})
}
