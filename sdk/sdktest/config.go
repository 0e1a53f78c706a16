package sdktest

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// ConfigValue turns a test's config into the constant value a host sends
// for a stage block with the given schema (see Case.Config for the forms
// it accepts). Attribute names the schema does not declare are an error, as
// they are in a pipeline file: a typo in a test must not silently test the
// defaults.
func ConfigValue(schema describe.ConfigSchema, config any) (cty.Value, error) {
	switch c := config.(type) {
	case nil:
		return cty.EmptyObjectVal, nil
	case cty.Value:
		if c == cty.NilVal {
			return cty.EmptyObjectVal, nil
		}
		if err := checkNames(schema, c); err != nil {
			return cty.NilVal, err
		}
		if !c.IsWhollyKnown() {
			return cty.NilVal, fmt.Errorf("config value is not wholly known: a host sends constants only")
		}
		return c, nil
	case string:
		return decodeHCL(schema, c)
	}
	v, err := goValue(reflect.ValueOf(config), "config")
	if err != nil {
		return cty.NilVal, err
	}
	if v.IsNull() || !v.Type().IsObjectType() {
		return cty.NilVal, fmt.Errorf("config must be a struct, a map or an object, not %T", config)
	}
	if err := checkNames(schema, v); err != nil {
		return cty.NilVal, err
	}
	return v, nil
}

func checkNames(schema describe.ConfigSchema, v cty.Value) error {
	if v.IsNull() {
		return nil
	}
	ty := v.Type()
	if !ty.IsObjectType() && !ty.IsMapType() {
		return nil // the stage reports a config that is not an object itself
	}
	known := map[string]bool{}
	for _, a := range schema.Attributes {
		known[a.Name] = true
	}
	for _, b := range schema.Blocks {
		known[b.Name] = true
	}
	var unknown []string
	for it := v.ElementIterator(); it.Next(); {
		k, _ := it.Element()
		if !known[k.AsString()] {
			unknown = append(unknown, k.AsString())
		}
	}
	if len(unknown) > 0 {
		names := make([]string, 0, len(known))
		for n := range known {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("config sets %s, which the stage does not declare (it declares %s)",
			strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	return nil
}

// decodeHCL decodes a stage block body the way the host does: hcldec with
// the spec describe.ConfigSchema.Spec derives from the described schema (so a
// missing required attribute or block is refused here, as the host refuses
// it before the plugin sees the config), and deferred expressions sent as
// their source text. A test config has no variables: var.NAME in a
// deferred expression reaches the plugin as written.
func decodeHCL(schema describe.ConfigSchema, src string) (cty.Value, error) {
	spec, problems := schema.Spec()
	if len(problems) > 0 {
		return cty.NilVal, fmt.Errorf("config schema: %s", strings.Join(problems, "; "))
	}
	f, diags := hclsyntax.ParseConfig([]byte(src), "config.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("config HCL: %s", diags.Error())
	}
	body := describe.DeferExpressions(f.Body, schema, func(_ []string, expr hcl.Expression) (cty.Value, hcl.Diagnostics) {
		return describe.ExpressionValue(f.Bytes, expr, nil)
	})
	v, diags := hcldec.Decode(body, spec, nil)
	if diags.HasErrors() {
		// Every problem, not hcl.Diagnostics.Error's first and a count.
		msgs := make([]string, 0, len(diags))
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				msgs = append(msgs, d.Error())
			}
		}
		return cty.NilVal, fmt.Errorf("config HCL: %s", strings.Join(msgs, "; "))
	}
	return v, nil
}

var (
	durationType   = reflect.TypeFor[time.Duration]()
	ctyValueType   = reflect.TypeFor[cty.Value]()
	expressionType = reflect.TypeFor[sdk.Expression]()
)

// goValue converts a Go value the way the SDK decodes one, in reverse:
// structs by their `hcl` tags (nil fields left out, so they stay unset;
// labels as the attributes they are in the value), durations and
// expressions as strings (an unset expression left out), slices as
// tuples, maps as objects.
func goValue(rv reflect.Value, path string) (cty.Value, error) {
	if !rv.IsValid() {
		return cty.NullVal(cty.DynamicPseudoType), nil
	}
	t := rv.Type()
	switch t {
	case ctyValueType:
		return rv.Interface().(cty.Value), nil
	case durationType:
		return cty.StringVal(time.Duration(rv.Int()).String()), nil
	case expressionType:
		e := rv.Interface().(sdk.Expression)
		if e.Source() == "" {
			return cty.NullVal(cty.String), nil
		}
		return cty.StringVal(e.Source()), nil
	}
	switch t.Kind() {
	case reflect.Interface, reflect.Pointer:
		if rv.IsNil() {
			return cty.NullVal(cty.DynamicPseudoType), nil
		}
		return goValue(rv.Elem(), path)
	case reflect.String:
		return cty.StringVal(rv.String()), nil
	case reflect.Bool:
		return cty.BoolVal(rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return cty.NumberIntVal(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return cty.NumberUIntVal(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return cty.NumberFloatVal(rv.Float()), nil
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && rv.IsNil() {
			return cty.NullVal(cty.DynamicPseudoType), nil
		}
		elems := make([]cty.Value, rv.Len())
		for i := range elems {
			e, err := goValue(rv.Index(i), fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return cty.NilVal, err
			}
			elems[i] = e
		}
		return cty.TupleVal(elems), nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return cty.NilVal, fmt.Errorf("%s: map keys must be strings, not %s", path, t.Key())
		}
		if rv.IsNil() {
			return cty.NullVal(cty.DynamicPseudoType), nil
		}
		attrs := map[string]cty.Value{}
		for it := rv.MapRange(); it.Next(); {
			k := it.Key().String()
			e, err := goValue(it.Value(), path+"."+k)
			if err != nil {
				return cty.NilVal, err
			}
			if e.IsNull() {
				continue
			}
			attrs[k] = e
		}
		return cty.ObjectVal(attrs), nil
	case reflect.Struct:
		attrs := map[string]cty.Value{}
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag, ok := sf.Tag.Lookup("hcl")
			if !ok || !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			e, err := goValue(rv.Field(i), path+"."+name)
			if err != nil {
				return cty.NilVal, err
			}
			if e.IsNull() {
				continue
			}
			attrs[name] = e
		}
		return cty.ObjectVal(attrs), nil
	}
	return cty.NilVal, fmt.Errorf("%s: cannot express a %s as a config value", path, t)
}
