package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/zclconf/go-cty/cty"
)

type budgetConfig struct {
	MaxTrials int           `hcl:"max_trials" doc:"Most trials to run."`
	MaxWall   time.Duration `hcl:"max_wall,optional"`
}

type layerConfig struct {
	Width int     `hcl:"width"`
	Drop  float64 `hcl:"dropout,optional"`
}

type rangeValue struct {
	Min int  `hcl:"min"`
	Max *int `hcl:"max"`
}

type fullConfig struct {
	Name     string            `hcl:"name" doc:"Display name."`
	Enabled  bool              `hcl:"enabled,optional"`
	Rate     float64           `hcl:"rate,optional"`
	Small    int8              `hcl:"small,optional"`
	Count    uint32            `hcl:"count,optional"`
	Depth    []int             `hcl:"depth,optional"`
	Tags     map[string]string `hcl:"tags,optional"`
	Width    rangeValue        `hcl:"width,optional"`
	Timeout  time.Duration     `hcl:"timeout,optional"`
	Seed     *int64            `hcl:"seed"`
	Extra    cty.Value         `hcl:"extra,optional"`
	Budget   budgetConfig      `hcl:"budget,block"`
	Early    *budgetConfig     `hcl:"early_stop,block"`
	Layers   []layerConfig     `hcl:"layer,block" doc:"One per hidden layer."`
	internal int
	Ignored  string
}

func TestConfigSchemaOf(t *testing.T) {
	got, err := configSchemaOf(reflect.TypeFor[fullConfig]())
	if err != nil {
		t.Fatal(err)
	}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	budget := describe.ConfigSchema{Attributes: []describe.AttributeSchema{
		{Name: "max_trials", Type: raw(`"number"`), Required: true, Description: "Most trials to run."},
		{Name: "max_wall", Type: raw(`"string"`)},
	}}
	want := describe.ConfigSchema{
		Attributes: []describe.AttributeSchema{
			{Name: "name", Type: raw(`"string"`), Required: true, Description: "Display name."},
			{Name: "enabled", Type: raw(`"bool"`)},
			{Name: "rate", Type: raw(`"number"`)},
			{Name: "small", Type: raw(`"number"`)},
			{Name: "count", Type: raw(`"number"`)},
			{Name: "depth", Type: raw(`["list","number"]`)},
			{Name: "tags", Type: raw(`["map","string"]`)},
			{Name: "width", Type: raw(`["object",{"max":"number","min":"number"},["max"]]`)},
			{Name: "timeout", Type: raw(`"string"`)},
			{Name: "seed", Type: raw(`"number"`)},
			{Name: "extra", Type: raw(`"dynamic"`)},
		},
		Blocks: []describe.BlockSchema{
			{Name: "budget", Nesting: describe.NestingSingle, Required: true, Body: budget},
			{Name: "early_stop", Nesting: describe.NestingSingle, Body: budget},
			{Name: "layer", Nesting: describe.NestingList, Description: "One per hidden layer.", Body: describe.ConfigSchema{Attributes: []describe.AttributeSchema{
				{Name: "width", Type: raw(`"number"`), Required: true},
				{Name: "dropout", Type: raw(`"number"`)},
			}}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema (-want +got):\n%s", diff)
	}

	ty, err := got.ImpliedType()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]cty.Type{
		"budget":     cty.Object(map[string]cty.Type{"max_trials": cty.Number, "max_wall": cty.String}),
		"layer":      cty.List(cty.Object(map[string]cty.Type{"width": cty.Number, "dropout": cty.Number})),
		"depth":      cty.List(cty.Number),
		"extra":      cty.DynamicPseudoType,
		"early_stop": cty.Object(map[string]cty.Type{"max_trials": cty.Number, "max_wall": cty.String}),
	} {
		if got := ty.AttributeType(name); !got.Equals(want) {
			t.Errorf("implied type of %s = %#v, want %#v", name, got, want)
		}
	}
}

func TestConfigSchemaOfErrors(t *testing.T) {
	type unexported struct {
		x int `hcl:"x"`
	}
	type chanAttr struct {
		C chan int `hcl:"c"`
	}
	type intKeys struct {
		M map[int]string `hcl:"m"`
	}
	type badBlock struct {
		B []string `hcl:"b,block"`
	}
	type dup struct {
		A string `hcl:"a"`
		B string `hcl:"a,optional"`
	}
	type label struct {
		L string `hcl:"l,label"`
	}
	type nameless struct {
		R string `hcl:",remain"`
	}
	type blockInAttr struct {
		O struct {
			B budgetConfig `hcl:"b,block"`
		} `hcl:"o"`
	}
	type recursive struct {
		Next *recursive `hcl:"next,block"`
	}
	type anyInList struct {
		Params []struct {
			Values cty.Value `hcl:"values,optional"`
		} `hcl:"param,block"`
	}
	tests := []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"not a struct", reflect.TypeFor[int](), "must be a struct"},
		{"unexported", reflect.TypeFor[unexported](), "must be exported"},
		{"chan", reflect.TypeFor[chanAttr](), "unsupported attribute type chan int"},
		{"int keys", reflect.TypeFor[intKeys](), "map keys must be strings"},
		{"bad block", reflect.TypeFor[badBlock](), "a block field must be a struct"},
		{"duplicate", reflect.TypeFor[dup](), `duplicate hcl name "a"`},
		{"label in the config struct", reflect.TypeFor[label](), "label fields are only allowed in the struct of a block"},
		{"remain", reflect.TypeFor[nameless](), "has no name"},
		{"block in attribute", reflect.TypeFor[blockInAttr](), "cannot hold blocks"},
		{"recursive", reflect.TypeFor[recursive](), "recursive type"},
		{"any type in a list of blocks", reflect.TypeFor[anyInList](), "the attribute values of a list of blocks takes any type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := configSchemaOf(tt.typ)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeConfig(t *testing.T) {
	seven := int64(7)
	five := 5
	minimal := map[string]cty.Value{
		"name":   cty.StringVal("x"),
		"seed":   cty.NumberIntVal(7),
		"budget": cty.ObjectVal(map[string]cty.Value{"max_trials": cty.NumberIntVal(40), "max_wall": cty.NullVal(cty.String)}),
	}
	with := func(extra map[string]cty.Value) cty.Value {
		m := map[string]cty.Value{}
		for k, v := range minimal {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return cty.ObjectVal(m)
	}
	tests := []struct {
		name  string
		in    cty.Value
		want  *fullConfig
		diags []string // "path: summary"
	}{
		{
			name: "minimal",
			in:   with(nil),
			want: &fullConfig{Name: "x", Seed: &seven, Budget: budgetConfig{MaxTrials: 40}},
		},
		{
			name: "everything",
			in: with(map[string]cty.Value{
				"enabled": cty.True,
				"rate":    cty.NumberFloatVal(0.5),
				"small":   cty.NumberIntVal(-3),
				"count":   cty.NumberIntVal(9),
				"depth":   cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)}),
				"tags":    cty.MapVal(map[string]cty.Value{"a": cty.StringVal("b")}),
				"width":   cty.ObjectVal(map[string]cty.Value{"min": cty.NumberIntVal(4), "max": cty.NumberIntVal(5)}),
				"timeout": cty.StringVal("1m30s"),
				"early_stop": cty.ObjectVal(map[string]cty.Value{
					"max_trials": cty.NumberIntVal(3), "max_wall": cty.StringVal("2h"),
				}),
				"layer": cty.ListVal([]cty.Value{
					cty.ObjectVal(map[string]cty.Value{"width": cty.NumberIntVal(8), "dropout": cty.NullVal(cty.Number)}),
					cty.ObjectVal(map[string]cty.Value{"width": cty.NumberIntVal(4), "dropout": cty.NumberFloatVal(0.25)}),
				}),
			}),
			want: &fullConfig{
				Name: "x", Enabled: true, Rate: 0.5, Small: -3, Count: 9, Depth: []int{1, 2},
				Tags: map[string]string{"a": "b"}, Width: rangeValue{Min: 4, Max: &five},
				Timeout: 90 * time.Second, Seed: &seven, Budget: budgetConfig{MaxTrials: 40},
				Early:  &budgetConfig{MaxTrials: 3, MaxWall: 2 * time.Hour},
				Layers: []layerConfig{{Width: 8}, {Width: 4, Drop: 0.25}},
			},
		},
		{
			name: "conversions from strings and tuples",
			in: with(map[string]cty.Value{
				"rate":  cty.StringVal("0.25"),
				"depth": cty.TupleVal([]cty.Value{cty.NumberIntVal(1), cty.StringVal("3")}),
			}),
			want: &fullConfig{Name: "x", Rate: 0.25, Depth: []int{1, 3}, Seed: &seven, Budget: budgetConfig{MaxTrials: 40}},
		},
		{
			name: "dynamic value kept as is",
			in:   with(map[string]cty.Value{"extra": cty.ListVal([]cty.Value{cty.True})}),
			want: &fullConfig{Name: "x", Seed: &seven, Budget: budgetConfig{MaxTrials: 40}, Extra: cty.ListVal([]cty.Value{cty.True})},
		},
		{
			name: "missing required and optional pointer",
			in:   cty.ObjectVal(map[string]cty.Value{"name": cty.NullVal(cty.String)}),
			diags: []string{
				"name: Missing required argument",
				"budget: Missing required block",
			},
		},
		{
			name: "every bad value is reported with its path",
			in: with(map[string]cty.Value{
				"small":   cty.NumberIntVal(300),
				"count":   cty.NumberIntVal(-1),
				"depth":   cty.ListVal([]cty.Value{cty.NumberFloatVal(1.5), cty.NumberIntVal(2)}),
				"rate":    cty.StringVal("fast"),
				"enabled": cty.ListValEmpty(cty.Bool),
				"timeout": cty.StringVal("soon"),
				"width":   cty.ObjectVal(map[string]cty.Value{"max": cty.NumberIntVal(1)}),
				"budget":  cty.ObjectVal(map[string]cty.Value{"max_trials": cty.NumberIntVal(1), "max_wall": cty.StringVal("10 minutes")}),
				"layer": cty.TupleVal([]cty.Value{
					cty.ObjectVal(map[string]cty.Value{"width": cty.NumberIntVal(8)}),
					cty.ObjectVal(map[string]cty.Value{"width": cty.StringVal("wide")}),
				}),
				"tags": cty.MapVal(map[string]cty.Value{"k": cty.ListValEmpty(cty.String)}),
			}),
			diags: []string{
				"enabled: Incorrect attribute value type",
				"rate: Incorrect attribute value type",
				"small: Invalid value",
				"count: Invalid value",
				"depth.0: Invalid value",
				"tags.k: Incorrect attribute value type",
				"width.min: Missing required argument",
				"timeout: Invalid duration",
				"budget.max_wall: Invalid duration",
				"layer.1.width: Incorrect attribute value type",
			},
		},
		{
			name:  "unknown value",
			in:    with(map[string]cty.Value{"rate": cty.UnknownVal(cty.Number)}),
			diags: []string{"rate: Value not known"},
		},
		{
			name:  "not an object",
			in:    cty.StringVal("x"),
			diags: []string{": Invalid stage configuration"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, diags := decodeConfig(reflect.TypeFor[fullConfig](), tt.in)
			var gotDiags []string
			for _, d := range diags {
				gotDiags = append(gotDiags, strings.Join(d.Path, ".")+": "+d.Summary)
				if d.Detail == "" {
					t.Errorf("diagnostic %q has no detail", d.Summary)
				}
			}
			if diff := cmp.Diff(tt.diags, gotDiags); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\n%v", diff, diags)
			}
			if tt.want == nil {
				return
			}
			opts := cmp.Options{
				cmp.AllowUnexported(fullConfig{}),
				cmp.Comparer(func(a, b cty.Value) bool { return a.RawEquals(b) }),
			}
			if diff := cmp.Diff(tt.want, got.(*fullConfig), opts...); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeConfigDurationDetail(t *testing.T) {
	_, diags := decodeConfig(reflect.TypeFor[budgetConfig](), cty.ObjectVal(map[string]cty.Value{
		"max_trials": cty.NumberIntVal(1), "max_wall": cty.StringVal("15 min"),
	}))
	if len(diags) != 1 {
		t.Fatalf("diags = %v", diags)
	}
	want := `"15 min" is not a duration: use a number with a unit, such as "90s", "15m" or "1h30m".`
	if diags[0].Detail != want {
		t.Errorf("detail = %q, want %q", diags[0].Detail, want)
	}
}
