package stagerpc

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A description's schema bytes are what Arrow Flight's SerializeSchema
// writes, as they were when the SDK called it.
func TestSerializeSchemaIsFlights(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "x", Type: arrow.PrimitiveTypes.Float64},
		{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
	}, nil)
	got := SerializeSchema(schema, memory.DefaultAllocator)
	if want := flight.SerializeSchema(schema, memory.DefaultAllocator); !bytes.Equal(got, want) {
		t.Errorf("SerializeSchema wrote %d bytes unlike Flight's %d", len(got), len(want))
	}
	back, err := flight.DeserializeSchema(got, memory.DefaultAllocator)
	if err != nil || !back.Equal(schema) {
		t.Errorf("Flight reads back %v, %v; want %v", back, err, schema)
	}
}
