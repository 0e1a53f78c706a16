package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// envName is a portable environment variable name (POSIX's portable set:
// letters, digits and underscores, not starting with a digit).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// hostEnvPrefixes are the variables the host and go-plugin set for a
// plugin themselves (pluginhost.HostEnvPrefixes): passing the host's own
// through would let a stage change how its plugin is started or traced.
var hostEnvPrefixes = []string{"SWEETSPOT_", "PLUGIN_"}

// elementRanges returns the range of each element of a list written as a
// tuple literal, or nil (the caller falls back to the whole value).
func elementRanges(a *hcl.Attribute, n int) []hcl.Range {
	if a == nil {
		return nil
	}
	tup, ok := a.Expr.(*hclsyntax.TupleConsExpr)
	if !ok || len(tup.Exprs) != n {
		return nil
	}
	out := make([]hcl.Range, n)
	for i, e := range tup.Exprs {
		out[i] = e.Range()
	}
	return out
}

// passEnv checks a stage's pass_env: each entry a variable name, listed
// once, not one the host sets itself.
func (l *loader) passEnv(v cty.Value, a *hcl.Attribute) []string {
	var whole hcl.Range
	if a != nil {
		whole = a.Expr.Range()
	}
	ranges := elementRanges(a, v.LengthInt())
	at := func(i int) *hcl.Range {
		if ranges != nil {
			return ranges[i].Ptr()
		}
		return whole.Ptr()
	}
	var names []string
	seen := map[string]bool{}
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, e := it.Element()
		if !e.IsKnown() {
			continue
		}
		if e.IsNull() {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid pass_env entry",
				Detail:   "pass_env lists environment variable names, such as \"AWS_PROFILE\"; this entry is null.",
				Subject:  at(i),
			})
			continue
		}
		name := e.AsString()
		var detail string
		switch {
		case !envName.MatchString(name):
			detail = fmt.Sprintf("%q is not an environment variable name: pass_env lists names (letters, digits and underscores, not starting with a digit), such as \"AWS_PROFILE\"; the value comes from sweetspot's own environment.", name)
			if k, _, ok := strings.Cut(name, "="); ok && envName.MatchString(k) {
				detail += fmt.Sprintf(" To pass %s, list %q and set it where sweetspot runs.", k, k)
			}
		case hasHostEnvPrefix(name):
			detail = fmt.Sprintf("%s cannot be passed: the variables starting with %s are set by sweetspot itself for each plugin.", name, strings.Join(hostEnvPrefixes, " or "))
		case seen[name]:
			detail = fmt.Sprintf("%s is listed twice.", name)
		}
		if detail != "" {
			l.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid pass_env entry", Detail: detail, Subject: at(i)})
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names
}

func hasHostEnvPrefix(name string) bool {
	for _, p := range hostEnvPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
