package exec

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
)

// datasetFiles are the paths of the splits written for the command.
type datasetFiles struct{ train, validation, test string }

// batchRows bounds the rows of one batch of an Arrow split file.
const batchRows = 64 << 10

// writeDataset writes the dataset's splits into dir, each file complete
// before it takes its name.
func writeDataset(mem memory.Allocator, ds *prep.Dataset, dir, format string) (datasetFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return datasetFiles{}, err
	}
	ext := "." + format
	files := datasetFiles{
		train:      filepath.Join(dir, prep.SplitTrain+ext),
		validation: filepath.Join(dir, prep.SplitValidation+ext),
		test:       filepath.Join(dir, prep.SplitTest+ext),
	}
	write := writeCSV
	if format == FormatArrow {
		write = func(f *os.File, ds *prep.Dataset, rows *prep.Rows) error { return writeArrow(mem, f, ds, rows) }
	}
	for _, s := range []struct {
		path string
		rows *prep.Rows
	}{{files.train, &ds.Train}, {files.validation, &ds.Validation}, {files.test, &ds.Test}} {
		if err := writeAtomic(s.path, func(f *os.File) error { return write(f, ds, s.rows) }); err != nil {
			return datasetFiles{}, err
		}
	}
	return files, nil
}

func writeAtomic(path string, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// splitSchema is the schema of a split file: the features, then the
// target, with the dataset port's metadata.
func splitSchema(ds *prep.Dataset) *arrow.Schema {
	fields := make([]arrow.Field, 0, len(ds.Features)+1)
	for _, name := range ds.Features {
		fields = append(fields, arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64})
	}
	target := arrow.Field{Name: ds.Target, Type: arrow.PrimitiveTypes.Int64}
	if ds.Task == nn.Regression {
		target.Type = arrow.PrimitiveTypes.Float64
	}
	md := arrow.NewMetadata(
		[]string{prep.MetaTarget, prep.MetaTask, prep.MetaClasses},
		[]string{ds.Target, ds.Task.String(), strconv.Itoa(ds.Classes)},
	)
	return arrow.NewSchema(append(fields, target), &md)
}

func writeArrow(mem memory.Allocator, f *os.File, ds *prep.Dataset, rows *prep.Rows) error {
	schema := splitSchema(ds)
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err != nil {
		return err
	}
	nf := len(ds.Features)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for start := 0; start < rows.N; start += batchRows {
		end := min(rows.N, start+batchRows)
		for k := range nf {
			fb := b.Field(k).(*array.Float64Builder)
			fb.Reserve(end - start)
			for i := start; i < end; i++ {
				fb.UnsafeAppend(rows.X[i*nf+k])
			}
		}
		if ds.Task == nn.Regression {
			b.Field(nf).(*array.Float64Builder).AppendValues(rows.Targets[start:end], nil)
		} else {
			tb := b.Field(nf).(*array.Int64Builder)
			tb.Reserve(end - start)
			for _, l := range rows.Labels[start:end] {
				tb.UnsafeAppend(int64(l))
			}
		}
		rec := b.NewRecordBatch()
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}

func writeCSV(f *os.File, ds *prep.Dataset, rows *prep.Rows) error {
	bw := bufio.NewWriterSize(f, 1<<16)
	w := csv.NewWriter(bw)
	nf := len(ds.Features)
	rec := make([]string, nf+1)
	copy(rec, ds.Features)
	rec[nf] = ds.Target
	if err := w.Write(rec); err != nil {
		return err
	}
	for i := range rows.N {
		for k := range nf {
			rec[k] = strconv.FormatFloat(rows.X[i*nf+k], 'g', -1, 64)
		}
		if ds.Task == nn.Regression {
			rec[nf] = strconv.FormatFloat(rows.Targets[i], 'g', -1, 64)
		} else {
			rec[nf] = strconv.Itoa(int(rows.Labels[i]))
		}
		if err := w.Write(rec); err != nil {
			return err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return bw.Flush()
}
