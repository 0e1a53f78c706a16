package dataset

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"unicode/utf8"
)

// defaultBlockSize is the bytes of text one worker parses at a time: large
// enough that handing blocks around costs nothing, small enough that the
// blocks in flight (two per core) are a small part of memory and stay in
// the caches between the read that fills them and the parse. On the
// benchmark's 256 MiB CSV, 1 MiB blocks read 376 to 393 MB per CPU second
// where 4 MiB ones read 301 to 366 (256 and 512 KiB: 350 to 381), and the
// load peaked at 1.17 rather than 1.25 times the kept columns.
const defaultBlockSize = 1 << 20

// textBlock is a run of whole lines and, once parsed, its rows.
type textBlock struct {
	buf  []byte // the buffer data was cut from, to reuse
	data []byte
	line int // line of data[0]
	// rest, when set, is the file from data on, to be read by
	// encoding/csv: data has a quote.
	rest io.Reader
	// err is a read error after the lines of the blocks before.
	err error

	// most bounds the rows of data; at, when inPlace, is where in the
	// sink's reserved columns the parser writes them.
	most    int
	at      int
	inPlace bool

	done chan struct{}
	// rows parsed and checked before parseErr (all of them when nil).
	rows     int
	cols     [][]float64
	target   []string
	lines    []int
	parseErr error
}

// textWorker holds one worker's scratch space.
type textWorker struct {
	fields [][]byte
	row    []float64
	labels map[string]string
	// short holds the labels of one byte (class digits), found without
	// hashing.
	short [256]string
}

// maxInterned bounds each worker's table of target spellings, which saves
// an allocation per row for class labels and would only grow for values.
const maxInterned = 4096

func (w *textWorker) intern(b []byte) string {
	if len(b) == 1 {
		if s := w.short[b[0]]; s != "" {
			return s
		}
		s := w.internMap(b)
		w.short[b[0]] = s
		return s
	}
	return w.internMap(b)
}

func (w *textWorker) internMap(b []byte) string {
	if s, ok := w.labels[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(w.labels) < maxInterned {
		w.labels[s] = s
	}
	return s
}

// readBlocks parses the rest of a text file, from line on, into sink: one
// goroutine cuts blocks, GOMAXPROCS workers parse them, and this one takes
// their rows in file order, as the sampler says. When a block holds a
// quote it returns the file from that block on, and the block's line, to
// be read by encoding/csv.
func (p *textPlan) readBlocks(ctx context.Context, src io.Reader, line, blockSize int, smp *sampler, sink *textSink) (io.Reader, int, error) {
	if blockSize <= 0 {
		blockSize = defaultBlockSize
	}
	room := newRoom(sink)
	workers := runtime.GOMAXPROCS(0)
	inFlight := 2 * workers
	order := make(chan *textBlock, inFlight)
	work := make(chan *textBlock, inFlight)
	free := make(chan []byte, inFlight+2)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1 + workers)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(work)
		p.cut(src, line, blockSize, room, order, work, free, stop)
	}()
	for range workers {
		go func() {
			defer wg.Done()
			w := &textWorker{row: make([]float64, p.features), labels: map[string]string{}}
			for blk := range work {
				p.parseBlock(blk, w, room)
				close(blk.done)
			}
		}()
	}
	defer func() {
		close(stop)
		// Drain, so that the cutter is not left blocked on a full channel.
		for blk := range order {
			_ = blk
		}
		wg.Wait()
	}()
	for blk := range order {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		switch {
		case blk.rest != nil:
			return blk.rest, blk.line, nil
		case blk.err != nil:
			return nil, 0, blk.err
		}
		<-blk.done
		if p.firstDataLine == 0 && blk.rows > 0 {
			p.firstDataLine = blk.lines[0]
		}
		stopped, err := p.keep(blk, smp, sink)
		if err != nil || stopped {
			return nil, 0, err
		}
		select {
		case free <- blk.buf[:0]:
		default:
		}
	}
	return nil, 0, nil
}

// keep hands a parsed block's rows to the sampler and keeps what it
// chooses; stopped says a "first" sample is full.
func (p *textPlan) keep(blk *textBlock, smp *sampler, sink *textSink) (stopped bool, err error) {
	if smp.rng == nil {
		take, stop := smp.take(blk.rows)
		for k := range sink.cols {
			sink.cols[k].adopt(blk.cols[k][:take], blk.at, blk.inPlace)
		}
		if sink.hasTarget {
			sink.target.adopt(blk.target[:take], blk.at, blk.inPlace)
			sink.lines.adopt(blk.lines[:take], blk.at, blk.inPlace)
		}
		sink.rows += take
		if stop {
			return true, nil
		}
	} else {
		row := make([]float64, len(sink.cols))
		for r := range blk.rows {
			slot, _ := smp.offer()
			if slot < 0 {
				continue
			}
			for k := range row {
				row[k] = blk.cols[k][r]
			}
			target, line := "", 0
			if sink.hasTarget {
				target, line = blk.target[r], blk.lines[r]
			}
			sink.put(slot, row, target, line)
		}
	}
	if blk.parseErr != nil {
		// The row at fault is offered like any other: past a full
		// "first" sample it is never read.
		if _, stop := smp.offer(); stop {
			return true, nil
		}
		return false, blk.parseErr
	}
	return false, nil
}

// cut reads src into blocks of whole lines and sends each to order, and
// to work to be parsed.
func (p *textPlan) cut(src io.Reader, line, blockSize int, room *room, order, work chan<- *textBlock, free chan []byte, stop <-chan struct{}) {
	send := func(blk *textBlock, parse bool) bool {
		select {
		case order <- blk:
		case <-stop:
			return false
		}
		if !parse {
			return true
		}
		select {
		case work <- blk:
			return true
		case <-stop:
			return false
		}
	}
	var carry []byte
	for {
		var buf []byte
		select {
		case buf = <-free:
		default:
			buf = make([]byte, 0, blockSize)
		}
		buf = append(buf, carry...)
		var readErr error
		eof := false
		for {
			for len(buf) < cap(buf) {
				n, err := src.Read(buf[len(buf):cap(buf)])
				buf = buf[:len(buf)+n]
				if err == io.EOF {
					eof = true
					break
				}
				if err != nil {
					readErr = err
					break
				}
			}
			if eof || readErr != nil || bytes.LastIndexByte(buf, '\n') >= 0 {
				break
			}
			if len(buf) >= maxLineBytes {
				readErr = errLineTooLong
				break
			}
			// One line fills the buffer: make room for the rest of it.
			grown := make([]byte, len(buf), 2*cap(buf))
			copy(grown, buf)
			buf = grown
		}
		end := len(buf)
		if !eof {
			end = bytes.LastIndexByte(buf, '\n') + 1
		}
		data := buf[:end]
		carry = append(carry[:0], buf[end:]...)
		if quotable(p.format) && bytes.IndexByte(data, '"') >= 0 {
			rest := io.MultiReader(bytes.NewReader(buf), src)
			if readErr != nil {
				rest = io.MultiReader(bytes.NewReader(buf), errReader{readErr})
			}
			send(&textBlock{rest: rest, line: line}, false)
			return
		}
		if len(data) > 0 {
			nl := bytes.Count(data, []byte{'\n'})
			blk := &textBlock{buf: buf, data: data, line: line, most: nl, done: make(chan struct{})}
			if data[len(data)-1] != '\n' {
				blk.most++
			}
			blk.at, blk.inPlace = room.place(blk.most)
			if blk.inPlace {
				// Here, beside the parsers, the pages they will write are
				// made resident in one call each rather than a fault per
				// page inside their loops.
				room.populate(blk.at, blk.most)
			}
			line += nl
			if !send(blk, true) {
				return
			}
		}
		if readErr != nil {
			send(&textBlock{err: &DataError{File: p.name, Line: line, Err: readErr}}, false)
			return
		}
		if eof {
			return
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// parseBlock splits a block's lines into fields and parses them as the
// record-by-record reader would, stopping at the first row at fault.
func (p *textPlan) parseBlock(blk *textBlock, w *textWorker, room *room) {
	data := blk.data
	hasTarget := p.tidx >= 0
	blk.cols = make([][]float64, p.features)
	if blk.inPlace {
		lo, hi := blk.at, blk.at+blk.most
		for k := range blk.cols {
			blk.cols[k] = room.cols[k][lo:hi:hi]
		}
		if hasTarget {
			blk.target, blk.lines = room.target[lo:hi:hi], room.lines[lo:hi:hi]
		}
	} else {
		for k := range blk.cols {
			blk.cols[k] = make([]float64, blk.most)
		}
		if hasTarget {
			blk.target = make([]string, blk.most)
			blk.lines = make([]int, blk.most)
		}
	}
	// Rows are written by index; the slices are cut to the rows parsed
	// when the block is done.
	defer func() {
		for k := range blk.cols {
			blk.cols[k] = blk.cols[k][:blk.rows]
		}
		if hasTarget {
			blk.target, blk.lines = blk.target[:blk.rows], blk.lines[:blk.rows]
		}
	}()
	// The fast path reads numbers past the end of data, up to the end of
	// the buffer it was cut from.
	full := data[:cap(data)]
	sep := separator(p.format)
	fast := p.format != FormatWhitespace
	asciiKnown, ascii := false, false
	line := blk.line
	for pos := 0; pos < len(data); {
		ln := data[pos:]
		eol := len(data)
		if i := bytes.IndexByte(ln, '\n'); i >= 0 {
			ln, eol = ln[:i], pos+i
		}
		start := pos
		pos = eol + 1
		cur := line
		line++
		r := blk.rows
		if fast {
			end := eol
			if end > start && data[end-1] == '\r' {
				end--
			}
			if target, ok := p.fastRow(full, start, end, sep, blk.cols, r); ok {
				if hasTarget {
					blk.target[r] = w.intern(target)
					blk.lines[r] = cur
				}
				blk.rows++
				continue
			}
		}
		if !asciiKnown {
			ascii, asciiKnown = isASCII(data), true
		}
		fields := w.fields[:0]
		if p.format == FormatWhitespace {
			if ascii {
				fields = splitASCIISpace(fields, ln)
			} else {
				for _, f := range bytes.Fields(ln) {
					fields = append(fields, f)
				}
			}
			if len(fields) == 0 {
				continue
			}
		} else {
			if n := len(ln); n > 0 && ln[n-1] == '\r' {
				ln = ln[:n-1]
			}
			if len(ln) == 0 {
				continue
			}
			start := 0
			for i, c := range ln {
				if c == sep {
					fields = append(fields, ln[start:i])
					start = i + 1
				}
			}
			fields = append(fields, ln[start:])
		}
		w.fields = fields
		if len(fields) != p.width {
			blk.parseErr = p.widthError(cur, len(fields))
			return
		}
		k := 0
		for j, f := range fields {
			f = trimSpace(f, ascii)
			if j == p.tidx {
				if len(f) == 0 {
					blk.parseErr = p.emptyTarget(cur)
					return
				}
				blk.target[r] = w.intern(f)
				continue
			}
			v, err := parseNumberBytes(f)
			if err != nil {
				blk.parseErr = p.cellError(cur, j, err)
				return
			}
			w.row[k] = v
			k++
		}
		for k, v := range w.row {
			blk.cols[k][r] = v
		}
		if hasTarget {
			blk.lines[r] = cur
		}
		blk.rows++
	}
}

// asciiSpace holds the ASCII bytes unicode.IsSpace accepts.
var asciiSpace = [256]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

func splitASCIISpace(fields [][]byte, ln []byte) [][]byte {
	start := -1
	for i, c := range ln {
		if asciiSpace[c] {
			if start >= 0 {
				fields = append(fields, ln[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		fields = append(fields, ln[start:])
	}
	return fields
}

// trimSpace is bytes.TrimSpace, quicker on ASCII text.
func trimSpace(b []byte, ascii bool) []byte {
	if !ascii {
		return bytes.TrimSpace(b)
	}
	for len(b) > 0 && asciiSpace[b[0]] {
		b = b[1:]
	}
	for len(b) > 0 && asciiSpace[b[len(b)-1]] {
		b = b[:len(b)-1]
	}
	return b
}

// fastRow parses the CSV or TSV line data[pos:eol] (its "\r" dropped)
// when its features are all plain decimals that swarDecimal or
// scanDecimal takes and its cells need no trimming, writing row r of
// cols; ok false leaves the line to the general path (which overwrites
// anything written here). Numbers are read from data past the line's
// end, so that most are read eight bytes at a time.
func (p *textPlan) fastRow(data []byte, pos, eol int, sep byte, cols [][]float64, r int) (target []byte, ok bool) {
	i, k, last := pos, 0, p.width-1
	for j := 0; ; j++ {
		if j == p.tidx {
			start := i
			for i < eol && data[i] != sep {
				i++
			}
			target = data[start:i]
			// A byte from 0x80 up at either end may belong to a space
			// outside ASCII, which the general path trims.
			if n := len(target); n == 0 || asciiSpace[target[0]] || asciiSpace[target[n-1]] ||
				target[0] >= utf8.RuneSelf || target[n-1] >= utf8.RuneSelf {
				return nil, false
			}
		} else {
			v, end, ok := swarDecimal(data, i)
			if !ok || end > eol {
				var n int
				if v, n, ok = scanDecimal(data[i:eol], sep); !ok {
					return nil, false
				}
				end = i + n
			}
			cols[k][r] = v
			k++
			i = end
		}
		if j == last {
			return target, i == eol
		}
		if i >= eol || data[i] != sep {
			return nil, false
		}
		i++
	}
}

func isASCII(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// releaseMemory returns freed memory to the system after a large copy, so
// that the parts a column was built from do not stay resident beside it.
func releaseMemory(copied int64) {
	if copied >= 16<<20 {
		debug.FreeOSMemory()
	}
}

// room hands out the sink's reserved rows to blocks as they are cut. A
// block may hold fewer rows than lines (blank lines), which the sink closes
// up as it takes each block in order; one that would not fit, and every
// block after it, gets slices of its own.
type room struct {
	cols   [][]float64
	target []string
	lines  []int
	next   int
	full   bool
}

// newRoom views the sink's reserved columns whole. The cutter and the
// parsers use only these views, never the sink's slices, which the
// taking goroutine changes.
func newRoom(sink *textSink) *room {
	r := &room{cols: make([][]float64, len(sink.cols)), next: sink.rows}
	capacity := -1
	fit := func(n int) {
		if capacity < 0 || n < capacity {
			capacity = n
		}
	}
	for k, c := range sink.cols {
		r.cols[k] = c.flat[:cap(c.flat)]
		fit(cap(c.flat))
		r.full = r.full || c.more.n > 0
	}
	if sink.hasTarget {
		r.target, r.lines = sink.target.flat[:cap(sink.target.flat)], sink.lines.flat[:cap(sink.lines.flat)]
		fit(cap(r.target))
		r.full = r.full || sink.target.more.n > 0
	}
	r.full = r.full || capacity <= r.next
	for k := range r.cols {
		r.cols[k] = r.cols[k][:capacity]
	}
	if sink.hasTarget {
		r.target, r.lines = r.target[:capacity], r.lines[:capacity]
	}
	return r
}

// place returns where a block of at most n rows is written, or inPlace
// false for one that gets its own slices.
func (r *room) place(n int) (at int, inPlace bool) {
	if r.full || r.next+n > len(r.lines) && r.target != nil || len(r.cols) > 0 && r.next+n > len(r.cols[0]) {
		r.full = true
		return 0, false
	}
	at = r.next
	r.next += n
	return at, true
}

// populate makes the rows [at, at+n) of the reserved columns resident.
func (r *room) populate(at, n int) {
	for _, c := range r.cols {
		populate(c[at : at+n])
	}
	if r.lines != nil {
		populate(r.lines[at : at+n])
	}
}
