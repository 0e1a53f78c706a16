package exec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// candidate is one row of the candidates table: decoded, and as the
// command sees it (see the package doc, "The candidate").
type candidate struct {
	tables.Candidate
	// fields are the members of the candidate's JSON object, in order:
	// the columns, then the knobs, then the knobs object.
	fields []field
	// extra are the columns an upstream stage added, as is.
	extra []field
}

// field is one member of the candidate's JSON object.
type field struct {
	name string
	// value is a string, int64, uint64, float64, bool or nil, or, for the
	// knobs member, a tables.Knobs.
	value any
	// knob marks a knob at the top level: its environment variable gives
	// way to a column's of the same name.
	knob bool
}

// knobsMember is the JSON member holding every knob as an object.
const knobsMember = tables.ColKnobs

// readCandidates reads a candidates port to its end.
func readCandidates(in sdk.Inputs, port string) ([]candidate, error) {
	r, err := in.Reader(port)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for r.Next() {
		b := r.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		cs, err := tables.ReadCandidates(b)
		if err != nil {
			return nil, &sdk.InputError{Port: port, Row: -1, Err: err}
		}
		for i, c := range cs {
			out = append(out, newCandidate(c, extraColumns(b, i)))
		}
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read port %s: %w", port, err)
	}
	return out, nil
}

// extraColumns are row i's cells of the columns an upstream stage added to
// the candidates table, in column order.
func extraColumns(b arrow.RecordBatch, i int) []field {
	var out []field
	for j, col := range b.Columns() {
		name := b.Schema().Field(j).Name
		if len(tables.CandidatesSchema.FieldIndices(name)) > 0 {
			continue
		}
		out = append(out, field{name: name, value: valueAt(col, i)})
	}
	return out
}

// newCandidate lays out c as the command sees it. The columns come first,
// from the decoded row (so name, family_kind and size are there even when
// an older table lacks them); depth and width only for the mlp kind, where
// they are the model's shape (other kinds leave them 0, and may have knobs
// of those names); not the knobs column's JSON text. Then the columns an
// upstream stage added, then each knob whose name no column has, sorted,
// then "knobs", every knob as an object.
func newCandidate(c tables.Candidate, extra []field) candidate {
	fs := []field{
		{name: tables.ColCandidateID, value: c.ID},
		{name: tables.ColName, value: c.Name},
		{name: tables.ColFamily, value: c.Family},
		{name: tables.ColFamilyKind, value: c.Kind},
		{name: tables.ColSize, value: finite(c.Size)},
	}
	if c.Kind == tables.KindMLP {
		fs = append(fs, field{name: tables.ColDepth, value: int64(c.Depth)}, field{name: tables.ColWidth, value: int64(c.Width)})
	}
	fs = append(fs,
		field{name: tables.ColParams, value: c.Params},
		field{name: tables.ColFLOPs, value: c.FLOPs},
		field{name: tables.ColLearningRate, value: finite(c.LearningRate)},
		field{name: tables.ColBatchSize, value: int64(c.BatchSize)},
		field{name: tables.ColEpochs, value: int64(c.Epochs)},
		field{name: tables.ColPreprocess, value: c.Preprocess},
		field{name: tables.ColQuantize, value: c.Quantize},
		field{name: tables.ColPruneFraction, value: finite(c.PruneFraction)},
		field{name: tables.ColRound, value: int64(c.Round)},
		field{name: tables.ColRepeat, value: int64(c.Repeat)},
	)
	if c.Samples > 0 {
		// Only when set, as the resource it is: the command trains on
		// that many training rows; without it, on all of them.
		fs = append(fs, field{name: tables.ColSamples, value: c.Samples})
	}
	fs = append(fs, extra...)
	taken := map[string]bool{knobsMember: true}
	for _, f := range fs {
		taken[f.name] = true
	}
	for _, k := range slices.Sorted(maps.Keys(c.Knobs)) {
		if !taken[k] {
			fs = append(fs, field{name: k, value: knobValue(c.Knobs[k]), knob: true})
		}
	}
	knobs := tables.Knobs{}
	for k, v := range c.Knobs {
		knobs[k] = knobValue(v)
	}
	fs = append(fs, field{name: knobsMember, value: knobs})
	return candidate{Candidate: c, fields: fs, extra: extra}
}

// knobValue is a knob's value as JSON carries it: a knob read from a table
// is already a float64, string or bool; a non-finite float is null.
func knobValue(v any) any {
	if f, ok := v.(float64); ok {
		return finite(f)
	}
	return v
}

// label names the candidate in span names, logs and progress: its model's
// name, with the candidate_id of a variant (a quantized or pruned copy
// shares its model's name).
func (c candidate) label() string { return candidateLabel(c.Candidate) }

func candidateLabel(c tables.Candidate) string {
	label := c.Name
	if c.ID != c.Name && c.ID != "" {
		label = fmt.Sprintf("%s (%s)", c.Name, c.ID)
	}
	if c.Repeat > 0 {
		label += fmt.Sprintf(" repeat %d", c.Repeat)
	}
	return label
}

// valueAt returns row i of col as a JSON-ready Go value. Floats that JSON
// cannot carry (NaN, ±Inf) are null. Strings are copies: a string cell is
// a view into the batch's buffer, which may be freed (or unmapped) once
// the batch is released, and the value outlives it.
func valueAt(col arrow.Array, i int) any {
	if col.IsNull(i) {
		return nil
	}
	switch c := col.(type) {
	case *array.String:
		return strings.Clone(c.Value(i))
	case *array.LargeString:
		return strings.Clone(c.Value(i))
	case *array.Boolean:
		return c.Value(i)
	case *array.Int8:
		return int64(c.Value(i))
	case *array.Int16:
		return int64(c.Value(i))
	case *array.Int32:
		return int64(c.Value(i))
	case *array.Int64:
		return c.Value(i)
	case *array.Uint8:
		return uint64(c.Value(i))
	case *array.Uint16:
		return uint64(c.Value(i))
	case *array.Uint32:
		return uint64(c.Value(i))
	case *array.Uint64:
		return c.Value(i)
	case *array.Float32:
		return finite(float64(c.Value(i)))
	case *array.Float64:
		return finite(c.Value(i))
	}
	return col.ValueStr(i)
}

func finite(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// JSON is the candidate as one JSON object, members in order.
func (c candidate) JSON() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range c.fields {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.name)
		b.Write(k)
		b.WriteByte(':')
		b.WriteString(jsonValue(f.value))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func jsonValue(v any) string {
	out, err := json.Marshal(v) // a map's keys sorted
	if err != nil {
		return "null"
	}
	return string(out)
}

// envValue is a member's value as an environment variable's text: numbers
// in the shortest form that reads back exactly, null as the empty string,
// the knobs object as JSON text.
func envValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return strings.ReplaceAll(v, "\x00", "")
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case tables.Knobs:
		return jsonValue(v) // JSON escapes a NUL
	}
	return fmt.Sprint(v)
}

// env sets SWEETSPOT_<NAME> in env for each member of the candidate's
// object. Names that differ but map to one variable (a knob "Width" and
// a column "width", knobs "lr-max" and "lr_max") give it the first
// member's value: the columns and the knobs object before the knobs at
// the top level, knobs in sorted order.
func (c candidate) env(env map[string]string) {
	set := map[string]bool{}
	for _, knobs := range []bool{false, true} {
		for _, f := range c.fields {
			k := envName(f.name)
			if f.knob != knobs || f.name == "" || set[k] {
				continue
			}
			set[k] = true
			env[k] = envValue(f.value)
		}
	}
}

// envName is SWEETSPOT_ and a column name in upper case, with anything but
// letters, digits and _ replaced by _.
func envName(column string) string {
	var b strings.Builder
	b.WriteString("SWEETSPOT_")
	for _, r := range strings.ToUpper(column) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
