package main

import (
	"strings"
	"testing"
)

// The engine flags: --resume goes with either engine (a Temporal run's
// client resumes by following, or restarting, its workflow); a run has
// one default task queue; an unknown engine is named; a storage URL is
// checked before anything is dialled; a flag of the Temporal engine on a
// local run is an error, not ignored.
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
		{"temporal storage", runOptions{engine: "temporal", temporal: temporalFlags{queues: []string{"cpu"}, storage: "file:///srv/runs"}}, ""},
		{"temporal storage ftp", runOptions{engine: "temporal", temporal: temporalFlags{queues: []string{"cpu"}, storage: "ftp://host/x"}}, `--storage: storage URL "ftp://host/x": unsupported scheme`},
		{"temporal storage relative", runOptions{engine: "temporal", temporal: temporalFlags{queues: []string{"cpu"}, storage: "file://runs"}}, "needs an absolute path"},
		{"temporal storage no bucket", runOptions{engine: "temporal", temporal: temporalFlags{queues: []string{"cpu"}, storage: "s3://"}}, "no bucket name"},
		{"local storage", runOptions{engine: "local", temporal: temporalFlags{storage: "file:///srv/runs"}}, "--storage applies to --engine temporal only"},
		{"local heartbeat", runOptions{engine: "local", heartbeat: 5e9}, "--heartbeat-timeout applies to --engine temporal only"},
		{"local pending trials", runOptions{engine: "local", maxPendingTrials: 3}, "--max-pending-trials applies to --engine temporal only"},
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

// A log level or OTLP endpoint that cannot be used is a usage error
// (exit 2) naming the flag or variable, before anything runs.
func TestLogLevelAndEndpointAreChecked(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", "dataset \"d\" {\n  generator = \"spirals\"\n}\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--log-level", "loud", "p.hcl"}, `--log-level: "loud" is not a log level`},
		{[]string{"run", "--otlp", "http://[::1", "p.hcl"}, `--otlp: OTLP endpoint "http://[::1"`},
		{[]string{"run", "--otlp", "collector", "p.hcl"}, `missing port`},
	} {
		r := sweetspot(t, dir, tc.args...)
		if r.code != exitInvalid || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q", tc.args, r.code, r.stderr, exitInvalid, tc.want)
		}
	}
	t.Run("SWEETSPOT_LOG", func(t *testing.T) {
		t.Setenv("SWEETSPOT_LOG", "chatty")
		r := sweetspot(t, dir, "validate", "p.hcl")
		if want := `SWEETSPOT_LOG: "chatty" is not a log level`; r.code != exitInvalid || !strings.Contains(r.stderr, want) {
			t.Errorf("validate: exit %d, stderr %q; want exit %d saying %q", r.code, r.stderr, exitInvalid, want)
		}
	})
	if runs := runIDs(t, dir); len(runs) != 0 {
		t.Errorf("runs %v were made by commands refused as misused", runs)
	}
}
