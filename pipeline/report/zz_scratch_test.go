package report

import (
	"fmt"
	"os"
	"testing"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

func TestScratchDump(t *testing.T) {
	id := os.Getenv("RUN")
	if id == "" {
		t.Skip()
	}
	run, err := runstore.Open("/work/main/.sweetspot/runs").Load(id)
	if err != nil {
		t.Fatal(err)
	}
	d, err := load(run, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(d.metric, d.resultsStage, d.decisionStage, d.trialColumns)
	for _, tr := range d.trials {
		fmt.Printf("%+v\n", tr)
	}
	for _, r := range d.rounds {
		fmt.Printf("%+v\n", r)
	}
	fmt.Printf("%+v\n", d.req)
}
