package config

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// functions are the functions pipeline expressions may call: the SDK's
// table, so that a deferred expression a plugin evaluates (sdk.Expression)
// has the same functions as every attribute the host evaluates.
var functions = sdk.Functions()

// FunctionNames lists the functions pipeline expressions may call, sorted.
func FunctionNames() []string {
	return slices.Sorted(maps.Keys(functions))
}

// The roots a reference may start with.
const (
	rootVar     = "var"
	rootLocal   = "local"
	rootStage   = "stage"
	rootDataset = "dataset"
)

var roots = []string{rootVar, rootLocal, rootStage, rootDataset}

// refContext says where an expression sits, to word the diagnostics about
// its references.
type refContext struct {
	// stage is the address of the enclosing stage, "" in locals.
	stage string
	// attr is the attribute path, e.g. "budget.max_wall".
	attr string
	// ports lists the stage's input port names, for the hint about where
	// stage references belong; nil when they are not known yet.
	ports []string
	// deferred says that the attribute is an expression the plugin
	// evaluates itself (sdk.Expression).
	deferred bool
}

// attrStep returns the name a traversal step selects, for var.NAME and
// var["NAME"] alike.
func attrStep(t hcl.Traversal, i int) (string, bool) {
	if len(t) <= i {
		return "", false
	}
	switch s := t[i].(type) {
	case hcl.TraverseAttr:
		return s.Name, true
	case hcl.TraverseIndex:
		if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
			return s.Key.AsString(), true
		}
	}
	return "", false
}

// checkRefs reports the references among traversals that cannot be
// evaluated where they are: undeclared variables and locals, unknown roots,
// and references to stages or datasets, whose data exists only at run time.
func (l *loader) checkRefs(traversals []hcl.Traversal, rc refContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, t := range traversals {
		rng := t.SourceRange()
		switch root := t.RootName(); root {
		case rootVar:
			name, ok := attrStep(t, 1)
			if !ok {
				diags = append(diags, invalidRef(rng, "A reference to an input variable needs its name: var.NAME."))
				continue
			}
			if _, ok := l.vars[name]; !ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Reference to undeclared input variable",
					Detail: fmt.Sprintf("An input variable named %q has not been declared.%s",
						name, orElse(didYouMean(name, l.varNames()), fmt.Sprintf(" Declare it with a variable %q {} block.", name))),
					Subject: rng.Ptr(),
				})
			}
		case rootLocal:
			name, ok := attrStep(t, 1)
			if !ok {
				diags = append(diags, invalidRef(rng, "A reference to a local value needs its name: local.NAME."))
				continue
			}
			if _, ok := l.locals[name]; !ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Reference to undeclared local value",
					Detail: fmt.Sprintf("A local value named %q has not been declared.%s",
						name, orElse(didYouMean(name, slices.Collect(maps.Keys(l.locals))), " Define it in a locals {} block.")),
					Subject: rng.Ptr(),
				})
			}
		case rootStage, rootDataset:
			ref := traversalString(t)
			if rc.stage == "" {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Reference to a stage in a local value",
					Detail: fmt.Sprintf("Local values are constants computed before any stage runs, so they cannot refer to %s. "+
						"Connect stages through their input port attributes instead.", ref),
					Subject: rng.Ptr(),
				})
				continue
			}
			hint := "Only input port attributes take stage and dataset references."
			if rc.ports != nil && len(rc.ports) == 0 {
				hint = "This stage kind has no input ports."
			} else if len(rc.ports) > 0 {
				hint = fmt.Sprintf("Only the input port attributes of %s (%s) take stage and dataset references.", rc.stage, quotedList(rc.ports))
			}
			detail := fmt.Sprintf("Plugins receive constant values only: the attribute %q cannot refer to %s, whose data exists only at run time. %s",
				rc.attr, ref, hint)
			if rc.deferred {
				detail = fmt.Sprintf("The plugin evaluates the expression %q itself, with values of its own and the constants of var. and local.; it cannot refer to %s, whose data exists only at run time. %s",
					rc.attr, ref, hint)
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Reference to a stage in a config value",
				Detail:   detail,
				Subject:  rng.Ptr(),
			})
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown reference",
				Detail: fmt.Sprintf("There is nothing named %q to refer to here.%s References start with var., local., stage. or dataset.",
					root, didYouMean(root, roots)),
				Subject: rng.Ptr(),
			})
		}
	}
	return diags
}

func invalidRef(rng hcl.Range, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid reference", Detail: detail, Subject: rng.Ptr()}
}

func orElse(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

// traversalString renders a traversal as written, for messages.
func traversalString(t hcl.Traversal) string {
	s := t.RootName()
	for _, step := range t[1:] {
		switch st := step.(type) {
		case hcl.TraverseAttr:
			s += "." + st.Name
		case hcl.TraverseIndex:
			if st.Key.Type() == cty.String && st.Key.IsKnown() && !st.Key.IsNull() {
				s += fmt.Sprintf("[%q]", st.Key.AsString())
			} else {
				s += "[...]"
			}
		case hcl.TraverseSplat:
			s += "[*]"
		}
	}
	return s
}

// evalContext returns the context for evaluating expressions with the given
// references. checkRefs reports the bad ones; here they evaluate to unknown
// values so that HCL does not report them a second time and decoding goes
// on to find the other problems in the same body.
//
// The var and local objects hold only the names the traversals read:
// objects of every variable and local, built for each expression, made N
// locals cost N² (30,000 one-line locals took minutes).
func (l *loader) evalContext(traversals []hcl.Traversal) *hcl.EvalContext {
	vars := map[string]cty.Value{}
	locals := map[string]cty.Value{}
	extra := map[string]cty.Value{
		rootStage:   cty.DynamicVal,
		rootDataset: cty.DynamicVal,
	}
	for _, t := range traversals {
		switch root := t.RootName(); root {
		case rootVar, rootLocal:
			name, ok := attrStep(t, 1)
			if !ok {
				extra[root] = cty.DynamicVal
				continue
			}
			from, m := l.varVals, vars
			if root == rootLocal {
				from, m = l.localVals, locals
			}
			if v, ok := from[name]; ok {
				m[name] = v
			} else {
				m[name] = cty.DynamicVal
			}
		case rootStage, rootDataset:
		default:
			extra[root] = cty.DynamicVal
		}
	}
	v := map[string]cty.Value{
		rootVar:   objectOf(vars),
		rootLocal: objectOf(locals),
	}
	for k, val := range extra {
		v[k] = val
	}
	return &hcl.EvalContext{Variables: v, Functions: functions}
}

func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}
