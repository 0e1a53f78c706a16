package stagerpc

import (
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestConfigRoundTrip(t *testing.T) {
	v := cty.ObjectVal(map[string]cty.Value{
		"column": cty.StringVal("x0"),
		"min":    cty.NullVal(cty.Number),
		"depth":  cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberFloatVal(2.5)}),
		"family": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"kind": cty.StringVal("axis")})}),
	})
	msg, ty, err := EncodeConfig(v.Mark("sensitive"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeConfig(msg, ty)
	if err != nil {
		t.Fatal(err)
	}
	if !got.RawEquals(v) {
		t.Errorf("round trip = %#v, want %#v", got, v)
	}
	msg, ty, err = EncodeConfig(cty.NilVal)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeConfig(msg, ty); err != nil || !got.RawEquals(cty.EmptyObjectVal) {
		t.Errorf("the zero value decodes to %#v, %v; want an empty object", got, err)
	}
	if _, _, err := EncodeConfig(cty.ObjectVal(map[string]cty.Value{"n": cty.UnknownVal(cty.Number)})); err == nil {
		t.Error("an unknown value is encoded; the host sends constants only")
	}
	if _, err := DecodeConfig([]byte{0xc1}, []byte(`"number"`)); err == nil {
		t.Error("a damaged message decodes")
	}
}
