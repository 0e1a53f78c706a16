package main

import (
	"strings"
	"testing"
)

// The engine flags: --resume goes with either engine (a Temporal run's
// client resumes by following, or restarting, its workflow); a run has
// one default task queue; an unknown engine is named.
func TestEngineFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       runOptions
		wantErr string
	}{
		{"local", runOptions{engine: "local"}, ""},
		{"local resume", runOptions{engine: "local", resume: "20261206-010203-abcdef"}, ""},
		{"temporal", runOptions{engine: "temporal", temporal: temporalFlags{queues: []string{"cpu"}}}, ""},
		{"temporal resume", runOptions{engine: "temporal", resume: "20261206-010203-abcdef", temporal: temporalFlags{queues: []string{"cpu"}}}, ""},
		{"temporal two queues", runOptions{engine: "temporal", temporal: temporalFlags{queues: []string{"cpu", "gpu"}}}, "--task-queue takes one queue"},
		{"unknown", runOptions{engine: "spark"}, `--engine "spark"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.checkEngine()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
