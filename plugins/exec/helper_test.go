package exec

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// helper is the test binary run as a trial command (go-plugin's
// TestHelperProcess trick): Arrow is easier to write and read from Go than
// from a shell script. It returns the exit code.
func helper(mode string) int {
	if err := helperRun(mode); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

func helperRun(mode string) error {
	switch mode {
	case "arrow-file", "arrow-stream":
		return writeMetrics(os.Getenv("SWEETSPOT_METRICS_FILE"), mode == "arrow-file")
	case "read-dataset":
		return readDataset()
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// writeMetrics writes two rows of metrics, of several Arrow types; the
// second row is the one that counts. loss is null there.
func writeMetrics(path string, file bool) error {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "accuracy", Type: arrow.PrimitiveTypes.Float32},
		{Name: "loss", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "model_bytes", Type: arrow.PrimitiveTypes.Int64},
		{Name: "epochs_run", Type: arrow.PrimitiveTypes.Uint16},
		{Name: "r2", Type: arrow.PrimitiveTypes.Float64},
		{Name: "stopped_by", Type: arrow.BinaryTypes.String},
		{Name: "custom", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Float32Builder).AppendValues([]float32{0.5, 0.75}, nil)
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{1, 0}, []bool{true, false})
	b.Field(2).(*array.Int64Builder).AppendValues([]int64{1, 4096}, nil)
	b.Field(3).(*array.Uint16Builder).AppendValues([]uint16{1, 7}, nil)
	b.Field(4).(*array.Float64Builder).AppendValues([]float64{0, -0.5}, nil)
	b.Field(5).(*array.StringBuilder).AppendValues([]string{"", "epochs"}, nil)
	b.Field(6).(*array.Float64Builder).AppendValues([]float64{1, 2}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if file {
		w, err := ipc.NewFileWriter(f, ipc.WithSchema(schema))
		if err != nil {
			return err
		}
		if err := w.Write(rec); err != nil {
			return err
		}
		return w.Close()
	}
	w := ipc.NewWriter(f, ipc.WithSchema(schema))
	if err := w.Write(rec); err != nil {
		return err
	}
	return w.Close()
}

// readDataset reads the Arrow split files and reports what it found as
// metrics: loss, rmse and r2 are the rows of train, validation and test,
// model_bytes the columns, stopped_by the metadata and the target's type.
func readDataset() error {
	rows := map[string]int64{}
	var schema *arrow.Schema
	for _, split := range []string{"TRAIN", "VALIDATION", "TEST"} {
		f, err := os.Open(os.Getenv("SWEETSPOT_" + split))
		if err != nil {
			return err
		}
		r, err := ipc.NewFileReader(f)
		if err != nil {
			return err
		}
		for i := range r.NumRecords() {
			b, err := r.RecordBatch(i)
			if err != nil {
				return err
			}
			rows[split] += b.NumRows()
		}
		schema = r.Schema()
		r.Close()
		f.Close()
	}
	md := schema.Metadata()
	target, _ := md.GetValue("sweetspot.target")
	task, _ := md.GetValue("sweetspot.task")
	classes, _ := md.GetValue("sweetspot.classes")
	if target != os.Getenv("SWEETSPOT_TARGET") || task != os.Getenv("SWEETSPOT_TASK") || classes != os.Getenv("SWEETSPOT_CLASSES") {
		return fmt.Errorf("metadata %s/%s/%s, environment %s/%s/%s", target, task, classes,
			os.Getenv("SWEETSPOT_TARGET"), os.Getenv("SWEETSPOT_TASK"), os.Getenv("SWEETSPOT_CLASSES"))
	}
	idx := schema.FieldIndices(target)
	if len(idx) != 1 {
		return fmt.Errorf("no target column %q in %s", target, schema)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"loss": rows["TRAIN"], "rmse": rows["VALIDATION"], "r2": rows["TEST"], "model_bytes": schema.NumFields(),
		"stopped_by": fmt.Sprintf("%s/%s/%s/%s", target, task, classes, schema.Field(idx[0]).Type),
	})
}
