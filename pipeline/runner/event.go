package runner

import (
	"time"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// EventType names what happened in a run.
type EventType string

const (
	EventRunStarted    EventType = "run_started"
	EventStageStarted  EventType = "stage_started"
	EventProgress      EventType = "progress"
	EventStageFinished EventType = "stage_finished"
	// EventStageFailed is a stage that ended without its outputs: Status
	// says whether it failed or was canceled (the run was stopped).
	EventStageFailed EventType = "stage_failed"
	// EventStageSkipped is a stage that will not run because a stage it
	// depends on failed; Reason names that stage.
	EventStageSkipped EventType = "stage_skipped"
	EventRoundStarted EventType = "round_started"
	EventDecision     EventType = "decision"
	EventRunFinished  EventType = "run_finished"
)

// Event is one thing a run reports while it goes, for progress displays and
// `--json` output. Fields not relevant to the type are zero.
type Event struct {
	Time     time.Time        `json:"time"`
	Type     EventType        `json:"type"`
	RunID    string           `json:"run_id,omitempty"`
	Stage    string           `json:"stage,omitempty"`
	Plugin   string           `json:"plugin,omitempty"`
	Pid      int              `json:"pid,omitempty"`
	Round    int              `json:"round,omitempty"`
	Rows     map[string]int64 `json:"rows,omitempty"`
	Progress *sdk.Progress    `json:"progress,omitempty"`
	Status   string           `json:"status,omitempty"`
	Reason   string           `json:"reason,omitempty"`
	Chosen   string           `json:"chosen,omitempty"`
	Error    string           `json:"error,omitempty"`
	Elapsed  time.Duration    `json:"elapsed_ns,omitempty"`
	// Source says where a stage's outputs come from when it does not run
	// (its started event has no Pid then): "cache RUN" or "resumed RUN".
	Source string `json:"source,omitempty"`
}
