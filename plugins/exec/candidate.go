package exec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// candidate is one row of the candidates table: decoded, and as the
// command sees it, every column (an upstream stage may add its own).
type candidate struct {
	tables.Candidate
	fields []field
}

type field struct {
	name  string
	value any // string, int64, uint64, float64, bool or nil
}

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
			fs := make([]field, b.NumCols())
			for j, col := range b.Columns() {
				fs[j] = field{name: b.Schema().Field(j).Name, value: valueAt(col, i)}
			}
			out = append(out, candidate{Candidate: c, fields: fs})
		}
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read port %s: %w", port, err)
	}
	return out, nil
}

// valueAt returns row i of col as a JSON-ready Go value. Floats that JSON
// cannot carry (NaN, ±Inf) are null.
func valueAt(col arrow.Array, i int) any {
	if col.IsNull(i) {
		return nil
	}
	switch c := col.(type) {
	case *array.String:
		return c.Value(i)
	case *array.LargeString:
		return c.Value(i)
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

// JSON is the row as one JSON object, keys in column order.
func (c candidate) JSON() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range c.fields {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.name)
		v, err := json.Marshal(f.value)
		if err != nil {
			v = []byte("null")
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// envValue is a column value as an environment variable's text: numbers
// in the shortest form that reads back exactly, null as the empty string.
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
	}
	return fmt.Sprint(v)
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
