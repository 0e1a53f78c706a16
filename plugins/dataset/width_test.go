package dataset

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
)

// wideCSV is a CSV of features feature columns and a label, with a
// header and four rows.
func wideCSV(features int) []byte {
	var b bytes.Buffer
	for j := range features {
		b.WriteString("f" + strconv.Itoa(j) + ",")
	}
	b.WriteString("label\n")
	for i := range 4 {
		b.WriteString(strings.Repeat("1,", features))
		b.WriteString(strconv.Itoa(i % 2))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// A dataset as wide as a port may carry loads, and its output schema
// passes the reader the host reads stage outputs with; one column more is
// refused by its file and line, not by the host as damaged output.
func TestWidestDatasetAPortCarries(t *testing.T) {
	widest := ipcverify.MaxFields - 2 // the label and the split column besides
	tab, err := Load("wide.csv", bytes.NewReader(wideCSV(widest)), LoadOptions{})
	if err != nil {
		t.Fatalf("%d features: %v", widest, err)
	}
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(tab.Schema()))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := ipcverify.NewStreamReader(&buf, ipcverify.MaxMetadataBytes, memory.NewGoAllocator())
	if err != nil {
		t.Fatalf("the host's reader refuses the widest dataset's schema: %v", err)
	}
	if n := len(r.Schema().Fields()); n != ipcverify.MaxFields {
		t.Errorf("the schema has %d fields, want %d", n, ipcverify.MaxFields)
	}
	r.Release()

	_, err = Load("wider.csv", bytes.NewReader(wideCSV(widest+1)), LoadOptions{})
	var de *DataError
	if !errors.As(err, &de) || de.File != "wider.csv" || de.Line != 1 || !strings.Contains(err.Error(), "has 65536 columns; a dataset holds at most 65535") {
		t.Fatalf("one column more: %v, want a *DataError at wider.csv:1 naming the count", err)
	}
}
