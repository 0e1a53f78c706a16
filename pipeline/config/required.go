package config

import (
	"fmt"

	"github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// requiredPluginArgs are the arguments of a required_plugins entry.
var requiredPluginArgs = []string{"source", "version"}

// decodeRequiredPlugin reads `NAME = { source = "...", version = "..." }`.
// Its values must be literal: init reads them before anything else.
func (l *loader) decodeRequiredPlugin(name string, a *hcl.Attribute) RequiredPlugin {
	rp := RequiredPlugin{Name: name, Range: a.Range}
	v, diags := a.Expr.Value(nil)
	l.add(diags...)
	rp.Value = v
	if diags.HasErrors() {
		return rp
	}
	example := fmt.Sprintf(`%s = { source = "example.com/acme/sweetspot-plugin-%s", version = ">= 1.0" }`, name, name)
	pairs, diags := hcl.ExprMap(a.Expr)
	if diags.HasErrors() {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid required plugin",
			Detail:   fmt.Sprintf("The required plugin %q must be an object with a source and an optional version constraint, such as %s.", name, example),
			Subject:  a.Expr.Range().Ptr(),
		})
		return rp
	}
	seen := map[string]hcl.Range{}
	decoded := map[string]bool{}
	for _, kv := range pairs {
		// A bare key (source = ...) evaluates to its own name.
		kval, diags := kv.Key.Value(nil)
		l.add(diags...)
		if diags.HasErrors() {
			continue
		}
		if kval.IsNull() || kval.Type() != cty.String {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid required plugin argument",
				Detail:   "An argument name must be a string.",
				Subject:  kv.Key.Range().Ptr(),
			})
			continue
		}
		key := kval.AsString()
		if prev, dup := seen[key]; dup {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate argument",
				Detail:   fmt.Sprintf("The argument %q was already set at %s.", key, prev),
				Subject:  kv.Key.Range().Ptr(),
			})
			continue
		}
		seen[key] = kv.Key.Range()
		var dst *string
		switch key {
		case "source":
			dst, rp.SourceRange = &rp.Source, kv.Value.Range()
		case "version":
			dst, rp.VersionRange = &rp.Version, kv.Value.Range()
		default:
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unsupported argument",
				Detail:   fmt.Sprintf("A required plugin takes the arguments \"source\" and \"version\", not %q.%s", key, didYouMean(key, requiredPluginArgs)),
				Subject:  kv.Key.Range().Ptr(),
			})
			continue
		}
		val, _ := kv.Value.Value(nil) // a.Expr evaluated cleanly, so its parts do
		if val.IsNull() || val.Type() != cty.String {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Incorrect attribute value type",
				Detail:   fmt.Sprintf("The %s of the required plugin %q must be a string.", key, name),
				Subject:  kv.Value.Range().Ptr(),
			})
			continue
		}
		*dst = val.AsString()
		decoded[key] = true
	}
	if _, ok := seen["source"]; !ok {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing plugin source",
			Detail:   fmt.Sprintf("The required plugin %q needs a source that says where `sweetspot init` installs it from: a Go module path, or a local directory (./path). For example: %s.", name, example),
			Subject:  a.Expr.Range().Ptr(),
		})
	} else if rp.Source == "" && decoded["source"] {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing plugin source",
			Detail:   fmt.Sprintf("The source of the required plugin %q is empty.", name),
			Subject:  rp.SourceRange.Ptr(),
		})
	}
	if rp.Version != "" {
		if _, err := version.NewConstraint(rp.Version); err != nil {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid version constraint",
				Detail: fmt.Sprintf("The version constraint %q of the required plugin %q is invalid: %v. "+
					"Write comma-separated conditions such as \">= 1.2, < 2\" or \"~> 1.4\".", rp.Version, name, err),
				Subject: rp.VersionRange.Ptr(),
			})
		}
	}
	return rp
}
