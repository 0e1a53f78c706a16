package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// suggest returns the candidate closest to given, if it is close enough to
// be a likely typo (HCL's own threshold), else "".
func suggest(given string, candidates []string) string {
	best, bestDist := "", 3
	sorted := slices.Clone(candidates)
	slices.Sort(sorted)
	for _, c := range sorted {
		if c == given {
			continue
		}
		if d := levenshtein.Distance(given, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean is suggest as a sentence to append to a Detail, or "".
func didYouMean(given string, candidates []string) string {
	if s := suggest(given, candidates); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

// quotedList renders names as `"a", "b" and "c"`.
func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// HCL picks its own "Did you mean" from Go maps (hcldec's ObjectSpec, the
// function table), so between runs the same typo may get different hints.
// These helpers replace such a hint with the closest name, deterministically.

const didYouMeanMarker = " Did you mean \""

// stableBody wraps a body so that the "Did you mean" hints of its
// unsupported arguments and blocks, and of its nested blocks', are chosen
// by suggest.
type stableBody struct{ hcl.Body }

func (b stableBody) Content(s *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	c, diags := b.Body.Content(s)
	fixSchemaHints(diags, s)
	wrapBlocks(c)
	return c, diags
}

func (b stableBody) PartialContent(s *hcl.BodySchema) (*hcl.BodyContent, hcl.Body, hcl.Diagnostics) {
	c, remain, diags := b.Body.PartialContent(s)
	fixSchemaHints(diags, s)
	wrapBlocks(c)
	return c, stableBody{remain}, diags
}

func wrapBlocks(c *hcl.BodyContent) {
	if c == nil {
		return
	}
	for _, b := range c.Blocks {
		b.Body = stableBody{b.Body}
	}
}

func fixSchemaHints(diags hcl.Diagnostics, s *hcl.BodySchema) {
	for _, d := range diags {
		if !strings.Contains(d.Detail, didYouMeanMarker) {
			continue
		}
		switch d.Summary {
		case "Unsupported argument":
			if name, ok := quotedAfter(d.Detail, "An argument named "); ok {
				names := make([]string, len(s.Attributes))
				for i, a := range s.Attributes {
					names[i] = a.Name
				}
				d.Detail = fmt.Sprintf("An argument named %q is not expected here.%s", name, didYouMean(name, names))
			}
		case "Unsupported block type":
			if name, ok := quotedAfter(d.Detail, "Blocks of type "); ok {
				names := make([]string, len(s.Blocks))
				for i, b := range s.Blocks {
					names[i] = b.Type
				}
				d.Detail = fmt.Sprintf("Blocks of type %q are not expected here.%s", name, didYouMean(name, names))
			}
		}
	}
}

// fixFunctionHint redoes the hint of a call to an unknown function.
func fixFunctionHint(d *hcl.Diagnostic) {
	if d.Summary != "Call to unknown function" || !strings.Contains(d.Detail, didYouMeanMarker) {
		return
	}
	call, ok := d.Expression.(*hclsyntax.FunctionCallExpr)
	if !ok || strings.Contains(call.Name, "::") {
		return
	}
	d.Detail = fmt.Sprintf("There is no function named %q.%s", call.Name, didYouMean(call.Name, FunctionNames()))
}

func quotedAfter(s, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", false
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return "", false
	}
	name, err := strconv.Unquote(q)
	return name, err == nil
}
