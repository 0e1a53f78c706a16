package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/zclconf/go-cty/cty"
)

var ctyEqual = cmp.Comparer(func(a, b cty.Value) bool { return a.RawEquals(b) })

const quickstart = caseDir + "/valid/quickstart.hcl"

func mustLoad(t *testing.T, paths []string, opts ...LoadOption) *Pipeline {
	t.Helper()
	p, diags := Load(paths, newFakeCatalog(), opts...)
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", render(p.Files, diags))
	}
	return p
}

func TestLoadQuickstart(t *testing.T) {
	t.Chdir(repoRoot)
	p := mustLoad(t, []string{quickstart},
		WithVarFiles(caseDir+"/valid/quickstart.vars.hcl"),
		WithVars(map[string]string{"epochs": "30"}))

	var order []string
	for _, s := range p.Stages {
		order = append(order, s.Addr)
	}
	wantOrder := []string{"dataset.digits", "requirements.sla", "model_choice.mlp", "evaluation.train", "resize.fit"}
	if diff := cmp.Diff(wantOrder, order); diff != "" {
		t.Errorf("stage order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantOrder, p.Graph.Order()); diff != "" {
		t.Errorf("graph order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"evaluation.train", "resize.fit"}, p.Graph.LoopBody("resize.fit")); diff != "" {
		t.Errorf("loop body (-want +got):\n%s", diff)
	}

	t.Run("inputs", func(t *testing.T) {
		type edge struct{ Stage, Port string }
		got := map[string]map[string]edge{}
		for _, s := range p.Stages {
			got[s.Addr] = map[string]edge{}
			for port, ref := range s.Inputs {
				got[s.Addr][port] = edge{ref.Stage, ref.Port}
				if ref.Range.Filename != quickstart || ref.Range.Start.Line == 0 {
					t.Errorf("%s.%s: reference range %v", s.Addr, port, ref.Range)
				}
			}
		}
		want := map[string]map[string]edge{
			"dataset.digits":   {},
			"requirements.sla": {},
			"model_choice.mlp": {"input": {"requirements.sla", "requirements"}},
			"evaluation.train": {"input": {"model_choice.mlp", "candidates"}, "dataset": {"dataset.digits", "data"}},
			"resize.fit":       {"input": {"evaluation.train", "results"}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("inputs (-want +got):\n%s", diff)
		}
	})

	t.Run("config values", func(t *testing.T) {
		want := map[string]cty.Value{
			"dataset.digits": cty.ObjectVal(map[string]cty.Value{
				"path":          cty.StringVal("testdata/datasets/digits.csv.gz"),
				"generator":     cty.NullVal(cty.String),
				"target":        cty.StringVal("label"),
				"test_fraction": cty.NumberFloatVal(0.2),
				"seed":          cty.NumberIntVal(7),
			}),
			"requirements.sla": cty.ObjectVal(map[string]cty.Value{
				"min_accuracy":   cty.NumberFloatVal(0.9), // var-file beats the default
				"max_latency_ms": cty.NumberFloatVal(0.5),
				"max_params":     cty.NumberIntVal(200000),
				"budget": cty.ObjectVal(map[string]cty.Value{
					"max_trials": cty.NumberIntVal(40),
					"max_wall":   cty.StringVal("15m"),
				}),
			}),
			"model_choice.mlp": cty.ObjectVal(map[string]cty.Value{
				"family": cty.StringVal("mlp"),
				"depth":  cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)}),
				"width": cty.ObjectVal(map[string]cty.Value{
					"min": cty.NumberIntVal(4),
					"max": cty.NumberIntVal(2048), // optional() default of the variable type
				}),
			}),
			"evaluation.train": cty.ObjectVal(map[string]cty.Value{
				"epochs":      cty.NumberIntVal(30), // -var beats the var-file
				"parallelism": cty.NullVal(cty.Number),
				"metric": cty.ListVal([]cty.Value{
					cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("accuracy"), "weight": cty.NullVal(cty.Number)}),
					cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("latency_p95_ms"), "weight": cty.NumberFloatVal(0.5)}),
				}),
			}),
			"resize.fit": cty.ObjectVal(map[string]cty.Value{"strategy": cty.StringVal("KNEE")}),
		}
		for _, s := range p.Stages {
			if diff := cmp.Diff(want[s.Addr], s.Config, ctyEqual); diff != "" {
				t.Errorf("%s config (-want +got):\n%s\ngot %#v", s.Addr, diff, s.Config)
			}
		}
	})

	t.Run("host attributes", func(t *testing.T) {
		sla, fit := p.Stage("requirements.sla"), p.Stage("resize.fit")
		if sla.Timeout != 30*time.Second || sla.Doc != "What the model must reach." || sla.Plugin != builtinPlugin {
			t.Errorf("requirements.sla: timeout %v, doc %q, plugin %q", sla.Timeout, sla.Doc, sla.Plugin)
		}
		if fit.LoopTo != "evaluation.train" || fit.MaxRounds != 6 || fit.Spec.Loop == nil {
			t.Errorf("resize.fit: loop_to %q, max_rounds %d", fit.LoopTo, fit.MaxRounds)
		}
		if p.Stage("evaluation.train").LoopTo != "" || p.Stage("nope.nope") != nil {
			t.Error("Stage lookup or LoopTo wrong")
		}
	})

	t.Run("attribute ranges", func(t *testing.T) {
		src, err := os.ReadFile(quickstart)
		if err != nil {
			t.Fatal(err)
		}
		text := func(s *Stage, path string) string {
			r, ok := s.AttrRanges[path]
			if !ok {
				return "<missing>"
			}
			return string(src[r.Start.Byte:r.End.Byte])
		}
		sla, eval := p.Stage("requirements.sla"), p.Stage("evaluation.train")
		got := map[string]string{
			"budget.max_wall":  text(sla, "budget.max_wall"),
			"budget":           text(sla, "budget"),
			"min_accuracy":     text(sla, "min_accuracy"),
			"timeout":          text(sla, "timeout"),
			"metric.1.weight":  text(eval, "metric.1.weight"),
			"metric.0.name":    text(eval, "metric.0.name"),
			"metric.name":      text(eval, "metric.name"),
			"dataset (a port)": text(eval, "dataset"),
		}
		want := map[string]string{
			"budget.max_wall":  `"15m"`,
			"budget":           "budget",
			"min_accuracy":     "var.target",
			"timeout":          `"30s"`,
			"metric.1.weight":  "0.5",
			"metric.0.name":    `"accuracy"`,
			"metric.name":      `"accuracy"`,
			"dataset (a port)": "dataset.digits.data",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("AttrRanges (-want +got):\n%s", diff)
		}
	})

	t.Run("variables and settings", func(t *testing.T) {
		wantVars := map[string]cty.Value{
			"target": cty.NumberFloatVal(0.9),
			"epochs": cty.NumberIntVal(30),
			"widths": cty.ObjectVal(map[string]cty.Value{"min": cty.NumberIntVal(4), "max": cty.NumberIntVal(2048)}),
			"token":  cty.StringVal("s3cret"),
		}
		if diff := cmp.Diff(wantVars, p.Vars, ctyEqual); diff != "" {
			t.Errorf("Vars (-want +got):\n%s", diff)
		}
		if !p.Variables["token"].Sensitive || p.Variables["target"].Sensitive {
			t.Error("sensitive flags wrong")
		}
		if p.Variables["target"].Description != "Accuracy the model must reach." || !p.Variables["target"].Default.RawEquals(cty.NumberFloatVal(0.95)) {
			t.Errorf("target variable: %+v", p.Variables["target"])
		}
		if p.Telemetry != (Telemetry{OTLPEndpoint: "localhost:4317", Protocol: "grpc"}) {
			t.Errorf("Telemetry = %+v", p.Telemetry)
		}
		if p.Required.Version != ">= 0.1.0" {
			t.Errorf("required_version = %q", p.Required.Version)
		}
		prune := p.Required.Plugins["prune"].Value
		if !prune.Type().IsObjectType() || prune.GetAttr("source").AsString() != "example.com/acme/prune" {
			t.Errorf("required_plugins.prune = %#v", prune)
		}
		if diff := cmp.Diff([]string{quickstart}, p.Paths); diff != "" {
			t.Errorf("Paths (-want +got):\n%s", diff)
		}
		if _, ok := p.Files[quickstart]; !ok {
			t.Errorf("Files lacks %s", quickstart)
		}
	})
}

func TestVariablePrecedence(t *testing.T) {
	dir := t.TempDir()
	pipeline := filepath.Join(dir, "p.hcl")
	write(t, pipeline, `
variable "n" {
  type    = number
  default = 1
}
variable "s" {
  default = "default"
}
variable "l" {
  type    = list(string)
  default = []
}
stage "standardize" "x" {
  input   = stage.standardize.y
  columns = concat(var.l, [var.s, tostring(var.n)])
}
stage "standardize" "y" {
  input = stage.standardize.z
}
stage "standardize" "z" {
  input = stage.standardize.y
}
`)
	// The cycle between y and z is deliberate: a graph error must not keep
	// variables and stage configs from being resolved and reported.
	first := filepath.Join(dir, "first.vars.hcl")
	second := filepath.Join(dir, "second.vars.hcl")
	write(t, first, "n = 2\ns = \"first\"\n")
	write(t, second, "n = 3\n")

	tests := []struct {
		name string
		opts []LoadOption
		want map[string]cty.Value
	}{
		{"defaults", nil, map[string]cty.Value{
			"n": cty.NumberIntVal(1), "s": cty.StringVal("default"), "l": cty.ListValEmpty(cty.String)}},
		{"var-file beats default", []LoadOption{WithVarFiles(first)}, map[string]cty.Value{
			"n": cty.NumberIntVal(2), "s": cty.StringVal("first"), "l": cty.ListValEmpty(cty.String)}},
		{"later var-file beats earlier", []LoadOption{WithVarFiles(first, second)}, map[string]cty.Value{
			"n": cty.NumberIntVal(3), "s": cty.StringVal("first"), "l": cty.ListValEmpty(cty.String)}},
		{"-var beats var-files, parsed by type", []LoadOption{
			WithVars(map[string]string{"n": "4", "s": "[not, a, list]", "l": `["a", "b"]`}), WithVarFiles(first, second),
		}, map[string]cty.Value{
			"n": cty.NumberIntVal(4), "s": cty.StringVal("[not, a, list]"),
			"l": cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, diags := Load([]string{pipeline}, newFakeCatalog(), tt.opts...)
			var summaries []string
			for _, d := range diags {
				summaries = append(summaries, d.Summary)
			}
			if diff := cmp.Diff([]string{"Cycle among stages"}, summaries); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, p.Vars, ctyEqual); diff != "" {
				t.Errorf("Vars (-want +got):\n%s", diff)
			}
			cols := p.Stage("standardize.x").Config.GetAttr("columns")
			wantCols := slices.Concat(tt.want["l"].AsValueSlice(), []cty.Value{tt.want["s"], cty.StringVal(tt.want["n"].AsBigFloat().String())})
			if diff := cmp.Diff(cty.ListVal(wantCols), cols, ctyEqual); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
		})
	}
}

func write(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHash(t *testing.T) {
	t.Chdir(repoRoot)
	load := func(opts ...LoadOption) string {
		return mustLoad(t, []string{quickstart}, opts...).Hash
	}
	a := load(WithVars(map[string]string{"epochs": "30"}))
	if len(a) != 64 {
		t.Fatalf("hash %q is not hex sha256", a)
	}
	if b := load(WithVars(map[string]string{"epochs": "30"})); a != b {
		t.Errorf("same inputs, different hashes: %s %s", a, b)
	}
	if b := load(WithVars(map[string]string{"epochs": "31"})); a == b {
		t.Error("a different variable value gave the same hash")
	}
	// The value, not how it was given, counts.
	dir := t.TempDir()
	vf := filepath.Join(dir, "v.vars.hcl")
	write(t, vf, "epochs = 30\n")
	if b := load(WithVarFiles(vf)); a != b {
		t.Errorf("epochs=30 from a var-file hashes differently from -var: %s %s", a, b)
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b_stages.hcl"), `
stage "evaluation" "train" {
  input   = stage.model_choice.mlp
  dataset = dataset.d
  epochs  = var.epochs
}
stage "model_choice" "mlp" {
  input  = stage.requirements.r
  family = "mlp"
}
`)
	write(t, filepath.Join(dir, "a_data.hcl"), `
dataset "d" {
  generator = "spirals"
  target    = "label"
}
stage "requirements" "r" {
  dataset = dataset.d
}
`)
	write(t, filepath.Join(dir, "c.vars.hcl"), "epochs = 3\n")   // skipped in a directory
	write(t, filepath.Join(dir, ".hidden.hcl"), "garbage {{{\n") // skipped too
	write(t, filepath.Join(dir, "vars.hcl"), "variable \"epochs\" {\n  type = number\n}\n")

	p := mustLoad(t, []string{dir}, WithVarFiles(filepath.Join(dir, "c.vars.hcl")))
	want := []string{filepath.Join(dir, "a_data.hcl"), filepath.Join(dir, "b_stages.hcl"), filepath.Join(dir, "vars.hcl")}
	if diff := cmp.Diff(want, p.Paths); diff != "" {
		t.Errorf("Paths (-want +got):\n%s", diff)
	}
	var order []string
	for _, s := range p.Stages {
		order = append(order, s.Addr)
	}
	if diff := cmp.Diff([]string{"dataset.d", "requirements.r", "model_choice.mlp", "evaluation.train"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if _, ok := p.Files[filepath.Join(dir, "c.vars.hcl")]; !ok {
		t.Error("var-file missing from Files")
	}
}

func TestLoadPathErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{"no paths", nil, "No pipeline given"},
		{"missing file", []string{filepath.Join(dir, "nope.hcl")}, "Cannot read pipeline"},
		{"empty directory", []string{dir}, "No pipeline files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, diags := Load(tt.paths, newFakeCatalog())
			if p == nil || len(diags) != 1 || diags[0].Summary != tt.want || diags[0].Subject != nil {
				t.Errorf("got %v, want one %q without subject", diags, tt.want)
			}
		})
	}
}

func TestNilCatalog(t *testing.T) {
	l := newLoader(nil, nil)
	_, diags := l.load([]source{{name: "p.hcl", src: []byte(`stage "evaluation" "x" {}`)}})
	if len(diags) != 1 || diags[0].Summary != "Unknown stage kind" {
		t.Errorf("diags = %v", diags)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        string
	}{
		{"aligns", "stage \"a\" \"b\" {\nx=1\nlonger = 2\n}\n", "stage \"a\" \"b\" {\n  x      = 1\n  longer = 2\n}\n", ""},
		{"unchanged", "locals {\n  a = 1\n}\n", "locals {\n  a = 1\n}\n", ""},
		{"syntax error", "stage \"a\" {\n", "", "Unclosed configuration block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, diags := Format([]byte(tt.in), "f.hcl")
			if tt.wantErr != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.wantErr) || out != nil {
					t.Errorf("Format = %q, %v; want error %q", out, diags, tt.wantErr)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if diff := cmp.Diff(tt.want, string(out)); diff != "" {
				t.Errorf("Format (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		given string
		cands []string
		want  string
	}{
		{"evalution", []string{"dataset", "evaluation", "resize"}, "evaluation"},
		{"epoch", []string{"epochs", "parallelism"}, "epochs"},
		{"zzz", []string{"epochs"}, ""},
		{"ab", []string{"ac", "ab"}, "ac"}, // never itself
		{"x", nil, ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.given, tt.cands); got != tt.want {
			t.Errorf("suggest(%q, %v) = %q, want %q", tt.given, tt.cands, got, tt.want)
		}
	}
}

// TestDiagnosticsSorted checks the reading order: file, then position.
func TestDiagnosticsSorted(t *testing.T) {
	l := newLoader(newFakeCatalog(), nil)
	_, diags := l.load([]source{
		{name: "b.hcl", src: []byte("stage \"nope\" \"x\" {}\nstage \"evaluation\" \"y\" {\n  epochs = \"x\"\n}\n")},
		{name: "a.hcl", src: []byte("stage \"nada\" \"z\" {}\n")},
	})
	var got []string
	for _, d := range diags {
		got = append(got, d.Subject.String()+" "+d.Summary)
	}
	want := []string{
		"a.hcl:1,7-13 Unknown stage kind",
		"b.hcl:1,7-13 Unknown stage kind",
		"b.hcl:2,1-23 Missing input port",
		"b.hcl:2,1-23 Missing input port",
		`b.hcl:3,12-15 Incorrect attribute value type`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestPluginDefects checks that a plugin describing itself wrongly gets a
// diagnostic naming it, not a panic or a silent pass.
func TestPluginDefects(t *testing.T) {
	cat := newFakeCatalog()
	cat.plugins["shoddy"] = &describe.PluginDescription{
		Name: "shoddy", Version: "0.0.1",
		Stages: []describe.StageDescription{
			{
				Kind: "bad_schema",
				Config: describe.ConfigSchema{
					Attributes: []describe.AttributeSchema{
						attr("ok", `"number"`, false),
						attr("weird", `"quaternion"`, false),
						attr("timeout", `"string"`, false),
						attr("ok", `"string"`, false),
					},
					Blocks: []describe.BlockSchema{{Name: "b", Nesting: "map"}},
				},
				Inputs:  []describe.PortDescription{{Name: "plugin"}},
				Outputs: []describe.PortDescription{{Name: "out", ArrowSchema: []byte("not arrow")}},
			},
			{
				Kind:    "bad_loop",
				Inputs:  []describe.PortDescription{{Name: "input", ArrowSchema: schemaBytes(str("candidate_id"))}},
				Outputs: []describe.PortDescription{{Name: "decision"}},
				Loop:    &sdk.Loop{DecisionPort: "decision", ProposalsPort: "proposals"},
			},
		},
	}
	src := `
stage "bad_schema" "x" {
  plugin = "shoddy"
  ok     = 1
}
stage "evaluation" "e" {
  input   = stage.bad_schema.x
  dataset = stage.bad_schema.x
  epochs  = 1
}
stage "bad_loop" "l" {
  plugin     = "shoddy"
  input      = stage.evaluation.e
  loop_to    = stage.evaluation.e
  max_rounds = 2
}
`
	l := newLoader(cat, nil)
	p, diags := l.load([]source{{name: "p.hcl", src: []byte(src)}})
	checkRanges(t, p.Files, diags)
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary+": "+d.Detail)
	}
	want := []string{
		`Invalid plugin description: The plugin "shoddy" declares an unreadable Arrow schema for the output port "out" of the stage kind "bad_schema": ` +
			`arrow/ipc: could not read message schema: arrow/ipc: could not read continuation indicator: damaged Arrow stream: message metadata of 544501614 bytes. This is a bug in the plugin; report it to its author.`,
		`Invalid plugin schema: The plugin "shoddy" (version 0.0.1) declares an unusable schema for the stage kind "bad_schema": "ok" is declared twice; ` +
			`the block "b" has the unknown nesting "map"; the config entry "timeout" clashes with a host attribute or an input port; ` +
			`the input port "plugin" clashes with a host attribute; the type of "weird" is not a cty type: invalid primitive type name "quaternion". ` +
			`This is a bug in the plugin; report it to its author.`,
		`Invalid plugin description: The plugin "shoddy" says the stage kind "bad_loop" proposes on the output port "proposals", which it does not declare. ` +
			`This is a bug in the plugin; report it to its author.`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
