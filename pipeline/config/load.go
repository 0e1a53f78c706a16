package config

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/sweetspot-ml/sweetspot/internal/telemetry"
	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// LoadOption configures Load.
type LoadOption func(*loadOptions)

type loadOptions struct {
	vars     map[string]string
	varFiles []string
}

// WithVars sets variables as -var k=v does. Values are raw strings: a
// variable whose type is string (or unspecified) takes the string as is;
// any other is parsed as an HCL expression, so "-var depth=[1,2]" gives a
// list. These values win over -var-file values and defaults.
func WithVars(vars map[string]string) LoadOption {
	return func(o *loadOptions) {
		if o.vars == nil {
			o.vars = map[string]string{}
		}
		maps.Copy(o.vars, vars)
	}
}

// WithVarFiles reads variable values from HCL files of `name = value`
// attributes, as -var-file does. Later files win over earlier ones; all win
// over defaults.
func WithVarFiles(files ...string) LoadOption {
	return func(o *loadOptions) { o.varFiles = append(o.varFiles, files...) }
}

// source is one pipeline file's name and contents.
type source struct {
	name string
	src  []byte
}

// Load reads the pipeline in paths (files, or directories whose *.hcl files
// are read in name order; files ending in .vars.hcl are skipped there, as
// they are meant for -var-file) and returns it validated: variables and
// locals evaluated, every stage resolved through catalog and its body
// decoded against the plugin's schema, every reference resolved, the stage
// graph built and checked, and the Arrow schemas of connected ports
// compared.
//
// All problems are reported together. The returned Pipeline is never nil:
// when the diagnostics hold errors it is incomplete, but its Files can
// render them (hcl.NewDiagnosticTextWriter).
func Load(paths []string, catalog Catalog, opts ...LoadOption) (*Pipeline, hcl.Diagnostics) {
	l := newLoader(catalog, opts)
	l.p.ProjectDir = projectDir(paths)
	return l.load(l.readSources(l.expandPaths(paths)))
}

// LoadSettings reads only the sweetspot blocks of the pipeline at paths
// (Pipeline.Required and Pipeline.Telemetry, checked as Load checks them):
// what `sweetspot init` needs to install plugins that Load would need
// installed to decode the stages. The other blocks are not checked.
func LoadSettings(paths []string) (*Pipeline, hcl.Diagnostics) {
	l := newLoader(nil, nil)
	srcs := l.readSources(l.expandPaths(paths))
	var blocks hcl.Blocks
	for _, s := range srcs {
		l.p.Paths = append(l.p.Paths, s.name)
		if !l.checkSource(s.src, s.name, describe.CheckSource) {
			continue
		}
		f, diags := l.parser.ParseHCL(s.src, s.name)
		l.add(diags...)
		if diags.HasErrors() {
			continue
		}
		content, _, diags := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "sweetspot"}}})
		l.add(diags...)
		blocks = append(blocks, content.Blocks...)
	}
	l.decodeSweetspot(blocks)
	l.finish(srcs)
	sortDiagnostics(l.diags)
	return l.p, l.diags
}

func (l *loader) readSources(files []string) []source {
	var srcs []source
	for _, f := range files {
		b, err := ReadSource(f)
		if err != nil {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read pipeline file",
				Detail:   fmt.Sprintf("Reading %s failed: %v.", f, err),
			})
			continue
		}
		srcs = append(srcs, source{name: f, src: b})
	}
	return srcs
}

func (l *loader) expandPaths(paths []string) []string {
	var out []string
	seen := map[string]bool{}
	addFile := func(f string) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if len(paths) == 0 {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No pipeline given",
			Detail:   "Name a pipeline file, or a directory holding *.hcl files.",
		})
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read pipeline",
				Detail:   fmt.Sprintf("%v.", err),
			})
			continue
		}
		if !info.IsDir() {
			addFile(p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read pipeline directory",
				Detail:   fmt.Sprintf("%v.", err),
			})
			continue
		}
		n := 0
		for _, e := range entries { // ReadDir sorts by name
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".hcl") || strings.HasSuffix(name, ".vars.hcl") || strings.HasPrefix(name, ".") {
				continue
			}
			addFile(filepath.Join(p, name))
			n++
		}
		if n == 0 {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "No pipeline files",
				Detail:   fmt.Sprintf("The directory %s holds no *.hcl files.", p),
			})
		}
	}
	slices.Sort(out)
	return out
}

// loader carries one Load call's state.
type loader struct {
	catalog Catalog
	opts    loadOptions
	parser  *hclparse.Parser
	// pseudo holds files made up for diagnostics: -var values.
	pseudo map[string]*hcl.File

	diags hcl.Diagnostics
	seen  map[string]bool

	vars      map[string]*Variable
	varVals   map[string]cty.Value
	locals    map[string]*hcl.Attribute
	localVals map[string]cty.Value
	// sensitiveLocals are the locals computed from sensitive variables.
	sensitiveLocals map[string]bool

	schemas map[string]*arrow.Schema

	stages     map[string]*stageState
	stageOrder []*stageState // declaration order

	p *Pipeline
}

func newLoader(catalog Catalog, opts []LoadOption) *loader {
	l := &loader{
		catalog:         catalog,
		parser:          hclparse.NewParser(),
		pseudo:          map[string]*hcl.File{},
		seen:            map[string]bool{},
		vars:            map[string]*Variable{},
		varVals:         map[string]cty.Value{},
		locals:          map[string]*hcl.Attribute{},
		localVals:       map[string]cty.Value{},
		sensitiveLocals: map[string]bool{},
		stages:          map[string]*stageState{},
		p: &Pipeline{
			Vars:      map[string]cty.Value{},
			Variables: map[string]*Variable{},
		},
	}
	for _, o := range opts {
		o(&l.opts)
	}
	return l
}

// add appends diagnostics, dropping exact repeats: some problems surface
// through two routes (a partial decode and a full one) and must show once.
func (l *loader) add(ds ...*hcl.Diagnostic) {
	for _, d := range ds {
		if d == nil {
			continue
		}
		fixFunctionHint(d)
		l.hideSensitive(d)
		key := fmt.Sprintf("%d\x00%s\x00%s\x00%s", d.Severity, d.Summary, rangeKey(d.Subject), d.Detail)
		if l.seen[key] {
			continue
		}
		l.seen[key] = true
		l.diags = append(l.diags, d)
	}
}

// hideSensitive drops the expression and its context from a diagnostic
// that involves a sensitive variable: the renderer would print their values
// ("with var.token as ...").
func (l *loader) hideSensitive(d *hcl.Diagnostic) {
	if d.Expression == nil || d.EvalContext == nil {
		return
	}
	if l.sensitiveRefs(d.Expression.Variables()) {
		d.Expression, d.EvalContext = nil, nil
	}
}

// sensitiveRefs reports whether any traversal reads a sensitive variable,
// directly or through a local.
func (l *loader) sensitiveRefs(traversals []hcl.Traversal) bool {
	for _, t := range traversals {
		name, ok := attrStep(t, 1)
		if !ok {
			continue
		}
		switch t.RootName() {
		case rootVar:
			if v := l.vars[name]; v != nil && v.Sensitive {
				return true
			}
		case rootLocal:
			if l.sensitiveLocals[name] {
				return true
			}
		}
	}
	return false
}

func rangeKey(r *hcl.Range) string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d-%d", r.Filename, r.Start.Byte, r.End.Byte)
}

// rootSchema is the top level of a pipeline file.
var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "sweetspot"},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "dataset", LabelNames: []string{"name"}},
		{Type: "stage", LabelNames: []string{"kind", "name"}},
	},
}

func (l *loader) load(srcs []source) (*Pipeline, hcl.Diagnostics) {
	var parsed []*hcl.File
	syntaxErrors := false
	for _, s := range srcs {
		l.p.Paths = append(l.p.Paths, s.name)
		if !l.checkSource(s.src, s.name, describe.CheckSource) {
			syntaxErrors = true
			continue
		}
		f, diags := l.parser.ParseHCL(s.src, s.name)
		l.add(diags...)
		syntaxErrors = syntaxErrors || diags.HasErrors()
		parsed = append(parsed, f)
	}
	if syntaxErrors {
		// A body that failed to parse is cut short; decoding it would only
		// add follow-on errors about what the parser could not see.
		l.finish(srcs)
		sortDiagnostics(l.diags)
		return l.p, l.diags
	}
	var blocks hcl.Blocks
	for _, f := range parsed {
		content, diags := f.Body.Content(rootSchema)
		l.add(diags...)
		blocks = append(blocks, content.Blocks...)
	}
	byType := map[string]hcl.Blocks{}
	for _, b := range blocks {
		byType[b.Type] = append(byType[b.Type], b)
	}

	l.decodeSweetspot(byType["sweetspot"])
	l.decodeVariables(byType["variable"])
	l.decodeLocals(byType["locals"])
	l.declareStages(blocks)
	if len(byType["stage"])+len(byType["dataset"]) == 0 && !l.diags.HasErrors() {
		l.emptyPipeline(srcs)
	}
	for _, s := range l.stageOrder {
		l.decodeStage(s)
	}
	l.resolveRefs()
	l.buildGraph()
	l.checkPortSchemas()
	l.finish(srcs)
	sortDiagnostics(l.diags)
	return l.p, l.diags
}

// checkSource refuses text that hclsyntax must not parse: too large, or
// nested or chained so deep that parsing or evaluating it could exhaust
// the stack, which no recover survives. check is describe.CheckSource for a
// file, describe.CheckExpressionSource for an expression (the rule plugins
// apply to deferred expressions too).
//
// The text is kept as a file for the diagnostic to render with, up to a
// little past the place it points at: such text is often one line of
// hundreds of kilobytes, which the snippet would print whole.
func (l *loader) checkSource(src []byte, filename string, check func([]byte, string, hcl.Pos) hcl.Diagnostics) bool {
	diags := check(src, filename, hcl.InitialPos)
	if !diags.HasErrors() {
		return true
	}
	keep := len(src)
	if d := diags[0]; d.Subject != nil {
		keep = min(keep, d.Subject.End.Byte+80)
		if nl := bytes.IndexByte(src[d.Subject.End.Byte:keep], '\n'); nl >= 0 {
			keep = d.Subject.End.Byte + nl
		}
		for keep < len(src) && !utf8.RuneStart(src[keep]) {
			keep++
		}
	}
	l.pseudo[filename] = &hcl.File{Body: hcl.EmptyBody(), Bytes: src[:keep]}
	l.add(diags...)
	return false
}

// sortDiagnostics puts diagnostics in reading order: those without a source
// range first, then by file and position. Problems are found in several
// passes (variables, stages, graph); users read files top to bottom.
func sortDiagnostics(diags hcl.Diagnostics) {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return -1
		case b.Subject == nil:
			return 1
		case a.Subject.Filename != b.Subject.Filename:
			return cmp.Compare(a.Subject.Filename, b.Subject.Filename)
		case a.Subject.Start.Byte != b.Subject.Start.Byte:
			return cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte)
		case a.Subject.End.Byte != b.Subject.End.Byte:
			return cmp.Compare(a.Subject.End.Byte, b.Subject.End.Byte)
		}
		// Several problems at one place (missing arguments at a block
		// header) come from map iterations; fix their order too.
		return cmp.Or(cmp.Compare(a.Summary, b.Summary), cmp.Compare(a.Detail, b.Detail))
	})
}

func (l *loader) files() map[string]*hcl.File {
	files := maps.Clone(l.parser.Files())
	maps.Copy(files, l.pseudo)
	return files
}

func (l *loader) buildGraph() {
	// An unresolved stage has no known ports, so the edges through it are
	// missing and a loop across it would look broken: check loops only
	// once every stage resolves.
	checkLoops := true
	for _, s := range l.stageOrder {
		checkLoops = checkLoops && s.resolved
	}
	nodes := make([]graph.Node, 0, len(l.stageOrder))
	for _, s := range l.stageOrder {
		n := graph.Node{
			Addr:      s.Addr,
			Kind:      s.Kind,
			Name:      s.Name,
			Plugin:    s.Plugin,
			LoopTo:    s.LoopTo,
			MaxRounds: s.MaxRounds,
			DeclRange: s.DeclRange,
			LoopRange: s.loopRange,
		}
		if s.Spec != nil && s.Spec.Loop != nil {
			n.LoopPort = s.Spec.Loop.ProposalsPort
		}
		if !checkLoops {
			n.LoopTo = ""
		}
		for _, port := range slices.Sorted(maps.Keys(s.Inputs)) {
			ref := s.Inputs[port]
			n.Inputs = append(n.Inputs, graph.Edge{From: ref.Stage, FromPort: ref.Port, ToPort: port, Range: ref.Range})
		}
		nodes = append(nodes, n)
	}
	g, diags := graph.Build(nodes)
	l.add(diags...)
	l.p.Graph = g
	for _, a := range g.Order() {
		l.p.Stages = append(l.p.Stages, l.stages[a].Stage)
	}
}

func (l *loader) finish(srcs []source) {
	l.p.Files = l.files()
	for name, v := range l.vars {
		l.p.Variables[name] = v
		l.p.Vars[name] = v.Value
	}
	l.p.Hash = pipelineHash(srcs, l.p.Vars)
}

// pipelineHash digests the sources in path order and the final variable
// values by name. Lengths prefix every part, so moving bytes from one file
// to the next changes the hash.
func pipelineHash(srcs []source, vars map[string]cty.Value) string {
	h := sha256.New()
	part := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	sorted := slices.Clone(srcs)
	slices.SortFunc(sorted, func(a, b source) int { return cmp.Compare(a.name, b.name) })
	for _, s := range sorted {
		part(s.src)
	}
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		part([]byte(name))
		// A value that cannot be marshalled is unknown: only an invalid
		// pipeline has one, and its hash does not matter.
		b, err := ctyjson.Marshal(vars[name], cty.DynamicPseudoType)
		if err != nil {
			b = []byte("?")
		}
		part(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// decodeSweetspot reads the settings block. Its values must be literal:
// they say how to load the rest.
func (l *loader) decodeSweetspot(blocks hcl.Blocks) {
	if len(blocks) == 0 {
		return
	}
	for _, dup := range blocks[1:] {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Duplicate sweetspot block",
			Detail:   fmt.Sprintf("A sweetspot block was already declared at %s. A pipeline has at most one.", blocks[0].DefRange),
			Subject:  dup.DefRange.Ptr(),
		})
	}
	b := blocks[0]
	content, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "required_version"}, {Name: attrAllowOutsidePaths}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "required_plugins"}, {Type: "telemetry"}},
	})
	l.add(diags...)
	if a, ok := content.Attributes["required_version"]; ok {
		l.p.Required.Version, _ = l.literalString(a)
		l.p.Required.VersionRange = a.Expr.Range()
	}
	if a, ok := content.Attributes[attrAllowOutsidePaths]; ok {
		l.p.AllowOutsidePaths = l.literalBool(a)
	}
	var seenPlugins, seenTelemetry *hcl.Block
	for _, nb := range content.Blocks {
		first := &seenPlugins
		if nb.Type == "telemetry" {
			first = &seenTelemetry
		}
		if *first != nil {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate %s block", nb.Type),
				Detail:   fmt.Sprintf("A %s block was already declared at %s. The sweetspot block takes at most one.", nb.Type, (*first).DefRange),
				Subject:  nb.DefRange.Ptr(),
			})
			continue
		}
		*first = nb
		switch nb.Type {
		case "required_plugins":
			attrs, diags := nb.Body.JustAttributes()
			l.add(diags...)
			l.p.Required.Plugins = map[string]RequiredPlugin{}
			for name, a := range attrs {
				l.p.Required.Plugins[name] = l.decodeRequiredPlugin(name, a)
			}
		case "telemetry":
			tc, diags := nb.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "otlp_endpoint"}, {Name: "protocol"}}})
			l.add(diags...)
			if a, ok := tc.Attributes["otlp_endpoint"]; ok {
				if e, ok := l.literalString(a); ok {
					if err := telemetry.CheckEndpoint(e); err != nil {
						l.add(&hcl.Diagnostic{
							Severity: hcl.DiagError,
							Summary:  "Invalid OTLP endpoint",
							Detail:   err.Error() + ".",
							Subject:  a.Expr.Range().Ptr(),
						})
					} else {
						l.p.Telemetry.OTLPEndpoint = e
					}
				}
			}
			if a, ok := tc.Attributes["protocol"]; ok {
				p, ok := l.literalString(a)
				switch {
				case !ok:
				case p == "grpc" || p == "http/protobuf":
					l.p.Telemetry.Protocol = p
				default:
					l.add(&hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  "Unsupported OTLP protocol",
						Detail:   fmt.Sprintf("The protocol %q is not supported. Use \"grpc\" or \"http/protobuf\".%s", p, didYouMean(p, []string{"grpc", "http/protobuf"})),
						Subject:  a.Expr.Range().Ptr(),
					})
				}
			}
		}
	}
}

// literalBool evaluates a to a constant bool; false after a diagnostic.
func (l *loader) literalBool(a *hcl.Attribute) bool {
	v, diags := a.Expr.Value(nil)
	l.add(diags...)
	if diags.HasErrors() {
		return false
	}
	if b, err := convert.Convert(v, cty.Bool); err == nil && b.IsKnown() && !b.IsNull() {
		return b.True()
	}
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid " + a.Name,
		Detail:   fmt.Sprintf("%s is true or false.", a.Name),
		Subject:  a.Expr.Range().Ptr(),
	})
	return false
}

// literalString evaluates a to a constant string; ok is false after a
// diagnostic.
func (l *loader) literalString(a *hcl.Attribute) (string, bool) {
	v, diags := a.Expr.Value(nil)
	l.add(diags...)
	if diags.HasErrors() {
		return "", false
	}
	s, err := toString(v)
	if err != nil {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, err),
			Subject:  a.Expr.Range().Ptr(),
		})
		return "", false
	}
	return s, true
}

// validName reports a block label that cannot be referred to.
// emptyPipeline reports a pipeline without a stage or dataset block: it
// would run nothing and succeed, which a misspelled path or an empty file
// should not.
func (l *loader) emptyPipeline(srcs []source) {
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.name
	}
	where := "The file " + strings.Join(names, "") + " declares"
	if len(names) > 1 {
		where = "The files " + strings.Join(names, ", ") + " declare"
	}
	d := &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Empty pipeline",
		Detail: where + ` no stage and no dataset, so there is nothing to run. ` +
			`A pipeline has at least one block stage "KIND" "NAME" { ... } or dataset "NAME" { ... }.`,
	}
	if len(names) > 0 {
		d.Subject = &hcl.Range{Filename: names[0], Start: hcl.InitialPos, End: hcl.InitialPos}
	}
	l.add(d)
}

// maxNameBytes bounds a stage's kind and name and a dataset's name: they
// name directories of the run (stages/KIND.NAME/, work/KIND.NAME/), and a
// file name has at most 255 bytes on common file systems.
const maxNameBytes = 100

// fileNameLabel checks a label that becomes part of a file name.
func (l *loader) fileNameLabel(label string, rng hcl.Range, what string) bool {
	if len(label) <= maxNameBytes {
		return true
	}
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("The %s name is too long", what),
		Detail: fmt.Sprintf("The name %.40q... has %d bytes; at most %d are allowed, because a stage's kind and name make the name of its directory in the run (stages/KIND.NAME/).",
			label, len(label), maxNameBytes),
		Subject: rng.Ptr(),
	})
	return false
}

func (l *loader) validName(label string, rng hcl.Range, what string) bool {
	if hclsyntax.ValidIdentifier(label) {
		return true
	}
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Invalid %s name", what),
		Detail: fmt.Sprintf("The name %q cannot be used in references. A name must start with a letter or underscore "+
			"and may contain only letters, digits, underscores and dashes.", label),
		Subject: rng.Ptr(),
	})
	return false
}
