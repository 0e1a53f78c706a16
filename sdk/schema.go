package sdk

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// SchemaGap is how a schema falls short of a declared port schema. The
// rule is the port contract, written here once for every side that checks
// it (the SDK's writer, the host when it loads a pipeline, sdktest): each
// declared column is present, with the declared type, and a column declared
// non-nullable is not nullable; extra columns and column order do not
// matter.
type SchemaGap struct {
	// Missing are the declared columns the schema lacks, in declared order.
	Missing []arrow.Field
	// Mistyped are the columns the schema has with another type.
	Mistyped []ColumnGap
	// Nullable are the columns declared non-nullable that the schema
	// declares nullable: a consumer of the port may rely on finding no null.
	Nullable []ColumnGap
}

// ColumnGap is one declared column the schema has in another form.
type ColumnGap struct {
	Declared, Got arrow.Field
}

// CheckSchema compares got with a declared port schema. A nil declared
// schema accepts anything.
func CheckSchema(declared, got *arrow.Schema) SchemaGap {
	var g SchemaGap
	if declared == nil {
		return g
	}
	for _, f := range declared.Fields() {
		var idx []int
		if got != nil {
			idx = got.FieldIndices(f.Name)
		}
		if len(idx) == 0 {
			g.Missing = append(g.Missing, f)
			continue
		}
		have := got.Field(idx[0])
		switch {
		case !arrow.TypeEqual(f.Type, have.Type):
			g.Mistyped = append(g.Mistyped, ColumnGap{Declared: f, Got: have})
		case !f.Nullable && have.Nullable:
			g.Nullable = append(g.Nullable, ColumnGap{Declared: f, Got: have})
		}
	}
	return g
}

// OK reports whether the schema meets the declared one.
func (g SchemaGap) OK() bool {
	return len(g.Missing) == 0 && len(g.Mistyped) == 0 && len(g.Nullable) == 0
}

// Problems says what is wrong, one phrase per problem, missing columns
// first.
func (g SchemaGap) Problems() []string {
	var out []string
	if len(g.Missing) > 0 {
		names := make([]string, len(g.Missing))
		for i, f := range g.Missing {
			names[i] = fmt.Sprintf("%s (%s)", f.Name, f.Type)
		}
		out = append(out, "missing columns "+strings.Join(names, ", "))
	}
	for _, c := range g.Mistyped {
		out = append(out, fmt.Sprintf("column %s is %s, declared %s", c.Declared.Name, c.Got.Type, c.Declared.Type))
	}
	for _, c := range g.Nullable {
		out = append(out, fmt.Sprintf("column %s is nullable, declared not nullable", c.Declared.Name))
	}
	return out
}
