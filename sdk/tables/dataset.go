package tables

import "github.com/apache/arrow-go/v18/arrow"

// The dataset table, a dataset stage's data port: one float64 column per
// feature, the target column (int64 class index or float64 value) and a
// utf8 split column. Its schema metadata name the target, the task and
// the class count, so every stage splits and reads it the same way.
const (
	ColSplit = "split"

	MetaTarget     = "sweetspot.target"
	MetaTask       = "sweetspot.task"
	MetaClasses    = "sweetspot.classes"
	MetaClassNames = "sweetspot.class_names"
	MetaSource     = "sweetspot.source"
	// MetaFormat is the format the file was read as (csv, tsv,
	// whitespace, parquet, arrow, idx); absent for generated data.
	MetaFormat = "sweetspot.format"
	// MetaSample says how max_rows cut the file ("first 1000 rows",
	// "random 1000 of 60000 rows, seed 1"); absent when every row was
	// kept.
	MetaSample = "sweetspot.sample"
)

// Split names.
const (
	SplitTrain      = "train"
	SplitValidation = "validation"
	SplitTest       = "test"
)

// DatasetSchema is what a port taking a dataset declares: the split
// column. The feature and target columns depend on the data; declaring
// the split column is what makes an edge from a table that is not a
// dataset (candidates, results) a validate diagnostic.
var DatasetSchema = arrow.NewSchema([]arrow.Field{{Name: ColSplit, Type: arrow.BinaryTypes.String}}, nil)
