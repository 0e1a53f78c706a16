package builtin

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/modelfile"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/onnx"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/tablefile"
)

// The model tool is the built-in plugin's other mode: the host starts its
// own executable with ModelToolArg to decode a kept model file and work
// with it, so that the host process itself never parses model bytes (it
// checks their digest and moves them). The model file comes on stdin,
// what the tool makes goes to stdout, and a failure is one line on stderr
// and exit status 1.
//
//	predict --input FILE [--input-format F] [--format csv|arrow]
//	    the model's predictions for each row of FILE (CSV, TSV, Parquet or
//	    Arrow IPC), preprocessed as in training
//	onnx [--version V]
//	    the model as an ONNX file
//	check
//	    decode the model, print its input columns
const ModelToolArg = "__model"

// maxModelFile bounds what the tool reads from stdin.
const maxModelFile = 2 << 30

// Prediction output formats.
const (
	PredictCSV   = "csv"
	PredictArrow = "arrow"
)

// ModelTool runs the model tool with args (after ModelToolArg) and returns
// the process's exit status.
func ModelTool(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if err := modelTool(args, stdin, stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func modelTool(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("model tool: say predict, onnx or check")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	input := fs.String("input", "", "")
	inputFormat := fs.String("input-format", "", "")
	format := fs.String("format", PredictCSV, "")
	version := fs.String("version", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("model tool: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(stdin, maxModelFile+1))
	if err != nil {
		return fmt.Errorf("read the model: %w", err)
	}
	if len(raw) > maxModelFile {
		return fmt.Errorf("the model is larger than %d bytes", maxModelFile)
	}
	f, err := modelfile.Decode(raw)
	if err != nil {
		return err
	}
	switch args[0] {
	case "check":
		_, err := fmt.Fprintln(stdout, strings.Join(f.Header.Features, ","))
		return err
	case "onnx":
		b, err := onnx.Encode(f.Model, f.Transform, onnx.Options{
			Features: f.Header.Features, Target: f.Header.Target, Classes: f.Header.ClassNames,
			Preprocessing: f.Header.Preprocess, ProducerVersion: *version,
		})
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	case "predict":
		if *format != PredictCSV && *format != PredictArrow {
			return fmt.Errorf("output format %q: want %s or %s", *format, PredictCSV, PredictArrow)
		}
		return predict(f, *input, *inputFormat, *format, stdout)
	}
	return fmt.Errorf("model tool: unknown command %q; want predict, onnx or check", args[0])
}

// ReadFeatures reads the model's input columns from a table file: each
// by name, as numbers, every value finite. A problem names the file, the
// column and, for a value, its line or row; missing or mistyped columns
// are all named at once, with what the model expects.
func ReadFeatures(f *modelfile.File, path, format string) (x []float64, rows int, err error) {
	t, err := tablefile.Read(context.Background(), path, format, memory.DefaultAllocator)
	if err != nil {
		return nil, 0, err
	}
	want := f.Header.Features
	expected := fmt.Sprintf("the model takes %d numeric columns, by name: %s (other columns, such as the target %s, are ignored)",
		len(want), strings.Join(want, ", "), f.Header.Target)
	var missing, mistyped []string
	for _, name := range want {
		c := t.Column(name)
		switch {
		case c == nil:
			missing = append(missing, name)
		case !c.IsText() && !c.IsNumber():
			mistyped = append(mistyped, fmt.Sprintf("%s is %s", name, c.Type))
		case c.IsText() && t.Format != tablefile.FormatCSV && t.Format != tablefile.FormatTSV:
			mistyped = append(mistyped, fmt.Sprintf("%s is %s, not numbers", name, c.Type))
		}
	}
	if len(missing) > 0 || len(mistyped) > 0 {
		var parts []string
		if len(missing) > 0 {
			parts = append(parts, fmt.Sprintf("no column %s", strings.Join(missing, ", ")))
		}
		parts = append(parts, mistyped...)
		return nil, 0, fmt.Errorf("%s: %s; %s. The file's columns: %s", t.AtHeader(), strings.Join(parts, "; "), expected, strings.Join(t.Names, ", "))
	}
	rows = t.Rows
	x = make([]float64, rows*len(want))
	var problems []string
	for j, name := range want {
		vals, ps := t.Numbers(name)
		if len(ps) > 0 {
			problems = append(problems, ps.Error())
			continue
		}
		for i, v := range vals {
			if math.IsNaN(v) {
				if len(problems) < 10 {
					problems = append(problems, fmt.Sprintf("%s, column %s: no value; the model needs every feature of every row", t.At(i), name))
				}
				continue
			}
			x[i*len(want)+j] = v
		}
	}
	if len(problems) > 0 {
		return nil, 0, errors.New(strings.Join(problems, "\n"))
	}
	return x, rows, nil
}

func predict(f *modelfile.File, path, inputFormat, format string, w io.Writer) error {
	if path == "" {
		return errors.New("predict: no --input file")
	}
	x, rows, err := ReadFeatures(f, path, inputFormat)
	if err != nil {
		return err
	}
	classes, values, err := f.Predict(x, rows)
	if err != nil {
		return err
	}
	col := "prediction"
	if format == PredictCSV {
		cw := csv.NewWriter(w)
		header := []string{"row", col}
		if f.Classification() {
			header = append(header, "class")
		}
		if err := cw.Write(header); err != nil {
			return err
		}
		for i := range rows {
			rec := []string{strconv.Itoa(i)}
			if f.Classification() {
				rec = append(rec, f.ClassName(classes[i]), strconv.Itoa(int(classes[i])))
			} else {
				rec = append(rec, strconv.FormatFloat(values[i], 'g', -1, 64))
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	fields := []arrow.Field{{Name: "row", Type: arrow.PrimitiveTypes.Int64}}
	if f.Classification() {
		fields = append(fields, arrow.Field{Name: col, Type: arrow.BinaryTypes.String}, arrow.Field{Name: "class", Type: arrow.PrimitiveTypes.Int32})
	} else {
		fields = append(fields, arrow.Field{Name: col, Type: arrow.PrimitiveTypes.Float64})
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i := range rows {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if f.Classification() {
			b.Field(1).(*array.StringBuilder).Append(f.ClassName(classes[i]))
			b.Field(2).(*array.Int32Builder).Append(classes[i])
		} else {
			b.Field(1).(*array.Float64Builder).Append(values[i])
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	iw, err := ipc.NewFileWriter(w, ipc.WithSchema(rec.Schema()))
	if err != nil {
		return err
	}
	if err := iw.Write(rec); err != nil {
		return err
	}
	return iw.Close()
}
