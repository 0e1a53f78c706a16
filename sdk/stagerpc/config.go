package stagerpc

import (
	"errors"
	"fmt"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"
)

// EncodeConfig encodes a stage's constant config value as the wire carries
// it: msgpack, with its type in go-cty's JSON form. Every host that hands a
// config on (to a plugin, or to another machine that will) encodes it here,
// so the value a plugin decodes is the one the pipeline evaluated. The zero
// cty.Value stands for an empty config.
func EncodeConfig(v cty.Value) (msgpack, typeJSON []byte, err error) {
	if v == cty.NilVal {
		v = cty.EmptyObjectVal
	}
	v, _ = v.UnmarkDeep()
	if !v.IsWhollyKnown() {
		return nil, nil, errors.New("config value is not fully known: the host sends constants only")
	}
	ty := v.Type()
	if msgpack, err = ctymsgpack.Marshal(v, ty); err != nil {
		return nil, nil, fmt.Errorf("encoding config: %w", err)
	}
	if typeJSON, err = ctyjson.MarshalType(ty); err != nil {
		return nil, nil, fmt.Errorf("encoding config type: %w", err)
	}
	return msgpack, typeJSON, nil
}

// DecodeConfig is EncodeConfig's inverse. The bytes may come from outside
// the process: a decoder bug is an error, not a crash.
func DecodeConfig(msgpack, typeJSON []byte) (val cty.Value, err error) {
	defer func() {
		if p := recover(); p != nil {
			val, err = cty.NilVal, fmt.Errorf("config value: %v", p)
		}
	}()
	if len(typeJSON) == 0 {
		return cty.EmptyObjectVal, nil
	}
	ty, err := ctyjson.UnmarshalType(typeJSON)
	if err != nil {
		return cty.NilVal, fmt.Errorf("config type: %w", err)
	}
	val, err = ctymsgpack.Unmarshal(msgpack, ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("config value: %w", err)
	}
	return val, nil
}
