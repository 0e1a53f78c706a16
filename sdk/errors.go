package sdk

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrSchemaMismatch is wrapped by errors about batches whose schema does not
// match what their port declared.
var ErrSchemaMismatch = errors.New("schema mismatch")

// ErrEndOfInput may be returned by a stage that stops reading early on
// purpose; the SDK treats it as success.
var ErrEndOfInput = errors.New("end of input")

// RetryAfter asks the host to run the stage again after Wait.
type RetryAfter struct {
	Wait time.Duration
	Err  error
}

func (e *RetryAfter) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.Wait, e.Err)
}
func (e *RetryAfter) Unwrap() error { return e.Err }

// InputError reports unusable input data, pointing at the port, row and
// column at fault. Row is 0-based within the port's stream; -1 when unknown.
type InputError struct {
	Port   string
	Row    int64
	Column string
	Err    error
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString("input port ")
	b.WriteString(e.Port)
	if e.Row >= 0 {
		fmt.Fprintf(&b, ", row %d", e.Row)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, ", column %q", e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}
func (e *InputError) Unwrap() error { return e.Err }

// StageError adds the stage and the operation to an error, as fs.PathError
// adds the path.
type StageError struct {
	Stage string // e.g. "evaluation.train"
	Op    string // e.g. "run", "configure", "write port results"
	Err   error
}

func (e *StageError) Error() string {
	msg := e.Err.Error()
	// A plugin's own error already names the stage (and its plugin): say it once.
	if strings.HasPrefix(msg, "stage "+e.Stage+" ") || strings.HasPrefix(msg, "stage "+e.Stage+":") {
		return msg
	}
	return fmt.Sprintf("stage %s: %s: %s", e.Stage, e.Op, msg)
}
func (e *StageError) Unwrap() error { return e.Err }

// Severity of a diagnostic.
type Severity int

const (
	SeverityError Severity = iota
	SeverityWarning
)

// Diagnostic is a config problem found by a plugin. Path names the attribute
// at fault (e.g. ["budget", "max_wall"]); the host maps it to the source range
// in the pipeline file.
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	Path     []string
}

// Diagnostics is a list of config problems. As an error it reports all of them.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	msgs := make([]string, 0, len(ds))
	for _, d := range ds {
		m := d.Summary
		if len(d.Path) > 0 {
			m = strings.Join(d.Path, ".") + ": " + m
		}
		if d.Detail != "" {
			m += ": " + d.Detail
		}
		msgs = append(msgs, m)
	}
	return strings.Join(msgs, "; ")
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// AttrError returns a config error about one attribute, for a stage
// constructor to return. path is dot-separated: "budget.max_wall".
func AttrError(path, summary, detail string) error {
	return Diagnostics{{Severity: SeverityError, Summary: summary, Detail: detail, Path: strings.Split(path, ".")}}
}
