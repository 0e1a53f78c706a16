package tables

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Models columns, beside the candidates and results columns they share
// (candidate_id, round, repeat, name, preprocess, quantize,
// prune_fraction, accuracy, loss, rmse, latency_p95_ms).
const (
	ColFormat   = "format"
	ColDigest   = "digest"
	ColBytes    = "bytes"
	ColArtifact = "artifact"
)

// Model formats: what the bytes of a models row are. A format names its
// version, so a reader refuses bytes newer than it knows.
const (
	// FormatSweetspotMLP is the built-in trainer's model file: the compact
	// weights with the fitted preprocessing and the input columns
	// (plugins/evaluation writes it; `sweetspot model` reads it).
	FormatSweetspotMLP = "sweetspot-mlp/1"
	// FormatONNX is an ONNX model: a trainer's artifact file named *.onnx
	// (the exec stage keeps it as written).
	FormatONNX = "onnx"
	// FormatFile is a trainer's artifact file of another kind, its bytes
	// as written; sweetspot does not read it.
	FormatFile = "file"
	// FormatTar is a trainer's artifact directory as an uncompressed tar
	// archive (PAX) of its directories and regular files in name order,
	// with no owners and every time the Unix epoch, so that the same files
	// give the same bytes and digest.
	FormatTar = "tar"
)

// DigestPrefix starts every digest: the hash is sha256, hex-encoded.
const DigestPrefix = "sha256:"

// ModelsSchema is the models table: one row per trial that gave a model,
// holding the model's bytes whole (large_binary: a model may pass 2 GiB)
// with their format and digest, which trial made it and what it measured.
// A failed trial has no row.
var ModelsSchema = arrow.NewSchema([]arrow.Field{
	{Name: ColCandidateID, Type: arrow.BinaryTypes.String},
	{Name: ColRound, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColRepeat, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColName, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColFormat, Type: arrow.BinaryTypes.String},
	{Name: ColDigest, Type: arrow.BinaryTypes.String},
	{Name: ColBytes, Type: arrow.BinaryTypes.LargeBinary},
	{Name: ColArtifact, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColPreprocess, Type: arrow.BinaryTypes.String},
	{Name: ColQuantize, Type: arrow.BinaryTypes.String},
	{Name: ColPruneFraction, Type: arrow.PrimitiveTypes.Float64},
	{Name: ColAccuracy, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColLoss, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColRMSE, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColLatencyP95Ms, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, nil)

// Model is one row of the models table.
type Model struct {
	// ID, Round and Repeat name the trial, as in its results row.
	ID            string
	Round, Repeat int32
	// Name is the model's name (mlp-d1-w16), shared by its variants.
	Name string
	// Format says what Bytes are (FormatSweetspotMLP, FormatONNX); Digest
	// is Digest(Bytes), which a reader checks.
	Format, Digest string
	Bytes          []byte
	// Artifact is the name of the file a trainer wrote the model to
	// (model.onnx), "" when the stage made the bytes itself.
	Artifact string
	// Preprocess, Quantize and PruneFraction are the candidate's: the
	// preprocessing the model was trained with and its compression.
	Preprocess, Quantize string
	PruneFraction        float64
	// The trial's measurements (NaN when they do not apply), as in its
	// results row.
	Accuracy, Loss, RMSE, LatencyP95Ms float64
}

// Digest is the digest of a model's bytes: "sha256:" and the hex sha256.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return DigestPrefix + hex.EncodeToString(sum[:])
}

// NewModel is the models row of a trial's result holding b in format,
// its digest computed.
func NewModel(r Result, format string, b []byte) Model {
	return Model{
		ID: r.ID, Round: r.Round, Repeat: r.Repeat, Name: r.Name,
		Format: format, Digest: Digest(b), Bytes: b,
		Preprocess: r.Preprocess, Quantize: r.Quantize, PruneFraction: r.PruneFraction,
		Accuracy: r.Accuracy, Loss: r.Loss, RMSE: r.RMSE, LatencyP95Ms: r.LatencyP95Ms,
	}
}

// BuildModels returns the models as one batch of ModelsSchema. The caller
// releases it.
func BuildModels(mem memory.Allocator, ms []Model) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, ModelsSchema)
	defer b.Release()
	for _, m := range ms {
		b.Field(0).(*array.StringBuilder).Append(m.ID)
		b.Field(1).(*array.Int32Builder).Append(m.Round)
		b.Field(2).(*array.Int32Builder).Append(m.Repeat)
		appendStr(b.Field(3), m.Name)
		b.Field(4).(*array.StringBuilder).Append(m.Format)
		b.Field(5).(*array.StringBuilder).Append(m.Digest)
		b.Field(6).(*array.BinaryBuilder).Append(m.Bytes)
		appendStr(b.Field(7), m.Artifact)
		b.Field(8).(*array.StringBuilder).Append(m.Preprocess)
		b.Field(9).(*array.StringBuilder).Append(m.Quantize)
		b.Field(10).(*array.Float64Builder).Append(m.PruneFraction)
		appendF64(b.Field(11), m.Accuracy)
		appendF64(b.Field(12), m.Loss)
		appendF64(b.Field(13), m.RMSE)
		appendF64(b.Field(14), m.LatencyP95Ms)
	}
	return b.NewRecordBatch()
}

// ReadModels decodes a batch holding the models columns (other columns
// are ignored). Every row's bytes are checked against its digest: a row
// whose bytes changed is an error naming it, never a model. Every problem
// is reported at once.
func ReadModels(rec arrow.RecordBatch) ([]Model, error) {
	c := newColumns(rec, ModelsSchema, ColName, ColArtifact)
	if err := c.err(); err != nil {
		return nil, err
	}
	out := make([]Model, rec.NumRows())
	var errs []error
	bytesCol := c.cols[6].(*array.LargeBinary)
	for r := range out {
		m := Model{
			ID: c.str(0, r), Round: c.i32(1, r), Repeat: c.i32(2, r), Name: c.str(3, r),
			Format: c.str(4, r), Digest: c.str(5, r),
			// A copy: rows outlive their batch, which may be mapped.
			Bytes:    append([]byte(nil), bytesCol.Value(r)...),
			Artifact: c.str(7, r), Preprocess: c.str(8, r), Quantize: c.str(9, r), PruneFraction: c.f64(10, r),
			Accuracy: c.f64(11, r), Loss: c.f64(12, r), RMSE: c.f64(13, r), LatencyP95Ms: c.f64(14, r),
		}
		if math.IsNaN(m.PruneFraction) {
			m.PruneFraction = 0
		}
		if err := m.Check(); err != nil {
			errs = append(errs, &CellError{Row: int64(r), Column: ColDigest, Err: fmt.Errorf("model %s repeat %d: %w", m.ID, m.Repeat, err)})
		}
		out[r] = m
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ErrDigestMismatch is a model whose bytes do not match its digest.
var ErrDigestMismatch = errors.New("the model's bytes do not match its digest")

// Check says whether m's bytes are the ones its digest names.
func (m Model) Check() error {
	if !strings.HasPrefix(m.Digest, DigestPrefix) {
		return fmt.Errorf("digest %q is not %s followed by a hex sha256", m.Digest, DigestPrefix)
	}
	if got := Digest(m.Bytes); got != m.Digest {
		return fmt.Errorf("%w: %d bytes hash to %s, the row records %s", ErrDigestMismatch, len(m.Bytes), got, m.Digest)
	}
	return nil
}
