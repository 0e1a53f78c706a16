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

	"github.com/sweetspot-ml/sweetspot/plugins/internal/tablefile"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// A table file is outside input: whatever its bytes, reading and indexing
// it returns a table or diagnostics, never a panic, and holds no memory
// after; a lookup of any kind of candidate finds a row or says why not.
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
	f.Add([]byte(namedCSV), uint8(0))
	f.Add([]byte("name,s,accuracy,params\nc-s8,8,\"1,014.5\",inf\nc-s8,16,95,0\n"), uint8(0))
	f.Add([]byte("name\ts\taccuracy\nc-s8\t8\t0.9\n"), uint8(1))
	f.Add(pq.Bytes(), uint8(2))
	f.Add(arrowFile.Bytes(), uint8(3))
	f.Add(arrowStream.Bytes(), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		format := formats[int(which)%len(formats)]
		p := filepath.Join(t.TempDir(), "table")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		checked := memory.NewCheckedAllocator(memory.NewGoAllocator())
		tab, err := tablefile.Read(context.Background(), p, format, checked)
		checked.AssertSize(t, 0)
		if err != nil {
			return
		}
		for _, set := range []settings{
			{key: []string{"family", "depth", "width", "learning_rate"}, keyExplicit: true},
			{key: DefaultKey, scale: map[string]float64{"accuracy": 0.01}},
		} {
			ix, diags := prepare(tab, set)
			if diags.HasErrors() {
				for _, d := range diags {
					if d.Summary == "" || d.Detail == "" || len(d.Path) == 0 {
						t.Errorf("diagnostic without a summary, detail or path: %+v", d)
					}
				}
				continue
			}
			axis := tables.Candidate{ID: "c-s8", Name: "c-s8", Family: "c", Kind: tables.KindAxis, Knobs: tables.Knobs{"s": 8.0}}
			named := tables.Candidate{ID: "c-s8", Name: "c-s8", Family: "c", Kind: tables.KindTable}
			for _, interp := range []bool{false, true} {
				for _, c := range []struct {
					depth, width int32
					lr           float64
				}{{1, 16, 0.003}, {1, 40, 0.003}, {2, 1, 0.01}} {
					cand := mlpCand(c.depth, c.width)
					cand.LearningRate = c.lr
					if h, ok, _, _ := ix.lookup(cand, interp); ok {
						ix.build(cand, h)
					}
				}
				for _, cand := range []tables.Candidate{axis, named} {
					if h, ok, _, msg := ix.lookup(cand, interp); ok {
						ix.build(cand, h)
					} else if msg == "" {
						t.Errorf("%s not found, and no message says why", cand.ID)
					}
				}
			}
		}
	})
}
