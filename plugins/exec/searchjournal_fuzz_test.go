package exec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// FuzzChosenSettings reads arbitrary bytes as the work directory's record
// of chosen settings (a file a killed plugin may have left torn, or
// anyone may have written): nothing panics, and what is kept is, for
// each candidate, the line of the highest round among the whole lines
// that name a candidate and a setting, later lines winning ties, as a
// plain line-by-line reading of the file finds.
func FuzzChosenSettings(f *testing.F) {
	for _, s := range []string{
		`{"candidate_id":"mlp-d1-w8","round":1,"setting":"{\"lr\":0.01}"}` + "\n",
		`{"candidate_id":"a","round":2,"setting":"x"}` + "\n" + `{"candidate_id":"a","round":1,"setting":"y"}` + "\n",
		`{"candidate_id":"a","round":1,"setting":"x"}` + "\n" + `{"candidate_id":"a","round":1,"setting":"y"}` + "\n",
		`{"candidate_id":"a","round":1,"setting":"x"` + "\n" + `{"candidate_id":"b","round":-3,"setting":"z"}`,
		`{"candidate_id":"","round":1,"setting":"x"}` + "\n" + `{"round":99999999999}` + "\n" + "\x00\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, chosenFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		cs := openChosen(dir, hclog.NewNullLogger())
		want := map[string]chosenRecord{}
		for _, line := range bytes.Split(data, []byte("\n")) {
			var rec chosenRecord
			if json.Unmarshal(line, &rec) != nil || rec.ID == "" || rec.Setting == "" {
				continue
			}
			if old, ok := want[rec.ID]; !ok || rec.Round >= old.Round {
				want[rec.ID] = rec
			}
		}
		if len(cs.byID) != len(want) {
			t.Fatalf("kept %d candidates, want %d: %v against %v", len(cs.byID), len(want), cs.byID, want)
		}
		for id, rec := range want {
			if got, ok := cs.get(id); !ok || got != rec.Setting {
				t.Errorf("%q: kept %q (%v), want %q", id, got, ok, rec.Setting)
			}
		}
	})
}
