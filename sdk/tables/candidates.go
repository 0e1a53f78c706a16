package tables

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Candidates columns.
const (
	ColCandidateID   = "candidate_id"
	ColRound         = "round"
	ColFamily        = "family"
	ColDepth         = "depth"
	ColWidth         = "width"
	ColParams        = "params"
	ColFLOPs         = "flops"
	ColLearningRate  = "learning_rate"
	ColBatchSize     = "batch_size"
	ColEpochs        = "epochs"
	ColPreprocess    = "preprocess"
	ColQuantize      = "quantize"
	ColPruneFraction = "prune_fraction"
	ColName          = "name"
	ColFamilyKind    = "family_kind"
	ColSize          = "size"
	ColKnobs         = "knobs"
	ColRepeat        = "repeat"
	ColSamples       = "samples"
)

// Family kinds: how a family's candidates are made, and so how a search
// may propose more of them.
const (
	// KindMLP is the built-in trainer's MLP (depth, width) and its linear
	// baseline; any width in range is a real model.
	KindMLP = "mlp"
	// KindTable is the rows of a file of named models; only those rows
	// exist.
	KindTable = "table"
	// KindAxis is one ordered size variable of any trainer, with knobs
	// computed from it; only the axis's grid points exist.
	KindAxis = "axis"
)

// Built-in family names of KindMLP.
const (
	FamilyMLP    = "mlp"
	FamilyLinear = "linear"
)

// None is the value of preprocess and quantize when nothing is applied.
const None = "none"

// CandidatesSchema is the candidates table: one row per model to train.
// name, family_kind, size, knobs, repeat and samples came last and may be
// absent or null (tables written before them): a reader then takes the name
// from candidate_id, the kind as mlp, the size as the width, the repeat as
// 0 and the samples as 0 (every training row).
var CandidatesSchema = arrow.NewSchema([]arrow.Field{
	{Name: ColCandidateID, Type: arrow.BinaryTypes.String},
	{Name: ColRound, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColFamily, Type: arrow.BinaryTypes.String},
	{Name: ColDepth, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColWidth, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColParams, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColFLOPs, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColLearningRate, Type: arrow.PrimitiveTypes.Float64},
	{Name: ColBatchSize, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColEpochs, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColPreprocess, Type: arrow.BinaryTypes.String},
	{Name: ColQuantize, Type: arrow.BinaryTypes.String},
	{Name: ColPruneFraction, Type: arrow.PrimitiveTypes.Float64},
	{Name: ColName, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColFamilyKind, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColSize, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColKnobs, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColRepeat, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColSamples, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

// Candidate is one row of the candidates table.
type Candidate struct {
	// ID is unique among a run's candidates: the model's Name, with a
	// suffix for a variant (quantized, pruned) of it.
	ID    string
	Round int32
	// Family names the family the model belongs to ("mlp", a table's
	// group, an axis family's name); Kind is the family's kind.
	Family string
	Kind   string
	// Name is the model's own name ("mlp-d2-w64", "convnet-s8", a table
	// row's name), shared by its variants.
	Name string
	// Size is the model's place on its family's size axis: the width of
	// an MLP, the size variable of an axis, the declared size column of a
	// table. Candidates of a family are ordered by Params, then Size.
	Size float64
	// Depth and Width are the MLP's; 0 for other kinds.
	Depth, Width int32
	// Params is the parameter count (0 when the trainer reports it), FLOPs
	// the forward FLOPs of one sample (0 when unknown).
	Params, FLOPs int64
	LearningRate  float64
	BatchSize     int32
	Epochs        int32
	Preprocess    string
	Quantize      string
	PruneFraction float64
	// Knobs are the model's named settings as a JSON object: an axis's
	// knobs, a table row's other columns, an MLP's depth and width.
	Knobs Knobs
	// Repeat numbers the measurements of one candidate: 0 is the first,
	// r the (r+1)-th, trained from a seed of its own. The repeats of a
	// candidate share its ID and every other column but Round.
	Repeat int32
	// Samples is the training resource in fresh data: how many rows of
	// the training split the model trains on, a subsample the trainer
	// draws the same way for every trial (the validation and test rows
	// are never among them); 0 (null in the table) trains on every
	// training row. A results row of the evaluation stage holds the rows
	// the trial trained on, the whole split's count for 0. Like Epochs,
	// it is a setting of the training, not of the model: the resize
	// stage's compute_optimal varies it as D = samples x epochs.
	Samples int64
}

// BuildCandidates returns the candidates as one batch of CandidatesSchema.
// The caller releases it.
func BuildCandidates(mem memory.Allocator, cs []Candidate) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, CandidatesSchema)
	defer b.Release()
	for _, c := range cs {
		appendCandidate(b, c)
	}
	return b.NewRecordBatch()
}

// appendCandidate appends c to the first len(CandidatesSchema) fields of b.
func appendCandidate(b *array.RecordBuilder, c Candidate) {
	b.Field(0).(*array.StringBuilder).Append(c.ID)
	b.Field(1).(*array.Int32Builder).Append(c.Round)
	b.Field(2).(*array.StringBuilder).Append(c.Family)
	b.Field(3).(*array.Int32Builder).Append(c.Depth)
	b.Field(4).(*array.Int32Builder).Append(c.Width)
	b.Field(5).(*array.Int64Builder).Append(c.Params)
	b.Field(6).(*array.Int64Builder).Append(c.FLOPs)
	b.Field(7).(*array.Float64Builder).Append(c.LearningRate)
	b.Field(8).(*array.Int32Builder).Append(c.BatchSize)
	b.Field(9).(*array.Int32Builder).Append(c.Epochs)
	b.Field(10).(*array.StringBuilder).Append(c.Preprocess)
	b.Field(11).(*array.StringBuilder).Append(c.Quantize)
	b.Field(12).(*array.Float64Builder).Append(c.PruneFraction)
	c = c.WithDefaults()
	b.Field(13).(*array.StringBuilder).Append(c.Name)
	b.Field(14).(*array.StringBuilder).Append(c.Kind)
	b.Field(15).(*array.Float64Builder).Append(c.Size)
	b.Field(16).(*array.StringBuilder).Append(c.Knobs.String())
	b.Field(17).(*array.Int32Builder).Append(c.Repeat)
	if c.Samples > 0 {
		b.Field(18).(*array.Int64Builder).Append(c.Samples)
	} else {
		b.Field(18).AppendNull()
	}
}

// ReadCandidates decodes a batch holding the candidates columns (other
// columns are ignored). Every problem is reported at once.
func ReadCandidates(rec arrow.RecordBatch) ([]Candidate, error) {
	c := newColumns(rec, CandidatesSchema, ColName, ColFamilyKind, ColSize, ColKnobs, ColRepeat, ColSamples)
	if err := c.err(); err != nil {
		return nil, err
	}
	out := make([]Candidate, rec.NumRows())
	var errs []error
	for r := range out {
		k, err := ParseKnobs(c.str(16, r))
		if err != nil {
			errs = append(errs, &CellError{Row: int64(r), Column: ColKnobs, Err: err})
		}
		cand := Candidate{
			ID: c.str(0, r), Round: c.i32(1, r), Family: c.str(2, r),
			Depth: c.i32(3, r), Width: c.i32(4, r),
			Params: c.i64(5, r), FLOPs: c.i64(6, r),
			LearningRate: c.f64(7, r), BatchSize: c.i32(8, r), Epochs: c.i32(9, r),
			Preprocess: c.str(10, r), Quantize: c.str(11, r), PruneFraction: c.f64(12, r),
			Name: c.str(13, r), Kind: c.str(14, r), Size: c.f64(15, r), Knobs: k,
			Repeat: c.i32Or(17, r, 0), Samples: max(c.i64(18, r), 0),
		}
		if cand.Repeat < 0 {
			errs = append(errs, &CellError{Row: int64(r), Column: ColRepeat, Err: fmt.Errorf("repeat %d is negative; repeats count from 0", cand.Repeat)})
		}
		if s, ok := c.i64Set(18, r); ok && s <= 0 {
			errs = append(errs, &CellError{Row: int64(r), Column: ColSamples, Err: fmt.Errorf("samples %d is not positive; leave it null to train on every training row", s)})
		}
		if math.IsNaN(cand.Size) {
			cand.Size = 0
		}
		out[r] = cand.WithDefaults()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Model is the candidate without its repeat and round: what every
// repeat of it shares.
func (c Candidate) Model() Candidate {
	c.Repeat, c.Round = 0, 0
	return c
}

// CellError is a bad value in one cell of a table.
type CellError struct {
	Row    int64
	Column string
	Err    error
}

func (e *CellError) Error() string {
	return fmt.Sprintf("row %d, column %s: %v", e.Row, e.Column, e.Err)
}

func (e *CellError) Unwrap() error { return e.Err }

// Knobs are a candidate's named settings. Values are float64, string or
// bool, as JSON gives them.
type Knobs map[string]any

// ParseKnobs decodes the knobs column's JSON object ("" is none).
func ParseKnobs(s string) (Knobs, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var k map[string]any
	if err := json.Unmarshal([]byte(s), &k); err != nil {
		return nil, fmt.Errorf("knobs are not a JSON object: %w", err)
	}
	for name, v := range k {
		switch v.(type) {
		case float64, string, bool:
		default:
			return nil, fmt.Errorf("knob %q is %T; knobs are numbers, strings or booleans", name, v)
		}
	}
	return k, nil
}

// String encodes the knobs as a JSON object with sorted keys ("" when
// there are none), so equal knobs are equal text.
func (k Knobs) String() string {
	if len(k) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range slices.Sorted(maps.Keys(k)) {
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(name)
		val, err := json.Marshal(k[name])
		if err != nil {
			val = []byte("null")
		}
		b.Write(key)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.String()
}

// Number returns a numeric knob.
func (k Knobs) Number(name string) (float64, bool) {
	v, ok := k[name].(float64)
	return v, ok
}

// WithDefaults is c as a reader returns it: the name taken from the id,
// the kind mlp and the size the width when they are unset, and a negative
// repeat 0.
func (c Candidate) WithDefaults() Candidate {
	c.Repeat = max(c.Repeat, 0)
	c.Name = cmp.Or(c.Name, c.ID)
	c.Kind = cmp.Or(c.Kind, KindMLP)
	if c.Size == 0 && c.Kind == KindMLP {
		c.Size = float64(c.Width)
	}
	return c
}
