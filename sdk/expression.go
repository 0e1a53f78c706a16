package sdk

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
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

const exprFilename = describe.ExpressionFilename

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
	text := []byte(src + "\n")
	// The text comes from the host, which checked the file it is taken
	// from; checked again here, it cannot end this process either.
	if diags := describe.CheckExpressionSource(text, exprFilename, hcl.InitialPos); diags.HasErrors() {
		return Expression{}, errors.New(limitText(diags[0]))
	}
	expr, diags := hclsyntax.ParseExpression(text, exprFilename, hcl.InitialPos)
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

// limitText is CheckSource's diagnostic for an expression's text, which
// is too long to quote.
func limitText(d *hcl.Diagnostic) string {
	return fmt.Sprintf("%s at line %d, column %d of the expression: %s", d.Summary, d.Subject.Start.Line, d.Subject.Start.Column, d.Detail)
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
