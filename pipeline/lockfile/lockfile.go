// Package lockfile reads and writes .sweetspot.lock.hcl, the file that pins
// each plugin a pipeline requires to the version `sweetspot init` chose and
// to the sha256 of its binary on each platform, so that a run can refuse a
// binary that changed since (as Terraform's .terraform.lock.hcl does for
// providers). Users commit it beside the pipeline.
//
// It is its own package, with no dependency on the plugin host, so that the
// host can read it to check binaries and the installer can write it.
package lockfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// FileName is the lock file's name. It lives in the pipeline's directory.
const FileName = ".sweetspot.lock.hcl"

// hashPrefix names the algorithm of every hash, so a later format can add
// others without guessing.
const hashPrefix = "sha256:"

// File is a lock file's content.
type File struct {
	// Plugins by name (the required_plugins key).
	Plugins map[string]*Plugin
}

// Plugin is one `plugin "NAME" {}` block.
type Plugin struct {
	Name string
	// Source is the required_plugins source the plugin was installed from,
	// as written in the pipeline.
	Source string
	// Version is the version that was selected: a Go module version
	// ("v1.2.3"), a mirror file's version, or what a plugin built from a
	// local directory reports in its description.
	Version string
	// Constraints is the version constraint it was selected under, as
	// written; "" for none.
	Constraints string
	// Hashes maps a platform ("linux_amd64", see Platform) to the hash of the
	// plugin's executable there ("sha256:HEX").
	Hashes map[string]string
	// DeclRange is the block's header, for messages.
	DeclRange hcl.Range
}

// Platform is the key of this machine's hash: GOOS_GOARCH.
func Platform() string { return runtime.GOOS + "_" + runtime.GOARCH }

// Hash returns the hash recorded for platform, decoded.
func (p *Plugin) Hash(platform string) ([]byte, bool) {
	s, ok := p.Hashes[platform]
	if !ok {
		return nil, false
	}
	sum, err := ParseHash(s)
	return sum, err == nil
}

// PathFor returns where the lock file of the pipeline at paths (a file or
// a directory, as `sweetspot run` takes) lives: in that directory, or in
// the file's directory. Only the first path counts.
func PathFor(paths []string) string {
	if len(paths) == 0 || paths[0] == "" {
		return FileName
	}
	p := paths[0]
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return filepath.Join(p, FileName)
	}
	return filepath.Join(filepath.Dir(p), FileName)
}

// FormatHash renders a sha256 sum as the lock file writes it.
func FormatHash(sum []byte) string { return hashPrefix + hex.EncodeToString(sum) }

// ParseHash decodes "sha256:HEX".
func ParseHash(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, hashPrefix)
	if !ok {
		return nil, fmt.Errorf("hash %q does not start with %q", s, hashPrefix)
	}
	sum, err := hex.DecodeString(rest)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("hash %q is not %s followed by %d hex digits", s, hashPrefix, 2*sha256.Size)
	}
	return sum, nil
}

// HashFile returns the sha256 of a file's content.
func HashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// Read reads a lock file. A missing file is an error that wraps
// os.ErrNotExist; a malformed one is an error holding every problem with
// its position.
func Read(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, diags := Parse(src, path)
	if diags.HasErrors() {
		return nil, fmt.Errorf("lock file %s is invalid (fix it, or delete it and run `sweetspot init`): %w", path, diags)
	}
	return f, nil
}

var (
	rootSchema = &hcl.BodySchema{
		Blocks: []hcl.BlockHeaderSchema{{Type: "plugin", LabelNames: []string{"name"}}},
	}
	pluginSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "source", Required: true},
			{Name: "version", Required: true},
			{Name: "constraints"},
			{Name: "hashes"},
		},
	}
)

// Parse parses a lock file's content. Only literal values are allowed: the
// file is data, not a program.
func Parse(src []byte, filename string) (*File, hcl.Diagnostics) {
	out := &File{Plugins: map[string]*Plugin{}}
	hf, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return out, diags
	}
	content, more := hf.Body.Content(rootSchema)
	diags = diags.Extend(more)
	for _, b := range content.Blocks {
		name := b.Labels[0]
		if prev, ok := out.Plugins[name]; ok {
			diags = diags.Append(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate plugin block",
				Detail:   fmt.Sprintf("The plugin %q was already locked at %s. A lock file holds one block per plugin.", name, prev.DeclRange),
				Subject:  b.LabelRanges[0].Ptr(),
			})
			continue
		}
		p := &Plugin{Name: name, Hashes: map[string]string{}, DeclRange: b.DefRange}
		bc, more := b.Body.Content(pluginSchema)
		diags = diags.Extend(more)
		for _, field := range []struct {
			name string
			dst  *string
		}{{"source", &p.Source}, {"version", &p.Version}, {"constraints", &p.Constraints}} {
			if a, ok := bc.Attributes[field.name]; ok {
				v, more := literalString(a.Expr, field.name)
				diags = diags.Extend(more)
				*field.dst = v
			}
		}
		if a, ok := bc.Attributes["hashes"]; ok {
			diags = diags.Extend(decodeHashes(a, p.Hashes))
		}
		out.Plugins[name] = p
	}
	return out, diags
}

func literalString(expr hcl.Expression, attr string) (string, hcl.Diagnostics) {
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return "", diags
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return "", diags.Append(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("The attribute %q must be a string.", attr),
			Subject:  expr.Range().Ptr(),
		})
	}
	return v.AsString(), diags
}

func decodeHashes(a *hcl.Attribute, into map[string]string) hcl.Diagnostics {
	pairs, diags := hcl.ExprMap(a.Expr)
	if diags.HasErrors() {
		return diags
	}
	for _, kv := range pairs {
		// A bare key (linux_amd64 = ...) evaluates to its own name.
		platform, more := literalString(kv.Key, "hashes key")
		diags = diags.Extend(more)
		if more.HasErrors() {
			continue
		}
		h, more := literalString(kv.Value, "hashes."+platform)
		diags = diags.Extend(more)
		if more.HasErrors() {
			continue
		}
		if _, err := ParseHash(h); err != nil {
			diags = diags.Append(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid hash",
				Detail:   fmt.Sprintf("The hash of %s is invalid: %v.", platform, err),
				Subject:  kv.Value.Range().Ptr(),
			})
			continue
		}
		if _, dup := into[platform]; dup {
			diags = diags.Append(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate hash",
				Detail:   fmt.Sprintf("The platform %s has more than one hash.", platform),
				Subject:  kv.Key.Range().Ptr(),
			})
			continue
		}
		into[platform] = h
	}
	return diags
}

const header = `# This file is maintained by "sweetspot init": it pins each plugin the
# pipeline requires to a version, and to the sha256 of its executable on
# each platform. sweetspot refuses to start a plugin whose executable does
# not match. Commit it with the pipeline; re-lock with "sweetspot init --upgrade".
`

// Bytes renders the file: plugins by name, hashes by platform, so that the
// same content always gives the same bytes and a re-run of init that changes
// nothing leaves the file untouched.
func (f *File) Bytes() []byte {
	hf := hclwrite.NewEmptyFile()
	body := hf.Body()
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte(header)}})
	for _, name := range slices.Sorted(maps.Keys(f.Plugins)) {
		p := f.Plugins[name]
		body.AppendNewline()
		b := body.AppendNewBlock("plugin", []string{name}).Body()
		b.SetAttributeValue("source", cty.StringVal(p.Source))
		b.SetAttributeValue("version", cty.StringVal(p.Version))
		if p.Constraints != "" {
			b.SetAttributeValue("constraints", cty.StringVal(p.Constraints))
		}
		if len(p.Hashes) > 0 {
			hashes := map[string]cty.Value{}
			for k, v := range p.Hashes {
				hashes[k] = cty.StringVal(v)
			}
			b.SetAttributeValue("hashes", cty.ObjectVal(hashes))
		}
	}
	return hclwrite.Format(hf.Bytes())
}

// Write writes f to path atomically: a reader sees the old file or the new
// one, never half of it. When path already holds exactly these bytes it is
// not touched.
func Write(path string, f *File) error {
	data := f.Bytes()
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".sweetspot.lock.*.tmp")
	if err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write lock file: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write lock file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	return nil
}

// ReadOptional reads path, returning an empty File (and no error) when it
// does not exist.
func ReadOptional(path string) (*File, bool, error) {
	f, err := Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return &File{Plugins: map[string]*Plugin{}}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return f, true, nil
}
