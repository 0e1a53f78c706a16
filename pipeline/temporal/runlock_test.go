package temporal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// A Temporal run that another process holds fails at once with the lock's
// error, as a local run does, and leaves the run as it was: no attempt is
// counted and nothing is started (this runner has no client to start a
// workflow with, nor plugins to check configs).
func TestExecuteOfARunHeldElsewhereFailsAtOnce(t *testing.T) {
	store := runstore.Open(filepath.Join(t.TempDir(), "runs"))
	run, err := store.Create(runstore.Manifest{Pipeline: []string{"p.hcl"}, PipelineHash: "h", StartedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	run.Unlock() // Create locked it for this Run; another will hold it
	// The holder: the same run opened again, locked (an flock is held by
	// an open file, so this conflicts as another process's would).
	holder, err := store.Load(run.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Lock(); err != nil {
		t.Fatal(err)
	}
	defer holder.Unlock()
	before := run.Manifest()

	err = (&Runner{}).Execute(context.Background(), run, &config.Pipeline{Paths: []string{"p.hcl"}}, nil)
	var le *runstore.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("error = %v, want a *runstore.LockedError", err)
	}
	if le.Holder.Pid != os.Getpid() {
		t.Errorf("the error names holder pid %d, want %d", le.Holder.Pid, os.Getpid())
	}
	reread, err := store.Load(run.ID())
	if err != nil {
		t.Fatal(err)
	}
	after := reread.Manifest()
	if after.Attempts != before.Attempts || after.Status != before.Status || after.Engine != before.Engine {
		t.Errorf("the refused attempt changed the manifest: attempts %d -> %d, status %q -> %q, engine %q -> %q",
			before.Attempts, after.Attempts, before.Status, after.Status, before.Engine, after.Engine)
	}
}
