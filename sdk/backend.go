package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk/internal/wire"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// backend connects a Set to the wire server.
type backend struct {
	set *Set
}

var _ wire.Backend = (*backend)(nil)

func (b *backend) Describe() ([]byte, error) {
	return json.Marshal(b.set.Describe())
}

func (b *backend) entry(kind string) (*entry, error) {
	e := b.set.entries[kind]
	if e == nil {
		return nil, Diagnostics{{
			Severity: SeverityError,
			Summary:  "Unknown stage kind",
			Detail:   fmt.Sprintf("Plugin %s has no stage kind %q; it has %s.", b.set.pluginName(), kind, strings.Join(b.set.kinds, ", ")),
		}}
	}
	return e, nil
}

// build decodes a config and constructs its stage. Any error it returns is a
// config problem.
func (b *backend) build(kind string, config cty.Value) (Stage, Diagnostics) {
	e, err := b.entry(kind)
	if err != nil {
		return nil, err.(Diagnostics)
	}
	cfg, diags := decodeConfig(e.configType, config)
	if diags.HasErrors() {
		return nil, diags
	}
	stage, err := e.newStage(cfg)
	if err != nil {
		return nil, append(diags, diagnosticsOf(err)...)
	}
	if stage == nil {
		return nil, append(diags, Diagnostic{Severity: SeverityError, Summary: "Stage not built",
			Detail: fmt.Sprintf("The constructor of stage kind %q returned neither a stage nor an error.", kind)})
	}
	return stage, diags
}

func diagnosticsOf(err error) Diagnostics {
	var ds Diagnostics
	if errors.As(err, &ds) {
		return ds
	}
	return Diagnostics{{Severity: SeverityError, Summary: "Invalid configuration", Detail: err.Error()}}
}

func (b *backend) Configure(ctx context.Context, kind string, config cty.Value) []*stagepb.Diagnostic {
	stage, diags := b.build(kind, config)
	if c, ok := stage.(Closer); ok {
		if err := c.Close(ctx); err != nil {
			diags = append(diags, Diagnostic{Severity: SeverityWarning, Summary: "Stage close failed", Detail: err.Error()})
		}
	}
	return diagnosticsToProto(diags)
}

func (b *backend) Prepare(ctx context.Context, kind string, config cty.Value) (*wire.Job, error) {
	stage, diags := b.build(kind, config)
	if diags.HasErrors() {
		return nil, diags
	}
	e := b.set.entries[kind]
	job := &wire.Job{}
	declared := map[string]*arrow.Schema{}
	for _, p := range e.info.Outputs {
		job.Outputs = append(job.Outputs, wire.OutputPort{Name: p.Name, Schema: p.Schema})
		declared[p.Name] = p.Schema
	}
	job.Run = func(ctx context.Context, rc *wire.RunContext) error {
		st := rc.Start
		addr := st.GetStage()
		if addr == "" {
			addr = kind
		}
		logger := rc.Logger.With("stage", addr)
		ctx = context.WithValue(ctx, runInfoKey{}, RunInfo{
			RunID: st.GetRunId(), Stage: addr, Round: int(st.GetRound()), WorkDir: st.GetWorkDir(),
		})
		ctx = context.WithValue(ctx, progressKey{}, func(p Progress) {
			if err := rc.Progress(&stagepb.Progress{Done: p.Done, Total: p.Total, Message: p.Message, Metrics: p.Metrics}); err != nil {
				logger.Debug("progress not sent", "error", err)
			}
		})
		ctx = context.WithValue(ctx, loggerKey{}, logger)
		ctx = context.WithValue(ctx, allocatorKey{}, rc.Allocator)
		outs := &outputs{rc: rc, ctx: ctx, stage: addr, declared: declared, writers: map[string]*checkedWriter{}}
		err := stage.Run(ctx, inputs{rc}, outs)
		if errors.Is(err, ErrEndOfInput) {
			return nil
		}
		return err
	}
	if c, ok := stage.(Closer); ok {
		job.Close = c.Close
	}
	return job, nil
}

func (b *backend) Classify(err error) *stagepb.Error {
	e := &stagepb.Error{Kind: stagepb.Error_KIND_INTERNAL, Message: err.Error()}
	var (
		diags Diagnostics
		se    *schemaError
		ra    *RetryAfter
		ie    *InputError
	)
	switch {
	case errors.As(err, &diags):
		e.Kind = stagepb.Error_KIND_CONFIG
		e.Diagnostics = diagnosticsToProto(diags)
	case wire.IsBadConfigValue(err):
		e.Kind = stagepb.Error_KIND_CONFIG
	case errors.As(err, &se):
		e.Kind = stagepb.Error_KIND_SCHEMA_MISMATCH
		e.Port = se.Port
	case errors.Is(err, ErrSchemaMismatch):
		e.Kind = stagepb.Error_KIND_SCHEMA_MISMATCH
	case errors.As(err, &ra):
		e.Kind = stagepb.Error_KIND_RETRY_AFTER
		e.RetryAfterMs = ra.Wait.Milliseconds()
	case errors.As(err, &ie):
		e.Kind = stagepb.Error_KIND_INPUT
		e.Port = ie.Port
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Kind = stagepb.Error_KIND_CANCELED
	}
	var de *stagerpc.DamagedError
	if e.Port == "" && errors.As(err, &de) {
		e.Port = de.Port
	}
	return e
}

func diagnosticsToProto(ds Diagnostics) []*stagepb.Diagnostic {
	out := make([]*stagepb.Diagnostic, 0, len(ds))
	for _, d := range ds {
		sev := stagepb.Diagnostic_SEVERITY_ERROR
		if d.Severity == SeverityWarning {
			sev = stagepb.Diagnostic_SEVERITY_WARNING
		}
		out = append(out, &stagepb.Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, AttributePath: d.Path})
	}
	return out
}

type inputs struct{ rc *wire.RunContext }

func (in inputs) Reader(port string) (array.RecordReader, error) {
	r, err := in.rc.Reader(port)
	if errors.Is(err, wire.ErrNotConnected) {
		return nil, fmt.Errorf("input port %q: %w", port, ErrNotConnected)
	}
	return r, err
}

type outputs struct {
	rc       *wire.RunContext
	ctx      context.Context
	stage    string
	declared map[string]*arrow.Schema
	writers  map[string]*checkedWriter
}

func (o *outputs) Writer(port string) (BatchWriter, error) {
	if w, ok := o.writers[port]; ok {
		return w, nil
	}
	pw, err := o.rc.Writer(port)
	if err != nil {
		return nil, err
	}
	w := &checkedWriter{pw: pw, ctx: o.ctx, stage: o.stage, port: port, declared: o.declared[port]}
	o.writers[port] = w
	return w, nil
}

// checkedWriter holds a stage to its port's declared schema before any byte
// goes out, so that a mismatch names the stage, the port and the columns
// rather than surfacing downstream as a decoding error.
type checkedWriter struct {
	pw       *stagerpc.PortWriter
	ctx      context.Context
	stage    string
	port     string
	declared *arrow.Schema
}

func (w *checkedWriter) Write(batch arrow.RecordBatch) error {
	if batch == nil {
		return fmt.Errorf("stage %s: output port %q: nil batch", w.stage, w.port)
	}
	got := batch.Schema()
	if first := w.pw.Schema(); first != nil {
		if !first.Equal(got) {
			return &schemaError{Stage: w.stage, Port: w.port, Problems: schemaChanges(first, got), Changed: true}
		}
	} else if w.declared != nil {
		if gap := CheckSchema(w.declared, got); !gap.OK() {
			return &schemaError{Stage: w.stage, Port: w.port, Problems: gap.Problems()}
		}
	}
	return w.pw.Write(w.ctx, batch)
}

// schemaError is a batch that does not fit its port.
type schemaError struct {
	Stage, Port string
	Problems    []string
	// Changed is set when the batch differs from the port's first batch
	// rather than from its declared schema.
	Changed bool
}

func (e *schemaError) Error() string {
	what := "batch does not match the declared schema"
	if e.Changed {
		what = "batch schema differs from the port's first batch"
	}
	return fmt.Sprintf("stage %s: output port %q: %s: %s: %s", e.Stage, e.Port, ErrSchemaMismatch, what, strings.Join(e.Problems, "; "))
}

func (e *schemaError) Unwrap() error { return ErrSchemaMismatch }

// schemaChanges lists how got differs from the first batch's schema.
func schemaChanges(first, got *arrow.Schema) []string {
	var out []string
	for _, f := range first.Fields() {
		idx := got.FieldIndices(f.Name)
		if len(idx) == 0 {
			out = append(out, fmt.Sprintf("column %s (%s) is gone", f.Name, f.Type))
			continue
		}
		g := got.Field(idx[0])
		if !arrow.TypeEqual(f.Type, g.Type) {
			out = append(out, fmt.Sprintf("column %s is %s, was %s", f.Name, g.Type, f.Type))
		} else if f.Nullable != g.Nullable {
			out = append(out, fmt.Sprintf("column %s nullable is %t, was %t", f.Name, g.Nullable, f.Nullable))
		}
	}
	var added []string
	for _, g := range got.Fields() {
		if !first.HasField(g.Name) {
			added = append(added, fmt.Sprintf("%s (%s)", g.Name, g.Type))
		}
	}
	sort.Strings(added)
	if len(added) > 0 {
		out = append(out, "new columns "+strings.Join(added, ", "))
	}
	if len(out) == 0 {
		out = append(out, "column order or metadata changed")
	}
	return out
}
