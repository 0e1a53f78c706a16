package stagehost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
)

// ErrPluginCrashed is wrapped by the error of a run whose plugin process
// died or whose connection broke before the run ended.
var ErrPluginCrashed = errors.New("plugin crashed")

// ErrorKind classifies a failed run.
type ErrorKind int

const (
	KindInternal       ErrorKind = iota // any other failure
	KindConfig                          // the config value is invalid; Diagnostics hold the details
	KindSchemaMismatch                  // a batch did not match its port's schema
	KindCanceled                        // the run's context ended
	KindRetryAfter                      // transient; retry after RetryAfter
	KindInput                           // the stage cannot use its input data
	KindCrashed                         // the plugin died or the connection broke
)

func (k ErrorKind) String() string {
	switch k {
	case KindConfig:
		return "config"
	case KindSchemaMismatch:
		return "schema mismatch"
	case KindCanceled:
		return "canceled"
	case KindRetryAfter:
		return "retry after"
	case KindInput:
		return "input"
	case KindCrashed:
		return "crashed"
	}
	return "internal"
}

// RunError is a failed run. errors.Is matches sdk.ErrSchemaMismatch,
// context.Canceled (or the context's own error) and ErrPluginCrashed by
// kind; errors.As finds sdk.Diagnostics for config errors, *sdk.RetryAfter
// for retry-after errors and *sdk.InputError for input errors.
type RunError struct {
	Plugin      string
	Stage       string
	Kind        ErrorKind
	Port        string
	Message     string
	Diagnostics sdk.Diagnostics
	RetryAfter  time.Duration
	// Err is the local cause, if any: the context's error, the caller's
	// output function's error, an input reader's error.
	Err error
}

func (e *RunError) Error() string {
	msg := e.Message
	if e.Stage != "" {
		// The plugin side often names the stage already.
		msg = strings.TrimPrefix(msg, "stage "+e.Stage+": ")
	}
	var b strings.Builder
	if e.Stage != "" {
		fmt.Fprintf(&b, "stage %s", e.Stage)
	}
	if e.Plugin != "" {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "(plugin %s)", e.Plugin)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(msg)
	return b.String()
}

func (e *RunError) Unwrap() []error {
	var errs []error
	switch e.Kind {
	case KindSchemaMismatch:
		errs = append(errs, sdk.ErrSchemaMismatch)
	case KindCanceled:
		if e.Err == nil {
			errs = append(errs, context.Canceled)
		}
	case KindCrashed:
		errs = append(errs, ErrPluginCrashed)
	case KindConfig:
		if len(e.Diagnostics) > 0 {
			errs = append(errs, e.Diagnostics)
		}
	case KindRetryAfter:
		errs = append(errs, &sdk.RetryAfter{Wait: e.RetryAfter, Err: errors.New(e.Message)})
	case KindInput:
		// The row and column travel in the message only.
		errs = append(errs, &sdk.InputError{Port: e.Port, Row: -1, Err: errors.New(e.Message)})
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func runErrorOf(pe *stagepb.Error) *RunError {
	e := &RunError{
		Message:     pe.GetMessage(),
		Port:        pe.GetPort(),
		Diagnostics: diagnosticsFromProto(pe.GetDiagnostics()),
		RetryAfter:  time.Duration(pe.GetRetryAfterMs()) * time.Millisecond,
	}
	switch pe.GetKind() {
	case stagepb.Error_KIND_CONFIG:
		e.Kind = KindConfig
	case stagepb.Error_KIND_SCHEMA_MISMATCH:
		e.Kind = KindSchemaMismatch
	case stagepb.Error_KIND_CANCELED:
		e.Kind = KindCanceled
	case stagepb.Error_KIND_RETRY_AFTER:
		e.Kind = KindRetryAfter
	case stagepb.Error_KIND_INPUT:
		e.Kind = KindInput
	default:
		e.Kind = KindInternal
	}
	return e
}

func diagnosticsFromProto(ds []*stagepb.Diagnostic) sdk.Diagnostics {
	if len(ds) == 0 {
		return nil
	}
	out := make(sdk.Diagnostics, 0, len(ds))
	for _, d := range ds {
		sev := sdk.SeverityError
		if d.GetSeverity() == stagepb.Diagnostic_SEVERITY_WARNING {
			sev = sdk.SeverityWarning
		}
		out = append(out, sdk.Diagnostic{Severity: sev, Summary: d.GetSummary(), Detail: d.GetDetail(), Path: d.GetAttributePath()})
	}
	return out
}
