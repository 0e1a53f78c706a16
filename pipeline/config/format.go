package config

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// Format returns src in canonical HCL layout. It refuses a file with syntax
// errors, which hclwrite would otherwise lay out in surprising ways, and
// one beyond the limits of describe.CheckSource. To render the diagnostics, use
// map[string]*hcl.File{filename: {Bytes: src}}.
func Format(src []byte, filename string) ([]byte, hcl.Diagnostics) {
	if diags := describe.CheckSource(src, filename, hcl.InitialPos); diags.HasErrors() {
		return nil, diags
	}
	_, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	return hclwrite.Format(src), diags
}
