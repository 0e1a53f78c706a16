package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// task_queue is a host attribute: it reaches Stage.TaskQueue and never the
// plugin's config, so the same stage block runs on either engine.
func TestTaskQueueIsAHostAttribute(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.hcl")
	src := `
stage "requirements" "sla" {
  task_queue = "gpu"
}
stage "requirements" "plain" {}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p := mustLoad(t, []string{path})
	got := map[string]string{}
	for _, s := range p.Stages {
		got[s.Addr] = s.TaskQueue
		if s.Config.Type().IsObjectType() && s.Config.Type().HasAttribute(attrTaskQueue) {
			t.Errorf("%s: the plugin's config holds task_queue", s.Addr)
		}
	}
	if diff := cmp.Diff(map[string]string{"requirements.sla": "gpu", "requirements.plain": ""}, got); diff != "" {
		t.Errorf("task queues (-want +got):\n%s", diff)
	}
}
