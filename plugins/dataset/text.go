package dataset

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Text files (CSV, TSV, whitespace-separated) are read in two ways that
// give the same table. The fast way (textblocks.go) cuts the file into
// blocks of whole lines and parses them on every core. Quotes are the one
// thing it leaves alone: a quoted CSV field may hold the delimiter or a
// newline, so from the first block with a quote on, the rest of the file
// is read record by record by encoding/csv, as all of it once was.

// maxLineBytes bounds one line, so that a file without newlines (or a
// device that never ends) cannot fill memory.
const maxLineBytes = 64 << 20

var errLineTooLong = errors.New("line longer than 64 MiB")

// records yields the fields of each non-empty line.
type records interface {
	Read() ([]string, error)
	// Line is the 1-based line of the record Read returned last.
	Line() int
}

// csvRecords reads CSV or TSV; off is the number of lines before its
// input began.
type csvRecords struct {
	r   *csv.Reader
	off int
}

func (c csvRecords) Read() ([]string, error) { return c.r.Read() }
func (c csvRecords) Line() int {
	line, _ := c.r.FieldPos(0)
	return line + c.off
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

// newRecords reads records of format f from r, whose first line is line
// off+1 of the file.
func newRecords(f Format, r io.Reader, off int) records {
	switch f {
	case FormatWhitespace:
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), maxLineBytes)
		return &wsRecords{sc: sc, line: off}
	case FormatTSV:
		r := csv.NewReader(r)
		r.Comma = '\t'
		r.FieldsPerRecord = -1
		// TSV has no quoting convention; a stray quote is data.
		r.LazyQuotes = true
		return csvRecords{r, off}
	default:
		r := csv.NewReader(r)
		r.FieldsPerRecord = -1
		r.TrimLeadingSpace = true
		return csvRecords{r, off}
	}
}

func readError(name string, recs records, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		off := 0
		if c, ok := recs.(csvRecords); ok {
			off = c.off
		}
		return &DataError{File: name, Line: pe.Line + off, Err: pe.Err}
	}
	if errors.Is(err, bufio.ErrTooLong) {
		return &DataError{File: name, Line: recs.Line() + 1, Err: errLineTooLong}
	}
	var de *DataError
	if errors.As(err, &de) {
		return err
	}
	return &DataError{File: name, Line: recs.Line(), Err: err}
}

// quotable says the format gives quotes a meaning.
func quotable(f Format) bool { return f != FormatWhitespace }

// readLine reads one line, its newline included (none at the end of the
// file), refusing one longer than maxLineBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		b, err := br.ReadSlice('\n')
		if len(line)+len(b) > maxLineBytes {
			return nil, errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			line = append(line, b...)
			continue
		}
		if line == nil {
			return b, err
		}
		return append(line, b...), err
	}
}

// splitLine splits one line as encoding/csv (without quotes) or
// strings.Fields would, or returns nil for a line without a record.
func splitLine(format Format, b []byte) []string {
	b = bytes.TrimSuffix(b, []byte("\n"))
	if format == FormatWhitespace {
		if f := strings.Fields(string(b)); len(f) > 0 {
			return f
		}
		return nil
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil
	}
	fields := strings.Split(string(b), string(separator(format)))
	if format == FormatCSV {
		for i, f := range fields {
			fields[i] = strings.TrimLeftFunc(f, unicode.IsSpace)
		}
	}
	return fields
}

func separator(format Format) byte {
	if format == FormatTSV {
		return '\t'
	}
	return ','
}

// textHead is the start of a text file: its first two records, read line
// by line so that the fast parser can go on from the next line.
type textHead struct {
	raw   []byte // every byte read
	recs  [][]string
	lines []int
	next  int // the line after the last one read
	// quoted says a line read has a quote: the file is then read by
	// encoding/csv from its start (raw, then the rest).
	quoted bool
	eof    bool
}

func readHead(br *bufio.Reader, format Format) (*textHead, error) {
	h := &textHead{next: 1}
	for len(h.recs) < 2 {
		b, err := readLine(br)
		if err != nil && err != io.EOF {
			return nil, &DataError{Line: h.next, Err: err}
		}
		if len(b) == 0 && err == io.EOF {
			h.eof = true
			break
		}
		h.raw = append(h.raw, b...)
		line := h.next
		h.next++
		if quotable(format) && bytes.IndexByte(b, '"') >= 0 {
			h.quoted = true
			return h, nil
		}
		if f := splitLine(format, b); f != nil {
			h.recs, h.lines = append(h.recs, f), append(h.lines, line)
		}
		if err == io.EOF {
			h.eof = true
			break
		}
	}
	return h, nil
}

// textPlan is what checking a data row needs: the layout decided from
// the first lines.
type textPlan struct {
	name          string
	format        Format
	width         int
	tidx          int
	names         []string
	header        headerKind
	headerGuessed bool
	firstLine     int
	// firstDataLine is the line of the first data row, once read.
	firstDataLine int
	features      int
}

// widthError reports a row of got fields.
func (p *textPlan) widthError(line, got int) error {
	e := &DataError{File: p.name, Line: line}
	if got < p.width {
		e.Column, e.Field = p.names[got], got+1
		e.Err = fmt.Errorf("has %s, want %d: this column is missing", fieldCount(got), p.width)
	} else {
		e.Field = p.width + 1
		e.Err = fmt.Errorf("has %s, want %d: extra field", fieldCount(got), p.width)
	}
	if p.header == namesHeader {
		e.Err = fmt.Errorf("%w (the header on line %d has %d)", e.Err, p.firstLine, p.width)
	} else {
		e.Err = fmt.Errorf("%w (line %d has %d)", e.Err, p.firstDataLine, p.width)
	}
	return e
}

// cellError reports field j of a row.
func (p *textPlan) cellError(line, j int, err error) error {
	if line == p.firstLine && p.header == noHeader && p.headerGuessed {
		err = fmt.Errorf("%w (if this line names the columns, set header = true)", err)
	}
	return &DataError{File: p.name, Line: line, Column: p.names[j], Field: j + 1, Err: err}
}

func (p *textPlan) emptyTarget(line int) error {
	return &DataError{File: p.name, Line: line, Column: p.names[p.tidx], Field: p.tidx + 1, Err: errors.New("empty target cell: drop or label this row")}
}

// textSink holds the rows kept, column by column.
type textSink struct {
	cols      []column[float64]
	target    column[string]
	lines     column[int]
	hasTarget bool
	rows      int
}

func newTextSink(features int, hasTarget bool) *textSink {
	return &textSink{cols: make([]column[float64], features), hasTarget: hasTarget}
}

// reserve makes room for n rows, to be filled in place.
func (s *textSink) reserve(n int) {
	for k := range s.cols {
		s.cols[k].flat = make([]float64, 0, n)
	}
	if s.hasTarget {
		s.target.flat = make([]string, 0, n)
		s.lines.flat = make([]int, 0, n)
	}
}

// put stores a row in slot, as the sampler chose it.
func (s *textSink) put(slot int, row []float64, target string, line int) {
	if slot == s.rows {
		for k, v := range row {
			s.cols[k].push(v)
		}
		if s.hasTarget {
			s.target.push(target)
			s.lines.push(line)
		}
		s.rows++
		return
	}
	for k, v := range row {
		s.cols[k].set(slot, v)
	}
	if s.hasTarget {
		s.target.set(slot, target)
		s.lines.set(slot, line)
	}
}

// into moves the columns into raw, one at a time, so that the parts of a
// column are freed before the next column is made whole.
func (s *textSink) into(raw *rawTable) {
	raw.rows = s.rows
	for k := range s.cols {
		copied := s.cols[k].more.n
		raw.features[k] = s.cols[k].whole()
		releaseMemory(int64(copied) * 8)
	}
	if s.hasTarget {
		raw.target = s.target.whole()
		raw.targetLines = s.lines.whole()
	}
}

// rowsFor estimates the rows of a text file of size bytes from the lines
// in sample, generously: a reservation costs address space, not memory,
// and one too small costs a copy of the rows beyond it. No row is shorter
// than its width's separators and one byte per field.
func rowsFor(size int64, sample []byte, width int) int {
	if size <= 0 {
		return 0
	}
	most := size/int64(2*width) + 2
	nl := bytes.Count(sample, []byte{'\n'})
	if nl == 0 {
		return int(min(most, 1<<16))
	}
	est := size*int64(nl)/int64(len(sample))*5/4 + 1024
	return int(min(est, most))
}

// parse reads a text file from br; size is the file's size in bytes, or
// -1 when unknown (a decompressed or special file).
func parse(ctx context.Context, name string, br *bufio.Reader, size int64, o LoadOptions, mode parseMode) (*rawTable, error) {
	format := o.Format
	if format == "" {
		format = sniff(name, br)
	}
	head, err := readHead(br, format)
	if err != nil {
		var de *DataError
		if errors.As(err, &de) {
			de.File = name
		}
		return nil, err
	}
	sequential := o.sequential || head.quoted
	var recs records
	var first, second []string
	var firstLine, secondLine int
	if sequential {
		recs = newRecords(format, io.MultiReader(bytes.NewReader(head.raw), br), 0)
		first, err = recs.Read()
		if err == io.EOF {
			return nil, &DataError{File: name, Err: errors.New("file is empty")}
		}
		if err != nil {
			return nil, readError(name, recs, err)
		}
		firstLine = recs.Line()
		second, err = recs.Read()
		if err != nil && err != io.EOF {
			return nil, readError(name, recs, err)
		}
		secondLine = recs.Line()
	} else {
		if len(head.recs) == 0 {
			return nil, &DataError{File: name, Err: errors.New("file is empty")}
		}
		first, firstLine = head.recs[0], head.lines[0]
		if len(head.recs) > 1 {
			second, secondLine = head.recs[1], head.lines[1]
		}
	}
	first[0] = strings.TrimPrefix(first[0], "\ufeff")
	trimAll(first)
	trimAll(second)

	header := noHeader
	switch {
	case o.Header != nil && !*o.Header:
	case isCountHeader(first, second):
		header = countHeader
	case o.Header != nil && *o.Header, looksLikeHeader(first, second):
		header = namesHeader
	}

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
	// The output carries every column and the split column: a table wider
	// than a port may hold is refused here, by its file, rather than by
	// the host reading the output as damaged.
	if width+1 > ipcverify.MaxFields {
		return nil, &DataError{File: name, Line: firstLine, Err: fmt.Errorf("has %d columns; a dataset holds at most %d (a table passed between stages carries at most %d columns, the split column among them)", width, ipcverify.MaxFields-1, ipcverify.MaxFields)}
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

	plan := &textPlan{name: name, format: format, width: width, tidx: tidx, names: names, header: header,
		headerGuessed: o.Header == nil, firstLine: firstLine, features: len(raw.featureNames)}
	sink := newTextSink(plan.features, tidx >= 0)
	smp := newSampler(o)
	if smp.rng == nil && !sequential && !head.eof {
		sample, _ := br.Peek(1 << 20)
		n := rowsFor(size, append(head.raw[:len(head.raw):len(head.raw)], sample...), width)
		if smp.limit > 0 {
			n = min(n, smp.limit)
		}
		sink.reserve(n)
	}
	row := make([]float64, plan.features)
	// addRecord checks every record read, kept or not, so that whether a
	// file loads does not depend on the sample.
	addRecord := func(fields []string, line int) (stop bool, err error) {
		slot, stop := smp.offer()
		if stop {
			return true, nil
		}
		if plan.firstDataLine == 0 {
			plan.firstDataLine = line
		}
		if len(fields) != width {
			return false, plan.widthError(line, len(fields))
		}
		k := 0
		target := ""
		for j, f := range fields {
			if j == tidx {
				if f == "" {
					return false, plan.emptyTarget(line)
				}
				target = f
				continue
			}
			v, err := parseNumber(f)
			if err != nil {
				return false, plan.cellError(line, j, err)
			}
			row[k] = v
			k++
		}
		if slot >= 0 {
			sink.put(slot, row, target, line)
		}
		return false, nil
	}
	// readAll reads the records recs yields.
	readAll := func(recs records) error {
		for n := 0; ; n++ {
			if n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			rec, err := recs.Read()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return readError(name, recs, err)
			}
			trimAll(rec)
			stop, err := addRecord(rec, recs.Line())
			if err != nil || stop {
				return err
			}
		}
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
	switch {
	case second == nil || stopped:
	case sequential:
		if err := readAll(recs); err != nil {
			return nil, err
		}
	case !head.eof:
		rest, line, err := plan.readBlocks(ctx, br, head.next, o.blockSize, smp, sink)
		if err != nil {
			return nil, err
		}
		if rest != nil {
			if err := readAll(newRecords(format, rest, line-1)); err != nil {
				return nil, err
			}
		}
	}
	if sink.rows == 0 {
		return nil, &DataError{File: name, Err: errors.New("has no data rows")}
	}
	if raw.counted && !smp.stopped && smp.seen != raw.countRows {
		return nil, &DataError{File: name, Line: firstLine, Err: fmt.Errorf("the count header announces %d rows but the file has %d (truncated file?)", raw.countRows, smp.seen)}
	}
	sink.into(raw)
	raw.done(smp, o.Seed)
	if mode == targetOnly {
		// A target file's features slice is empty by construction.
		raw.features, raw.featureNames = nil, nil
	}
	return raw, nil
}
