package sdk

import (
	"reflect"
	"testing"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	"github.com/sweetspot-ml/sweetspot/sdk/internal/wire"
)

// FuzzDecodeWireConfig feeds the plugin's config decoding what a host (or
// anything speaking to the plugin's socket) may send: it must report
// problems, never panic.
func FuzzDecodeWireConfig(f *testing.F) {
	for _, v := range []cty.Value{
		cty.EmptyObjectVal,
		cty.ObjectVal(map[string]cty.Value{
			"name":   cty.StringVal("x"),
			"seed":   cty.NumberIntVal(7),
			"depth":  cty.ListVal([]cty.Value{cty.NumberIntVal(1)}),
			"budget": cty.ObjectVal(map[string]cty.Value{"max_trials": cty.NumberIntVal(3), "max_wall": cty.StringVal("1m")}),
			"layer":  cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"width": cty.NumberIntVal(8)})}),
			"tags":   cty.MapVal(map[string]cty.Value{"k": cty.StringVal("v")}),
		}),
		cty.ObjectVal(map[string]cty.Value{"small": cty.NumberFloatVal(1e300), "extra": cty.DynamicVal}),
	} {
		msg, err := ctymsgpack.Marshal(v, v.Type())
		if err != nil {
			f.Fatal(err)
		}
		ty, err := ctyjson.MarshalType(v.Type())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg, ty)
	}
	f.Fuzz(func(t *testing.T, msg, ty []byte) {
		v, err := wire.DecodeConfig(msg, ty)
		if err != nil {
			return
		}
		_, _ = decodeConfig(reflect.TypeFor[fullConfig](), v)
	})
}
