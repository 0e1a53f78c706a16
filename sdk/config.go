package sdk

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// The config struct of a stage kind is described once by reflection and the
// result cached: the schema (what describe reports) and the decoder (what
// Configure and Run use) both walk the same structInfo, so they cannot
// disagree about a field.

var (
	durationType   = reflect.TypeFor[time.Duration]()
	ctyValueType   = reflect.TypeFor[cty.Value]()
	expressionType = reflect.TypeFor[Expression]()
)

type fieldKind int

const (
	attrField fieldKind = iota
	blockField
	// labelField is a label of the block whose struct holds the field.
	labelField
)

type fieldInfo struct {
	name     string
	goName   string
	index    int
	kind     fieldKind
	required bool
	doc      string
	typ      reflect.Type
	// ty is the cty type of an attribute.
	ty cty.Type
	// expression marks an attribute of type Expression (or *Expression).
	expression bool
	// nesting and body describe a block; body is the block's struct (the
	// element type for lists, the pointed-to type for pointers).
	nesting describe.BlockNesting
	body    *structInfo
}

type structInfo struct {
	typ    reflect.Type
	fields []fieldInfo
}

var structInfos sync.Map // reflect.Type -> *structInfo

// configSchemaOf derives the HCL schema of a stage's config struct from its
// `hcl` and `doc` tags.
func configSchemaOf(t reflect.Type) (describe.ConfigSchema, error) {
	si, err := structInfoOf(t)
	if err != nil {
		return describe.ConfigSchema{}, err
	}
	return si.schema()
}

// structInfoOf describes a config struct, or a struct used as an attribute
// value: neither has labels, which belong to blocks.
func structInfoOf(t reflect.Type) (*structInfo, error) {
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config type must be a struct, not %v", t)
	}
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo), nil
	}
	si, err := buildStructInfo(t, t.Name(), map[reflect.Type]bool{})
	if err != nil {
		return nil, err
	}
	if err := si.noLabels(t.Name(), "the config struct itself"); err != nil {
		return nil, err
	}
	structInfos.Store(t, si)
	return si, nil
}

// noLabels reports a label field in a struct that is not a block's.
func (si *structInfo) noLabels(path, what string) error {
	for _, f := range si.fields {
		if f.kind == labelField {
			return fmt.Errorf("%s.%s: label fields are only allowed in the struct of a block (a field tagged hcl:\"NAME,block\"), not in %s", path, f.goName, what)
		}
	}
	return nil
}

// labels lists the label names of a block's struct, in field order.
func (si *structInfo) labels() []string {
	var names []string
	for _, f := range si.fields {
		if f.kind == labelField {
			names = append(names, f.name)
		}
	}
	return names
}

func buildStructInfo(t reflect.Type, path string, visiting map[reflect.Type]bool) (*structInfo, error) {
	if visiting[t] {
		return nil, fmt.Errorf("%s: recursive type %s", path, t)
	}
	visiting[t] = true
	defer delete(visiting, t)

	si := &structInfo{typ: t}
	seen := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("hcl")
		if !ok {
			continue
		}
		fpath := path + "." + sf.Name
		if !sf.IsExported() {
			return nil, fmt.Errorf("%s: field with an hcl tag must be exported", fpath)
		}
		name, opt, _ := strings.Cut(tag, ",")
		if name == "" {
			return nil, fmt.Errorf("%s: hcl tag %q has no name (remain bodies are not supported in stage configs)", fpath, tag)
		}
		if seen[name] {
			return nil, fmt.Errorf("%s: duplicate hcl name %q", fpath, name)
		}
		seen[name] = true
		fi := fieldInfo{name: name, goName: sf.Name, index: i, typ: sf.Type, doc: sf.Tag.Get("doc")}
		switch opt {
		case "", "attr", "optional":
			fi.kind = attrField
			fi.required = opt != "optional" && sf.Type.Kind() != reflect.Pointer
			if sf.Type == expressionType || sf.Type == reflect.PointerTo(expressionType) {
				// The host sends a deferred expression as its source text.
				fi.ty, fi.expression = cty.String, true
				break
			}
			ty, err := ctyTypeOf(sf.Type, fpath, visiting)
			if err != nil {
				return nil, err
			}
			fi.ty = ty
		case "label":
			if sf.Type.Kind() != reflect.String {
				return nil, fmt.Errorf("%s: a label field must be a string, not %s", fpath, sf.Type)
			}
			fi.kind, fi.required = labelField, true
		case "block":
			fi.kind = blockField
			bt := sf.Type
			switch {
			case bt.Kind() == reflect.Struct:
				fi.nesting, fi.required = describe.NestingSingle, true
			case bt.Kind() == reflect.Pointer && bt.Elem().Kind() == reflect.Struct:
				fi.nesting, bt = describe.NestingSingle, bt.Elem()
			case bt.Kind() == reflect.Slice && bt.Elem().Kind() == reflect.Struct:
				fi.nesting, bt = describe.NestingList, bt.Elem()
			case bt.Kind() == reflect.Slice && bt.Elem().Kind() == reflect.Pointer && bt.Elem().Elem().Kind() == reflect.Struct:
				fi.nesting, bt = describe.NestingList, bt.Elem().Elem()
			default:
				return nil, fmt.Errorf("%s: a block field must be a struct, a pointer to a struct or a slice of them, not %s", fpath, sf.Type)
			}
			body, err := buildStructInfo(bt, fpath, visiting)
			if err != nil {
				return nil, err
			}
			if fi.nesting == describe.NestingList {
				if name := body.dynamicAttr(); name != "" {
					// Each block's value would have a type of its own
					// (values = [1, 2] beside values = ["a"]), and a list
					// of blocks is a cty list, whose elements share one:
					// the host's decoder would fail on the second block.
					return nil, fmt.Errorf("%s: the attribute %s of a list of blocks takes any type (cty.Value); give it a fixed type (a list of strings, say)", fpath, name)
				}
			}
			fi.body = body
		default:
			return nil, fmt.Errorf("%s: unsupported hcl tag option %q (want optional or block)", fpath, opt)
		}
		si.fields = append(si.fields, fi)
	}
	return si, nil
}

// dynamicAttr names an attribute of the struct, or of its single blocks,
// whose type is not fixed; "" when none.
func (si *structInfo) dynamicAttr() string {
	for _, f := range si.fields {
		switch {
		case f.kind == attrField && f.ty != cty.NilType && f.ty.HasDynamicTypes():
			return f.name
		case f.kind == blockField && f.nesting == describe.NestingSingle:
			if n := f.body.dynamicAttr(); n != "" {
				return f.name + "." + n
			}
		}
	}
	return ""
}

// ctyTypeOf maps the Go type of an attribute to the cty type the host must
// deliver.
func ctyTypeOf(t reflect.Type, path string, visiting map[reflect.Type]bool) (cty.Type, error) {
	switch t {
	case durationType:
		return cty.String, nil
	case ctyValueType:
		return cty.DynamicPseudoType, nil
	case expressionType:
		return cty.NilType, fmt.Errorf("%s: sdk.Expression must be the type of an attribute field itself (or a pointer to it), not of a list, map or object element: the host defers whole attributes only", path)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return ctyTypeOf(t.Elem(), path, visiting)
	case reflect.String:
		return cty.String, nil
	case reflect.Bool:
		return cty.Bool, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return cty.Number, nil
	case reflect.Slice:
		et, err := ctyTypeOf(t.Elem(), path+"[]", visiting)
		if err != nil {
			return cty.NilType, err
		}
		return cty.List(et), nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return cty.NilType, fmt.Errorf("%s: map keys must be strings, not %s", path, t.Key())
		}
		et, err := ctyTypeOf(t.Elem(), path+"[]", visiting)
		if err != nil {
			return cty.NilType, err
		}
		return cty.Map(et), nil
	case reflect.Struct:
		si, err := buildStructInfo(t, path, visiting)
		if err != nil {
			return cty.NilType, err
		}
		if err := si.noLabels(path, "a struct used as an attribute value"); err != nil {
			return cty.NilType, err
		}
		attrs := map[string]cty.Type{}
		var optional []string
		for _, f := range si.fields {
			if f.kind == blockField {
				return cty.NilType, fmt.Errorf("%s.%s: a struct used as an attribute value cannot hold blocks", path, f.goName)
			}
			if f.expression {
				return cty.NilType, fmt.Errorf("%s.%s: sdk.Expression must be the type of an attribute field of the config or of a block, not of a struct used as an attribute value: the host defers whole attributes only", path, f.goName)
			}
			attrs[f.name] = f.ty
			if !f.required {
				optional = append(optional, f.name)
			}
		}
		return cty.ObjectWithOptionalAttrs(attrs, optional), nil
	}
	return cty.NilType, fmt.Errorf("%s: unsupported attribute type %s", path, t)
}

func (si *structInfo) schema() (describe.ConfigSchema, error) {
	var s describe.ConfigSchema
	for _, f := range si.fields {
		switch f.kind {
		case attrField:
			tj, err := ctyjson.MarshalType(f.ty)
			if err != nil {
				return describe.ConfigSchema{}, fmt.Errorf("attribute %s: %w", f.name, err)
			}
			s.Attributes = append(s.Attributes, describe.AttributeSchema{
				Name: f.name, Type: json.RawMessage(tj), Required: f.required, Description: f.doc, Expression: f.expression,
			})
		case blockField:
			body, err := f.body.schema()
			if err != nil {
				return describe.ConfigSchema{}, fmt.Errorf("block %s: %w", f.name, err)
			}
			s.Blocks = append(s.Blocks, describe.BlockSchema{
				Name: f.name, Nesting: f.nesting, Required: f.required, Description: f.doc,
				Labels: f.body.labels(), Body: body,
			})
		}
	}
	return s, nil
}

// decodeConfig decodes a config value into a new value of the struct type t
// and returns a pointer to it. Every problem is reported, each with the
// attribute path at fault.
func decodeConfig(t reflect.Type, v cty.Value) (any, Diagnostics) {
	si, err := structInfoOf(t)
	if err != nil {
		return nil, Diagnostics{{Severity: SeverityError, Summary: "Unusable config type", Detail: err.Error()}}
	}
	ptr := reflect.New(t)
	v, _ = v.UnmarkDeep()
	if !v.IsNull() && !v.Type().IsObjectType() && !v.Type().IsMapType() {
		return nil, Diagnostics{{Severity: SeverityError, Summary: "Invalid stage configuration",
			Detail: fmt.Sprintf("The configuration must be an object, not %s.", v.Type().FriendlyName())}}
	}
	diags := decodeBody(si, ptr.Elem(), v, nil)
	return ptr.Interface(), diags
}

func getAttr(obj cty.Value, name string) cty.Value {
	if obj.IsNull() || !obj.IsKnown() {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	ty := obj.Type()
	switch {
	case ty.IsObjectType():
		if !ty.HasAttribute(name) {
			return cty.NullVal(cty.DynamicPseudoType)
		}
		return obj.GetAttr(name)
	case ty.IsMapType():
		k := cty.StringVal(name)
		if obj.HasIndex(k).True() {
			return obj.Index(k)
		}
	}
	return cty.NullVal(cty.DynamicPseudoType)
}

func appendPath(path []string, elems ...string) []string {
	out := make([]string, 0, len(path)+len(elems))
	return append(append(out, path...), elems...)
}

func errDiag(path []string, summary, detail string) Diagnostic {
	return Diagnostic{Severity: SeverityError, Summary: summary, Detail: detail, Path: path}
}

func decodeBody(si *structInfo, rv reflect.Value, obj cty.Value, path []string) Diagnostics {
	var diags Diagnostics
	for _, f := range si.fields {
		fv := rv.Field(f.index)
		val := getAttr(obj, f.name)
		fpath := appendPath(path, f.name)
		if !val.IsKnown() {
			diags = append(diags, errDiag(fpath, "Value not known", "The host must send constant config values; this one is unknown."))
			continue
		}
		switch f.kind {
		case labelField:
			if val.IsNull() {
				diags = append(diags, errDiag(fpath, "Missing block label", fmt.Sprintf("The block has no %q label.", f.name)))
				continue
			}
			diags = append(diags, decodeValue(fv, val, fpath)...)
		case attrField:
			if val.IsNull() {
				if f.required {
					diags = append(diags, errDiag(fpath, "Missing required argument", fmt.Sprintf("The argument %q is required, but no definition was found.", f.name)))
				}
				continue
			}
			diags = append(diags, decodeValue(fv, val, fpath)...)
		case blockField:
			diags = append(diags, decodeBlock(f, fv, val, fpath)...)
		}
	}
	return diags
}

func decodeBlock(f fieldInfo, fv reflect.Value, val cty.Value, path []string) Diagnostics {
	if f.nesting == describe.NestingSingle {
		if val.IsNull() {
			if f.required {
				return Diagnostics{errDiag(path, "Missing required block", fmt.Sprintf("A %q block is required.", f.name))}
			}
			return nil
		}
		if !val.Type().IsObjectType() && !val.Type().IsMapType() {
			return Diagnostics{errDiag(path, "Invalid block", fmt.Sprintf("The %q block must be an object, not %s.", f.name, val.Type().FriendlyName()))}
		}
		if fv.Kind() == reflect.Pointer {
			fv.Set(reflect.New(fv.Type().Elem()))
			fv = fv.Elem()
		}
		return decodeBody(f.body, fv, val, path)
	}
	if val.IsNull() {
		return nil
	}
	if !val.CanIterateElements() || val.Type().IsMapType() || val.Type().IsObjectType() {
		return Diagnostics{errDiag(path, "Invalid block", fmt.Sprintf("The %q blocks must be a list, not %s.", f.name, val.Type().FriendlyName()))}
	}
	var diags Diagnostics
	slice := reflect.MakeSlice(fv.Type(), 0, val.LengthInt())
	i := 0
	for it := val.ElementIterator(); it.Next(); i++ {
		_, ev := it.Element()
		epath := appendPath(path, strconv.Itoa(i))
		elem := reflect.New(fv.Type().Elem()).Elem()
		target := elem
		if elem.Kind() == reflect.Pointer {
			elem.Set(reflect.New(elem.Type().Elem()))
			target = elem.Elem()
		}
		if ev.IsNull() || !ev.IsKnown() || !(ev.Type().IsObjectType() || ev.Type().IsMapType()) {
			diags = append(diags, errDiag(epath, "Invalid block", fmt.Sprintf("Each %q block must be an object.", f.name)))
			continue
		}
		diags = append(diags, decodeBody(f.body, target, ev, epath)...)
		slice = reflect.Append(slice, elem)
	}
	fv.Set(slice)
	return diags
}

func typeDiag(path []string, want string, val cty.Value) Diagnostic {
	return errDiag(path, "Incorrect attribute value type",
		fmt.Sprintf("Inappropriate value for %s: %s required, found %s.", describePath(path), want, val.Type().FriendlyName()))
}

func describePath(path []string) string {
	if len(path) == 0 {
		return "the configuration"
	}
	return fmt.Sprintf("%q", strings.Join(path, "."))
}

// decodeValue stores a known, non-null (after pointers) value into rv.
func decodeValue(rv reflect.Value, val cty.Value, path []string) Diagnostics {
	t := rv.Type()
	if !val.IsKnown() {
		return Diagnostics{errDiag(path, "Value not known", "The host must send constant config values; this one is unknown.")}
	}
	if t == ctyValueType {
		rv.Set(reflect.ValueOf(val))
		return nil
	}
	if t.Kind() == reflect.Pointer {
		if val.IsNull() {
			rv.Set(reflect.Zero(t))
			return nil
		}
		p := reflect.New(t.Elem())
		diags := decodeValue(p.Elem(), val, path)
		rv.Set(p)
		return diags
	}
	if val.IsNull() {
		// A null element of a list or map decodes to the zero value, like
		// a missing optional attribute.
		rv.Set(reflect.Zero(t))
		return nil
	}
	if t == expressionType {
		sv, err := convert.Convert(val, cty.String)
		if err != nil {
			return Diagnostics{typeDiag(path, "string (the source of an expression)", val)}
		}
		e, err := parseExpression(sv.AsString(), slices.Clone(path))
		if err != nil {
			return Diagnostics{errDiag(path, "Invalid expression", err.Error())}
		}
		rv.Set(reflect.ValueOf(e))
		return nil
	}
	if t == durationType {
		sv, err := convert.Convert(val, cty.String)
		if err != nil {
			return Diagnostics{typeDiag(path, "string", val)}
		}
		d, err := time.ParseDuration(sv.AsString())
		if err != nil {
			return Diagnostics{errDiag(path, "Invalid duration", fmt.Sprintf("%q is not a duration: use a number with a unit, such as \"90s\", \"15m\" or \"1h30m\".", sv.AsString()))}
		}
		rv.SetInt(int64(d))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		sv, err := convert.Convert(val, cty.String)
		if err != nil {
			return Diagnostics{typeDiag(path, "string", val)}
		}
		rv.SetString(sv.AsString())
	case reflect.Bool:
		bv, err := convert.Convert(val, cty.Bool)
		if err != nil {
			return Diagnostics{typeDiag(path, "bool", val)}
		}
		rv.SetBool(bv.True())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bf, d := numberOf(val, path)
		if d != nil {
			return Diagnostics{*d}
		}
		i, acc := bf.Int64()
		if !bf.IsInt() {
			return Diagnostics{errDiag(path, "Invalid value", fmt.Sprintf("%s must be a whole number, not %s.", describePath(path), bf.Text('g', -1)))}
		}
		if acc != big.Exact || rv.OverflowInt(i) {
			return Diagnostics{errDiag(path, "Invalid value", fmt.Sprintf("%s is out of range: %s does not fit in %s.", describePath(path), bf.Text('g', -1), t.Kind()))}
		}
		rv.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		bf, d := numberOf(val, path)
		if d != nil {
			return Diagnostics{*d}
		}
		if !bf.IsInt() {
			return Diagnostics{errDiag(path, "Invalid value", fmt.Sprintf("%s must be a whole number, not %s.", describePath(path), bf.Text('g', -1)))}
		}
		u, acc := bf.Uint64()
		if bf.Sign() < 0 || acc != big.Exact || rv.OverflowUint(u) {
			return Diagnostics{errDiag(path, "Invalid value", fmt.Sprintf("%s is out of range: %s does not fit in %s.", describePath(path), bf.Text('g', -1), t.Kind()))}
		}
		rv.SetUint(u)
	case reflect.Float32, reflect.Float64:
		bf, d := numberOf(val, path)
		if d != nil {
			return Diagnostics{*d}
		}
		f, _ := bf.Float64()
		if t.Kind() == reflect.Float32 && !math.IsInf(f, 0) && math.Abs(f) > math.MaxFloat32 {
			return Diagnostics{errDiag(path, "Invalid value", fmt.Sprintf("%s is out of range for float32.", describePath(path)))}
		}
		rv.SetFloat(f)
	case reflect.Slice:
		ty := val.Type()
		if !(ty.IsListType() || ty.IsSetType() || ty.IsTupleType()) {
			return Diagnostics{typeDiag(path, "list", val)}
		}
		var diags Diagnostics
		slice := reflect.MakeSlice(t, val.LengthInt(), val.LengthInt())
		i := 0
		for it := val.ElementIterator(); it.Next(); i++ {
			_, ev := it.Element()
			diags = append(diags, decodeValue(slice.Index(i), ev, appendPath(path, strconv.Itoa(i)))...)
		}
		rv.Set(slice)
		return diags
	case reflect.Map:
		ty := val.Type()
		if !(ty.IsMapType() || ty.IsObjectType()) {
			return Diagnostics{typeDiag(path, "map", val)}
		}
		var diags Diagnostics
		m := reflect.MakeMapWithSize(t, val.LengthInt())
		for it := val.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			ek := reflect.New(t.Key()).Elem()
			ek.SetString(k.AsString())
			e := reflect.New(t.Elem()).Elem()
			diags = append(diags, decodeValue(e, ev, appendPath(path, k.AsString()))...)
			m.SetMapIndex(ek, e)
		}
		rv.Set(m)
		return diags
	case reflect.Struct:
		ty := val.Type()
		if !(ty.IsObjectType() || ty.IsMapType()) {
			return Diagnostics{typeDiag(path, "object", val)}
		}
		si, err := structInfoOf(t)
		if err != nil {
			return Diagnostics{errDiag(path, "Unusable config type", err.Error())}
		}
		return decodeBody(si, rv, val, path)
	default:
		return Diagnostics{errDiag(path, "Unusable config type", fmt.Sprintf("Go type %s cannot hold a config value.", t))}
	}
	return nil
}

func numberOf(val cty.Value, path []string) (*big.Float, *Diagnostic) {
	nv, err := convert.Convert(val, cty.Number)
	if err != nil {
		d := typeDiag(path, "number", val)
		return nil, &d
	}
	return nv.AsBigFloat(), nil
}
