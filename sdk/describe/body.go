package describe

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

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
		bs := block(b.schema, blk.Type)
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
		if a == nil || a.Expr == nil || !deferred(b.schema, name) {
			continue
		}
		na := *a
		na.Expr = deferredExpr{Expression: a.Expr, path: appendPath(b.path, name), value: b.value}
		out[name] = &na
	}
	return out
}

func deferred(s ConfigSchema, name string) bool {
	for _, a := range s.Attributes {
		if a.Name == name {
			return a.Expression
		}
	}
	return false
}

func block(s ConfigSchema, name string) *BlockSchema {
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
	// The values written in can nest the text deeper than its file was:
	// refuse here what the plugin would refuse.
	if more := CheckExpressionSource([]byte(text.String()), ExpressionFilename, hcl.InitialPos); more.HasErrors() {
		return unknown, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  more[0].Summary,
			Detail: fmt.Sprintf("The plugin evaluates this expression itself, so the host writes the values it refers to into its text; written in, they take it beyond a limit (%s at line %d, column %d of the text). %s",
				strings.ToLower(more[0].Summary), more[0].Subject.Start.Line, more[0].Subject.Start.Column, more[0].Detail),
			Subject: rng.Ptr(),
		})
	}
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

// ExpressionFilename names the source of a deferred expression in HCL's
// own diagnostics, on the host and in the plugin alike.
const ExpressionFilename = "<expression>"

func appendPath(path []string, elems ...string) []string {
	out := make([]string, 0, len(path)+len(elems))
	return append(append(out, path...), elems...)
}
