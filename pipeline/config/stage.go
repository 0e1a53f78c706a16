package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// datasetKind is the stage kind of dataset blocks.
const datasetKind = "dataset"

// stageState is a Stage while it is being loaded.
type stageState struct {
	*Stage
	block     *hcl.Block
	kindRange hcl.Range // the kind label, or the dataset keyword
	// resolved is true once the plugin and its stage description are known
	// and the body was decoded; references to an unresolved stage are not
	// checked further, to avoid a cascade from one mistake.
	resolved bool
	// attrs are the body's top-level attributes the spec knows.
	attrs     map[string]*hcl.Attribute
	loopRange hcl.Range
	// ports are the input ports the block may connect: the plugin's, less
	// any that clash with host attributes.
	ports []describe.PortDescription
}

// ref is how other blocks refer to the stage.
func (s *stageState) ref() string {
	if s.Kind == datasetKind {
		return s.Addr
	}
	return "stage." + s.Addr
}

func (l *loader) declareStages(blocks hcl.Blocks) {
	for _, b := range blocks {
		var kind, name string
		var kindRange, nameRange hcl.Range
		switch b.Type {
		case "dataset":
			kind, name = datasetKind, b.Labels[0]
			kindRange, nameRange = b.TypeRange, b.LabelRanges[0]
		case "stage":
			kind, name = b.Labels[0], b.Labels[1]
			kindRange, nameRange = b.LabelRanges[0], b.LabelRanges[1]
			if kind == datasetKind {
				l.add(&hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Dataset declared as a stage",
					Detail:   fmt.Sprintf("Datasets have their own block: write dataset %q { ... } and refer to it as dataset.%s.", name, name),
					Subject:  kindRange.Ptr(),
				})
				continue
			}
			if !l.validName(kind, kindRange, "stage kind") || !l.fileNameLabel(kind, kindRange, "stage kind") {
				continue
			}
		default:
			continue
		}
		what := "stage"
		if kind == datasetKind {
			what = "dataset"
		}
		if !l.validName(name, nameRange, what) || !l.fileNameLabel(name, nameRange, what) {
			continue
		}
		addr := kind + "." + name
		if prev, dup := l.stages[addr]; dup {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate " + what,
				Detail: fmt.Sprintf("The %s %s was already declared at %s. Each %s needs a unique name.",
					what, prev.Addr, prev.DeclRange, what),
				Subject: nameRange.Ptr(),
			})
			continue
		}
		s := &stageState{
			Stage: &Stage{
				Kind:       kind,
				Name:       name,
				Addr:       addr,
				Inputs:     map[string]PortRef{},
				DeclRange:  b.DefRange,
				AttrRanges: map[string]hcl.Range{},
				Config:     cty.DynamicVal,
			},
			block:     b,
			kindRange: kindRange,
			attrs:     map[string]*hcl.Attribute{},
		}
		l.stages[addr] = s
		l.stageOrder = append(l.stageOrder, s)
	}
}

// decodeStage resolves the stage's plugin and decodes its body against the
// plugin's schema, with the host-reserved and port attributes alongside.
func (l *loader) decodeStage(s *stageState) {
	body := hcl.Body(stableBody{s.block.Body})
	plugin, pluginRange, ok := l.stagePlugin(s)
	if !ok {
		return
	}
	desc, sd := l.resolve(s, plugin, pluginRange)
	if sd == nil {
		return
	}
	s.Plugin, s.Description, s.Spec = desc.Name, desc, sd

	full, ports, cfgNames, problems := stageSpec(sd)
	s.ports = ports
	if len(problems) > 0 {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid plugin schema",
			Detail: fmt.Sprintf("The plugin %q (version %s) declares an unusable schema for the stage kind %q: %s. This is a bug in the plugin; report it to its author.",
				desc.Name, desc.Version, s.Kind, strings.Join(problems, "; ")),
			Subject: s.DeclRange.Ptr(),
		})
	}
	portNames := make([]string, 0, len(ports))
	for _, p := range ports {
		portNames = append(portNames, p.Name)
	}
	body = describe.DeferExpressions(body, sd.Config, l.deferredValue(s, portNames))

	// missing maps each body's "missing item" range to its block header,
	// where a missing argument is best shown.
	missing := map[string]hcl.Range{rangeKey(body.MissingItemRange().Ptr()): s.DeclRange}
	l.walkBody(s, body, full, "", portNames, missing)

	val, diags := hcldec.Decode(body, full, l.evalContext(hcldec.Variables(body, full)))
	for _, d := range diags {
		if d.Subject != nil {
			if to, ok := missing[rangeKey(d.Subject)]; ok {
				d.Subject = to.Ptr()
			}
		}
	}
	l.add(diags...)
	s.resolved = true

	get := func(name string) cty.Value {
		if !val.Type().IsObjectType() || !val.IsKnown() || val.IsNull() || !val.Type().HasAttribute(name) {
			return cty.DynamicVal
		}
		return val.GetAttr(name)
	}
	cfg := make(map[string]cty.Value, len(cfgNames))
	for _, n := range cfgNames {
		cfg[n] = get(n)
	}
	// Plugins run in their own processes and working directories; a path a
	// user writes means "relative to this file", so a stage whose schema
	// has a string base_dir gets the declaring file's directory.
	if v, ok := cfg[attrBaseDir]; ok && v.IsNull() && v.Type() == cty.String {
		if dir, err := filepath.Abs(filepath.Dir(s.DeclRange.Filename)); err == nil {
			cfg[attrBaseDir] = cty.StringVal(dir)
		}
	}
	s.Config = objectOf(cfg)
	l.checkPaths(s)

	if v := get(attrDescription); v.IsKnown() && !v.IsNull() {
		s.Doc = v.AsString()
	}
	if v := get(attrTimeout); v.IsKnown() && !v.IsNull() {
		s.Timeout = l.duration(v.AsString(), s.AttrRanges[attrTimeout])
	}
	if v := get(attrTaskQueue); v.IsKnown() && !v.IsNull() {
		s.TaskQueue = l.taskQueue(v.AsString(), s.AttrRanges[attrTaskQueue])
	}
	if v := get(attrMemoryLimit); v.IsKnown() && !v.IsNull() {
		s.MemoryLimit = l.memoryLimit(v.AsString(), s.AttrRanges[attrMemoryLimit])
	}
	if v := get(attrPassEnv); v.IsKnown() && !v.IsNull() {
		s.PassEnv = l.passEnv(v, s.attrs[attrPassEnv])
	}
	if v := get(attrMaxRounds); v.IsKnown() && !v.IsNull() {
		s.MaxRounds = l.rounds(v.AsBigFloat(), s.AttrRanges[attrMaxRounds])
	}

	for _, p := range ports {
		if _, ok := s.attrs[p.Name]; ok || p.Optional {
			continue
		}
		detail := fmt.Sprintf("The stage kind %q reads the input port %q, which is not connected. Set %s = stage.KIND.NAME (or dataset.NAME) in this block.",
			s.Kind, p.Name, p.Name)
		if p.Description != "" {
			detail += fmt.Sprintf(" The port carries %s.", strings.TrimSuffix(lowerFirst(p.Description), "."))
		}
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing input port",
			Detail:   detail,
			Subject:  s.DeclRange.Ptr(),
		})
	}
}

// deferredValue makes what the host sends for an attribute the plugin
// evaluates itself (sdk.Expression): its source text, with every var. and
// local. reference replaced by its value. A reference to a stage or a
// dataset is refused as in any config value, and so is a sensitive value,
// which the text would carry into the plugin's messages; any other name is
// the plugin's, so it is neither checked nor evaluated here.
func (l *loader) deferredValue(s *stageState, ports []string) func([]string, hcl.Expression) (cty.Value, hcl.Diagnostics) {
	return func(path []string, expr hcl.Expression) (cty.Value, hcl.Diagnostics) {
		var refs []hcl.Traversal
		for _, t := range expr.Variables() {
			switch t.RootName() {
			case rootVar, rootLocal, rootStage, rootDataset:
				refs = append(refs, t)
			}
		}
		attr := strings.Join(path, ".")
		diags := l.checkRefs(refs, refContext{stage: s.Addr, attr: attr, ports: ports, deferred: true})
		for _, t := range refs {
			if l.sensitiveRefs([]hcl.Traversal{t}) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Sensitive value in a deferred expression",
					Detail: fmt.Sprintf("The plugin evaluates %q itself, so the host writes the values it refers to into its text, which the plugin's messages quote. %s is sensitive (or computed from a sensitive variable), so it cannot be written there.",
						attr, traversalString(t)),
					Subject: t.SourceRange().Ptr(),
				})
			}
		}
		if diags.HasErrors() {
			return cty.UnknownVal(cty.String), diags
		}
		var src []byte
		if f := l.parser.Files()[expr.Range().Filename]; f != nil {
			src = f.Bytes
		}
		return describe.ExpressionValue(src, expr, l.evalContext(refs), rootVar, rootLocal)
	}
}

// lowerFirst lowercases a sentence's first letter to embed it in another,
// leaving acronyms ("IDX file") alone.
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if !unicode.IsUpper(r) {
		return s
	}
	if next, _ := utf8.DecodeRuneInString(s[n:]); unicode.IsUpper(next) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// stagePlugin reads the plugin attribute, which picks the schema the rest
// of the body is decoded with. ok is false when it is unusable.
func (l *loader) stagePlugin(s *stageState) (plugin string, rng *hcl.Range, ok bool) {
	content, _, _ := s.block.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: attrPlugin}}})
	a, found := content.Attributes[attrPlugin]
	if !found {
		return "", nil, true
	}
	traversals := a.Expr.Variables()
	refDiags := l.checkRefs(traversals, refContext{stage: s.Addr, attr: attrPlugin})
	l.add(refDiags...)
	v, diags := a.Expr.Value(l.evalContext(traversals))
	l.add(diags...)
	if refDiags.HasErrors() || diags.HasErrors() {
		return "", nil, false
	}
	p, err := toString(v)
	if err != nil {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", attrPlugin, err),
			Subject:  a.Expr.Range().Ptr(),
		})
		return "", nil, false
	}
	return p, a.Expr.Range().Ptr(), true
}

// resolve asks the catalog for the stage's plugin and description.
func (l *loader) resolve(s *stageState, plugin string, pluginRange *hcl.Range) (*describe.PluginDescription, *describe.StageDescription) {
	var kinds []string
	var desc *describe.PluginDescription
	var err error
	if l.catalog != nil {
		kinds = l.catalog.Kinds()
		desc, err = l.catalog.Resolve(s.Kind, plugin)
	}
	if desc == nil && err == nil {
		err = fmt.Errorf("no plugin provides it")
	}
	if err != nil {
		msg := strings.TrimSuffix(err.Error(), ".")
		switch {
		case errors.Is(err, ErrPluginRefused):
			subject := pluginRange
			if subject == nil {
				subject = s.kindRange.Ptr()
			}
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Plugin refused",
				Detail:   fmt.Sprintf("The plugin for %s cannot be used: %s.", s.ref(), msg),
				Subject:  subject,
			})
		case plugin != "":
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown plugin",
				Detail:   fmt.Sprintf("The plugin %q cannot provide the stage kind %q for %s: %s.", plugin, s.Kind, s.ref(), msg),
				Subject:  pluginRange,
			})
		case !slices.Contains(kinds, s.Kind):
			detail := fmt.Sprintf("There is no stage kind named %q.", s.Kind)
			if s.Kind == datasetKind {
				detail = "No installed plugin reads datasets."
			}
			if dym := didYouMean(s.Kind, kinds); dym != "" {
				detail += dym
			} else if len(kinds) > 0 && len(kinds) <= 30 {
				sorted := slices.Sorted(slices.Values(kinds))
				detail += fmt.Sprintf(" The known kinds are %s.", quotedList(sorted))
			}
			detail += " A third-party plugin that provides it may need to be installed."
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown stage kind",
				Detail:   detail,
				Subject:  s.kindRange.Ptr(),
			})
		default:
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot resolve plugin",
				Detail: fmt.Sprintf("The stage kind %q has no default plugin (%s). Choose the plugin that provides it with plugin = \"NAME\" in this block.",
					s.Kind, msg),
				Subject: s.kindRange.Ptr(),
			})
		}
		return nil, nil
	}
	sd := desc.Stage(s.Kind)
	if sd == nil {
		var provided []string
		for _, st := range desc.Stages {
			provided = append(provided, st.Kind)
		}
		subject := pluginRange
		if subject == nil {
			subject = s.kindRange.Ptr()
		}
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Plugin lacks stage kind",
			Detail: fmt.Sprintf("The plugin %q does not provide the stage kind %q; it provides %s.%s",
				desc.Name, s.Kind, orElse(quotedList(provided), "none"), didYouMean(s.Kind, provided)),
			Subject: subject,
		})
		return nil, nil
	}
	return desc, sd
}

// walkBody records attribute ranges for mapping plugin diagnostics back to
// the source, keeps the top-level attributes, and checks the references of
// every value attribute. Input port and loop_to references are checked in
// resolveRefs, once every stage is known.
func (l *loader) walkBody(s *stageState, body hcl.Body, spec hcldec.ObjectSpec, prefix string, ports []string, missing map[string]hcl.Range) {
	content, _, _ := body.PartialContent(hcldec.ImpliedSchema(spec))
	attrs := slices.SortedFunc(maps.Values(content.Attributes), func(a, b *hcl.Attribute) int {
		return cmp.Compare(a.Range.Start.Byte, b.Range.Start.Byte)
	})
	for _, a := range attrs {
		path := prefix + a.Name
		s.AttrRanges[path] = a.Expr.Range()
		if prefix == "" {
			s.attrs[a.Name] = a
			if a.Name == attrLoopTo || slices.Contains(ports, a.Name) {
				continue
			}
		}
		l.add(l.checkRefs(a.Expr.Variables(), refContext{stage: s.Addr, attr: path, ports: ports})...)
	}
	index := map[string]int{}
	for _, b := range content.Blocks {
		missingKey := rangeKey(b.Body.MissingItemRange().Ptr())
		switch bs := spec[b.Type].(type) {
		case *hcldec.BlockSpec:
			path := prefix + b.Type
			s.AttrRanges[path] = b.DefRange
			missing[missingKey] = b.DefRange
			nested := bs.Nested.(hcldec.ObjectSpec)
			recordLabels(s, b, nested, path+".")
			l.walkBody(s, b.Body, nested, path+".", ports, missing)
		case *hcldec.BlockListSpec:
			i := index[b.Type]
			index[b.Type]++
			path := prefix + b.Type + "." + strconv.Itoa(i)
			s.AttrRanges[path] = b.DefRange
			missing[missingKey] = b.DefRange
			nested := bs.Nested.(hcldec.ObjectSpec)
			recordLabels(s, b, nested, path+".")
			l.walkBody(s, b.Body, nested, path+".", ports, missing)
			if i == 0 {
				// Plugins may name the first block without an index.
				s.AttrRanges[prefix+b.Type] = b.DefRange
				for k, r := range s.AttrRanges {
					if rest, ok := strings.CutPrefix(k, path+"."); ok {
						s.AttrRanges[prefix+b.Type+"."+rest] = r
					}
				}
			}
		}
	}
}

// recordLabels records the range of each label of a block under its name
// (family.0.kind), where a plugin's diagnostic about the label points.
func recordLabels(s *stageState, b *hcl.Block, spec hcldec.ObjectSpec, prefix string) {
	for name, sp := range spec {
		if ls, ok := sp.(*hcldec.BlockLabelSpec); ok && ls.Index < len(b.LabelRanges) {
			s.AttrRanges[prefix+name] = b.LabelRanges[ls.Index]
		}
	}
}

func (l *loader) duration(text string, rng hcl.Range) time.Duration {
	d, err := time.ParseDuration(text)
	if err == nil && d > 0 {
		return d
	}
	why := "it must be positive"
	if err != nil {
		why = strings.TrimPrefix(err.Error(), "time: ")
	}
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid timeout",
		Detail:   fmt.Sprintf("The timeout must be a positive duration such as \"30s\", \"5m\" or \"1h30m\"; %q does not work: %s.", text, why),
		Subject:  rng.Ptr(),
	})
	return 0
}

// minMemoryLimit is below what any plugin process needs just to start,
// so a smaller limit is a typo (a missing unit prefix), not a choice.
const minMemoryLimit = 16 << 20

func (l *loader) memoryLimit(text string, rng hcl.Range) int64 {
	n, err := ParseByteSize(text)
	if err == nil && n < minMemoryLimit {
		err = fmt.Errorf("it is below %d MiB, less than a plugin process needs to start", minMemoryLimit>>20)
	}
	if err == nil {
		return n
	}
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid memory_limit",
		Detail:   fmt.Sprintf("memory_limit is the most resident memory the stage's plugin process (with its children) may use, such as \"512MiB\" or \"2GiB\"; %q does not work: %s.", text, err),
		Subject:  rng.Ptr(),
	})
	return 0
}

// maxTaskQueueLen is far below Temporal's own limit on queue names, and
// far above any name a person types.
const maxTaskQueueLen = 200

// taskQueue checks a task_queue name: workers are started with the same
// name on their command line, so it must be one word a shell keeps whole.
func (l *loader) taskQueue(name string, rng hcl.Range) string {
	ok := name != "" && len(name) <= maxTaskQueueLen
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			ok = false
		}
	}
	if ok {
		return name
	}
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid task_queue",
		Detail:   fmt.Sprintf("task_queue names the Temporal task queue whose workers run this stage, such as \"gpu\": one word of at most %d printable characters, without spaces; found %q.", maxTaskQueueLen, name),
		Subject:  rng.Ptr(),
	})
	return ""
}

// maxRoundsLimit keeps max_rounds within an int on every platform; no loop
// needs more.
const maxRoundsLimit = 1_000_000

func (l *loader) rounds(f *big.Float, rng hcl.Range) int {
	if f.IsInt() && f.Cmp(big.NewFloat(1)) >= 0 && f.Cmp(big.NewFloat(maxRoundsLimit)) <= 0 {
		n, _ := f.Int64()
		return int(n)
	}
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid max_rounds",
		Detail:   fmt.Sprintf("max_rounds must be a whole number from 1 to %d; found %s.", maxRoundsLimit, f.Text('g', 10)),
		Subject:  rng.Ptr(),
	})
	return 0
}

// resolveRefs connects the input ports and loops, now that every stage is
// declared and decoded.
func (l *loader) resolveRefs() {
	for _, s := range l.stageOrder {
		if !s.resolved {
			continue
		}
		for _, p := range s.ports {
			if a, ok := s.attrs[p.Name]; ok {
				l.connect(s, p.Name, a)
			}
		}
		l.resolveLoop(s)
	}
}

// parseStageRef reads stage.KIND.NAME[.PORT] or dataset.NAME[.PORT]. It
// returns the address, the port ("" when absent) and the traversal.
func parseStageRef(expr hcl.Expression) (addr, port string, portRange hcl.Range, t hcl.Traversal, ok bool) {
	t, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() {
		return "", "", hcl.Range{}, nil, false
	}
	var steps []string
	for i := 1; i < len(t); i++ {
		name, ok := attrStep(t, i)
		if !ok {
			return "", "", hcl.Range{}, t, false
		}
		steps = append(steps, name)
	}
	n := 0
	switch t.RootName() {
	case rootStage:
		if len(steps) < 2 || len(steps) > 3 {
			return "", "", hcl.Range{}, t, false
		}
		addr, n = steps[0]+"."+steps[1], 2
	case rootDataset:
		if len(steps) < 1 || len(steps) > 2 {
			return "", "", hcl.Range{}, t, false
		}
		addr, n = datasetKind+"."+steps[0], 1
	default:
		return "", "", hcl.Range{}, t, false
	}
	if len(steps) > n {
		port, portRange = steps[n], t[n+1].SourceRange()
	}
	return addr, port, portRange, t, true
}

func (l *loader) stageRefs() []string {
	refs := make([]string, 0, len(l.stageOrder))
	for _, s := range l.stageOrder {
		refs = append(refs, s.ref())
	}
	return refs
}

// misnamedDataset reports stage.dataset.NAME: it would find the dataset's
// address, but datasets are not stages to refer to.
func misnamedDataset(t hcl.Traversal, addr string) bool {
	return t.RootName() == rootStage && strings.HasPrefix(addr, datasetKind+".")
}

// undeclared reports a reference to a stage that does not exist.
func (l *loader) undeclared(t hcl.Traversal, addr, what string) {
	summary, noun, ref := "Reference to undeclared stage", "stage", "stage."+addr
	if t.RootName() == rootDataset {
		summary, noun, ref = "Reference to undeclared dataset", "dataset", addr
	}
	hint := didYouMean(ref, l.stageRefs())
	if kind, name, _ := strings.Cut(addr, "."); t.RootName() == rootStage && kind == datasetKind {
		hint = fmt.Sprintf(" Datasets are referred to as dataset.%s.", name)
	}
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf("%s refers to %s, but no such %s has been declared.%s", what, ref, noun, hint),
		Subject:  t.SourceRange().Ptr(),
	})
}

// connect resolves the input port attribute a of stage s.
func (l *loader) connect(s *stageState, port string, a *hcl.Attribute) {
	addr, outPort, portRange, t, ok := parseStageRef(a.Expr)
	if !ok {
		found := ""
		if t != nil {
			found = fmt.Sprintf(" Found %s.", traversalString(t))
		}
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid input port reference",
			Detail: fmt.Sprintf("The input port %q takes a reference to another stage's output: stage.KIND.NAME, stage.KIND.NAME.PORT or dataset.NAME.%s "+
				"Values for the plugin go in other attributes.", port, found),
			Subject: a.Expr.Range().Ptr(),
		})
		return
	}
	what := fmt.Sprintf("The input port %q of %s", port, s.Addr)
	prod, ok := l.stages[addr]
	if !ok || misnamedDataset(t, addr) {
		l.undeclared(t, addr, what)
		return
	}
	ref := PortRef{Stage: addr, Port: outPort, Range: t.SourceRange()}
	if !prod.resolved {
		// The producer's own diagnostic explains; record the edge so that
		// cycles are still found.
		s.Inputs[port] = ref
		return
	}
	outs := make([]string, 0, len(prod.Spec.Outputs))
	for _, o := range prod.Spec.Outputs {
		outs = append(outs, o.Name)
	}
	switch {
	case len(outs) == 0:
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Stage has no output",
			Detail:   fmt.Sprintf("%s refers to %s, but the stage kind %q has no output ports.", what, prod.Addr, prod.Kind),
			Subject:  t.SourceRange().Ptr(),
		})
		return
	case outPort == "":
		ref.Port = outs[0]
	case !slices.Contains(outs, outPort):
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown output port",
			Detail: fmt.Sprintf("The stage %s has no output port named %q; its output ports are %s.%s",
				prod.Addr, outPort, quotedList(outs), didYouMean(outPort, outs)),
			Subject: portRange.Ptr(),
		})
		return
	}
	s.Inputs[port] = ref
}

// resolveLoop checks loop_to and max_rounds.
func (l *loader) resolveLoop(s *stageState) {
	a, hasLoop := s.attrs[attrLoopTo]
	mr, hasRounds := s.attrs[attrMaxRounds]
	if !hasLoop {
		if hasRounds {
			l.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "max_rounds without a loop",
				Detail:   "max_rounds bounds the rounds of a loop, but this stage declares no loop_to.",
				Subject:  mr.Range.Ptr(),
			})
		}
		return
	}
	addr, port, _, t, ok := parseStageRef(a.Expr)
	if !ok || port != "" || t.RootName() != rootStage {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid loop_to reference",
			Detail:   "loop_to takes a reference to the stage the loop goes back to, upstream of this one: stage.KIND.NAME.",
			Subject:  a.Expr.Range().Ptr(),
		})
		return
	}
	if _, ok := l.stages[addr]; !ok || misnamedDataset(t, addr) {
		l.undeclared(t, addr, fmt.Sprintf("The loop_to of %s", s.Addr))
		return
	}
	if s.Spec.Loop == nil {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Stage kind cannot decide a loop",
			Detail: fmt.Sprintf("The stage kind %q (plugin %q) does not declare a loop decision, so %s cannot use loop_to. "+
				"Put loop_to on the stage that decides whether to go round again.", s.Kind, s.Plugin, s.Addr),
			Subject: a.Range.Ptr(),
		})
		return
	}
	if !hasRounds {
		l.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing max_rounds",
			Detail:   fmt.Sprintf("A loop needs a bound: add max_rounds = N to %s, the most rounds the loop may run.", s.Addr),
			Subject:  a.Range.Ptr(),
		})
	}
	s.LoopTo = addr
	s.loopRange = t.SourceRange()
}
