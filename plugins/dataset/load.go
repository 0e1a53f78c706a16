package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Format is the layout of a dataset file.
type Format string

const (
	FormatCSV Format = "csv"
	FormatTSV Format = "tsv"
	// FormatWhitespace splits fields on runs of spaces or tabs, as in
	// scikit-learn's diabetes_data_raw.csv.gz.
	FormatWhitespace Format = "whitespace"
	// FormatParquet is read with arrow-go's pqarrow.
	FormatParquet Format = "parquet"
	// FormatArrow is an Arrow IPC file (Feather v2) or stream; the file's
	// first bytes tell which.
	FormatArrow Format = "arrow"
	// FormatIDX is the MNIST family's format: one file of rows (images),
	// the target in a second file (labels) given by TargetPath.
	FormatIDX Format = "idx"
)

// LoadOptions says how to read a dataset file. The zero value reads a CSV,
// TSV or whitespace-separated file, detecting the header and taking the last
// column as the target; Parquet, Arrow and IDX files are recognised by their
// name or their first bytes.
type LoadOptions struct {
	// Format is "" to detect it: Parquet, Arrow and IDX by the file's name
	// (.parquet, .arrow/.arrows/.feather/.ipc, idxN-ubyte) or its first
	// bytes, text formats from the first line.
	Format Format
	// Header is nil to detect whether the first line names the columns.
	Header *bool
	// Target names the target column; it needs a header line.
	Target string
	// TargetIndex picks the target column by 0-based position; negative
	// counts from the end. Nil and no Target means the last column.
	TargetIndex *int
	// TargetPath is a second file holding only the target, one value per
	// data row; then every column of the first file is a feature. An IDX
	// images file needs its labels file here.
	TargetPath string
	// Task is "" to infer it from the target's values.
	Task Task
	// MaxRows caps the rows kept (0 keeps all), chosen by Sample.
	MaxRows int
	// Sample is how MaxRows picks rows: "" or SampleFirst, or SampleRandom.
	Sample Sample
	// Seed drives SampleRandom.
	Seed uint64
	// RawPixels keeps an IDX ubyte file's values as 0..255 instead of
	// scaling them to [0,1].
	RawPixels bool
	// MaxBytes is the most bytes the file may hold once decompressed; 0
	// means the default: DefaultMaxBytes for a file that is not a regular
	// file, and for a compressed file the larger of 64 MiB and 64 times
	// its compressed size. A regular uncompressed file is bounded by its
	// size unless MaxBytes is set.
	MaxBytes int64
	// AllowSpecialFiles reads a named pipe (FIFO), a character device or a
	// socket; without it only regular files are read, since those may
	// never end or block forever.
	AllowSpecialFiles bool
	// Allocator serves the Arrow buffers of Parquet and Arrow readers; nil
	// means memory.DefaultAllocator. Nothing allocated outlives the load.
	Allocator memory.Allocator

	// sequential reads text record by record with encoding/csv, as the
	// fast parser does past a quote (tests compare the two).
	sequential bool
	// blockSize is the fast parser's block size, 0 for the default.
	blockSize int
}

// A task is inferred as classification when the target holds strings, or
// whole numbers with few distinct values: at most maxInferredClasses and at
// most half the rows (so that a small integer-valued regression target such
// as diabetes' 214 distinct values out of 442 is not taken for labels).
const maxInferredClasses = 100

// LoadFile reads a dataset file (gzip-compressed when its name ends in .gz
// or its first bytes say so). Problems with the data are *DataError values
// naming the file and the line, or row, and column; problems that the
// config must fix (an unknown target column) are sdk.Diagnostics naming the
// attribute.
func LoadFile(path string, o LoadOptions) (*Table, error) {
	return LoadFileContext(context.Background(), path, o)
}

// LoadFileContext is LoadFile, giving up with ctx's error when ctx is done.
func LoadFileContext(ctx context.Context, path string, o LoadOptions) (*Table, error) {
	mode := withTarget
	if o.TargetPath != "" {
		mode = featuresOnly
	}
	raw, err := readFile(ctx, path, o, mode)
	if err != nil {
		return nil, err
	}
	if o.TargetPath != "" {
		// The target file's format and header are detected on its own:
		// those options describe the features file.
		to := LoadOptions{MaxRows: o.MaxRows, Sample: o.Sample, Seed: o.Seed, Allocator: o.Allocator}
		tr, err := readFile(ctx, o.TargetPath, to, targetOnly)
		if err != nil {
			return nil, err
		}
		if err := raw.join(tr); err != nil {
			return nil, err
		}
	}
	return raw.finish(o.Task)
}

// join takes the target of a separate target file.
func (raw *rawTable) join(tr *rawTable) error {
	if tr.seen != raw.seen {
		within := ""
		if raw.stopped || tr.stopped {
			within = " within the first max_rows"
		}
		return &DataError{File: tr.file, Err: fmt.Errorf("has %d data rows%s but %s has %d; the two files must align row by row", tr.seen, within, raw.file, raw.seen)}
	}
	raw.targetFile, raw.targetName, raw.targetField = tr.targetFile, tr.targetName, tr.targetField
	raw.target, raw.targetLines, raw.targetByRow = tr.target, tr.targetLines, tr.targetByRow
	return nil
}

// Load reads a dataset from r, uncompressed; name is only used in errors
// and to detect the format. Parquet and Arrow IPC files need r to be an
// io.ReaderAt and io.Seeker (an *os.File or *bytes.Reader); an Arrow stream
// or text is read sequentially. IDX needs LoadFile, for its labels file.
func Load(name string, r io.Reader, o LoadOptions) (*Table, error) {
	if o.TargetPath != "" {
		return nil, errors.New("dataset: Load reads one stream; use LoadFile for a separate target file")
	}
	raw, err := readStream(context.Background(), name, r, false, o, withTarget)
	if err != nil {
		return nil, err
	}
	return raw.finish(o.Task)
}

type parseMode int

const (
	withTarget   parseMode = iota // one column of the file is the target
	featuresOnly                  // every column is a feature
	targetOnly                    // the file is a single target column
)

type headerKind int

const (
	noHeader headerKind = iota
	namesHeader
	countHeader // scikit-learn's "n_samples,n_features,class names..."
)

// rawTable is a file as read: features parsed, the target still as text,
// because whether it holds class labels or values is decided on all of it.
type rawTable struct {
	file   string
	format Format
	// rows is the number of rows kept; seen counts the rows read, and
	// stopped says max_rows stopped the reading before the end.
	rows, seen   int
	stopped      bool
	sample       string
	featureNames []string
	features     [][]float64
	targetFile   string
	targetName   string
	targetField  int // 1-based position of the target column
	target       []string
	// targetLines holds where each target came from: its line in a text
	// file, its row (targetByRow) in other formats.
	targetLines []int
	targetByRow bool
	// byRow says the file locates data by row rather than by line.
	byRow bool
	// countRows and classNames come from a count header.
	counted    bool
	countRows  int
	classNames []string
}

// put stores a row's features (nil in a target file) and target (ignored
// in a features file) in slot, as a sampler chose it.
func (raw *rawTable) put(slot int, row []float64, target string, hasTarget bool, loc int) {
	if slot == raw.rows {
		for k, v := range row {
			raw.features[k] = append(raw.features[k], v)
		}
		if hasTarget {
			raw.target = append(raw.target, target)
			raw.targetLines = append(raw.targetLines, loc)
		}
		raw.rows++
		return
	}
	for k, v := range row {
		raw.features[k][slot] = v
	}
	if hasTarget {
		raw.target[slot], raw.targetLines[slot] = target, loc
	}
}

// done records what the sampler did and puts sampled rows in file order.
func (raw *rawTable) done(s *sampler, seed uint64) {
	raw.seen, raw.stopped, raw.sample = s.seen, s.stopped, s.describe(seed)
	perm := s.order()
	if perm == nil {
		return
	}
	for k, col := range raw.features {
		raw.features[k] = permute(col, perm)
	}
	if raw.target != nil {
		raw.target, raw.targetLines = permute(raw.target, perm), permute(raw.targetLines, perm)
	}
}

// targetColumn finds the target among width columns named names (by
// o.Target, o.TargetIndex, or last).
func targetColumn(name string, names []string, width int, o LoadOptions) (int, error) {
	switch {
	case o.Target != "":
		tidx := slices.Index(names, o.Target)
		if tidx < 0 {
			return 0, sdk.AttrError("target", "Unknown target column",
				fmt.Sprintf("%s has no column %q.%s Its columns are: %s.", name, o.Target, suggest.Hint(o.Target, names), listNames(names)))
		}
		return tidx, nil
	case o.TargetIndex != nil:
		tidx := *o.TargetIndex
		if tidx < 0 {
			tidx += width
		}
		if tidx < 0 || tidx >= width {
			return 0, sdk.AttrError("target_index", "Target index out of range",
				fmt.Sprintf("%s has %d columns: target_index must be in 0..%d, or -%d..-1 counting from the end; found %d.", name, width, width-1, width, *o.TargetIndex))
		}
		return tidx, nil
	}
	return width - 1, nil
}

func fieldCount(n int) string {
	if n == 1 {
		return "1 field"
	}
	return strconv.Itoa(n) + " fields"
}

func trimAll(fields []string) {
	for i, f := range fields {
		fields[i] = strings.TrimSpace(f)
	}
}

func quoteShort(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "…"
	}
	return strconv.Quote(s)
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}

func isCount(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0
}

// isCountHeader recognises scikit-learn's "n_samples,n_features,names..."
// first line: two counts, then at least one class name and only names, with
// n_features+1 fields on the next line. Without a name, "1,1" could as well
// be data.
func isCountHeader(first, second []string) bool {
	if len(first) < 3 || second == nil || !isCount(first[0]) || !isCount(first[1]) {
		return false
	}
	if nf, _ := strconv.Atoi(first[1]); nf+1 != len(second) {
		return false
	}
	for _, f := range first[2:] {
		if f == "" || isNumber(f) {
			return false
		}
	}
	return true
}

// looksLikeHeader says the first line names the columns when some field
// there is not a number although the same field on the next line is. A file
// whose label column holds strings thus is not mistaken for having a header.
func looksLikeHeader(first, second []string) bool {
	if second == nil {
		for _, f := range first {
			if isNumber(f) {
				return false
			}
		}
		return true
	}
	for i := range min(len(first), len(second)) {
		if !isNumber(first[i]) && first[i] != "" && isNumber(second[i]) {
			return true
		}
	}
	return false
}

func listNames(names []string) string {
	const most = 20
	q := make([]string, 0, min(len(names), most))
	for _, n := range names[:min(len(names), most)] {
		q = append(q, strconv.Quote(n))
	}
	s := strings.Join(q, ", ")
	if len(names) > most {
		s += fmt.Sprintf(" and %d more", len(names)-most)
	}
	return s
}

// finish decides the task and turns the target text into labels or values.
func (raw *rawTable) finish(task Task) (*Table, error) {
	t := &Table{
		Source:       raw.file,
		Format:       raw.format,
		Sample:       raw.sample,
		FeatureNames: raw.featureNames,
		Features:     raw.features,
		TargetName:   raw.targetName,
	}
	if raw.targetFile != raw.file {
		t.Source = raw.file + " + " + raw.targetFile
	}
	targetErr := func(i int, err error) error {
		e := &DataError{File: raw.targetFile, Line: raw.targetLines[i], Column: raw.targetName, Field: raw.targetField, Err: err}
		if raw.targetByRow {
			e.Line, e.Row = 0, raw.targetLines[i]
		}
		return e
	}
	if task == "" {
		task = raw.inferTask()
	}
	t.Task = task
	switch task {
	case Regression:
		t.Values = make([]float64, len(raw.target))
		for i, s := range raw.target {
			v, err := parseNumber(s)
			if err != nil {
				return nil, targetErr(i, fmt.Errorf("%w; a regression target must be numeric", err))
			}
			t.Values[i] = v
		}
		return t, nil
	case Classification:
	default:
		return nil, fmt.Errorf("dataset: unknown task %q", task)
	}

	t.Labels = make([]int64, len(raw.target))
	if raw.counted {
		k := len(raw.classNames)
		for i, s := range raw.target {
			c, err := strconv.ParseInt(s, 10, 64)
			if err != nil || c < 0 || c >= int64(k) {
				return nil, targetErr(i, fmt.Errorf("label %s is not a class index 0..%d as the count header's %d class names require", quoteShort(s), k-1, k))
			}
			t.Labels[i] = c
		}
		t.Classes, t.ClassNames = k, raw.classNames
	} else {
		t.Classes, t.ClassNames = indexLabels(raw.target, t.Labels)
	}
	if t.Classes < 2 {
		return nil, &DataError{File: raw.targetFile, Column: raw.targetName, Err: fmt.Errorf("has a single class; classification needs at least 2 (set task = \"regression\" if the target is a value)")}
	}
	if len(t.Labels) < t.Classes {
		return nil, &DataError{File: raw.targetFile, Err: fmt.Errorf("has %d data rows but %d classes; every class needs rows to learn from", len(t.Labels), t.Classes)}
	}
	return t, nil
}

func (raw *rawTable) inferTask() Task {
	if raw.counted {
		return Classification
	}
	distinct := map[float64]struct{}{}
	integral := true
	// A spelling seen before changes nothing below: each is judged once.
	seen := newSpellings(maxInterned)
	for _, s := range raw.target {
		if _, added := seen.index(s); !added {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return Classification
		}
		integral = integral && v == math.Trunc(v) && !math.IsInf(v, 0)
		if len(distinct) <= maxInferredClasses {
			distinct[v] = struct{}{}
		}
	}
	if integral && len(distinct) <= maxInferredClasses && len(distinct) <= max(2, len(raw.target)/2) {
		return Classification
	}
	return Regression
}

// indexLabels maps labels to class indexes in sorted label order (numeric
// order, with "1" and "1.0" one class, when every label is a number) and
// returns the number of classes and the original labels, or nil names when
// the labels already were 0..k-1.
func indexLabels(labels []string, out []int64) (int, []string) {
	// Labels repeat: each spelling is parsed and placed once, and no
	// per-row copy of the labels is made.
	// out holds each row's spelling until the spellings' classes are
	// known.
	x := newSpellings(0)
	for i, s := range labels {
		k, _ := x.index(s)
		out[i] = int64(k)
	}
	distinct := x.distinct
	values := make([]float64, len(distinct))
	numeric := true
	for i, s := range distinct {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			numeric = false
			break
		}
		values[i] = v
	}
	if !numeric {
		names := slices.Clone(distinct)
		slices.Sort(names)
		class := make([]int64, len(distinct))
		for i, s := range distinct {
			k, _ := slices.BinarySearch(names, s)
			class[i] = int64(k)
		}
		for i, k := range out {
			out[i] = class[k]
		}
		return len(names), names
	}
	// Numbers: one class per value ("1" and "1.0" alike), named by the
	// value's first spelling in the file (distinct is in the order of first
	// appearance).
	firstSpelling := map[float64]string{}
	for k, s := range distinct {
		if _, ok := firstSpelling[values[k]]; !ok {
			firstSpelling[values[k]] = s
		}
	}
	sorted := slices.Sorted(maps.Keys(firstSpelling))
	identity := true
	names := make([]string, len(sorted))
	for k, v := range sorted {
		names[k] = firstSpelling[v]
		identity = identity && v == float64(k)
	}
	class := make([]int64, len(distinct))
	for i, v := range values {
		k, _ := slices.BinarySearch(sorted, v)
		class[i] = int64(k)
	}
	for i, k := range out {
		out[i] = class[k]
	}
	if identity {
		return len(sorted), nil
	}
	return len(sorted), names
}
