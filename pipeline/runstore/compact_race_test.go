package runstore

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// A reader that loads a run while its writer records stages and compacts
// the change log into new snapshots, over and over, always reads a whole
// manifest: never an error about a change log compacted away under it.
func TestReadWhileTheLogIsCompacted(t *testing.T) {
	s := Open(t.TempDir())
	run, err := s.Create(Manifest{RunID: "20261206-060000-a1b2c3", StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Unlock()
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			if err := run.UpdateStage(fmt.Sprintf("stage.s%d", i%50), func(r *StageRecord) { r.Status = "running" }); err != nil {
				done <- err
				return
			}
			if i%3 == 0 {
				if err := run.Update(func(m *Manifest) { m.Attempts = i }); err != nil {
					done <- err
					return
				}
			}
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	reads := 0
	for time.Now().Before(deadline) {
		if _, err := s.Load(run.ID()); err != nil {
			stop.Store(true)
			<-done
			t.Fatalf("read %d: %v", reads, err)
		}
		reads++
	}
	stop.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reads", reads)
}
