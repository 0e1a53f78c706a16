package dataset

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
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
	// Allocator serves the Arrow buffers of Parquet and Arrow readers; nil
	// means memory.DefaultAllocator. Nothing allocated outlives the load.
	Allocator memory.Allocator
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

// records yields the fields of each non-empty line.
type records interface {
	Read() ([]string, error)
	// Line is the 1-based line of the record Read returned last.
	Line() int
}

type csvRecords struct{ r *csv.Reader }

func (c csvRecords) Read() ([]string, error) { return c.r.Read() }
func (c csvRecords) Line() int {
	line, _ := c.r.FieldPos(0)
	return line
}

type wsRecords struct {
	sc         *bufio.Scanner
	line, last int
}

func (w *wsRecords) Read() ([]string, error) {
	for w.sc.Scan() {
		w.line++
		if f := strings.Fields(w.sc.Text()); len(f) > 0 {
			w.last = w.line
			return f, nil
		}
	}
	if err := w.sc.Err(); err != nil {
		return nil, err
	}
	return nil, io.EOF
}
func (w *wsRecords) Line() int { return w.last }

// sniff picks the format from the name, then from the first line.
func sniff(name string, br *bufio.Reader) Format {
	switch filepath.Ext(strings.TrimSuffix(strings.ToLower(name), ".gz")) {
	case ".tsv", ".tab":
		return FormatTSV
	}
	// Peek returns what it has even when the file is shorter than asked.
	head, _ := br.Peek(64 << 10)
	line, _, _ := strings.Cut(string(head), "\n")
	switch {
	case strings.Contains(line, ","):
		return FormatCSV
	case strings.Contains(line, "\t"):
		return FormatTSV
	case len(strings.Fields(line)) > 1:
		return FormatWhitespace
	}
	return FormatCSV
}

func newRecords(f Format, br *bufio.Reader) records {
	switch f {
	case FormatWhitespace:
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		return &wsRecords{sc: sc}
	case FormatTSV:
		r := csv.NewReader(br)
		r.Comma = '\t'
		r.FieldsPerRecord = -1
		// TSV has no quoting convention; a stray quote is data.
		r.LazyQuotes = true
		return csvRecords{r}
	default:
		r := csv.NewReader(br)
		r.FieldsPerRecord = -1
		r.TrimLeadingSpace = true
		return csvRecords{r}
	}
}

func readError(name string, recs records, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &DataError{File: name, Line: pe.Line, Err: pe.Err}
	}
	if errors.Is(err, bufio.ErrTooLong) {
		return &DataError{File: name, Line: recs.Line() + 1, Err: errors.New("line longer than 64 MiB")}
	}
	return &DataError{File: name, Line: recs.Line(), Err: err}
}

func parse(ctx context.Context, name string, br *bufio.Reader, o LoadOptions, mode parseMode) (*rawTable, error) {
	format := o.Format
	if format == "" {
		format = sniff(name, br)
	}
	recs := newRecords(format, br)
	first, err := recs.Read()
	if err == io.EOF {
		return nil, &DataError{File: name, Err: errors.New("file is empty")}
	}
	if err != nil {
		return nil, readError(name, recs, err)
	}
	firstLine := recs.Line()
	first[0] = strings.TrimPrefix(first[0], "\ufeff")
	trimAll(first)
	second, err := recs.Read()
	if err != nil && err != io.EOF {
		return nil, readError(name, recs, err)
	}
	secondLine := recs.Line()
	trimAll(second)

	header := noHeader
	switch {
	case o.Header != nil && !*o.Header:
	case isCountHeader(first, second):
		header = countHeader
	case o.Header != nil && *o.Header, looksLikeHeader(first, second):
		header = namesHeader
	}
	headerGuessed := o.Header == nil

	raw := &rawTable{file: name, targetFile: name, format: format}
	var data [][]string // the records already read that hold data
	var dataLines []int
	switch header {
	case noHeader:
		data, dataLines = [][]string{first}, []int{firstLine}
	case namesHeader:
	case countHeader:
		n, _ := strconv.Atoi(first[0])
		raw.counted, raw.countRows, raw.classNames = true, n, first[2:]
	}
	if second != nil {
		data, dataLines = append(data, second), append(dataLines, secondLine)
	}
	width := len(first)
	if header == countHeader {
		width = len(second)
	}

	// The target's position.
	tidx := -1
	switch mode {
	case withTarget:
		if width < 2 {
			return nil, &DataError{File: name, Line: firstLine, Err: fmt.Errorf("has %d column as read in %s format; a dataset needs at least one feature and the target (set format if the delimiter is not what was detected)", width, format)}
		}
		if o.Target != "" && header != namesHeader {
			return nil, sdk.AttrError("target", "Target column needs a header line",
				fmt.Sprintf("%s has no header line naming its columns, so the column %q cannot be found. Use target_index (0-based; negative counts from the end), or set header = true if line %d names the columns.", name, o.Target, firstLine))
		}
		if tidx, err = targetColumn(name, first, width, o); err != nil {
			return nil, err
		}
	case targetOnly:
		if width != 1 {
			return nil, &DataError{File: name, Line: firstLine, Err: fmt.Errorf("a target file holds one value per line; found %s", fieldCount(width))}
		}
		tidx = 0
	}
	raw.targetField = tidx + 1

	// Column names.
	names := make([]string, width)
	if header == namesHeader {
		seen := map[string]int{}
		for j, n := range first {
			switch {
			case n == "":
				return nil, &DataError{File: name, Line: firstLine, Field: j + 1, Err: errors.New("the header gives this column no name")}
			case n == SplitColumn:
				return nil, &DataError{File: name, Line: firstLine, Column: n, Field: j + 1, Err: errors.New(`the name "split" is reserved for the train/validation/test column the dataset stage adds; rename this column`)}
			}
			if k, dup := seen[n]; dup {
				return nil, &DataError{File: name, Line: firstLine, Column: n, Field: j + 1, Err: fmt.Errorf("the header names two columns %q (fields %d and %d)", n, k+1, j+1)}
			}
			seen[n] = j
			names[j] = n
		}
	} else {
		k := 0
		for j := range names {
			if j == tidx {
				names[j] = "target"
				continue
			}
			names[j] = "x" + strconv.Itoa(k)
			k++
		}
	}
	for j, n := range names {
		if j == tidx {
			raw.targetName = n
			continue
		}
		raw.featureNames = append(raw.featureNames, n)
	}
	raw.features = make([][]float64, len(raw.featureNames))

	smp := newSampler(o)
	row := make([]float64, len(raw.featureNames))
	firstDataLine := 0
	// addRecord checks every record read, kept or not, so that whether a
	// file loads does not depend on the sample.
	addRecord := func(fields []string, line int) (stop bool, err error) {
		slot, stop := smp.offer()
		if stop {
			return true, nil
		}
		if firstDataLine == 0 {
			firstDataLine = line
		}
		if len(fields) != width {
			e := &DataError{File: name, Line: line}
			if len(fields) < width {
				e.Column, e.Field = names[len(fields)], len(fields)+1
				e.Err = fmt.Errorf("has %s, want %d: this column is missing", fieldCount(len(fields)), width)
			} else {
				e.Field = width + 1
				e.Err = fmt.Errorf("has %s, want %d: extra field", fieldCount(len(fields)), width)
			}
			if header == namesHeader {
				e.Err = fmt.Errorf("%w (the header on line %d has %d)", e.Err, firstLine, width)
			} else {
				e.Err = fmt.Errorf("%w (line %d has %d)", e.Err, firstDataLine, width)
			}
			return false, e
		}
		k := 0
		target := ""
		for j, f := range fields {
			if j == tidx {
				if f == "" {
					return false, &DataError{File: name, Line: line, Column: names[j], Field: j + 1, Err: errors.New("empty target cell: drop or label this row")}
				}
				target = f
				continue
			}
			v, err := parseNumber(f)
			if err != nil {
				if line == firstLine && header == noHeader && headerGuessed {
					err = fmt.Errorf("%w (if this line names the columns, set header = true)", err)
				}
				return false, &DataError{File: name, Line: line, Column: names[j], Field: j + 1, Err: err}
			}
			row[k] = v
			k++
		}
		if slot >= 0 {
			raw.put(slot, row, target, tidx >= 0, line)
		}
		return false, nil
	}
	stopped := false
	for i, rec := range data {
		if stopped, err = addRecord(rec, dataLines[i]); err != nil {
			return nil, err
		}
		if stopped {
			break
		}
	}
	for n := 0; second != nil && !stopped; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := recs.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, readError(name, recs, err)
		}
		trimAll(rec)
		if stopped, err = addRecord(rec, recs.Line()); err != nil {
			return nil, err
		}
	}
	if raw.rows == 0 {
		return nil, &DataError{File: name, Err: errors.New("has no data rows")}
	}
	if raw.counted && !smp.stopped && smp.seen != raw.countRows {
		return nil, &DataError{File: name, Line: firstLine, Err: fmt.Errorf("the count header announces %d rows but the file has %d (truncated file?)", raw.countRows, smp.seen)}
	}
	raw.done(smp, o.Seed)
	if mode == targetOnly {
		// A target file's features slice is empty by construction.
		raw.features, raw.featureNames = nil, nil
	}
	return raw, nil
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

// parseNumber reads one feature cell. Missing values are refused rather
// than silently imputed: the user decides how to fill them.
func parseNumber(s string) (float64, error) {
	if s == "" {
		return 0, errors.New("empty cell: fill or drop missing values before loading")
	}
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%s is not a number", quoteShort(s))
	case math.IsNaN(v):
		return 0, fmt.Errorf("%s is a missing value: fill or drop missing values before loading", quoteShort(s))
	case math.IsInf(v, 0):
		return 0, fmt.Errorf("%s is not a finite number", quoteShort(s))
	}
	return v, nil
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
	for _, s := range raw.target {
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
	values := make([]float64, len(labels))
	numeric := true
	for i, s := range labels {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			numeric = false
			break
		}
		values[i] = v
	}
	if !numeric {
		names := slices.Clone(labels)
		slices.Sort(names)
		names = slices.Compact(names)
		for i, s := range labels {
			k, _ := slices.BinarySearch(names, s)
			out[i] = int64(k)
		}
		return len(names), names
	}
	firstSpelling := map[float64]string{}
	for i, v := range values {
		if _, ok := firstSpelling[v]; !ok {
			firstSpelling[v] = labels[i]
		}
	}
	distinct := slices.Sorted(maps.Keys(firstSpelling))
	identity := true
	names := make([]string, len(distinct))
	for k, v := range distinct {
		names[k] = firstSpelling[v]
		identity = identity && v == float64(k)
	}
	for i, v := range values {
		k, _ := slices.BinarySearch(distinct, v)
		out[i] = int64(k)
	}
	if identity {
		return len(distinct), nil
	}
	return len(distinct), names
}
