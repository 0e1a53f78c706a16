package temporal

import (
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// runToTheEnd runs plan as a Temporal client would, following each
// continue-as-new into a new run with the carried plan, and returns the
// final snapshot and how many times the run continued as new.
func runToTheEnd(t *testing.T, f *fakes, plan Plan) (Snapshot, []*Carry) {
	t.Helper()
	var carried []*Carry
	for {
		env := f.env(t)
		env.ExecuteWorkflow(WorkflowName, plan)
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			if can.WorkflowType == nil || can.WorkflowType.Name != WorkflowName {
				t.Fatalf("continued as %+v, want %s", can.WorkflowType, WorkflowName)
			}
			var next Plan
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				t.Fatal(err)
			}
			if next.Carry == nil {
				t.Fatal("continued as new without its state")
			}
			carried = append(carried, next.Carry)
			if len(carried) > 20 {
				t.Fatal("the run keeps continuing as new without finishing")
			}
			plan = next
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var snap Snapshot
		if err := env.GetWorkflowResult(&snap); err != nil {
			t.Fatal(err)
		}
		return snap, carried
	}
}

// With a tiny history limit, a loop continues as new between every two
// rounds, carrying what the finished rounds produced; it ends with the
// same state as the run that never continued, and no activity runs twice.
func TestLongLoopContinuesAsNewWithTheSameResult(t *testing.T) {
	decisions := []string{"continue", "continue", "continue", "continue", "converged"}

	whole := newFakes()
	whole.decisions = decisions
	want, carried := runToTheEnd(t, whole, loopPlan(8, ""))
	if len(carried) != 0 {
		t.Fatalf("the default limits continued a 5-round run as new %d times", len(carried))
	}

	split := newFakes()
	split.decisions = decisions
	plan := loopPlan(8, "")
	plan.ContinueAfterActivities = 1
	got, carried := runToTheEnd(t, split, plan)
	// A run continues before each round after its first: rounds 2 to 5.
	if len(carried) != 4 {
		t.Fatalf("continued as new %d times, want 4", len(carried))
	}
	for i, c := range carried {
		if c.Generation != i+1 || c.LoopRounds["loop resize.r"] != i+1 {
			t.Errorf("carry %d: generation %d, loop rounds %v", i, c.Generation, c.LoopRounds)
		}
		if diff := cmp.Diff([]string{"model_choice.m"}, c.UnitsDone); diff != "" {
			t.Errorf("carry %d: units done (-want +got):\n%s", i, diff)
		}
		// Round r's evaluation results are carried to feed the later
		// rounds and the report.
		if n := len(c.Outputs["evaluation.e\x00results"]); n != i+1 {
			t.Errorf("carry %d: %d evaluation outputs, want %d", i, n, i+1)
		}
	}

	// Times and durations come from each run's clock; the latest
	// progress names whichever trial finished last.
	ignoreClock := cmpopts.IgnoreTypes(time.Time{}, time.Duration(0))
	ignoreLast := cmpopts.IgnoreFields(sdk.Progress{}, "Message")
	if diff := cmp.Diff(want, got, ignoreClock, ignoreLast); diff != "" {
		t.Errorf("final state (-never continued +continued as new):\n%s", diff)
	}
	if want.Decision == nil || want.Decision.Status != "converged" || want.Decision.Rounds != 5 {
		t.Errorf("decision %+v", want.Decision)
	}
	sort.Strings(whole.calls)
	sort.Strings(split.calls)
	if diff := cmp.Diff(whole.calls, split.calls); diff != "" {
		t.Errorf("activities (-never continued +continued as new):\n%s", diff)
	}
}
