package modelchoice

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// axisValues returns the grid of an axis: every value from min to max a
// step apart (an increment on a linear scale, a ratio on a log scale), or
// a diagnostic-ready error.
func axisValues(a *AxisBlock) ([]float64, error) {
	integer := a.Integer != nil && *a.Integer
	logScale := a.Scale == "log"
	switch {
	case a.Scale != "" && a.Scale != "log" && a.Scale != "linear":
		return nil, fmt.Errorf("scale must be linear or log; found %q", a.Scale)
	case !(a.Min <= a.Max) || math.IsInf(a.Min, 0) || math.IsInf(a.Max, 0):
		return nil, fmt.Errorf("min (%g) must be a number at most max (%g)", a.Min, a.Max)
	case logScale && a.Min <= 0:
		return nil, fmt.Errorf("a log-scale axis needs min above 0; found %g", a.Min)
	case integer && (a.Min != math.Trunc(a.Min) || a.Max != math.Trunc(a.Max)):
		return nil, fmt.Errorf("an integer axis needs integer min and max; found %g and %g", a.Min, a.Max)
	case !integer && a.Step == nil:
		return nil, errors.New("a non-integer axis needs a step: an increment on a linear scale, a ratio above 1 on a log scale")
	}
	step := 1.0
	if a.Step != nil {
		step = *a.Step
	}
	var out []float64
	add := func(v float64) error {
		if integer {
			v = math.Round(v)
		}
		if n := len(out); n > 0 && out[n-1] == v {
			return nil
		}
		if len(out) == maxSpace {
			return fmt.Errorf("the axis has more than %d values; raise step or narrow min..max", maxSpace)
		}
		out = append(out, v)
		return nil
	}
	switch {
	case logScale && a.Step != nil:
		if !(step > 1) {
			return nil, fmt.Errorf("on a log scale step is a ratio above 1 (2 doubles each time); found %g", step)
		}
		for i := 0; ; i++ {
			v := a.Min * math.Pow(step, float64(i))
			if v > a.Max*(1+1e-12) {
				break
			}
			if err := add(min(v, a.Max)); err != nil {
				return nil, err
			}
		}
	default:
		if !(step > 0) || math.IsInf(step, 0) {
			return nil, fmt.Errorf("step must be a positive number; found %g", step)
		}
		for i := 0; ; i++ {
			v := a.Min + step*float64(i)
			if v > a.Max+1e-9*math.Abs(a.Max) {
				break
			}
			if err := add(v); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// axisSpace makes every model of an axis family, ordered by size. Each
// model is named FAMILY-NAMEVALUE ("convnet-s8").
func axisSpace(f FamilyBlock, path string, hp hyper) ([]tables.Candidate, error) {
	values, err := axisValues(f.Axis)
	if err != nil {
		return nil, sdk.AttrError(path+".axis", "Invalid axis", err.Error()+".")
	}
	family := f.Name
	if family == "" {
		family = tables.KindAxis
	}
	out := make([]tables.Candidate, 0, len(values))
	for _, v := range values {
		vars := map[string]cty.Value{f.Axis.Name: cty.NumberFloatVal(v)}
		knobs := tables.Knobs{f.Axis.Name: v}
		if f.Knobs != nil {
			kv, err := f.Knobs.Eval(vars)
			if err != nil {
				return nil, err
			}
			if !(kv.Type().IsObjectType() || kv.Type().IsMapType()) || kv.IsNull() {
				return nil, sdk.AttrError(path+".knobs", "Knobs are not an object", fmt.Sprintf("knobs must be an object of named values, such as { d_model = 64 * s }; it gave %s.", kv.Type().FriendlyName()))
			}
			for name, x := range kv.AsValueMap() {
				k, err := knobValue(x)
				if err != nil {
					return nil, sdk.AttrError(path+".knobs", "Invalid knob", fmt.Sprintf("At %s = %g, knob %s: %v.", f.Axis.Name, v, name, err))
				}
				knobs[name] = k
				vars[name] = x
			}
		}
		c := tables.Candidate{
			Family: family, Kind: tables.KindAxis, Size: v, Knobs: knobs,
			LearningRate: hp.learningRate, BatchSize: int32(hp.batchSize), Epochs: int32(hp.epochs),
			Preprocess: tables.None, Quantize: tables.None,
		}
		c.Name = family + "-" + f.Axis.Name + strconv.FormatFloat(v, 'g', -1, 64)
		c.ID = c.Name
		for _, e := range []struct {
			attr string
			expr *sdk.Expression
			dst  *int64
		}{{"params", f.Params, &c.Params}, {"flops", f.FLOPs, &c.FLOPs}} {
			if e.expr == nil {
				continue
			}
			n, err := e.expr.Eval(vars)
			if err != nil {
				return nil, err
			}
			count, err := countValue(n)
			if err != nil {
				return nil, sdk.AttrError(path+"."+e.attr, "Invalid "+e.attr, fmt.Sprintf("At %s = %g, %s %v.", f.Axis.Name, v, e.attr, err))
			}
			*e.dst = count
		}
		out = append(out, c)
	}
	sortSpace(out)
	return out, nil
}

// knobValue turns an evaluated knob into a number, a string or a bool.
func knobValue(v cty.Value) (any, error) {
	if v.IsNull() {
		return nil, errors.New("is null")
	}
	switch v.Type() {
	case cty.Number:
		f, _ := v.AsBigFloat().Float64()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, errors.New("is not a finite number")
		}
		return f, nil
	case cty.String:
		return v.AsString(), nil
	case cty.Bool:
		return v.True(), nil
	}
	return nil, fmt.Errorf("is %s; a knob is a number, a string or a bool", v.Type().FriendlyName())
}

// countValue turns an evaluated count into a positive int64.
func countValue(v cty.Value) (int64, error) {
	if v.IsNull() || v.Type() != cty.Number {
		return 0, fmt.Errorf("is %s, not a number", v.Type().FriendlyName())
	}
	f, _ := v.AsBigFloat().Float64()
	if !(f >= 1 && f < 1<<62) {
		return 0, fmt.Errorf("is %g; a count is at least 1 and below 2^62", f)
	}
	return int64(math.Round(f)), nil
}
