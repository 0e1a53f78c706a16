package exec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// TestSlots runs more trials than slots, three at a time: each trial takes
// a lock named after the slot it was given (mkdir fails when it exists),
// so two running trials that shared a slot would fail one of them; and
// each keeps what it received.
func TestSlots(t *testing.T) {
	mem := checked(t)
	locks, out := t.TempDir(), t.TempDir()
	script := `set -eu
mkdir "$LOCKS/slot-$MY_GPU" || { echo "slot $MY_GPU is taken" >&2; exit 1; }
printf '%s %s %s %s %s %s %s\n' "$MY_GPU" "$SWEETSPOT_SLOT" "$SWEETSPOT_THREADS" "$OMP_NUM_THREADS" "$MKL_NUM_THREADS" "$OPENBLAS_NUM_THREADS" "${CUDA_VISIBLE_DEVICES:-unset}" > "$OUT/$SWEETSPOT_CANDIDATE_ID"
sleep 0.3
rmdir "$LOCKS/slot-$MY_GPU"
echo '{"accuracy": 0.5}'`
	var cs []tables.Candidate
	for _, w := range []int32{2, 3, 4, 5, 6, 7} {
		cs = append(cs, cand(4, 3, 1, w))
	}
	cfg := Config{
		Command: sh(script), Parallelism: ptr(3), Threads: ptr(2),
		Slots: []string{"0", "1"}, SlotEnv: "MY_GPU",
		Env: map[string]string{"LOCKS": locks, "OUT": out},
	}
	rs, err := run(t, context.Background(), cfg, stagetest.Inputs{InputPort: candidates(t, mem, cs...)})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]int{}
	for _, r := range rs {
		if r.Status != tables.StatusOK {
			t.Errorf("%s: %s: %s", r.ID, r.Status, r.Error)
			continue
		}
		b, err := os.ReadFile(filepath.Join(out, r.ID))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b))
		if len(f) != 7 || f[0] != f[1] || (f[0] != "0" && f[0] != "1") {
			t.Errorf("%s received slot %q", r.ID, b)
			continue
		}
		used[f[0]]++
		if got := strings.Join(f[2:6], " "); got != "2 2 2 2" {
			t.Errorf("%s: threads variables %q, want 2 each", r.ID, got)
		}
		if f[6] != "unset" {
			t.Errorf("%s: CUDA_VISIBLE_DEVICES %q, want it unset (slot_env is MY_GPU)", r.ID, f[6])
		}
	}
	if used["0"]+used["1"] != len(cs) {
		t.Errorf("slots used %v, want %d trials in all", used, len(cs))
	}
}

func TestSlotsConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"duplicate slot", Config{Slots: []string{"0", "0"}}, "Duplicate slot"},
		{"slot_env without slots", Config{SlotEnv: "MY_GPU"}, "slot_env without slots"},
		{"reserved slot_env", Config{Slots: []string{"0"}, SlotEnv: "SWEETSPOT_GPU"}, "Reserved environment variable"},
		{"threads and env", Config{Threads: ptr(2), Env: map[string]string{"OMP_NUM_THREADS": "4"}}, "OMP_NUM_THREADS is set by threads = 2"},
		{"slot in env", Config{Slots: []string{"0"}, Env: map[string]string{"CUDA_VISIBLE_DEVICES": "1"}}, "CUDA_VISIBLE_DEVICES is each trial's slot"},
		{"threads 0", Config{Threads: ptr(0)}, "threads must be between 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Command = []string{"/bin/true"}
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
