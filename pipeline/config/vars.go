package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"},
		{Name: "default"},
		{Name: "description"},
		{Name: "sensitive"},
	},
}

// varDecl is a variable block with what decoding its values needs.
type varDecl struct {
	v        *Variable
	defaults *typeexpr.Defaults
}

// decodeVariables declares the variables and gives each its final value:
// default, then -var-file values in order, then -var values.
func (l *loader) decodeVariables(blocks hcl.Blocks) {
	decls := map[string]*varDecl{}
	var order []string
	for _, b := range blocks {
		name := b.Labels[0]
		if !l.validName(name, b.LabelRanges[0], "variable") {
			continue
		}
		if prev, dup := decls[name]; dup {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate variable declaration",
				Detail: fmt.Sprintf("A variable named %q was already declared at %s. Variable names must be unique within a pipeline.",
					name, prev.v.DeclRange),
				Subject: b.LabelRanges[0].Ptr(),
			})
			continue
		}
		d := l.decodeVariable(b)
		decls[name] = d
		order = append(order, name)
		l.vars[name] = d.v
	}

	for _, f := range l.opts.varFiles {
		l.readVarFile(f, decls)
	}
	for _, name := range slices.Sorted(maps.Keys(l.opts.vars)) {
		l.setCLIVar(name, l.opts.vars[name], decls)
	}

	for _, name := range order {
		d := decls[name]
		if d.v.Value == cty.NilVal {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "No value for required variable",
				Detail: fmt.Sprintf("The variable %q has no default, so it needs a value: pass -var %s=VALUE, or set it in a -var-file.",
					name, name),
				Subject: d.v.DeclRange.Ptr(),
			})
			d.v.Value = cty.DynamicVal
		}
		l.varVals[name] = d.v.Value
	}
}

func (l *loader) decodeVariable(b *hcl.Block) *varDecl {
	v := &Variable{
		Name:      b.Labels[0],
		Type:      cty.DynamicPseudoType,
		DeclRange: b.DefRange,
	}
	d := &varDecl{v: v}
	content, diags := b.Body.Content(variableSchema)
	l.add(diags...)

	if a, ok := content.Attributes["type"]; ok {
		ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
		l.add(diags...)
		if !diags.HasErrors() {
			v.Type, d.defaults = ty, defaults
		}
	}
	if a, ok := content.Attributes["description"]; ok {
		v.Description, _ = l.literalString(a)
	}
	if a, ok := content.Attributes["sensitive"]; ok {
		val, diags := a.Expr.Value(nil)
		l.add(diags...)
		if b, err := convert.Convert(val, cty.Bool); err != nil || b.IsNull() || !b.IsKnown() {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Incorrect attribute value type",
				Detail:   `Inappropriate value for attribute "sensitive": a bool is required.`,
				Subject:  a.Expr.Range().Ptr(),
			})
		} else {
			v.Sensitive = b.True()
		}
	}
	if a, ok := content.Attributes["default"]; ok {
		val, diags := a.Expr.Value(nil)
		l.add(diags...)
		// A default that is there but wrong is reported as such, not
		// again as a missing value.
		v.Value = cty.DynamicVal
		if !diags.HasErrors() {
			if conv, err := d.convert(val); err != nil {
				l.add(&hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid default value for variable",
					Detail:   fmt.Sprintf("This default value does not fit the variable's type %s: %s.", typeexpr.TypeString(v.Type), errText(err)),
					Subject:  a.Expr.Range().Ptr(),
				})
			} else {
				v.Default, v.Value = conv, conv
			}
		}
	}
	return d
}

// convert applies the type's optional attribute defaults and converts.
func (d *varDecl) convert(val cty.Value) (cty.Value, error) {
	if d.defaults != nil {
		val = d.defaults.Apply(val)
	}
	return convert.Convert(val, d.v.Type)
}

// errText renders a conversion error, with its path when it has one.
func errText(err error) string {
	var pe cty.PathError
	if errors.As(err, &pe) && len(pe.Path) > 0 {
		return fmt.Sprintf("at %s: %s", pathString(pe.Path), pe.Error())
	}
	return err.Error()
}

func pathString(p cty.Path) string {
	s := ""
	for _, step := range p {
		switch st := step.(type) {
		case cty.GetAttrStep:
			s += "." + st.Name
		case cty.IndexStep:
			switch {
			case st.Key.Type() == cty.String:
				s += fmt.Sprintf("[%q]", st.Key.AsString())
			case st.Key.Type() == cty.Number:
				s += "[" + st.Key.AsBigFloat().String() + "]"
			default:
				s += "[...]"
			}
		}
	}
	if len(s) > 0 && s[0] == '.' {
		s = s[1:]
	}
	return s
}

func (l *loader) varNames() []string { return slices.Collect(maps.Keys(l.vars)) }

func (l *loader) readVarFile(path string, decls map[string]*varDecl) {
	src, err := ReadSource(path)
	if err != nil {
		// The path error would name the file a second time.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot read variables file",
			Detail:   fmt.Sprintf("Reading the -var-file %s failed: %v.", path, err),
		})
		return
	}
	if !l.checkSource(src, path, describe.CheckSource) {
		return
	}
	f, diags := l.parser.ParseHCL(src, path)
	l.add(diags...)
	if f == nil || f.Body == nil || diags.HasErrors() {
		// What the parser recovered of a broken file would only add
		// follow-on errors about values it cut short.
		return
	}
	attrs, diags := f.Body.JustAttributes()
	l.add(diags...)
	sorted := slices.SortedFunc(maps.Values(attrs), func(a, b *hcl.Attribute) int {
		return a.Range.Start.Byte - b.Range.Start.Byte
	})
	for _, a := range sorted {
		d, ok := decls[a.Name]
		if !ok {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value for undeclared variable",
				Detail: fmt.Sprintf("The pipeline declares no variable named %q.%s",
					a.Name, orElse(didYouMean(a.Name, l.varNames()), fmt.Sprintf(" To use this value, declare it with a variable %q {} block.", a.Name))),
				Subject: a.NameRange.Ptr(),
			})
			continue
		}
		val, diags := a.Expr.Value(nil)
		l.add(diags...)
		if diags.HasErrors() {
			d.v.Value = cty.DynamicVal
			continue
		}
		l.setValue(d, val, a.Expr.Range())
	}
}

// setCLIVar sets a -var value. As in Terraform, a string (or untyped)
// variable takes the raw text, and any other type parses it as an HCL
// expression; its diagnostics point into a pseudo-file holding the text.
func (l *loader) setCLIVar(name, raw string, decls map[string]*varDecl) {
	d, ok := decls[name]
	if !ok {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Value for undeclared variable",
			Detail: fmt.Sprintf("A value for %q was given with -var, but the pipeline declares no variable of that name.%s",
				name, orElse(didYouMean(name, l.varNames()), fmt.Sprintf(" To use this value, declare it with a variable %q {} block.", name))),
		})
		return
	}
	if d.v.Type == cty.String || d.v.Type == cty.DynamicPseudoType {
		d.v.Value = cty.StringVal(raw)
		return
	}
	filename := fmt.Sprintf("<value for var.%s>", name)
	l.pseudo[filename] = &hcl.File{Body: hcl.EmptyBody(), Bytes: []byte(raw)}
	if !l.checkSource([]byte(raw), filename, describe.CheckExpressionSource) {
		d.v.Value = cty.DynamicVal
		return
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), filename, hcl.InitialPos)
	if !diags.HasErrors() {
		var more hcl.Diagnostics
		var val cty.Value
		val, more = expr.Value(nil)
		diags = append(diags, more...)
		if !diags.HasErrors() {
			l.setValue(d, val, expr.Range())
			return
		}
	}
	// HCL alone would say "Variables not allowed" of -var n=ten: say why
	// the text was read as an expression.
	first := diags.Errs()[0].(*hcl.Diagnostic)
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid value for variable",
		Detail: fmt.Sprintf("var.%s has type %s, so its -var value is read as an HCL expression, and %q is not a constant one: %s",
			name, typeexpr.TypeString(d.v.Type), raw, first.Detail),
		Subject: first.Subject,
	})
	d.v.Value = cty.DynamicVal
}

func (l *loader) setValue(d *varDecl, val cty.Value, rng hcl.Range) {
	conv, err := d.convert(val)
	if err != nil {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for variable",
			Detail: fmt.Sprintf("The value for var.%s does not fit its type %s: %s.",
				d.v.Name, typeexpr.TypeString(d.v.Type), errText(err)),
			Subject: rng.Ptr(),
		})
		d.v.Value = cty.DynamicVal
		return
	}
	d.v.Value = conv
}

// toString converts a constant to a Go string.
func toString(v cty.Value) (string, error) {
	if v.IsNull() {
		return "", errors.New("a string is required, not null")
	}
	if !v.IsWhollyKnown() {
		return "", errors.New("the value is not known")
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		return "", err
	}
	return s.AsString(), nil
}
