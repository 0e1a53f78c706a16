package temporal

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// ReuseRequest asks a worker for an execution's outputs without running
// its stage: the files the resumed run finished (Keep), checked against
// its manifest, or else the cache's outputs at Key, linked into the run.
type ReuseRequest struct {
	RunID string                `json:"run_id"`
	Stage string                `json:"stage"`
	Key   string                `json:"key"`
	Keep  []runstore.OutputFile `json:"keep,omitempty"`
}

// ReuseResponse says whether the outputs are in place, and from which
// earlier run the cache took them.
type ReuseResponse struct {
	Hit   bool                  `json:"hit"`
	Files []runstore.OutputFile `json:"files,omitempty"`
	From  string                `json:"from,omitempty"`
}

// RememberRequest adds a finished execution's outputs to the cache.
type RememberRequest struct {
	RunID string                `json:"run_id"`
	Stage string                `json:"stage"`
	Key   string                `json:"key"`
	Files []runstore.OutputFile `json:"files"`
}

// cacheStore is the run store's cache as this worker reaches it. With a
// bucket a worker's run directories are its own cache of the bucket, not
// the store every run shares, so there is none: every stage runs.
func (a *Activities) cacheStore(runID string) (*runstore.Store, *runstore.Run, error) {
	if a.Storage != nil {
		return nil, nil, nil
	}
	if _, err := a.runDir(runID); err != nil {
		return nil, nil, err
	}
	store := runstore.Open(a.Root)
	// A manifest read while the client compacts its change log reads
	// the newer snapshot (runstore.ReadManifest).
	run, err := store.Load(runID)
	if err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", runID, err)
	}
	return store, run, nil
}

// Reuse implements ReuseRequest.
func (a *Activities) Reuse(ctx context.Context, req ReuseRequest) (*ReuseResponse, error) {
	store, run, err := a.cacheStore(req.RunID)
	if err != nil {
		return nil, err
	}
	if store == nil {
		return &ReuseResponse{}, nil
	}
	if req.Keep != nil {
		// Kept only as committed: a file changed since is refused, not
		// handed to the stages after it.
		for _, f := range req.Keep {
			if err := run.VerifyOutput(req.Stage, f); err != nil {
				return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("stage %s: keep finished outputs: %v; start a new run (stages whose files are intact are served from the cache)", req.Stage, err), "resume_damaged", nil)
			}
		}
		return &ReuseResponse{Hit: true, Files: req.Keep, From: req.RunID}, nil
	}
	hit, ok, err := store.Recall(req.Key, run, req.Stage)
	if err != nil {
		// As in a local run: the stage runs instead.
		a.logger().Warn("cache lookup failed; running the stage", "stage", req.Stage, "error", err)
		return &ReuseResponse{}, nil
	}
	if !ok {
		return &ReuseResponse{}, nil
	}
	return &ReuseResponse{Hit: true, Files: hit.Files, From: hit.Run}, nil
}

// Remember implements RememberRequest.
func (a *Activities) Remember(ctx context.Context, req RememberRequest) error {
	store, _, err := a.cacheStore(req.RunID)
	if err != nil || store == nil {
		return err
	}
	return store.Remember(req.Key, req.RunID, req.Stage, req.Files)
}
