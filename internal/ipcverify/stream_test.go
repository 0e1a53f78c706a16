package ipcverify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func writeStream(t testing.TB, recs []arrow.RecordBatch, opts ...ipc.Option) []byte {
	t.Helper()
	var out bytes.Buffer
	w := ipc.NewWriter(&out, append([]ipc.Option{ipc.WithSchema(recs[0].Schema())}, opts...)...)
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func writeFile(t testing.TB, recs []arrow.RecordBatch) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := ipc.NewFileWriter(&out, ipc.WithSchema(recs[0].Schema()))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func release(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// Whatever arrow-go writes, the verified readers read back unchanged.
func TestReadsWhatArrowWrites(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fileBatches := arrowBatches(t, mem)
	defer release(fileBatches)
	want := arrowBatches(t, mem, append(fileRows, deltaRow)...)
	defer release(want)
	streams := map[string][]byte{
		"stream, dictionary replaced": writeStream(t, want),
		"stream, dictionary deltas":   writeStream(t, want, ipc.WithDictionaryDeltas(true)),
		"stream, compressed buffers":  writeStream(t, want, ipc.WithZstd()),
	}
	for name, data := range streams {
		t.Run(name, func(t *testing.T) {
			r, err := NewStreamReader(bytes.NewReader(data), int64(len(data)), mem)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			i := 0
			for ; r.Next(); i++ {
				if i >= len(want) || !array.RecordEqual(want[i], r.RecordBatch()) {
					t.Fatalf("batch %d differs: %v", i, r.RecordBatch())
				}
			}
			if r.Err() != nil || i != len(want) {
				t.Errorf("read %d batches, error %v; want %d, nil", i, r.Err(), len(want))
			}
		})
	}
	t.Run("file", func(t *testing.T) {
		data := writeFile(t, fileBatches)
		r, err := NewFileReader(bytes.NewReader(data), mem)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.NumRecords() != len(fileBatches) {
			t.Fatalf("%d batches, want %d", r.NumRecords(), len(fileBatches))
		}
		for i := range fileBatches {
			got, err := r.RecordBatch(i)
			if err != nil || !array.RecordEqual(fileBatches[i], got) {
				t.Errorf("batch %d: %v, %v", i, got, err)
			}
		}
	})
}

// The stream is passed on byte for byte, however the reader below it
// splits its reads, with or without continuation markers.
func TestStreamPassesBytesThrough(t *testing.T) {
	mem := memory.NewGoAllocator()
	recs := arrowBatches(t, mem)
	defer release(recs)
	modern := writeStream(t, recs)
	// Before Arrow 0.15, a message began with its length alone.
	legacy := append(binary.LittleEndian.AppendUint32(nil, uint32(len(intSchemaMessage()))), intSchemaMessage()...)
	legacy = append(legacy, binary.LittleEndian.AppendUint32(nil, uint32(len(intBatchMessage(1))))...)
	legacy = append(legacy, intBatchMessage(1)...)
	legacy = append(legacy, intBody(42)...)
	legacy = append(legacy, 0, 0, 0, 0)
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"halves":   iotest.HalfReader,
	}
	for name, data := range map[string][]byte{"modern": modern, "legacy": legacy, "no end marker": modern[:len(modern)-8]} {
		for rname, wrap := range readers {
			t.Run(name+"/"+rname, func(t *testing.T) {
				v := &verifiedStream{r: wrap(bytes.NewReader(data)), maxMeta: MaxMetadataBytes, maxBody: int64(len(data))}
				got, err := io.ReadAll(v)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("read %d of %d bytes, equal %t, error %v", len(got), len(data), bytes.Equal(got, data), err)
				}
			})
		}
	}
	r, err := NewStreamReader(bytes.NewReader(legacy), int64(len(legacy)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() || r.RecordBatch().Column(0).(*array.Int64).Value(0) != 42 {
		t.Errorf("the legacy stream does not read as one batch of 42: %v", r.Err())
	}
}

func TestStreamRefusals(t *testing.T) {
	schema := frame(intSchemaMessage(), nil)
	batch := frame(intBatchMessage(40), make([]byte, 320))
	good := stream(schema, batch)
	negative := append(binary.LittleEndian.AppendUint32(nil, 0xFFFFFFFF), 0, 0, 0, 0x80)
	cases := []struct {
		name    string
		data    []byte
		maxBody int64
		want    string
	}{
		{"metadata over the limit", good, 64, "message metadata of"},
		{"body over the limit", good, 319, "message body of 320 bytes, more than the 319"},
		{"negative metadata length", append(schema, negative...), 1 << 20, "message metadata of -2147483648 bytes"},
		{"cut in the metadata", good[:len(schema)+20], 1 << 20, "Arrow stream ends inside a message"},
		{"cut in the body", good[:len(schema)+len(batch)-3], 1 << 20, io.ErrUnexpectedEOF.Error()},
		{"cut in the length", good[:len(schema)+6], 1 << 20, io.ErrUnexpectedEOF.Error()},
		{"damaged metadata", stream(frame(intBatchMessage(-1), nil)), 1 << 20, "damaged Arrow metadata"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := &verifiedStream{r: bytes.NewReader(c.data), maxMeta: max(min(c.maxBody, MaxMetadataBytes), 1), maxBody: c.maxBody}
			_, err := io.ReadAll(v)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error mentioning %q", err, c.want)
			}
			// The reader refuses it as well, with the reason.
			r, err := NewStreamReader(bytes.NewReader(c.data), c.maxBody, nil)
			if err == nil {
				for r.Next() {
				}
				err = r.Err()
				r.Release()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("reader: got %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

// A stream that ends on a message boundary ends cleanly, before or after
// its schema.
func TestStreamEnds(t *testing.T) {
	v := &verifiedStream{r: bytes.NewReader(nil), maxMeta: 1, maxBody: 0}
	if n, err := v.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("empty: %d, %v; want 0, EOF", n, err)
	}
	if _, err := NewStreamReader(bytes.NewReader(nil), 0, nil); err == nil {
		t.Error("an empty stream has no schema, yet opened")
	}
}

func TestVerifyFile(t *testing.T) {
	schema := intSchemaMessage()
	good := [][2][]byte{{intBatchMessage(2), intBody(4, 5)}}
	damaged := [][2][]byte{{intBatchMessage(-2), nil}}
	whole := ipcFile(schema, good, nil)
	footerEnd := len(whole) - 6
	footerLen := int(binary.LittleEndian.Uint32(whole[footerEnd-4:]))
	cases := []struct {
		name string
		data []byte
		want string // "" when it must pass
	}{
		{"good", whole, ""},
		{"too short", []byte("ARROW1\x00\x00ARROW1"), "too short"},
		{"no magic at the end", append(whole[:len(whole)-1:len(whole)-1], '2'), "no footer at its end"},
		{"footer longer than the file", func() []byte {
			d := bytes.Clone(whole)
			put32(d, footerEnd-4, uint32(len(d)))
			return d
		}(), "no footer at its end"},
		{"empty footer", func() []byte {
			d := bytes.Clone(whole)
			put32(d, footerEnd-4, 0)
			return d
		}(), "no footer at its end"},
		{"footer shorter than it says", append(bytes.Clone(whole[:footerEnd-4-footerLen+8]), whole[footerEnd-4:]...), "damaged Arrow metadata"},
		{"block before the file", ipcFile(schema, good, func(b []block) { b[0].offset = -8 }), "block 0 lies outside the file"},
		{"block past the end", ipcFile(schema, good, func(b []block) { b[0].offset = 1 << 40 }), "block 0 lies outside the file"},
		{"block metadata past the end", ipcFile(schema, good, func(b []block) { b[0].metaLen = 1 << 30 }), "block 0 lies outside the file"},
		{"block metadata too short", ipcFile(schema, good, func(b []block) { b[0].metaLen = 4 }), "block 0 lies outside the file"},
		{"damaged batch", ipcFile(schema, damaged, nil), "damaged Arrow metadata: negative body length"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyFile(bytes.NewReader(c.data), int64(len(c.data)))
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want an error mentioning %q", err, c.want)
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			r, err := NewFileReader(bytes.NewReader(c.data), mem)
			if err == nil {
				r.Close()
			}
			if (err == nil) != (c.want == "") {
				t.Errorf("NewFileReader: %v", err)
			}
		})
	}
}

// Cutting a file anywhere loses its footer.
func TestVerifyFileTruncated(t *testing.T) {
	mem := memory.NewGoAllocator()
	recs := arrowBatches(t, mem)
	defer release(recs)
	data := writeFile(t, recs)
	for n := 0; n < len(data); n += 1 + n/8 {
		if err := VerifyFile(bytes.NewReader(data[:n]), int64(n)); err == nil {
			t.Errorf("the first %d of %d bytes pass", n, len(data))
		}
	}
}

// A ReaderAt's failure is reported, not taken for data.
func TestVerifyFileReadError(t *testing.T) {
	data := ipcFile(intSchemaMessage(), nil, nil)
	boom := errors.New("disk on fire")
	err := VerifyFile(failingReaderAt{boom}, int64(len(data)))
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want %v", err, boom)
	}
}

type failingReaderAt struct{ err error }

func (f failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, f.err }
