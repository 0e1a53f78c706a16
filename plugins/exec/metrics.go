package exec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/otel/attribute"
)

// metricKind is what values a metric takes.
type metricKind uint8

const (
	anyNumber   metricKind = iota // a finite number
	nonNegative                   // a finite number, at least 0
	fraction                      // in [0, 1]
	count64                       // a whole number in [0, 2⁶³)
	count32                       // a whole number in [0, 2³¹)
	paramCount                    // a whole number in [1, 2⁶²)
	text                          // a string
)

// maxParams bounds a reported parameter count: sums and products of counts
// (a family's total, bytes per parameter) stay inside int64.
const maxParams = 1 << 62

// knownMetrics are the metrics read back, each a results column (params
// and flops are candidates columns: a count the command reports replaces
// the candidate's). Other keys are not an error: they are logged and left
// on the trial's span as ignored_metrics.
var knownMetrics = map[string]metricKind{
	"accuracy":         fraction,
	"loss":             anyNumber,
	"latency_p50_ms":   nonNegative,
	"latency_p95_ms":   nonNegative,
	"throughput_per_s": nonNegative,
	"model_bytes":      count64,
	"peak_bytes":       count64,
	"params":           paramCount,
	"flops":            count64,
	"train_seconds":    nonNegative,
	"epochs_run":       count32,
	"rmse":             nonNegative,
	"r2":               anyNumber,
	"accuracy_before":  fraction,
	"loss_before":      anyNumber,
	"rmse_before":      nonNegative,
	"nonzero_params":   count64,
	"val_loss":         anyNumber,
	"best_epoch":       count32,
	"stopped_by":       text,
	artifactKey:        text,
}

// qualityMetrics are the metrics of which a trial must report one: without
// any, there is nothing to choose a size by.
var qualityMetrics = []string{"accuracy", "loss", "rmse"}

// metrics are what a command reported.
type metrics struct {
	num     map[string]float64
	text    map[string]string
	unknown []string // keys not in knownMetrics, sorted
}

func (m metrics) get(key string) (float64, bool) {
	v, ok := m.num[key]
	return v, ok
}

// decodeMetrics checks a reported object's values against knownMetrics.
// Null values count as absent.
func decodeMetrics(values map[string]any) (metrics, error) {
	m := metrics{num: map[string]float64{}, text: map[string]string{}}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(values)) {
		v := values[k]
		kind, ok := knownMetrics[k]
		if !ok {
			m.unknown = append(m.unknown, k)
			continue
		}
		if v == nil {
			continue
		}
		if kind == text {
			s, ok := v.(string)
			if !ok {
				errs = append(errs, fmt.Errorf("%s is %s, want a string", k, describe(v)))
				continue
			}
			m.text[k] = s
			continue
		}
		f, ok := v.(float64)
		if !ok {
			errs = append(errs, fmt.Errorf("%s is %s, want a number", k, describe(v)))
			continue
		}
		if err := checkNumber(kind, f); err != nil {
			errs = append(errs, fmt.Errorf("%s is %s: %w", k, strconv.FormatFloat(f, 'g', -1, 64), err))
			continue
		}
		m.num[k] = f
	}
	if err := errors.Join(errs...); err != nil {
		return m, err
	}
	if !slices.ContainsFunc(qualityMetrics, func(k string) bool { _, ok := m.num[k]; return ok }) {
		return m, fmt.Errorf("no %s among the metrics (found %s)", strings.Join(qualityMetrics, ", "), keyList(values))
	}
	return m, nil
}

func checkNumber(kind metricKind, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return errors.New("not a finite number")
	}
	switch kind {
	case nonNegative:
		if f < 0 {
			return errors.New("want at least 0")
		}
	case fraction:
		if f < 0 || f > 1 {
			return errors.New("want a fraction between 0 and 1")
		}
	case count32:
		if f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
			return fmt.Errorf("want a whole number from 0 to %d", math.MaxInt32)
		}
	case paramCount:
		if f < 1 || f != math.Trunc(f) || f >= maxParams {
			return errors.New("want a parameter count: a whole number, at least 1 and below 2^62")
		}
	case count64:
		// 2⁶³ is the first float64 beyond int64.
		if f < 0 || f != math.Trunc(f) || f >= 1<<63 {
			return fmt.Errorf("want a whole number from 0 to %d", math.MaxInt64)
		}
	}
	return nil
}

// foreign is a value of a type no metric takes, as describe shows it.
type foreign string

func describe(v any) string {
	switch v := v.(type) {
	case foreign:
		return string(v)
	case string:
		return strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprintf("a %T", v)
}

func keyList(values map[string]any) string {
	if len(values) == 0 {
		return "no keys"
	}
	return strings.Join(slices.Sorted(maps.Keys(values)), ", ")
}

// lineKind is what one line of a command's stdout is.
type lineKind uint8

const (
	lineText    lineKind = iota // not JSON: logged
	lineEpoch                   // a JSON object with an "epoch" key
	lineMetrics                 // any other JSON object
)

// parseLine classifies one stdout line (without its newline) and decodes
// its object. A line starting with "{" must be one JSON object; numbers
// become float64 (an error when out of range), nested values stay as JSON
// decodes them.
func parseLine(line []byte) (lineKind, map[string]any, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return lineText, nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		msg := err.Error()
		if bytes.Contains(line, []byte("NaN")) || bytes.Contains(line, []byte("Infinity")) {
			msg += " (NaN and Infinity are not JSON numbers: leave a metric out, or fail the trial by exiting non-zero)"
		}
		return lineMetrics, nil, errors.New(msg)
	}
	if _, err := dec.Token(); err != io.EOF {
		return lineMetrics, nil, errors.New("text after the JSON object")
	}
	for k, v := range obj {
		n, ok := v.(json.Number)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return lineMetrics, nil, fmt.Errorf("%s: the number %s is out of range", k, n)
		}
		obj[k] = f
	}
	if _, ok := obj["epoch"]; ok {
		return lineEpoch, obj, nil
	}
	return lineMetrics, obj, nil
}

// epochAttributes are an epoch line's values as span event attributes:
// numbers, strings and booleans, sorted by key; epoch itself must be a
// whole number.
func epochAttributes(obj map[string]any) ([]attribute.KeyValue, error) {
	e, ok := obj["epoch"].(float64)
	if !ok || e != math.Trunc(e) || e < 0 || e > math.MaxInt32 {
		return nil, fmt.Errorf("epoch is %s, want a whole number", describe(obj["epoch"]))
	}
	attrs := []attribute.KeyValue{attribute.Int("epoch", int(e))}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch v := obj[k].(type) {
		case float64:
			if k != "epoch" {
				attrs = append(attrs, attribute.Float64(k, v))
			}
		case string:
			attrs = append(attrs, attribute.String(k, v))
		case bool:
			attrs = append(attrs, attribute.Bool(k, v))
		}
	}
	return attrs, nil
}

// readMetricsFile reads the metrics an Arrow IPC file (or stream) holds:
// the last row of its last non-empty batch, one metric per column.
func readMetricsFile(mem memory.Allocator, path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("the command wrote no metrics file at $SWEETSPOT_METRICS_FILE")
		}
		return nil, err
	}
	defer f.Close()
	magic := make([]byte, 6)
	n, _ := io.ReadFull(f, magic)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var last arrow.RecordBatch
	keep := func(b arrow.RecordBatch) {
		if b.NumRows() == 0 {
			return
		}
		if last != nil {
			last.Release()
		}
		b.Retain()
		last = b
	}
	defer func() {
		if last != nil {
			last.Release()
		}
	}()
	if n == 6 && string(magic) == "ARROW1" {
		r, err := ipc.NewFileReader(f, ipc.WithAllocator(mem))
		if err != nil {
			return nil, fmt.Errorf("the metrics file is not a valid Arrow IPC file: %w", err)
		}
		defer r.Close()
		for i := range r.NumRecords() {
			b, err := r.RecordBatch(i)
			if err != nil {
				return nil, fmt.Errorf("the metrics file's batch %d: %w", i, err)
			}
			keep(b)
		}
	} else {
		r, err := ipc.NewReader(f, ipc.WithAllocator(mem))
		if err != nil {
			return nil, fmt.Errorf("the metrics file is neither an Arrow IPC file nor stream: %w", err)
		}
		defer r.Release()
		for r.Next() {
			keep(r.RecordBatch())
		}
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("the metrics stream: %w", err)
		}
	}
	if last == nil {
		return nil, errors.New("the metrics file has no rows")
	}
	row := int(last.NumRows()) - 1
	out := map[string]any{}
	for j, col := range last.Columns() {
		name := last.Schema().Field(j).Name
		if col.IsNull(row) {
			out[name] = nil
			continue
		}
		switch c := col.(type) {
		case *array.String, *array.LargeString:
			out[name] = valueAt(c, row) // a copy: the batch is released on return
		case *array.Boolean:
			out[name] = c.Value(row)
		default:
			switch v := valueAt(col, row).(type) {
			case int64:
				out[name] = float64(v)
			case uint64:
				out[name] = float64(v)
			case float64:
				out[name] = v
			case nil:
				out[name] = math.NaN() // a NaN or infinite float
			default:
				out[name] = foreign(fmt.Sprintf("a %s column", col.DataType()))
			}
		}
	}
	return out, nil
}

// latencyText is ", p95 X ms" for a trial's progress line, or "" when the
// command reported no latency.
func latencyText(p95 float64) string {
	if math.IsNaN(p95) {
		return ""
	}
	return fmt.Sprintf(", p95 %.3f ms", p95)
}
