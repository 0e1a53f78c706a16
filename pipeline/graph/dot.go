package graph

import (
	"fmt"
	"strings"
)

// DOT renders the graph in Graphviz's DOT language: one box per stage
// labelled with its address and plugin, one edge per connected port
// labelled "output → input", and each loop as a dashed edge from the
// deciding stage back to its target. The output is deterministic.
func (g *Graph) DOT() string {
	var b strings.Builder
	b.WriteString("digraph pipeline {\n")
	b.WriteString("  rankdir=LR;\n")
	b.WriteString("  node [shape=box, fontname=\"Helvetica\"];\n")
	b.WriteString("  edge [fontname=\"Helvetica\", fontsize=10];\n")
	for _, a := range g.order {
		n := g.nodes[a]
		label := n.Addr
		if n.Plugin != "" {
			label += "\n" + n.Plugin
		}
		fmt.Fprintf(&b, "  %s [label=%s];\n", quote(n.Addr), quote(label))
	}
	for _, a := range g.order {
		n := g.nodes[a]
		for _, e := range n.Inputs {
			fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", quote(e.From), quote(n.Addr), quote(e.FromPort+" → "+e.ToPort))
		}
	}
	for _, a := range g.order {
		n := g.nodes[a]
		if n.LoopTo == "" {
			continue
		}
		if _, ok := g.nodes[n.LoopTo]; !ok {
			continue
		}
		label := "loop"
		if n.LoopPort != "" {
			label = n.LoopPort + " → input"
		}
		if n.MaxRounds > 0 {
			label += fmt.Sprintf("\nmax %d rounds", n.MaxRounds)
		}
		fmt.Fprintf(&b, "  %s -> %s [label=%s, style=dashed, constraint=false];\n", quote(n.Addr), quote(n.LoopTo), quote(label))
	}
	b.WriteString("}\n")
	return b.String()
}

// quote makes s a DOT string literal. DOT escapes only the double quote;
// a backslash followed by n is its line break, which labels use on purpose,
// so a literal newline in s becomes that escape and other backslashes are
// doubled.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
