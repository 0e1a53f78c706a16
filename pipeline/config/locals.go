package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
)

// decodeLocals evaluates every locals block's attributes in dependency
// order, whatever their order in the files. A local in a cycle, or one whose
// expression fails, becomes unknown so that its users report nothing more.
func (l *loader) decodeLocals(blocks hcl.Blocks) {
	for _, b := range blocks {
		attrs, diags := b.Body.JustAttributes()
		l.add(diags...)
		sorted := slices.SortedFunc(maps.Values(attrs), func(a, b *hcl.Attribute) int {
			return a.Range.Start.Byte - b.Range.Start.Byte
		})
		for _, a := range sorted {
			if prev, dup := l.locals[a.Name]; dup {
				l.add(&hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Duplicate local value",
					Detail: fmt.Sprintf("A local value named %q was already defined at %s. Local value names must be unique within a pipeline.",
						a.Name, prev.NameRange),
					Subject: a.NameRange.Ptr(),
				})
				continue
			}
			l.locals[a.Name] = a
		}
	}

	// refs[a][b] is the first reference to local.b in local a's expression.
	refs := map[string]map[string]hcl.Range{}
	for name, a := range l.locals {
		refs[name] = map[string]hcl.Range{}
		for _, t := range a.Expr.Variables() {
			if t.RootName() != rootLocal {
				continue
			}
			if dep, ok := attrStep(t, 1); ok {
				if _, seen := refs[name][dep]; !seen {
					refs[name][dep] = t.SourceRange()
				}
			}
		}
	}
	order, cycles := graph.SortNames(slices.Collect(maps.Keys(l.locals)), func(n string) []string {
		return slices.Collect(maps.Keys(refs[n]))
	})
	cyclic := map[string]bool{}
	for _, c := range cycles {
		for _, n := range c {
			cyclic[n] = true
		}
		// c runs along "is used by"; messages read along "refers to".
		back := []string{c[0]}
		for i := len(c) - 1; i > 0; i-- {
			back = append(back, c[i])
		}
		var detail string
		if len(c) == 1 {
			detail = fmt.Sprintf("The local value %q refers to itself.", c[0])
		} else {
			steps := make([]string, 0, len(back)+1)
			for _, n := range back {
				steps = append(steps, "local."+n)
			}
			steps = append(steps, "local."+back[0])
			detail = fmt.Sprintf("The local values %s refer to each other: %s. A local value cannot depend on itself.",
				quotedList(slices.Sorted(slices.Values(c))), strings.Join(steps, " → "))
		}
		subject := refs[c[0]][c[0]]
		if len(c) > 1 {
			subject = refs[back[0]][back[1]]
		}
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cycle among local values",
			Detail:   detail,
			Subject:  subject.Ptr(),
		})
	}

	for _, name := range order {
		if cyclic[name] {
			l.localVals[name] = cty.DynamicVal
			continue
		}
		a := l.locals[name]
		traversals := a.Expr.Variables()
		l.sensitiveLocals[name] = l.sensitiveRefs(traversals)
		refDiags := l.checkRefs(traversals, refContext{attr: name})
		l.add(refDiags...)
		v, diags := a.Expr.Value(l.evalContext(traversals))
		l.add(diags...)
		if diags.HasErrors() || refDiags.HasErrors() {
			v = cty.DynamicVal
		}
		l.localVals[name] = v
	}
}
