package graph

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

// rng gives each reference a distinct, recognisable range: line n.
func rng(line int) hcl.Range {
	return hcl.Range{
		Filename: "p.hcl",
		Start:    hcl.Pos{Line: line, Column: 1, Byte: line * 10},
		End:      hcl.Pos{Line: line, Column: 5, Byte: line*10 + 4},
	}
}

func in(from, port string, line int) Edge {
	return Edge{From: from, FromPort: "out", ToPort: port, Range: rng(line)}
}

// pipeline is the quickstart shape: a dataset and a requirements chain that
// meet in evaluation, and a resize stage looping back to evaluation.
func pipeline() []Node {
	return []Node{
		{Addr: "resize.fit", Kind: "resize", Name: "fit", Plugin: "builtin",
			Inputs: []Edge{in("evaluation.train", "input", 9)},
			LoopTo: "evaluation.train", LoopPort: "proposals", MaxRounds: 6, LoopRange: rng(10)},
		{Addr: "evaluation.train", Kind: "evaluation", Name: "train", Plugin: "builtin",
			Inputs: []Edge{in("model_choice.mlp", "input", 7), in("dataset.digits", "dataset", 8)}},
		{Addr: "model_choice.mlp", Kind: "model_choice", Name: "mlp", Plugin: "builtin",
			Inputs: []Edge{in("requirements.sla", "input", 5)}},
		{Addr: "requirements.sla", Kind: "requirements", Name: "sla", Plugin: "builtin"},
		{Addr: "dataset.digits", Kind: "dataset", Name: "digits", Plugin: "builtin"},
		{Addr: "report.summary", Kind: "report", Name: "summary", Plugin: "acme",
			Inputs: []Edge{in("resize.fit", "input", 11)}},
	}
}

func summaries(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		s := d.Summary + ": " + d.Detail
		if d.Subject != nil {
			s = d.Subject.String() + ": " + s
		}
		out = append(out, s)
	}
	return out
}

func TestOrder(t *testing.T) {
	tests := []struct {
		name  string
		nodes []Node
		want  []string
	}{
		{"empty", nil, nil},
		{"independent stages by address", []Node{{Addr: "c.c"}, {Addr: "a.a"}, {Addr: "b.b"}}, []string{"a.a", "b.b", "c.c"}},
		{"producer first whatever its name", []Node{
			{Addr: "a.consumer", Inputs: []Edge{in("z.producer", "input", 1)}},
			{Addr: "z.producer"},
		}, []string{"z.producer", "a.consumer"}},
		{"diamond", []Node{
			{Addr: "d.join", Inputs: []Edge{in("b.left", "l", 1), in("c.right", "r", 2)}},
			{Addr: "c.right", Inputs: []Edge{in("a.top", "input", 3)}},
			{Addr: "b.left", Inputs: []Edge{in("a.top", "input", 4)}},
			{Addr: "a.top"},
		}, []string{"a.top", "b.left", "c.right", "d.join"}},
		{"quickstart; the loop is not an edge", pipeline(), []string{
			"dataset.digits", "requirements.sla", "model_choice.mlp", "evaluation.train", "resize.fit", "report.summary",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, diags := Build(tt.nodes)
			if len(diags) > 0 {
				t.Fatalf("unexpected diagnostics: %v", summaries(diags))
			}
			if diff := cmp.Diff(tt.want, g.Order()); diff != "" {
				t.Errorf("Order() (-want +got):\n%s", diff)
			}
			// The order must be stable whatever the input order.
			rev := make([]Node, len(tt.nodes))
			for i, n := range tt.nodes {
				rev[len(rev)-1-i] = n
			}
			g2, _ := Build(rev)
			if diff := cmp.Diff(g.Order(), g2.Order()); diff != "" {
				t.Errorf("Order() depends on input order (-first +reversed):\n%s", diff)
			}
		})
	}
}

func TestUpstreamDownstream(t *testing.T) {
	g, diags := Build(pipeline())
	if len(diags) > 0 {
		t.Fatal(summaries(diags))
	}
	if diff := cmp.Diff([]string{"dataset.digits", "model_choice.mlp"}, g.Upstream("evaluation.train")); diff != "" {
		t.Errorf("Upstream (-want +got):\n%s", diff)
	}
	if got := g.Upstream("requirements.sla"); got != nil {
		t.Errorf("Upstream of a source = %v, want nil", got)
	}
	if diff := cmp.Diff([]string{"resize.fit"}, g.Downstream("evaluation.train")); diff != "" {
		t.Errorf("Downstream (-want +got):\n%s", diff)
	}
	if got := g.Upstream("no.such"); got != nil {
		t.Errorf("Upstream of unknown = %v", got)
	}
	if diff := cmp.Diff([]string{"resize.fit"}, g.Loops()); diff != "" {
		t.Errorf("Loops (-want +got):\n%s", diff)
	}
}

func TestCycles(t *testing.T) {
	tests := []struct {
		name      string
		nodes     []Node
		wantDiags []string
		wantOrder []string
	}{
		{
			name:  "self reference",
			nodes: []Node{{Addr: "a.a", Inputs: []Edge{in("a.a", "input", 3)}}},
			wantDiags: []string{
				"p.hcl:3,1-5: Cycle among stages: The stage a.a reads its own output through an input port. To run a stage again on its own results, declare a loop with loop_to on a deciding stage.",
			},
			wantOrder: []string{"a.a"},
		},
		{
			name: "three stages, the subject is the edge closing the cycle at the first address",
			nodes: []Node{
				{Addr: "src.s"},
				{Addr: "a.x", Inputs: []Edge{in("c.z", "input", 1), in("src.s", "extra", 9)}},
				{Addr: "b.y", Inputs: []Edge{in("a.x", "input", 2)}},
				{Addr: "c.z", Inputs: []Edge{in("b.y", "input", 3)}},
				{Addr: "sink.k", Inputs: []Edge{in("c.z", "input", 4)}},
			},
			wantDiags: []string{
				"p.hcl:1,1-5: Cycle among stages: The stages a.x, b.y and c.z feed each other through their input ports: a.x → b.y → c.z → a.x. A pipeline must be acyclic; to run stages again, declare a loop with loop_to on the deciding stage.",
			},
			wantOrder: []string{"src.s", "a.x", "b.y", "c.z", "sink.k"},
		},
		{
			name: "two separate cycles are both reported",
			nodes: []Node{
				{Addr: "a.a", Inputs: []Edge{in("b.b", "input", 1)}},
				{Addr: "b.b", Inputs: []Edge{in("a.a", "input", 2)}},
				{Addr: "c.c", Inputs: []Edge{in("d.d", "input", 3)}},
				{Addr: "d.d", Inputs: []Edge{in("c.c", "input", 4)}},
			},
			wantDiags: []string{
				"p.hcl:1,1-5: Cycle among stages: The stages a.a and b.b feed each other through their input ports: a.a → b.b → a.a. A pipeline must be acyclic; to run stages again, declare a loop with loop_to on the deciding stage.",
				"p.hcl:3,1-5: Cycle among stages: The stages c.c and d.d feed each other through their input ports: c.c → d.d → c.c. A pipeline must be acyclic; to run stages again, declare a loop with loop_to on the deciding stage.",
			},
			wantOrder: []string{"a.a", "b.b", "c.c", "d.d"},
		},
		{
			name: "shortest way round a component with a chord",
			nodes: []Node{
				{Addr: "a.a", Inputs: []Edge{in("d.d", "input", 1), in("b.b", "x", 5)}},
				{Addr: "b.b", Inputs: []Edge{in("a.a", "input", 2)}},
				{Addr: "c.c", Inputs: []Edge{in("b.b", "input", 3)}},
				{Addr: "d.d", Inputs: []Edge{in("c.c", "input", 4)}},
			},
			wantDiags: []string{
				"p.hcl:5,1-5: Cycle among stages: The stages a.a and b.b feed each other through their input ports: a.a → b.b → a.a. A pipeline must be acyclic; to run stages again, declare a loop with loop_to on the deciding stage.",
			},
			wantOrder: []string{"a.a", "b.b", "c.c", "d.d"},
		},
		{
			name: "undeclared producer and duplicate address",
			nodes: []Node{
				{Addr: "a.a", Inputs: []Edge{in("ghost.g", "input", 1)}, DeclRange: rng(2)},
				{Addr: "a.a", DeclRange: rng(6)},
			},
			wantDiags: []string{
				"p.hcl:6,1-5: Duplicate stage: A stage with the address a.a was already declared at p.hcl:2,1-5. Stage addresses must be unique.",
				`p.hcl:1,1-5: Reference to undeclared stage: The input port "input" of a.a refers to ghost.g, which is not declared.`,
			},
			wantOrder: []string{"a.a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, diags := Build(tt.nodes)
			if diff := cmp.Diff(tt.wantDiags, summaries(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOrder, g.Order()); diff != "" {
				t.Errorf("Order() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoopBody(t *testing.T) {
	side := append(pipeline(),
		// A side branch between the target and the decider is in the body;
		// one hanging off the target that never reaches the decider is not.
		Node{Addr: "calibrate.c", Inputs: []Edge{in("evaluation.train", "input", 20)}},
		Node{Addr: "plot.p", Inputs: []Edge{in("evaluation.train", "input", 21)}},
	)
	for i := range side {
		if side[i].Addr == "resize.fit" {
			side[i].Inputs = append(side[i].Inputs, in("calibrate.c", "calibration", 22))
		}
	}
	longer := pipeline()
	for i := range longer {
		if longer[i].Addr == "resize.fit" {
			longer[i].LoopTo = "model_choice.mlp"
		}
	}
	notUp := pipeline()
	for i := range notUp {
		if notUp[i].Addr == "resize.fit" {
			notUp[i].LoopTo = "report.summary"
		}
	}
	self := pipeline()
	for i := range self {
		if self[i].Addr == "resize.fit" {
			self[i].LoopTo = "resize.fit"
		}
	}

	tests := []struct {
		name      string
		nodes     []Node
		decider   string
		want      []string
		wantDiags []string
	}{
		{"two stages", pipeline(), "resize.fit", []string{"evaluation.train", "resize.fit"}, nil},
		{"no loop", pipeline(), "evaluation.train", nil, nil},
		{"unknown decider", pipeline(), "nope.nope", nil, nil},
		{"side branch", side, "resize.fit", []string{"evaluation.train", "calibrate.c", "resize.fit"}, nil},
		{"from further up", longer, "resize.fit", []string{"model_choice.mlp", "evaluation.train", "resize.fit"}, nil},
		{"target downstream", notUp, "resize.fit", nil, []string{
			"p.hcl:10,1-5: Loop target is not upstream: resize.fit loops back to report.summary, but report.summary does not feed resize.fit through input ports. loop_to must name a stage that the deciding stage depends on, so that the stages from that one to the decider can run again.",
		}},
		{"target is the decider", self, "resize.fit", nil, []string{
			"p.hcl:10,1-5: Loop target is not upstream: resize.fit loops back to resize.fit, but resize.fit does not feed resize.fit through input ports. loop_to must name a stage that the deciding stage depends on, so that the stages from that one to the decider can run again.",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, diags := Build(tt.nodes)
			if diff := cmp.Diff(tt.wantDiags, summaries(diags)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, g.LoopBody(tt.decider)); diff != "" {
				t.Errorf("LoopBody (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDOT(t *testing.T) {
	g, diags := Build(pipeline())
	if len(diags) > 0 {
		t.Fatal(summaries(diags))
	}
	want := `digraph pipeline {
  rankdir=LR;
  node [shape=box, fontname="Helvetica"];
  edge [fontname="Helvetica", fontsize=10];
  "dataset.digits" [label="dataset.digits\nbuiltin"];
  "requirements.sla" [label="requirements.sla\nbuiltin"];
  "model_choice.mlp" [label="model_choice.mlp\nbuiltin"];
  "evaluation.train" [label="evaluation.train\nbuiltin"];
  "resize.fit" [label="resize.fit\nbuiltin"];
  "report.summary" [label="report.summary\nacme"];
  "requirements.sla" -> "model_choice.mlp" [label="out → input"];
  "dataset.digits" -> "evaluation.train" [label="out → dataset"];
  "model_choice.mlp" -> "evaluation.train" [label="out → input"];
  "evaluation.train" -> "resize.fit" [label="out → input"];
  "resize.fit" -> "report.summary" [label="out → input"];
  "resize.fit" -> "evaluation.train" [label="proposals → input\nmax 6 rounds", style=dashed, constraint=false];
}
`
	if diff := cmp.Diff(want, g.DOT()); diff != "" {
		t.Errorf("DOT (-want +got):\n%s", diff)
	}

	t.Run("quoting", func(t *testing.T) {
		g, _ := Build([]Node{{Addr: `a.b`, Plugin: `we"ird\`}})
		if !strings.Contains(g.DOT(), `[label="a.b\nwe\"ird\\"]`) {
			t.Errorf("label not escaped:\n%s", g.DOT())
		}
	})
}

func TestSortNames(t *testing.T) {
	deps := map[string][]string{
		"total":  {"width", "depth"},
		"width":  {"base"},
		"depth":  {"base", "ghost"},
		"loop1":  {"loop2"},
		"loop2":  {"loop1"},
		"myself": {"myself"},
	}
	names := []string{"total", "width", "depth", "base", "loop1", "loop2", "myself"}
	order, cycles := SortNames(names, func(n string) []string { return deps[n] })
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	for n, ds := range deps {
		for _, d := range ds {
			if _, known := pos[d]; known && d != n && !strings.HasPrefix(n, "loop") && pos[d] > pos[n] {
				t.Errorf("%s ordered before its dependency %s: %v", n, d, order)
			}
		}
	}
	if len(order) != len(names) {
		t.Errorf("order %v lost names", order)
	}
	if diff := cmp.Diff([][]string{{"loop1", "loop2"}, {"myself"}}, cycles); diff != "" {
		t.Errorf("cycles (-want +got):\n%s", diff)
	}
}
