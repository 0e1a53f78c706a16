package runstore

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zeebo/blake3"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
)

// JournalPath is where the batches of an output port are journalled while
// its stage runs: an Arrow IPC stream beside the port's file.
func JournalPath(portFile string) string {
	return strings.TrimSuffix(portFile, ".arrow") + ".journal.arrows"
}

// JournalSumsPath is where the digests of the journal at journalPath are
// kept: one line per batch, written and synced with the batch.
func JournalSumsPath(journalPath string) string {
	return strings.TrimSuffix(journalPath, ".arrows") + ".sums"
}

// journal appends batches to an Arrow IPC stream file and syncs after each
// one, so every batch written before a crash (even kill -9) can be read back.
//
// Framing alone does not show a changed value, so each batch's bytes are
// also hashed (BLAKE3) into a line of the journal's sums file
// (JournalSumsPath), appended and synced once the batch is: a batch whose
// bytes do not match its line is not handed back on resume, and its trial
// runs again. The sums file holds a section per journal (an attempt's id,
// the digest of the stream's schema message, then one line per batch), so
// that the lines of the journal being written never pass for those of the
// journal in place; it is rewritten with the current section alone once
// that journal takes its place.
//
// A journal left by an interrupted attempt holds rows that the resumed
// stage is handed back and writes again before anything new (carried
// rows). The new journal is written under a temporary name and takes the
// old one's place only once it holds as many rows, so a crash at any
// moment leaves one journal with every row journalled so far.
type journal struct {
	path    string // JournalPath of the port
	f       *os.File
	tee     *teeWriter
	w       *ipc.Writer
	sums    *os.File // the sums file, appended to in place
	id      string
	lines   []string // this journal's section of the sums file
	rows    int64
	carried int64
	inPlace bool
}

// teeWriter writes to the journal file and keeps what was written since
// the last batch, to hash it.
type teeWriter struct {
	f    *os.File
	off  int64  // bytes written so far
	last int64  // where the last batch ended
	buf  []byte // the bytes from last to off
}

func (t *teeWriter) Write(p []byte) (int, error) {
	n, err := t.f.Write(p)
	t.off += int64(n)
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

func openJournal(path string, schema *arrow.Schema, mem memory.Allocator, carried int64) (*journal, error) {
	sums, err := os.OpenFile(JournalSumsPath(path), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		sums.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	tee := &teeWriter{f: f}
	return &journal{path: path, f: f, tee: tee, sums: sums, id: hex.EncodeToString(id[:]), carried: carried,
		w: ipc.NewWriter(tee, ipc.WithSchema(schema), ipc.WithAllocator(mem))}, nil
}

func (j *journal) append(batch arrow.RecordBatch) error {
	if err := j.w.Write(batch); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	// The batch is on disk; now its digest. A crash in between leaves a
	// batch without a line: not handed back, so its trial runs again.
	t := j.tee
	span, start := t.buf, t.last
	var lines []string
	if start == 0 {
		// The first batch's bytes begin with the stream's schema message.
		n, ok := schemaMessageLen(span)
		if !ok {
			return fmt.Errorf("journal: the stream does not start with a schema message")
		}
		lines = append(lines, fmt.Sprintf("journal %s %s %d %s\n", j.id, DigestBLAKE3, n, blake3Hex(span[:n])))
		span, start = span[n:], n
	}
	lines = append(lines, fmt.Sprintf("batch %s %d %d %d %s\n", j.id, start, t.off, batch.NumRows(), blake3Hex(span)))
	t.buf, t.last = t.buf[:0], t.off
	if _, err := j.sums.WriteString(strings.Join(lines, "")); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.sums.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.lines = append(j.lines, lines...)
	j.rows += batch.NumRows()
	if !j.inPlace && j.rows >= j.carried {
		if err := os.Rename(j.f.Name(), j.path); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		syncDir(filepath.Dir(j.path))
		j.inPlace = true
		if err := j.compact(); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	return nil
}

// compact rewrites the sums file with this journal's section alone, now
// that the journal the other sections described is gone. A crash before
// the rename leaves the full file, whose sections still tell which lines
// are this journal's.
func (j *journal) compact() error {
	path := JournalSumsPath(j.path)
	if err := WriteFileAtomic(path, []byte(strings.Join(j.lines, ""))); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	j.sums.Close()
	j.sums = f
	return nil
}

// close ends the stream. A journal that never took its place is removed:
// the one it was to replace holds every row it has.
func (j *journal) close() error {
	err := errors.Join(j.w.Close(), j.f.Close(), j.sums.Close())
	if !j.inPlace {
		err = errors.Join(err, os.Remove(j.f.Name()))
	}
	return err
}

// RemoveJournal deletes the journal of the port file at portFile, and its
// sums, once a record of the file (the run's manifest) makes it useless:
// until then a resumed run needs it. No journal is not an error.
func RemoveJournal(portFile string) error {
	path := JournalPath(portFile)
	// The journal first: a sums file without its journal is nothing, a
	// journal without its sums would be read unchecked.
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if serr := os.Remove(JournalSumsPath(path)); serr != nil && !errors.Is(serr, os.ErrNotExist) {
		err = errors.Join(err, serr)
	}
	return err
}

func blake3Hex(b []byte) string {
	sum := blake3.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// schemaMessageLen is the length of the IPC message at the start of b
// (the stream's schema message, which has no body): the continuation
// marker, the metadata length and the metadata.
func schemaMessageLen(b []byte) (int64, bool) {
	prefix := int64(4)
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) == 0xFFFFFFFF {
		prefix = 8
	}
	if int64(len(b)) < prefix {
		return 0, false
	}
	meta := int64(int32(binary.LittleEndian.Uint32(b[prefix-4 : prefix])))
	if meta <= 0 || prefix+meta > int64(len(b)) {
		return 0, false
	}
	return prefix + meta, true
}

// JournalReport says what ReadJournalReport kept of a journal and what it
// dropped, and why.
type JournalReport struct {
	Path string
	// Checked is false for a journal without a sums file (written before
	// journals had one): its batches were checked for framing only.
	Checked bool
	// Batches is the number of batches the journal's sums list.
	Batches     int
	KeptBatches []int // 1-based, in the journal's order
	KeptRows    int64
	// Keys are the kept rows' values of the table's key column (the first
	// utf8 column named id or *_id), when it has one.
	Keys    []string
	Dropped []DroppedBatch
	// Garbage lists the byte ranges [from, to) between batches that no
	// digest vouches for: put in the journal, or a batch whose line in
	// the sums file is damaged. They are skipped.
	Garbage [][2]int64
	// TailBytes were written after the last batch the sums list: a batch
	// whose digest a crash kept from the disk. It is not handed back.
	TailBytes int64
}

// DroppedBatch is a journalled batch that is not handed back.
type DroppedBatch struct {
	Batch  int   // 1-based; 0 when the journal could not be read at all
	Rows   int64 // as its sums line recorded; -1 when unknown
	Reason string
}

// Damaged reports whether the journal is not as it was written: batches
// dropped, or garbage skipped.
func (r *JournalReport) Damaged() bool { return r != nil && (len(r.Dropped) > 0 || len(r.Garbage) > 0) }

// String says, in a sentence or two, what was kept and what was dropped.
func (r *JournalReport) String() string {
	if r == nil {
		return ""
	}
	name := filepath.Base(r.Path)
	if !r.Checked {
		return fmt.Sprintf("journal %s has no checksums (an older sweetspot wrote it): its %d row(s) are used as they read", name, r.KeptRows)
	}
	if !r.Damaged() {
		return fmt.Sprintf("journal %s: %d row(s) kept, every batch matching its checksum", name, r.KeptRows)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "journal %s is damaged: kept %d of %d batch(es)", name, len(r.KeptBatches), r.Batches)
	if len(r.KeptBatches) > 0 {
		fmt.Fprintf(&b, " (%s; %d row(s)", batchList(r.KeptBatches), r.KeptRows)
		if len(r.Keys) > 0 {
			keys := r.Keys
			more := ""
			if len(keys) > 20 {
				keys, more = keys[:20], fmt.Sprintf(", and %d more", len(r.Keys)-20)
			}
			fmt.Fprintf(&b, ": %s%s", strings.Join(keys, ", "), more)
		}
		b.WriteString(")")
	}
	for i, d := range r.Dropped {
		if i == 0 {
			b.WriteString("; dropped ")
		} else {
			b.WriteString(", ")
		}
		switch {
		case d.Batch == 0:
			b.WriteString("everything")
		case d.Rows >= 0:
			fmt.Fprintf(&b, "batch %d (%d row(s))", d.Batch, d.Rows)
		default:
			fmt.Fprintf(&b, "batch %d", d.Batch)
		}
		b.WriteString(": " + d.Reason)
	}
	for i, g := range r.Garbage {
		if i == 0 {
			b.WriteString("; skipped ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "bytes %d to %d, which no checksum vouches for", g[0], g[1])
	}
	if len(r.Dropped) > 0 {
		b.WriteString("; the trials of the dropped rows will be trained again")
	} else {
		b.WriteString("; no journalled trial was lost")
	}
	return b.String()
}

func batchList(idx []int) string {
	parts := make([]string, len(idx))
	for i, n := range idx {
		parts[i] = strconv.Itoa(n)
	}
	if len(idx) == 1 {
		return "batch " + parts[0]
	}
	return "batches " + strings.Join(parts, ", ")
}

// ReadJournal returns the batches journalled at path that can be trusted
// (see ReadJournalReport). The caller releases the batches.
func ReadJournal(path string, mem memory.Allocator) (schema *arrow.Schema, batches []arrow.RecordBatch, err error) {
	schema, batches, _, err = ReadJournalReport(path, mem)
	return schema, batches, err
}

// ReadJournalReport returns the batches journalled at path whose bytes
// match the digests in the journal's sums file (JournalSumsPath), with a
// report of what it kept and dropped. A batch torn by a crash (written
// without its digest) is dropped as expected; a batch whose bytes differ
// from its digest, or that its sums line says is there and is not, is
// dropped as damaged, and the batches after it are kept when they match.
// Each message is checked before arrow-go decodes it (ipcverify), so a
// damaged journal cannot crash the host. A missing journal is no batches.
// A journal without a sums file (an older version's) is read as it
// frames, up to its first damaged message. The caller releases the
// batches.
func ReadJournalReport(path string, mem memory.Allocator) (schema *arrow.Schema, batches []arrow.RecordBatch, report *JournalReport, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	report = &JournalReport{Path: path}
	sums, err := os.ReadFile(JournalSumsPath(path))
	if errors.Is(err, os.ErrNotExist) {
		schema, batches = readFramed(data, mem)
		for i, b := range batches {
			report.KeptBatches = append(report.KeptBatches, i+1)
			report.KeptRows += b.NumRows()
		}
		report.Batches = len(batches)
		report.Keys = rowKeys(schema, batches)
		return schema, batches, report, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	report.Checked = true
	sec := bestSection(parseSums(sums), data)
	if sec == nil {
		if len(data) > 0 {
			report.Dropped = []DroppedBatch{{Rows: -1, Reason: "its schema message matches none of its checksums"}}
		}
		return nil, nil, report, nil
	}
	var stream []byte
	stream = append(stream, data[:sec.schemaEnd]...)
	type kept struct {
		batch int
		rows  int64
	}
	var good []kept
	end := sec.schemaEnd // where the journal's bytes are accounted for up to
	for i, l := range sec.batches {
		if l.at < 0 {
			reason := "its bytes do not match its checksum"
			if l.end+l.shift > int64(len(data)) {
				reason = "the journal was cut short before its end"
			}
			report.Dropped = append(report.Dropped, DroppedBatch{Batch: i + 1, Rows: l.rows, Reason: reason})
			// Its bytes were where it said, only not as written.
			end = min(max(end, l.end+l.shift), int64(len(data)))
			continue
		}
		if l.at > end {
			// Bytes no line vouches for: put in, or a batch whose line
			// is damaged.
			report.Garbage = append(report.Garbage, [2]int64{end, l.at})
		}
		end = l.at + (l.end - l.start)
		stream = append(stream, data[l.at:end]...)
		good = append(good, kept{batch: i + 1, rows: l.rows})
	}
	report.Batches = len(sec.batches)
	report.TailBytes = max(int64(len(data))-end, 0)
	schema, decoded := readFramed(stream, mem)
	for k, g := range good {
		if k >= len(decoded) || decoded[k].NumRows() != g.rows {
			report.Dropped = append(report.Dropped, DroppedBatch{Batch: g.batch, Rows: g.rows, Reason: "it matches its checksum but does not decode"})
			continue
		}
		batches = append(batches, decoded[k])
		report.KeptBatches = append(report.KeptBatches, g.batch)
		report.KeptRows += g.rows
	}
	for k := len(batches); k < len(decoded); k++ {
		decoded[k].Release()
	}
	sort.Slice(report.Dropped, func(a, b int) bool { return report.Dropped[a].Batch < report.Dropped[b].Batch })
	report.Keys = rowKeys(schema, batches)
	return schema, batches, report, nil
}

// readFramed decodes an Arrow IPC stream up to its first damaged message:
// what a journal's framing alone can tell.
func readFramed(data []byte, mem memory.Allocator) (schema *arrow.Schema, batches []arrow.RecordBatch) {
	r, err := ipcverify.NewStreamReader(bytes.NewReader(data), int64(len(data)), mem)
	if err != nil {
		// Not even the schema made it to disk whole: nothing to resume from.
		return nil, nil
	}
	defer r.Release()
	defer func() {
		// ipcverify leaves batch bodies to arrow-go, which may panic on a
		// damaged one; the batches before it are good.
		_ = recover()
	}()
	schema = r.Schema()
	for r.Next() {
		b := r.RecordBatch()
		if ipcverify.ValidateBatch(b) != nil {
			// A damaged batch ends what can be trusted, as a torn tail does.
			break
		}
		b.Retain()
		batches = append(batches, b)
	}
	return schema, batches
}

// sumsSection is one journal's lines in a sums file.
type sumsSection struct {
	id        string
	schemaEnd int64
	schemaSum string
	batches   []sumsLine
}

type sumsLine struct {
	start, end, rows int64
	sum              string
	// at is where the journal holds bytes matching sum: start, or start
	// moved by shift when garbage put in (or bytes cut out of) the
	// journal before the batch moved it; -1 when nowhere.
	at, shift int64
}

// parseSums reads a sums file's sections in order. A line that does not
// parse (torn by a crash, or damaged) is skipped.
func parseSums(data []byte) []*sumsSection {
	var out []*sumsSection
	byID := map[string]*sumsSection{}
	text := string(data)
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i] // what follows the last newline is a torn line
	} else {
		text = ""
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 5 && f[0] == "journal" && f[2] == DigestBLAKE3:
			n, err := strconv.ParseInt(f[3], 10, 64)
			if err != nil || n <= 0 || !isHexSum(f[4]) || byID[f[1]] != nil {
				continue
			}
			s := &sumsSection{id: f[1], schemaEnd: n, schemaSum: f[4]}
			byID[s.id] = s
			out = append(out, s)
		case len(f) == 6 && f[0] == "batch":
			s := byID[f[1]]
			start, err1 := strconv.ParseInt(f[2], 10, 64)
			end, err2 := strconv.ParseInt(f[3], 10, 64)
			rows, err3 := strconv.ParseInt(f[4], 10, 64)
			if s == nil || errors.Join(err1, err2, err3) != nil || start < s.schemaEnd || end <= start || rows < 0 || !isHexSum(f[5]) {
				continue
			}
			if n := len(s.batches); n > 0 && start < s.batches[n-1].end {
				continue // overlaps the batch before: not a line this package wrote
			}
			s.batches = append(s.batches, sumsLine{start: start, end: end, rows: rows, sum: f[5]})
		}
	}
	return out
}

func isHexSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// bestSection checks every section against the journal's bytes and
// returns the one that vouches for the most rows (the later one of equal
// ones): the journal's own. Another section's lines match only bytes that
// are the same as it wrote, so whichever is picked, a matching batch is
// one that was written whole. nil when no section's schema digest matches.
func bestSection(secs []*sumsSection, data []byte) *sumsSection {
	var best *sumsSection
	bestRows := int64(-1)
	for _, s := range secs {
		if s.schemaEnd > int64(len(data)) || blake3Hex(data[:s.schemaEnd]) != s.schemaSum {
			continue
		}
		if rows := s.locate(data); rows >= bestRows {
			best, bestRows = s, rows
		}
	}
	return best
}

// locate finds each batch's bytes in data, at its place or, after garbage
// put in or bytes cut out, at the start of a later IPC message with the
// same length and digest. It returns the rows found.
func (s *sumsSection) locate(data []byte) (rows int64) {
	var shift int64
	from := s.schemaEnd // nothing found before this
	matches := func(at int64, l *sumsLine) bool {
		n := l.end - l.start
		return at >= from && at+n <= int64(len(data)) && blake3Hex(data[at:at+n]) == l.sum
	}
	for i := range s.batches {
		l := &s.batches[i]
		l.at, l.shift = -1, shift
		if matches(l.start+shift, l) {
			l.at = l.start + shift
		} else {
			// Every batch starts with an IPC message's continuation
			// marker. Bounded, so that a journal of garbage full of
			// markers costs little.
			tries := 0
			for at := from; at+4 <= int64(len(data)) && tries < 4096; at++ {
				if binary.LittleEndian.Uint32(data[at:]) != 0xFFFFFFFF {
					continue
				}
				tries++
				if matches(at, l) {
					l.at = at
					shift = at - l.start
					l.shift = shift
					break
				}
			}
		}
		if l.at >= 0 {
			rows += l.rows
			from = l.at + (l.end - l.start)
		}
	}
	return rows
}

// rowKeys lists the values of the first utf8 column named id or *_id of
// batches, to name the rows a report keeps.
func rowKeys(schema *arrow.Schema, batches []arrow.RecordBatch) []string {
	if schema == nil {
		return nil
	}
	col := -1
	for i, f := range schema.Fields() {
		if f.Type.ID() == arrow.STRING && (f.Name == "id" || strings.HasSuffix(f.Name, "_id")) {
			col = i
			break
		}
	}
	if col < 0 {
		return nil
	}
	var keys []string
	for _, b := range batches {
		if col >= int(b.NumCols()) {
			continue
		}
		c, ok := b.Column(col).(*array.String)
		if !ok {
			continue
		}
		for i := 0; i < c.Len(); i++ {
			if c.IsValid(i) {
				keys = append(keys, c.Value(i))
			}
		}
	}
	return keys
}
