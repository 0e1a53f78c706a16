package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/hashicorp/hcl/v2"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// checkPortSchemas compares, on every edge and every loop, the columns the
// consuming port declares with those the producing port guarantees. A port
// without a schema accepts or provides anything, and is not checked.
func (l *loader) checkPortSchemas() {
	for _, s := range l.stageOrder {
		if !s.resolved {
			continue
		}
		for _, port := range slices.Sorted(maps.Keys(s.Inputs)) {
			ref := s.Inputs[port]
			prod := l.stages[ref.Stage]
			if prod == nil || !prod.resolved {
				continue
			}
			out := findPort(prod.Spec.Outputs, ref.Port)
			in := findPort(s.Spec.Inputs, port)
			if out == nil || in == nil {
				continue
			}
			problems, ok := l.fit(prod, out, s, in)
			if !ok || len(problems) == 0 {
				continue
			}
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Port schema mismatch",
				Detail: fmt.Sprintf("The input port %q of %s reads the output port %q of %s, which does not provide what %s expects: it %s. "+
					"Connect a port that provides these columns, or convert them in a stage in between.",
					port, s.Addr, out.Name, prod.Addr, s.Addr, joinClauses(problems)),
				Subject: ref.Range.Ptr(),
			})
		}
		l.checkLoopSchema(s)
	}
}

// checkLoopSchema checks that the decider's proposals can replace the data
// on the loop target's primary input port.
func (l *loader) checkLoopSchema(s *stageState) {
	if s.LoopTo == "" || s.Spec.Loop == nil {
		return
	}
	target := l.stages[s.LoopTo]
	if target == nil || !target.resolved {
		return
	}
	out := findPort(s.Spec.Outputs, s.Spec.Loop.ProposalsPort)
	if out == nil {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid plugin description",
			Detail: fmt.Sprintf("The plugin %q says the stage kind %q proposes on the output port %q, which it does not declare. This is a bug in the plugin; report it to its author.",
				s.Plugin, s.Kind, s.Spec.Loop.ProposalsPort),
			Subject: s.loopRange.Ptr(),
		})
		return
	}
	in := findPort(target.Spec.Inputs, sdk.PrimaryInput)
	if in == nil {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Loop target has no input port",
			Detail: fmt.Sprintf("%s loops back to %s, whose kind %q has no input port %q for the proposals of the next round to replace.",
				s.Addr, target.Addr, target.Kind, sdk.PrimaryInput),
			Subject: s.loopRange.Ptr(),
		})
		return
	}
	problems, ok := l.fit(s, out, target, in)
	if !ok || len(problems) == 0 {
		return
	}
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Loop schema mismatch",
		Detail: fmt.Sprintf("Each round, the output port %q of %s replaces the data on the input port %q of %s, but it does not provide what %s expects: it %s.",
			out.Name, s.Addr, in.Name, target.Addr, target.Addr, joinClauses(problems)),
		Subject: s.loopRange.Ptr(),
	})
}

func findPort(ports []describe.PortDescription, name string) *describe.PortDescription {
	for i := range ports {
		if ports[i].Name == name {
			return &ports[i]
		}
	}
	return nil
}

// fit lists how the output port's schema falls short of the input port's.
// ok is false when a schema could not be read (which is reported).
func (l *loader) fit(prod *stageState, out *describe.PortDescription, cons *stageState, in *describe.PortDescription) (problems []string, ok bool) {
	if len(out.ArrowSchema) == 0 || len(in.ArrowSchema) == 0 {
		return nil, true
	}
	os, ok1 := l.portSchema(prod, out, "output")
	is, ok2 := l.portSchema(cons, in, "input")
	if !ok1 || !ok2 {
		return nil, false
	}
	gap := sdk.CheckSchema(is, os)
	var lacks []string
	for _, want := range gap.Missing {
		lacks = append(lacks, fmt.Sprintf("%q (%s)", want.Name, want.Type))
	}
	for _, c := range gap.Mistyped {
		problems = append(problems, fmt.Sprintf("has the column %q as %s where %s is expected", c.Declared.Name, c.Got.Type, c.Declared.Type))
	}
	for _, c := range gap.Nullable {
		problems = append(problems, fmt.Sprintf("declares the column %q nullable where no null is expected", c.Declared.Name))
	}
	switch len(lacks) {
	case 0:
	case 1:
		problems = append([]string{"lacks the column " + lacks[0]}, problems...)
	default:
		problems = append([]string{"lacks the columns " + joinClauses(lacks)}, problems...)
	}
	return problems, true
}

// portSchema decodes a port's Arrow schema, caching by content. Arrow's
// flatbuffer decoding may panic on corrupt bytes; those come from a plugin,
// and a broken plugin must not crash validation.
func (l *loader) portSchema(s *stageState, p *describe.PortDescription, dir string) (sch *arrow.Schema, ok bool) {
	if l.schemas == nil {
		l.schemas = map[string]*arrow.Schema{}
	}
	key := string(p.ArrowSchema)
	if sch, ok := l.schemas[key]; ok {
		return sch, sch != nil
	}
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		sch, err = p.PortSchema()
	}()
	if err != nil {
		l.schemas[key] = nil
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid plugin description",
			Detail: fmt.Sprintf("The plugin %q declares an unreadable Arrow schema for the %s port %q of the stage kind %q: %v. This is a bug in the plugin; report it to its author.",
				s.Plugin, dir, p.Name, s.Kind, err),
			Subject: s.DeclRange.Ptr(),
		})
		return nil, false
	}
	l.schemas[key] = sch
	return sch, true
}

func joinClauses(c []string) string {
	switch len(c) {
	case 0:
		return ""
	case 1:
		return c[0]
	}
	return strings.Join(c[:len(c)-1], ", ") + " and " + c[len(c)-1]
}
