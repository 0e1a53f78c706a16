// Package graph builds the stage graph of a pipeline: a DAG whose edges are
// the input port references between stages, plus the loops that deciding
// stages declare with loop_to. A loop is not an edge of the DAG: it says
// which part of the DAG runs again, and the runner drives it.
//
// The package takes plain Nodes rather than a config.Pipeline so that
// config.Load can build the graph (and report cycles) in the same pass that
// decodes the stages.
package graph

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	gonum "gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/path"
	"gonum.org/v1/gonum/graph/simple"
	"gonum.org/v1/gonum/graph/topo"
	"gonum.org/v1/gonum/graph/traverse"
)

// Node is one stage as the graph sees it.
type Node struct {
	Addr   string // "KIND.NAME", or "dataset.NAME"
	Kind   string
	Name   string
	Plugin string
	// Inputs are the stage's connected input ports.
	Inputs []Edge
	// LoopTo is the address of the stage the loop goes back to, or "".
	// LoopPort is the deciding stage's proposals port and MaxRounds the
	// bound on rounds; both only label the loop in DOT output.
	LoopTo    string
	LoopPort  string
	MaxRounds int
	// DeclRange is the block header; LoopRange the loop_to value.
	DeclRange hcl.Range
	LoopRange hcl.Range
}

// Edge is an input port fed by another stage's output port.
type Edge struct {
	From     string // producing stage's address
	FromPort string
	ToPort   string
	Range    hcl.Range // the reference in the consuming block
}

// Graph is a validated stage graph. Its methods never modify it, so a Graph
// may be shared between goroutines.
type Graph struct {
	nodes map[string]*Node
	d     *digraph
	order []string
}

// Build checks the nodes and returns their graph. It reports duplicate
// addresses, references to unknown stages, cycles among stages (naming the
// stages on one path around each cycle) and loops whose target is not
// upstream of the deciding stage. The returned Graph is usable even when the
// diagnostics hold errors: cyclic stages are then ordered by address at the
// place of their cycle, and bad edges are left out.
func Build(nodes []Node) (*Graph, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	g := &Graph{nodes: make(map[string]*Node, len(nodes))}

	sorted := make([]*Node, 0, len(nodes))
	for i := range nodes {
		n := nodes[i]
		if prev, dup := g.nodes[n.Addr]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate stage",
				Detail: fmt.Sprintf("A stage with the address %s was already declared at %s. Stage addresses must be unique.",
					n.Addr, prev.DeclRange),
				Subject: n.DeclRange.Ptr(),
			})
			continue
		}
		n.Inputs = slices.Clone(n.Inputs)
		g.nodes[n.Addr] = &n
		sorted = append(sorted, &n)
	}
	slices.SortFunc(sorted, func(a, b *Node) int { return cmp.Compare(a.Addr, b.Addr) })
	names := make([]string, len(sorted))
	for i, n := range sorted {
		names[i] = n.Addr
	}
	g.d = newDigraph(names)

	// edgeRange keeps, per pair of stages, the reference a cycle diagnostic
	// points at: the first input port by name.
	edgeRange := map[[2]string]hcl.Range{}
	for _, n := range sorted {
		slices.SortStableFunc(n.Inputs, func(a, b Edge) int { return cmp.Compare(a.ToPort, b.ToPort) })
		kept := n.Inputs[:0]
		for _, e := range n.Inputs {
			if _, ok := g.nodes[e.From]; !ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Reference to undeclared stage",
					Detail:   fmt.Sprintf("The input port %q of %s refers to %s, which is not declared.", e.ToPort, n.Addr, e.From),
					Subject:  e.Range.Ptr(),
				})
				continue
			}
			kept = append(kept, e)
			g.d.addEdge(e.From, n.Addr)
			if _, seen := edgeRange[[2]string{e.From, n.Addr}]; !seen {
				edgeRange[[2]string{e.From, n.Addr}] = e.Range
			}
		}
		n.Inputs = kept
	}

	var cycles [][]string
	g.order, cycles = g.d.sort()
	for _, c := range cycles {
		closing := edgeRange[[2]string{c[len(c)-1], c[0]}]
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cycle among stages",
			Detail:   cycleDetail(c),
			Subject:  closing.Ptr(),
		})
	}

	for _, n := range sorted {
		if n.LoopTo == "" {
			continue
		}
		if _, ok := g.nodes[n.LoopTo]; !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Reference to undeclared stage",
				Detail:   fmt.Sprintf("The loop of %s goes back to %s, which is not declared.", n.Addr, n.LoopTo),
				Subject:  n.LoopRange.Ptr(),
			})
			continue
		}
		if n.LoopTo == n.Addr || !g.d.reaches(n.LoopTo, n.Addr) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Loop target is not upstream",
				Detail: fmt.Sprintf("%s loops back to %s, but %s does not feed %s through input ports. "+
					"loop_to must name a stage that the deciding stage depends on, so that the stages from that one to the decider can run again.",
					n.Addr, n.LoopTo, n.LoopTo, n.Addr),
				Subject: n.LoopRange.Ptr(),
			})
		}
	}
	return g, diags
}

func cycleDetail(c []string) string {
	if len(c) == 1 {
		return fmt.Sprintf("The stage %s reads its own output through an input port. "+
			"To run a stage again on its own results, declare a loop with loop_to on a deciding stage.", c[0])
	}
	sorted := slices.Clone(c)
	slices.Sort(sorted)
	return fmt.Sprintf("The stages %s feed each other through their input ports: %s → %s. "+
		"A pipeline must be acyclic; to run stages again, declare a loop with loop_to on the deciding stage.",
		joinAnd(sorted), strings.Join(c, " → "), c[0])
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// Order returns every stage address, producers before consumers; stages
// that do not depend on each other keep a fixed order derived from their
// addresses, so the same pipeline always runs in the same order.
func (g *Graph) Order() []string { return slices.Clone(g.order) }

// Node returns the node with the given address, or nil.
func (g *Graph) Node(addr string) *Node {
	n, ok := g.nodes[addr]
	if !ok {
		return nil
	}
	c := *n
	c.Inputs = slices.Clone(n.Inputs)
	return &c
}

// Upstream returns the stages that feed addr directly through its input
// ports, sorted by address.
func (g *Graph) Upstream(addr string) []string {
	return g.d.neighbours(addr, false)
}

// Downstream returns the stages that addr feeds directly, sorted by address.
func (g *Graph) Downstream(addr string) []string {
	return g.d.neighbours(addr, true)
}

// LoopBody returns the stages a loop runs again: those on any path from the
// decider's loop_to target to the decider, both included, in Order. It
// returns nil when decider declares no loop or its target is not upstream.
func (g *Graph) LoopBody(decider string) []string {
	n, ok := g.nodes[decider]
	if !ok || n.LoopTo == "" || n.LoopTo == decider || !g.d.reaches(n.LoopTo, decider) {
		return nil
	}
	below := g.d.descendants(n.LoopTo)
	var body []string
	for _, a := range g.order {
		if a == n.LoopTo || a == decider || (below[a] && g.d.reaches(a, decider)) {
			body = append(body, a)
		}
	}
	return body
}

// Loops returns the addresses of the stages that declare a loop, in Order.
func (g *Graph) Loops() []string {
	var out []string
	for _, a := range g.order {
		if g.nodes[a].LoopTo != "" {
			out = append(out, a)
		}
	}
	return out
}

// SortNames orders names so that every name comes after the names deps
// returns for it, and returns each cycle found as the names along one path
// around it (the path closes back to its first name). Unknown names that
// deps returns are ignored. config uses it for locals.
func SortNames(names []string, deps func(name string) []string) (order []string, cycles [][]string) {
	uniq := slices.Clone(names)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	d := newDigraph(uniq)
	for _, n := range uniq {
		for _, dep := range deps(n) {
			if _, ok := d.ids[dep]; ok {
				d.addEdge(dep, n)
			}
		}
	}
	return d.sort()
}

// digraph is a gonum directed graph over string names; node ids are the
// indexes of the sorted names, so id order is name order.
type digraph struct {
	names []string
	ids   map[string]int64
	g     *simple.DirectedGraph
	// self holds self references, which simple graphs cannot represent.
	self map[int64]bool
}

func newDigraph(sortedNames []string) *digraph {
	d := &digraph{
		names: sortedNames,
		ids:   make(map[string]int64, len(sortedNames)),
		g:     simple.NewDirectedGraph(),
		self:  map[int64]bool{},
	}
	for i, n := range sortedNames {
		d.ids[n] = int64(i)
		d.g.AddNode(simple.Node(i))
	}
	return d
}

func (d *digraph) addEdge(from, to string) {
	f, t := d.ids[from], d.ids[to]
	if f == t {
		d.self[f] = true
		return
	}
	d.g.SetEdge(simple.Edge{F: simple.Node(f), T: simple.Node(t)})
}

func byID(ns []gonum.Node) {
	slices.SortFunc(ns, func(a, b gonum.Node) int { return cmp.Compare(a.ID(), b.ID()) })
}

// sort returns a topological order and the cycles. Cyclic components take
// the place gonum marks for them, their members sorted by name.
func (d *digraph) sort() (order []string, cycles [][]string) {
	sorted, err := topo.SortStabilized(d.g, byID)
	var sccs topo.Unorderable
	if err != nil {
		sccs = err.(topo.Unorderable)
	}
	next := 0
	for _, n := range sorted {
		if n != nil {
			order = append(order, d.names[n.ID()])
			if d.self[n.ID()] {
				cycles = append(cycles, []string{d.names[n.ID()]})
			}
			continue
		}
		scc := slices.Clone(sccs[next])
		next++
		byID(scc)
		for _, m := range scc {
			order = append(order, d.names[m.ID()])
		}
		cycles = append(cycles, d.cycleIn(scc))
	}
	slices.SortFunc(cycles, func(a, b []string) int { return cmp.Compare(a[0], b[0]) })
	return order, cycles
}

// cycleIn returns one cycle through the smallest member of a strongly
// connected component: the shortest way back to it from its smallest
// successor inside the component.
func (d *digraph) cycleIn(scc []gonum.Node) []string {
	in := make(map[int64]bool, len(scc))
	sub := simple.NewDirectedGraph()
	for _, n := range scc {
		in[n.ID()] = true
		sub.AddNode(n)
	}
	for _, n := range scc {
		to := d.g.From(n.ID())
		for to.Next() {
			if in[to.Node().ID()] {
				sub.SetEdge(simple.Edge{F: n, T: to.Node()})
			}
		}
	}
	start := scc[0]
	succ := gonum.NodesOf(sub.From(start.ID()))
	byID(succ)
	way, _ := path.DijkstraFromTo(succ[0], start, sub)
	cycle := []string{d.names[start.ID()]}
	for _, n := range way[:len(way)-1] {
		cycle = append(cycle, d.names[n.ID()])
	}
	return cycle
}

func (d *digraph) reaches(from, to string) bool {
	f, ok1 := d.ids[from]
	t, ok2 := d.ids[to]
	if !ok1 || !ok2 {
		return false
	}
	return topo.PathExistsIn(d.g, d.g.Node(f), d.g.Node(t))
}

func (d *digraph) descendants(from string) map[string]bool {
	out := map[string]bool{}
	id, ok := d.ids[from]
	if !ok {
		return out
	}
	var bf traverse.BreadthFirst
	bf.Walk(d.g, d.g.Node(id), func(n gonum.Node, _ int) bool {
		out[d.names[n.ID()]] = true
		return false
	})
	return out
}

func (d *digraph) neighbours(addr string, down bool) []string {
	id, ok := d.ids[addr]
	if !ok {
		return nil
	}
	var it gonum.Nodes
	if down {
		it = d.g.From(id)
	} else {
		it = d.g.To(id)
	}
	var out []string
	for it.Next() {
		out = append(out, d.names[it.Node().ID()])
	}
	slices.Sort(out)
	return out
}
