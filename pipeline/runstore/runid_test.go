package runstore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRunIDsOfTheStoresFormatOnly(t *testing.T) {
	base := t.TempDir()
	s := Open(filepath.Join(base, "runs"))
	if _, err := s.Create(Manifest{RunID: "20261128-120000-abcdef", StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// A manifest outside the store, where a traversal would find it.
	if err := os.MkdirAll(filepath.Join(base, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "x", "manifest.json"), []byte(`{"run_id":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id    string
		valid bool
	}{
		{"20261128-120000-abcdef", true},
		{"20261128-12", true},
		{"2", true},
		{"../x", false},
		{"../../x", false},
		{"..", false},
		{".", false},
		{"", false},
		{"/etc", false},
		{filepath.Join(base, "x"), false},
		{"20261128-120000-abcdef/../../x", false},
		{"20261128-120000-abcdef/manifest.json", false},
		{"2026/../../x", false},
		{"20261128-120000-ABCDEF", false},
		{"20261128-120000-abcdeg", false},
		{"20261128-120000-abcdef0", false},
		{"20261128_120000", false},
		{"20261128-120000-abcdef ", false},
		{"2026\x00", false},
		{".cache", false},
		{"~", false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			_, err := s.Load(tc.id)
			var bad *InvalidRunIDError
			if got := !errors.As(err, &bad); got != tc.valid {
				t.Fatalf("Load(%q) = %v; want valid=%v", tc.id, err, tc.valid)
			}
			if tc.valid && err != nil {
				t.Fatalf("Load(%q): %v", tc.id, err)
			}
			if (CheckRunID(tc.id) == nil) != tc.valid {
				t.Errorf("CheckRunID(%q) disagrees with Load", tc.id)
			}
		})
	}
}

func TestCreateRefusesPathsAsRunIDs(t *testing.T) {
	s := Open(filepath.Join(t.TempDir(), "runs"))
	for _, id := range []string{"../x", "a/b", "..", ".hidden", "/abs"} {
		if _, err := s.Create(Manifest{RunID: id}); err == nil {
			t.Errorf("Create(%q) succeeded", id)
		}
	}
}

// IDs lists only directories named as run ids: the cache and other
// directories are not runs.
func TestIDsListsRunIDsOnly(t *testing.T) {
	s := Open(t.TempDir())
	for _, id := range []string{"20261128-120000-abcdef", "custom"} {
		if _, err := s.Create(Manifest{RunID: id}); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := s.IDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != "20261128-120000-abcdef" {
		t.Errorf("IDs = %v", ids)
	}
}

func FuzzCheckRunID(f *testing.F) {
	f.Add("20261128-120000-abcdef")
	f.Add("../x")
	f.Fuzz(func(t *testing.T, id string) {
		if CheckRunID(id) != nil {
			return
		}
		if id != filepath.Base(id) || filepath.IsAbs(id) || id == "." || id == ".." {
			t.Errorf("CheckRunID accepts %q, which is not one path element", id)
		}
	})
}

// Runs started within one second have ids whose random suffixes sort in
// no order of time: IDs lists them in the order they started, as their
// manifests say, so that "oldest first" and "the run before" hold.
func TestIDsWithinOneSecondInTheOrderTheyStarted(t *testing.T) {
	s := Open(t.TempDir())
	base := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
	// Suffixes in reverse of the start order, and a run of the second
	// before and after.
	made := []struct {
		id string
		at time.Time
	}{
		{"20261206-060000-ffffff", base.Add(100 * time.Millisecond)},
		{"20261206-060000-888888", base.Add(500 * time.Millisecond)},
		{"20261206-060000-000000", base.Add(900 * time.Millisecond)},
		{"20261206-055959-aaaaaa", base.Add(-time.Second)},
		{"20261206-060001-111111", base.Add(time.Second)},
	}
	for _, m := range made {
		run, err := s.Create(Manifest{RunID: m.id, StartedAt: m.at})
		if err != nil {
			t.Fatal(err)
		}
		run.Unlock()
	}
	got, err := s.IDs()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"20261206-055959-aaaaaa", "20261206-060000-ffffff", "20261206-060000-888888", "20261206-060000-000000", "20261206-060001-111111"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}
