package describe

import (
	"fmt"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Spec turns a described config schema into the hcldec spec of a stage
// body, so that every host (sweetspot's, sdktest's) decodes a body against
// it the same way, with HCL's own diagnostics: types, required attributes
// and blocks, and the labels of each block (hcldec.BlockLabelSpec entries,
// so a block with a missing or an extra label is an HCL error at the
// block). An Expression attribute is a string here: a host wraps the body
// with DeferExpressions before decoding it.
//
// problems lists the schema's own defects (an unnamed or duplicate
// attribute, a type that is not a cty type, an unknown nesting, a label
// that clashes with an attribute): the plugin author's to fix. The
// offending entries are left out of the spec, which stays usable.
func (s ConfigSchema) Spec() (spec hcldec.ObjectSpec, problems []string) {
	return s.spec("")
}

func (s ConfigSchema) spec(path string) (hcldec.ObjectSpec, []string) {
	spec := hcldec.ObjectSpec{}
	var problems []string
	for _, a := range s.Attributes {
		if a.Name == "" {
			problems = append(problems, fmt.Sprintf("an attribute of %s has no name", orBody(path)))
			continue
		}
		if _, dup := spec[a.Name]; dup {
			problems = append(problems, fmt.Sprintf("%q is declared twice", path+a.Name))
			continue
		}
		ty, err := ctyjson.UnmarshalType(a.Type)
		if err != nil {
			problems = append(problems, fmt.Sprintf("the type of %q is not a cty type: %v", path+a.Name, err))
			continue
		}
		if a.Expression && !ty.Equals(cty.String) {
			problems = append(problems, fmt.Sprintf("%q is an expression, whose type must be string, not %s", path+a.Name, ty.FriendlyName()))
			continue
		}
		spec[a.Name] = &hcldec.AttrSpec{Name: a.Name, Type: ty, Required: a.Required}
	}
	for _, b := range s.Blocks {
		if b.Name == "" {
			problems = append(problems, fmt.Sprintf("a block of %s has no name", orBody(path)))
			continue
		}
		if _, dup := spec[b.Name]; dup {
			problems = append(problems, fmt.Sprintf("%q is declared twice", path+b.Name))
			continue
		}
		nested, more := b.Body.spec(path + b.Name + ".")
		problems = append(problems, more...)
		labelsOK := true
		for i, l := range b.Labels {
			if _, clash := nested[l]; clash || l == "" {
				problems = append(problems, fmt.Sprintf("the label %q of the block %q is empty or named like another label, attribute or block of it", l, path+b.Name))
				labelsOK = false
				continue
			}
			nested[l] = &hcldec.BlockLabelSpec{Index: i, Name: l}
		}
		if !labelsOK {
			// hcldec wants label indexes 0, 1, ... without a gap.
			continue
		}
		required := b.Required
		switch b.Nesting {
		case NestingSingle:
			spec[b.Name] = &hcldec.BlockSpec{TypeName: b.Name, Nested: nested, Required: required}
		case NestingList:
			minItems := 0
			if required {
				minItems = 1
			}
			spec[b.Name] = &hcldec.BlockListSpec{TypeName: b.Name, Nested: nested, MinItems: minItems}
		default:
			problems = append(problems, fmt.Sprintf("the block %q has the unknown nesting %q", path+b.Name, b.Nesting))
		}
	}
	return spec, problems
}

func orBody(path string) string {
	if path == "" {
		return "the body"
	}
	return path
}
