package replay

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// A table file is outside input: whatever its bytes, reading and indexing
// it returns a table or an error, never a panic, and holds no memory
// after.
func FuzzTable(f *testing.F) {
	mem := memory.NewGoAllocator()
	rec := typedTable(mem)
	defer rec.Release()
	var arrowFile, arrowStream, pq bytes.Buffer
	w, err := ipc.NewFileWriter(&arrowFile, ipc.WithSchema(rec.Schema()))
	if err != nil {
		f.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		f.Fatal(err)
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	sw := ipc.NewWriter(&arrowStream, ipc.WithSchema(rec.Schema()))
	if err := sw.Write(rec); err != nil {
		f.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		f.Fatal(err)
	}
	tbl := array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec})
	if err := pqarrow.WriteTable(tbl, &pq, 2, nil, pqarrow.DefaultWriterProps()); err != nil {
		f.Fatal(err)
	}
	tbl.Release()

	f.Add([]byte(zoo), uint8(0))
	f.Add([]byte(typedCSV), uint8(0))
	f.Add([]byte("family,depth,width,accuracy,status\nmlp,1,16,0.8,failed\nmlp,1,16,0.8,ok\n"), uint8(0))
	f.Add([]byte("a\n\"b\n"), uint8(0))
	f.Add(pq.Bytes(), uint8(1))
	f.Add(arrowFile.Bytes(), uint8(2))
	f.Add(arrowStream.Bytes(), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		format := formats[int(which)%len(formats)]
		p := filepath.Join(t.TempDir(), "table")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		checked := memory.NewCheckedAllocator(memory.NewGoAllocator())
		tab, err := loadTable(context.Background(), p, format, checked)
		checked.AssertSize(t, 0)
		if err != nil {
			return
		}
		for _, interp := range []bool{false, true} {
			st := &Stage{path: p, format: format, key: []string{"family", "depth", "width", "learning_rate"}, interpolate: interp}
			ix, diags := st.prepare(tab)
			if diags.HasErrors() {
				continue
			}
			for _, c := range []struct {
				depth, width int32
				lr           float64
			}{{1, 16, 0.003}, {1, 40, 0.003}, {2, 1, 0.01}} {
				cand := mlpCand(c.depth, c.width)
				cand.LearningRate = c.lr
				if h, ok := ix.find(cand, interp); ok {
					ix.build(cand, h)
				} else {
					ix.missing(cand, interp)
				}
			}
		}
	})
}
