package engine

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// quickstart is the shape of the quickstart pipeline: requirements and
// candidates, evaluation and resize looping (resize goes back to
// evaluation), and a report after the loop that reads evaluation and the
// requirements.
func quickstart(t *testing.T, maxRounds int) (*config.Pipeline, *graph.Graph) {
	t.Helper()
	ports := func(names ...string) []describe.PortDescription {
		var out []describe.PortDescription
		for _, n := range names {
			out = append(out, describe.PortDescription{Name: n})
		}
		return out
	}
	type edge struct{ port, from, fromPort string }
	stage := func(addr string, in []string, out []string, edges ...edge) *config.Stage {
		st := &config.Stage{Addr: addr, Kind: addr[:len(addr)-2], Plugin: "sweetspot", Config: cty.EmptyObjectVal,
			Spec: &describe.StageDescription{Inputs: ports(in...), Outputs: ports(out...)}, Inputs: map[string]config.PortRef{}}
		for _, e := range edges {
			st.Inputs[e.port] = config.PortRef{Stage: e.from, Port: e.fromPort}
		}
		return st
	}
	req := stage("requirements.r", nil, []string{"requirements"})
	cand := stage("candidates.c", []string{"input"}, []string{"candidates"}, edge{"input", "requirements.r", "requirements"})
	eval := stage("evaluation.e", []string{"input", "resume"}, []string{"results"}, edge{"input", "candidates.c", "candidates"})
	resize := stage("resize.z", []string{"input", "requirements"}, []string{"decision", "proposals"},
		edge{"input", "evaluation.e", "results"}, edge{"requirements", "requirements.r", "requirements"})
	resize.Spec.Loop = &sdk.Loop{DecisionPort: "decision", ProposalsPort: "proposals"}
	resize.LoopTo, resize.MaxRounds = "evaluation.e", maxRounds
	report := stage("report.x", []string{"input", "requirements"}, []string{"summary"},
		edge{"input", "evaluation.e", "results"}, edge{"requirements", "requirements.r", "requirements"})
	// Stages in an order that is not the graph's.
	p := &config.Pipeline{Stages: []*config.Stage{report, resize, eval, cand, req}}
	var nodes []graph.Node
	for _, st := range p.Stages {
		n := graph.Node{Addr: st.Addr, Kind: st.Kind, Plugin: st.Plugin, LoopTo: st.LoopTo, MaxRounds: st.MaxRounds}
		for port, ref := range st.Inputs {
			n.Inputs = append(n.Inputs, graph.Edge{From: ref.Stage, FromPort: ref.Port, ToPort: port})
		}
		if st.LoopTo != "" {
			n.LoopPort = "proposals"
		}
		nodes = append(nodes, n)
	}
	g, diags := graph.Build(nodes)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return p, g
}

func TestPlanUnitsAndInputRounds(t *testing.T) {
	p, g := quickstart(t, 5)
	plan, err := NewPlan(p, g)
	if err != nil {
		t.Fatal(err)
	}
	wantUnits := []Unit{
		{ID: "loop resize.z", Stages: []string{"evaluation.e", "resize.z"}, Decider: "resize.z", Deps: []string{"candidates.c", "requirements.r"}},
		{ID: "requirements.r", Stages: []string{"requirements.r"}},
		{ID: "candidates.c", Stages: []string{"candidates.c"}, Deps: []string{"requirements.r"}},
		{ID: "report.x", Stages: []string{"report.x"}, Deps: []string{"loop resize.z", "requirements.r"}},
	}
	if diff := cmp.Diff(wantUnits, plan.Units); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
	rounds := map[string]Rounds{}
	for _, st := range plan.Stages {
		for _, in := range st.Inputs {
			rounds[st.Addr+"."+in.Port] = in.Rounds
		}
	}
	want := map[string]Rounds{
		"candidates.c.input":    RoundsAll,
		"evaluation.e.input":    RoundsAll,   // from before the loop
		"resize.z.input":        RoundsSoFar, // the decider judges every round so far
		"resize.z.requirements": RoundsAll,   // from before the loop
		"report.x.input":        RoundsAll,   // after the loop: every round
		"report.x.requirements": RoundsAll,
	}
	if diff := cmp.Diff(want, rounds); diff != "" {
		t.Errorf("input rounds (-want +got):\n%s", diff)
	}
}

func TestRoundsRange(t *testing.T) {
	for _, tc := range []struct {
		r        Rounds
		round    int
		from, to int
	}{
		{RoundsAll, 0, 0, 1 << 30},
		{RoundsAll, 3, 0, 1 << 30},
		{RoundsCurrent, 3, 3, 3},
		{RoundsCurrent, 0, 0, 1 << 30},
		{RoundsSoFar, 3, 1, 3},
		{RoundsSoFar, 1, 1, 1},
	} {
		from, to := tc.r.Range(tc.round)
		if from != tc.from || to != tc.to {
			t.Errorf("%s in round %d: %d..%d, want %d..%d", tc.r, tc.round, from, to, tc.from, tc.to)
		}
	}
}

// out names a file after its stage, port and round, so a test reads
// which ones an input got.
func out(stage, port string, round int) runstore.OutputFile {
	return runstore.OutputFile{Port: port, Round: round, SHA256: fmt.Sprintf("%s/%s/%d", stage, port, round)}
}

// Round 1 of the loop reads the candidates; a later round reads the
// decider's proposals of the round before instead; the decider reads
// every round of evaluation so far and the requirements; the report
// after the loop reads every round.
func TestInputsOfEachRound(t *testing.T) {
	p, g := quickstart(t, 5)
	plan, err := NewPlan(p, g)
	if err != nil {
		t.Fatal(err)
	}
	o := Outputs{}
	o.Add("requirements.r", []runstore.OutputFile{out("requirements.r", "requirements", 0)})
	o.Add("candidates.c", []runstore.OutputFile{out("candidates.c", "candidates", 0)})
	for r := 1; r <= 3; r++ {
		o.Add("evaluation.e", []runstore.OutputFile{out("evaluation.e", "results", r)})
		o.Add("resize.z", []runstore.OutputFile{out("resize.z", "decision", r), out("resize.z", "proposals", r)})
	}
	names := func(in []PortFiles) []string {
		var s []string
		for _, p := range in {
			if len(p.Files) == 0 {
				s = append(s, p.Port+"=")
			}
			for _, f := range p.Files {
				s = append(s, p.Port+"="+f.SHA256)
			}
		}
		return s
	}
	for _, tc := range []struct {
		stage string
		round int
		want  []string
	}{
		{"evaluation.e", 1, []string{"input=candidates.c/candidates/0"}},
		{"evaluation.e", 2, []string{"input=resize.z/proposals/1"}},
		{"evaluation.e", 4, []string{"input=resize.z/proposals/3"}},
		{"resize.z", 2, []string{"input=evaluation.e/results/1", "input=evaluation.e/results/2", "requirements=requirements.r/requirements/0"}},
		{"report.x", 0, []string{"input=evaluation.e/results/1", "input=evaluation.e/results/2", "input=evaluation.e/results/3", "requirements=requirements.r/requirements/0"}},
	} {
		t.Run(fmt.Sprintf("%s round %d", tc.stage, tc.round), func(t *testing.T) {
			if diff := cmp.Diff(tc.want, names(plan.Inputs(tc.stage, tc.round, o))); diff != "" {
				t.Errorf("inputs (-want +got):\n%s", diff)
			}
		})
	}
	// A decider that proposed nothing feeds the next round nothing, not
	// the candidates of round 1.
	empty := Outputs{}
	empty.Add("candidates.c", []runstore.OutputFile{out("candidates.c", "candidates", 0)})
	if diff := cmp.Diff([]string{"input="}, names(plan.Inputs("evaluation.e", 2, empty))); diff != "" {
		t.Errorf("round 2 without proposals (-want +got):\n%s", diff)
	}
}

func TestLoopDecides(t *testing.T) {
	l := &Loop{Decider: "resize.z", MaxRounds: 3}
	for _, tc := range []struct {
		status     string
		round      int
		again      bool
		wantStatus string
	}{
		{"continue", 1, true, "continue"},
		{"continue", 2, true, "continue"},
		{"continue", 3, false, "max_rounds"},
		{"converged", 2, false, "converged"},
		{"infeasible", 1, false, "infeasible"},
	} {
		d := &runstore.Decision{Status: tc.status, Reason: "why"}
		again := l.Decide(d, tc.round)
		if again != tc.again || d.Status != tc.wantStatus || d.Rounds != tc.round {
			t.Errorf("%s after round %d: again %v status %s rounds %d, want %v %s %d", tc.status, tc.round, again, d.Status, d.Rounds, tc.again, tc.wantStatus, tc.round)
		}
		if tc.wantStatus == "max_rounds" && d.Reason != "why (stopped: max_rounds = 3 reached)" {
			t.Errorf("reason %q", d.Reason)
		}
	}
	if diff := cmp.Diff([]int{3}, l.Rounds(2)); diff != "" {
		t.Errorf("rounds after 2 (-want +got):\n%s", diff)
	}
	if got := l.Rounds(3); len(got) != 0 {
		t.Errorf("rounds after the last: %v", got)
	}
	if !l.MayRunAgain(2) || l.MayRunAgain(3) {
		t.Error("MayRunAgain: a stage may run again before the last round only")
	}
}

func TestPlanLoopRefusesADeciderWithoutLoop(t *testing.T) {
	plan := &Plan{Stages: []Stage{{Addr: "x.y", LoopTo: "a.b", MaxRounds: 2}}}
	if _, err := plan.Loop(Unit{ID: "loop x.y", Decider: "x.y"}); err == nil {
		t.Error("a decider whose kind declares no loop was accepted")
	}
}

func ids(us []Unit) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func TestScheduleRunsUnitsAsTheirDependenciesFinish(t *testing.T) {
	p, g := quickstart(t, 5)
	plan, err := NewPlan(p, g)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSchedule(plan.Units, nil)
	steps := [][]string{}
	for {
		ready := ids(s.Ready())
		if len(ready) == 0 {
			break
		}
		steps = append(steps, ready)
		for _, id := range ready {
			s.Succeeded(id)
		}
	}
	want := [][]string{{"requirements.r"}, {"candidates.c"}, {"loop resize.z"}, {"report.x"}}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("waves (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"loop resize.z", "requirements.r", "candidates.c", "report.x"}, s.Done()); diff != "" {
		t.Errorf("done (-want +got):\n%s", diff)
	}
}

// A failure skips everything downstream of it, even a unit listed before
// the failed one (loops come first in a plan), and nothing independent.
func TestScheduleFailureSkipsWhatDependsOnIt(t *testing.T) {
	units := []Unit{
		{ID: "loop d", Deps: []string{"b"}},
		{ID: "a"},
		{ID: "b", Deps: []string{"a"}},
		{ID: "c"},
		{ID: "e", Deps: []string{"loop d"}},
	}
	s := NewSchedule(units, nil)
	if diff := cmp.Diff([]string{"a", "c"}, ids(s.Ready())); diff != "" {
		t.Fatalf("ready (-want +got):\n%s", diff)
	}
	skips := s.Failed("a", "a.x")
	var got []string
	for _, sk := range skips {
		got = append(got, sk.Unit.ID+" by "+sk.Culprit)
	}
	if diff := cmp.Diff([]string{"loop d by a.x", "b by a.x", "e by a.x"}, got); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if r := s.Ready(); len(r) != 0 {
		t.Errorf("ready after the failure: %v", ids(r))
	}
	s.Succeeded("c")
	if diff := cmp.Diff([]string{"c"}, s.Done()); diff != "" {
		t.Errorf("done (-want +got):\n%s", diff)
	}
}

// A unit done before (a workflow continued as new) is not run again; a
// paused one holds back what depends on it.
func TestScheduleDoneAndPaused(t *testing.T) {
	units := []Unit{{ID: "a"}, {ID: "loop b", Deps: []string{"a"}}, {ID: "c", Deps: []string{"loop b"}}}
	s := NewSchedule(units, []string{"a"})
	if diff := cmp.Diff([]string{"loop b"}, ids(s.Ready())); diff != "" {
		t.Fatalf("ready (-want +got):\n%s", diff)
	}
	s.Paused("loop b")
	if r := s.Ready(); len(r) != 0 {
		t.Errorf("ready after a pause: %v", ids(r))
	}
}

func TestServeDecidesWhereOutputsComeFrom(t *testing.T) {
	prev := Finished{"eval.e": {1: {Round: 1, Key: "k1", Status: runstore.StatusSucceeded}}}
	for _, tc := range []struct {
		name  string
		round int
		key   string
		cache bool
		want  Source
	}{
		{"finished with the same address", 1, "k1", true, Resumed},
		{"finished without the cache", 1, "k1", false, Resumed},
		{"finished with another address", 1, "k2", true, Cache},
		{"not finished", 2, "k1", true, Cache},
		{"not finished, no cache", 2, "k1", false, Run},
	} {
		got, e := Serve(prev, "eval.e", tc.round, tc.key, tc.cache)
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
		if got == Resumed && e.Key != tc.key {
			t.Errorf("%s: kept execution %+v", tc.name, e)
		}
	}
	if got, _ := Serve(nil, "eval.e", 1, "k1", false); got != Run {
		t.Errorf("a new run without cache: %s", got)
	}
}

func TestFinishedOfKeepsSucceededExecutions(t *testing.T) {
	m := runstore.Manifest{Stages: []*runstore.StageRecord{
		{Addr: "a.x", Executions: []runstore.Execution{{Round: 1, Status: runstore.StatusSucceeded, Key: "k1"}, {Round: 2, Status: runstore.StatusFailed, Key: "k2"}}},
		{Addr: "b.y", Executions: []runstore.Execution{{Round: 0, Status: runstore.StatusCanceled}}},
	}}
	f := FinishedOf(m)
	if len(f) != 1 || len(f["a.x"]) != 1 || f["a.x"][1].Key != "k1" {
		t.Errorf("finished %+v", f)
	}
}

// The address holds everything the outputs depend on: it is the key of
// the CacheInputs written out field by field, and changes with the
// round, an input file or a config file.
func TestAddressOfAnExecution(t *testing.T) {
	base := CacheBase{Plugin: "sweetspot", PluginVersion: "1.0", PluginSHA256: "p", Kind: "evaluation", Config: []byte(`{"epochs":3}`), Files: map[string]string{"path": "f"}}
	inputs := []PortFiles{{Port: "input", Files: []runstore.OutputFile{{SHA256: "a"}, {SHA256: "b"}}}, {Port: "resume", Files: nil}}
	cin, key := base.Address(2, inputs)
	want := runstore.CacheInputs{Plugin: "sweetspot", PluginVersion: "1.0", PluginSHA256: "p", Kind: "evaluation", Round: 2,
		Config: []byte(`{"epochs":3}`), Files: map[string]string{"path": "f"}, Ports: map[string][]string{"input": {"a", "b"}, "resume": {}}}
	if diff := cmp.Diff(want, cin); diff != "" {
		t.Errorf("cache inputs (-want +got):\n%s", diff)
	}
	if key != want.Key() {
		t.Errorf("key %s, want %s", key, want.Key())
	}
	other := func(b CacheBase, round int, in []PortFiles) string {
		_, k := b.Address(round, in)
		return k
	}
	changed := base
	changed.Files = map[string]string{"path": "g"}
	for name, k := range map[string]string{
		"round":       other(base, 3, inputs),
		"input file":  other(base, 2, []PortFiles{{Port: "input", Files: []runstore.OutputFile{{SHA256: "a"}, {SHA256: "c"}}}, {Port: "resume"}}),
		"config file": other(changed, 2, inputs),
	} {
		if k == key {
			t.Errorf("the address does not change with the %s", name)
		}
	}
	if k := other(base, 2, inputs); k != key {
		t.Error("the same execution has two addresses")
	}
}

func TestKeptTrials(t *testing.T) {
	done := func(idx ...int) func(int) bool {
		return func(i int) bool {
			for _, d := range idx {
				if d == i {
					return true
				}
			}
			return false
		}
	}
	for _, tc := range []struct {
		name     string
		prevKey  string
		prevIn   []string
		finished func(int) bool
		key      string
		in       []string
		want     []int
	}{
		{"finished trials of the same execution", "k", []string{"a", "b", "c", "d"}, done(0, 2, 3), "k", []string{"a", "b", "c", "d"}, []int{0, 2, 3}},
		{"another execution", "k", []string{"a", "b"}, done(0, 1), "k2", []string{"a", "b"}, nil},
		{"a trial's input changed", "k", []string{"a", "b", "c"}, done(0, 1, 2), "k", []string{"a", "x", "c"}, []int{0, 2}},
		{"fewer trials before", "k", []string{"a"}, done(0, 1), "k", []string{"a", "b"}, []int{0}},
		{"nothing interrupted", "", nil, done(), "k", []string{"a"}, nil},
	} {
		if diff := cmp.Diff(tc.want, KeptTrials(tc.prevKey, tc.prevIn, tc.finished, tc.key, tc.in)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}
