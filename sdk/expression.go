package sdk

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Expression is a config attribute that the stage evaluates itself, with
// variables only the stage knows: a formula over a size, say, evaluated
// once per candidate. Declare the field with the type Expression (or
// *Expression, to tell "unset" apart):
//
//	type Family struct {
//		Kind   string         `hcl:"kind,label"`
//		Knobs  sdk.Expression `hcl:"knobs" doc:"The knobs of a candidate of size s."`
//		Params sdk.Expression `hcl:"params,optional" doc:"Its parameter count, from its knobs."`
//	}
//
// The host does not evaluate such an attribute. It replaces every var.NAME
// and local.NAME reference in it by that value, refuses references to
// stages and datasets, and sends the rest as source text, so that
//
//	knobs = { channels = var.base * s, layers = 1 + floor(log(s, 2)) }
//
// reaches the stage as `{ channels = 8 * s, layers = 1 + floor(log(s, 2)) }`
// (with var.base = 8). Any other name (s here) is the stage's to supply
// when it calls Eval. The SDK parses the text when it decodes the config,
// so a syntax error or an unknown function is a config diagnostic at the
// attribute.
//
// The zero Expression is an unset one: Source returns "" and Eval an error.
type Expression struct {
	src  string
	expr hclsyntax.Expression
	// path is the attribute's path in the config, for diagnostics.
	path []string
}

// exprFilename names the source of a deferred expression in HCL's own
// messages; it never reaches a user, whose diagnostics point at the
// attribute in the pipeline file.
const exprFilename = "<expression>"

// ParseExpression parses HCL expression source as the SDK does for an
// Expression attribute. Stages never need it for their config; tests and
// defaults do. Its diagnostics carry no attribute path.
func ParseExpression(src string) (Expression, error) {
	return parseExpression(src, nil)
}

func parseExpression(src string, path []string) (e Expression, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = Expression{}, fmt.Errorf("the expression cannot be parsed: %v", r)
		}
	}()
	if strings.TrimSpace(src) == "" {
		return Expression{}, errors.New("the expression is empty")
	}
	// The newline ends a heredoc that ends the text: an attribute's range,
	// and so the text a host sends, stops at its closing marker.
	expr, diags := hclsyntax.ParseExpression([]byte(src+"\n"), exprFilename, hcl.InitialPos)
	if diags.HasErrors() {
		return Expression{}, errors.New(diagsText(src, diags))
	}
	var unknown []string
	hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
		if call, ok := n.(*hclsyntax.FunctionCallExpr); ok {
			if _, ok := functions[call.Name]; !ok && !slices.Contains(unknown, call.Name) {
				unknown = append(unknown, call.Name)
			}
		}
		return nil
	})
	if len(unknown) > 0 {
		return Expression{}, fmt.Errorf("%s calls %s, which is not a function expressions may call (sdk.Functions lists them)", quote(src), strings.Join(quoteAll(unknown), ", "))
	}
	return Expression{src: src, expr: expr, path: path}, nil
}

// Source returns the expression's source text as the stage received it:
// with the host's variables and locals already replaced by their values.
func (e Expression) Source() string { return e.src }

// String returns the source text.
func (e Expression) String() string { return e.src }

// Equal reports whether two expressions have the same source text (go-cmp
// uses it to compare configs).
func (e Expression) Equal(o Expression) bool { return e.src == o.src }

// Path returns the attribute path of the expression in the config (such as
// ["family", "1", "knobs"]), nil for one from ParseExpression.
func (e Expression) Path() []string { return slices.Clone(e.path) }

// Variables returns the names the expression reads that it does not define
// itself, sorted and without repeats: the variables Eval needs. For
// `{ channels = 8 * s, layers = 1 + floor(log(s, 2)) }` it is ["s"]; a
// `for` expression's own names are not included. A stage can check them
// when it is configured:
//
//	for _, v := range c.Knobs.Variables() {
//		if v != c.Size.Name {
//			return nil, sdk.AttrError(..., "Unknown variable",
//				fmt.Sprintf("knobs uses %s, but the size variable is %s.", v, c.Size.Name))
//		}
//	}
func (e Expression) Variables() []string {
	if e.expr == nil {
		return nil
	}
	var names []string
	for _, t := range hclsyntax.Variables(e.expr) {
		if n := t.RootName(); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Eval evaluates the expression with the given variables and the functions
// of Functions. Its error is Diagnostics at the expression's attribute
// path, which a stage may return as it is: the host shows them at the
// attribute in the pipeline file.
//
//	v, err := c.Knobs.Eval(map[string]cty.Value{"s": cty.NumberIntVal(4)})
//
// The result is wholly known; it may be null if the expression says so.
func (e Expression) Eval(vars map[string]cty.Value) (v cty.Value, err error) {
	if e.expr == nil {
		return cty.DynamicVal, Diagnostics{errDiag(e.Path(), "No expression", "The expression is not set, so there is nothing to evaluate.")}
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = cty.DynamicVal, Diagnostics{errDiag(e.Path(), "Expression failed",
				fmt.Sprintf("Evaluating %s failed: %v.", quote(e.src), r))}
		}
	}()
	val, diags := e.expr.Value(&hcl.EvalContext{Variables: vars, Functions: functions})
	if diags.HasErrors() {
		var ds Diagnostics
		for _, d := range diags {
			if d.Severity != hcl.DiagError {
				continue
			}
			ds = append(ds, errDiag(e.Path(), d.Summary, diagText(e.src, d)))
		}
		return cty.DynamicVal, ds
	}
	if !val.IsWhollyKnown() {
		return cty.DynamicVal, Diagnostics{errDiag(e.Path(), "Value not known",
			fmt.Sprintf("%s has no known value: a variable it reads is unknown.", quote(e.src)))}
	}
	return val, nil
}

// diagText is an HCL diagnostic's detail with the part of the expression
// it is about, since the stage's user sees the attribute, not the column.
func diagText(src string, d *hcl.Diagnostic) string {
	detail := strings.TrimSpace(d.Detail)
	if detail == "" {
		detail = d.Summary + "."
	}
	if d.Subject != nil && d.Subject.Filename == exprFilename {
		start, end := d.Subject.Start.Byte, d.Subject.End.Byte
		if 0 <= start && start < end && end <= len(src) && end-start < len(src) {
			return fmt.Sprintf("%s (at %s in %s)", detail, quote(src[start:end]), quote(src))
		}
	}
	return fmt.Sprintf("%s (in %s)", detail, quote(src))
}

func diagsText(src string, diags hcl.Diagnostics) string {
	var msgs []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			msgs = append(msgs, d.Summary+": "+diagText(src, d))
		}
	}
	return strings.Join(msgs, "; ")
}

// quote shows source text in a message: in backquotes, on one line.
func quote(src string) string {
	return "`" + strings.Join(strings.Fields(src), " ") + "`"
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}

// The host's half of the contract: what an Expression attribute travels
// as. Plugins never need what follows.

// DeferExpressions wraps a body so that every attribute the schema marks
// as an Expression (AttributeSchema.Expression), in the body and in its
// nested blocks, evaluates to what value returns for it instead of to its
// own value: a host decodes the wrapped body (hcldec, with the spec of
// ConfigSchema.Spec) and passes value a function built on ExpressionValue.
// path is the attribute's config path, as in Diagnostic.Path. The
// replaced expressions report no variables, so hcldec.Variables asks the
// host for none of the plugin's names.
func DeferExpressions(body hcl.Body, schema ConfigSchema, value func(path []string, expr hcl.Expression) (cty.Value, hcl.Diagnostics)) hcl.Body {
	return deferBody{Body: body, schema: schema, value: value}
}

type deferBody struct {
	hcl.Body
	schema ConfigSchema
	path   []string
	value  func(path []string, expr hcl.Expression) (cty.Value, hcl.Diagnostics)
}

func (b deferBody) Content(s *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	c, diags := b.Body.Content(s)
	return b.rewrite(c), diags
}

func (b deferBody) PartialContent(s *hcl.BodySchema) (*hcl.BodyContent, hcl.Body, hcl.Diagnostics) {
	c, remain, diags := b.Body.PartialContent(s)
	if remain != nil {
		remain = deferBody{Body: remain, schema: b.schema, path: b.path, value: b.value}
	}
	return b.rewrite(c), remain, diags
}

func (b deferBody) JustAttributes() (hcl.Attributes, hcl.Diagnostics) {
	attrs, diags := b.Body.JustAttributes()
	return b.rewriteAttrs(attrs), diags
}

func (b deferBody) rewrite(c *hcl.BodyContent) *hcl.BodyContent {
	if c == nil {
		return nil
	}
	out := *c
	out.Attributes = b.rewriteAttrs(c.Attributes)
	out.Blocks = make(hcl.Blocks, len(c.Blocks))
	index := map[string]int{}
	for i, blk := range c.Blocks {
		out.Blocks[i] = blk
		bs := b.schema.block(blk.Type)
		if bs == nil || blk.Body == nil {
			continue
		}
		path := appendPath(b.path, blk.Type)
		if bs.Nesting != NestingSingle {
			path = append(path, strconv.Itoa(index[blk.Type]))
			index[blk.Type]++
		}
		nb := *blk
		nb.Body = deferBody{Body: blk.Body, schema: bs.Body, path: path, value: b.value}
		out.Blocks[i] = &nb
	}
	return &out
}

func (b deferBody) rewriteAttrs(attrs hcl.Attributes) hcl.Attributes {
	if attrs == nil {
		return nil
	}
	out := make(hcl.Attributes, len(attrs))
	for name, a := range attrs {
		out[name] = a
		if a == nil || a.Expr == nil || !b.schema.deferred(name) {
			continue
		}
		na := *a
		na.Expr = deferredExpr{Expression: a.Expr, path: appendPath(b.path, name), value: b.value}
		out[name] = &na
	}
	return out
}

func (s ConfigSchema) deferred(name string) bool {
	for _, a := range s.Attributes {
		if a.Name == name {
			return a.Expression
		}
	}
	return false
}

func (s ConfigSchema) block(name string) *BlockSchema {
	for i := range s.Blocks {
		if s.Blocks[i].Name == name {
			return &s.Blocks[i]
		}
	}
	return nil
}

// deferredExpr stands for a deferred attribute's expression: its range is
// the written expression's, its value what the host's value function
// makes of it, and it reads no variables of the host's.
type deferredExpr struct {
	hcl.Expression
	path  []string
	value func(path []string, expr hcl.Expression) (cty.Value, hcl.Diagnostics)
}

func (e deferredExpr) Value(*hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	return e.value(slices.Clone(e.path), e.Expression)
}

func (e deferredExpr) Variables() []hcl.Traversal { return nil }

// ExpressionValue is the value a host sends for a deferred expression: a
// string holding expr's source text, read from src (the bytes of the file
// expr was parsed from, in native HCL syntax), with each reference whose
// root is one of roots (the host's "var" and "local") replaced by the HCL
// literal of its value in ctx. Every other name is left for the plugin.
//
// The value is an unknown string when a replaced reference's value is
// unknown (the host reported why when it evaluated that variable); a
// reference ctx cannot resolve, or whose value no literal can write (an
// infinite number), is an error diagnostic at the reference.
func ExpressionValue(src []byte, expr hcl.Expression, ctx *hcl.EvalContext, roots ...string) (cty.Value, hcl.Diagnostics) {
	unknown := cty.UnknownVal(cty.String)
	syn, ok := expr.(hclsyntax.Expression)
	rng := expr.Range()
	if !ok {
		return unknown, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Expression not in native syntax",
			Detail:   "This attribute is an expression the plugin evaluates itself; write it in native HCL syntax.",
			Subject:  rng.Ptr(),
		}}
	}
	if rng.Start.Byte < 0 || rng.Start.Byte > rng.End.Byte || rng.End.Byte > len(src) {
		return unknown, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Expression source not available",
			Detail:   fmt.Sprintf("The source text of this expression (bytes %d to %d) is not in the %d bytes given.", rng.Start.Byte, rng.End.Byte, len(src)),
			Subject:  rng.Ptr(),
		}}
	}
	var refs []hcl.Traversal
	for _, t := range hclsyntax.Variables(syn) {
		if slices.Contains(roots, t.RootName()) {
			refs = append(refs, t)
		}
	}
	slices.SortFunc(refs, func(a, b hcl.Traversal) int { return a.SourceRange().Start.Byte - b.SourceRange().Start.Byte })

	var diags hcl.Diagnostics
	var text strings.Builder
	known := true
	at := rng.Start.Byte
	for _, t := range refs {
		tr := t.SourceRange()
		if tr.Start.Byte < at || tr.End.Byte > rng.End.Byte || tr.Start.Byte > tr.End.Byte {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unreadable reference",
				Detail:   "This reference overlaps another or lies outside its expression, so it cannot be replaced by its value.",
				Subject:  tr.Ptr(),
			})
			continue
		}
		v, more := t.TraverseAbs(ctx)
		diags = append(diags, more...)
		if more.HasErrors() {
			continue
		}
		if !v.IsWhollyKnown() {
			known = false
			continue
		}
		lit, err := literal(v)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value cannot be written in an expression",
				Detail:   fmt.Sprintf("This attribute is an expression the plugin evaluates itself, so the host writes each value it refers to into it; %s.", err),
				Subject:  tr.Ptr(),
			})
			continue
		}
		text.Write(src[at:tr.Start.Byte])
		text.WriteString(lit)
		at = tr.End.Byte
	}
	if diags.HasErrors() || !known {
		return unknown, diags
	}
	text.Write(src[at:rng.End.Byte])
	return cty.StringVal(text.String()), diags
}

// literal writes a constant as HCL source on one line. Collections and
// negative numbers are parenthesized, so that the literal means the same
// wherever a reference stood; object keys are always quoted, so that keys
// such as "for" or "null" stay keys.
func literal(v cty.Value) (string, error) {
	v, _ = v.UnmarkDeep()
	var b strings.Builder
	if err := writeLiteral(&b, v, true); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeLiteral(b *strings.Builder, v cty.Value, outer bool) error {
	ty := v.Type()
	open, close := "", ""
	if outer {
		open, close = "(", ")"
	}
	switch {
	case v.IsNull():
		b.WriteString("null")
	case ty == cty.Bool:
		b.WriteString(fmt.Sprint(v.True()))
	case ty == cty.Number:
		f := v.AsBigFloat()
		if f.IsInf() {
			return fmt.Errorf("%s is not a number HCL can write", f.Text('g', -1))
		}
		// 'g' keeps a huge exponent short: 1e+999999 rather than its digits.
		if f.Sign() < 0 {
			b.WriteString(open + f.Text('g', -1) + close)
		} else {
			b.WriteString(f.Text('g', -1))
		}
	case ty == cty.String:
		writeQuoted(b, v.AsString())
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		b.WriteString(open + "[")
		i := 0
		for it := v.ElementIterator(); it.Next(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			_, e := it.Element()
			if err := writeLiteral(b, e, false); err != nil {
				return err
			}
		}
		b.WriteString("]" + close)
	case ty.IsMapType() || ty.IsObjectType():
		b.WriteString(open + "{")
		i := 0
		for it := v.ElementIterator(); it.Next(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			k, e := it.Element()
			writeQuoted(b, k.AsString())
			b.WriteString(" = ")
			if err := writeLiteral(b, e, false); err != nil {
				return err
			}
		}
		b.WriteString("}" + close)
	default:
		return fmt.Errorf("a %s value has no HCL literal", ty.FriendlyName())
	}
	return nil
}

// writeQuoted writes a string as a quoted HCL string that reads back as
// the same string: escapes for quotes, backslashes and unprintable
// characters, and the template introducers ${ and %{ doubled. (hclwrite
// does the same, but would bring go-cmp into every plugin's build.)
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i, r := range s {
		switch r {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '$', '%':
			b.WriteRune(r)
			if strings.HasPrefix(s[i+1:], "{") {
				b.WriteRune(r)
			}
		default:
			switch {
			case unicode.IsPrint(r):
				b.WriteRune(r)
			case r < 0x10000:
				fmt.Fprintf(b, "\\u%04x", r)
			default:
				fmt.Fprintf(b, "\\U%08x", r)
			}
		}
	}
	b.WriteByte('"')
}
