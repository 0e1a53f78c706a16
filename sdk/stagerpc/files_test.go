package stagerpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
)

// writeFile writes batches as an Arrow IPC file and returns it as the
// host names it.
func writeFile(t *testing.T, path string, schema *arrow.Schema, batches ...arrow.RecordBatch) *stagepb.InputFile {
	t.Helper()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return &stagepb.InputFile{Path: path, Size: int64(buf.Len())}
}

// mapped reports whether the process has path mapped, as the kernel says.
func mapped(t *testing.T, path string) bool {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		testenv.Missing(t, "no /proc/self/maps: %v", err)
	}
	return bytes.Contains(maps, []byte(path))
}

func TestFileReaderReadsWhatWasWritten(t *testing.T) {
	if !FilesSupported {
		testenv.Missing(t, "%v", ErrFilesUnsupported)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	dir := t.TempDir()
	var want []arrow.RecordBatch
	for i := int64(0); i < 5; i++ {
		want = append(want, makeBatch(memory.DefaultAllocator, i*300, 300, 7))
	}
	defer func() {
		for _, b := range want {
			b.Release()
		}
	}()
	// Two files, and an empty one between them: one stream.
	files := []*stagepb.InputFile{
		writeFile(t, filepath.Join(dir, "a.arrow"), testSchema, want[:2]...),
		writeFile(t, filepath.Join(dir, "empty.arrow"), testSchema),
		writeFile(t, filepath.Join(dir, "b.arrow"), testSchema, want[2:]...),
	}

	r, err := OpenFiles("input", files, mem)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Schema().Equal(testSchema) {
		t.Errorf("schema = %s", r.Schema())
	}
	if got := LiveMappings(); got != 3 {
		t.Errorf("LiveMappings() = %d with three files open, want 3", got)
	}
	if !mapped(t, files[0].Path) {
		t.Errorf("%s is not mapped while its reader is open", files[0].Path)
	}
	i := 0
	for r.Next() {
		if i >= len(want) {
			t.Fatalf("more than %d batches", len(want))
		}
		got := r.RecordBatch()
		if !array.RecordEqual(want[i], got) {
			t.Errorf("batch %d differs", i)
		}
		// Zero-copy: the values are the mapping's bytes.
		if !within(got.Column(0).Data().Buffers()[1].Bytes(), r.files[r.file].data) {
			t.Errorf("batch %d: column id is not read from the mapping", i)
		}
		i++
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Errorf("read %d batches, want %d", i, len(want))
	}
	r.Retain()
	r.Release()
	if LiveMappings() != 3 {
		t.Error("a Release that is not the last one unmapped the files")
	}
	r.Release()
	if got := LiveMappings(); got != 0 {
		t.Errorf("LiveMappings() = %d after the last Release", got)
	}
	for _, f := range files {
		if mapped(t, f.Path) {
			t.Errorf("%s is still mapped after the last Release", f.Path)
		}
	}
	mem.AssertSize(t, 0)
}

func within(b, region []byte) bool {
	if len(b) == 0 || len(region) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(region)))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(region))
}

func TestFileReaderNoFiles(t *testing.T) {
	r, err := OpenFiles("input", nil, nil)
	if errors.Is(err, ErrFilesUnsupported) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if r.Next() || r.Err() != nil || r.Schema().NumFields() != 0 {
		t.Errorf("no files: Next, Err, fields = %t, %v, %d; want an empty stream", r.Next(), r.Err(), r.Schema().NumFields())
	}
}

// TestFileReaderRefusesDamage damages a file in the ways a disk or a
// stray writer could, and wants an error naming the file, never a panic
// and never a mapping left behind.
func TestFileReaderRefusesDamage(t *testing.T) {
	if !FilesSupported {
		testenv.Missing(t, "%v", ErrFilesUnsupported)
	}
	strs := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	good := func(t *testing.T, path string) (*stagepb.InputFile, []byte) {
		b := array.NewRecordBuilder(memory.DefaultAllocator, strs)
		defer b.Release()
		b.Field(0).(*array.StringBuilder).AppendValues([]string{"abc", "def", "ghi", "jkl"}, nil)
		rec := b.NewRecordBatch()
		defer rec.Release()
		f := writeFile(t, path, strs, rec)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return f, data
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, f *stagepb.InputFile, data []byte) []byte
		want   string
	}{
		{"cut short", func(t *testing.T, f *stagepb.InputFile, data []byte) []byte {
			return data[:len(data)/2]
		}, "cut short"},
		{"cut short, size not recorded", func(t *testing.T, f *stagepb.InputFile, data []byte) []byte {
			f.Size = 0
			return data[:len(data)-12]
		}, "footer"},
		{"empty", func(t *testing.T, f *stagepb.InputFile, data []byte) []byte {
			f.Size = 0
			return nil
		}, "empty"},
		{"not Arrow", func(t *testing.T, f *stagepb.InputFile, data []byte) []byte {
			return bytes.Repeat([]byte("x"), len(data))
		}, "footer"},
		{"footer overwritten", func(t *testing.T, f *stagepb.InputFile, data []byte) []byte {
			end := len(data) - 10
			for i := end - 40; i < end; i++ {
				data[i] = 0xff
			}
			return data
		}, "input file"},
		{"offsets past the data", func(t *testing.T, f *stagepb.InputFile, data []byte) []byte {
			var offsets []byte
			for _, o := range []int32{0, 3, 6, 9, 12} {
				offsets = binary.LittleEndian.AppendUint32(offsets, uint32(o))
			}
			at := bytes.Index(data, offsets)
			if at < 0 {
				t.Fatal("offsets not found in the file")
			}
			binary.LittleEndian.PutUint32(data[at+16:], 1<<30)
			return data
		}, "offsets"},
		{"offsets going back", func(t *testing.T, f *stagepb.InputFile, data []byte) []byte {
			var offsets []byte
			for _, o := range []int32{0, 3, 6, 9, 12} {
				offsets = binary.LittleEndian.AppendUint32(offsets, uint32(o))
			}
			at := bytes.Index(data, offsets)
			if at < 0 {
				t.Fatal("offsets not found in the file")
			}
			binary.LittleEndian.PutUint32(data[at+8:], 10)
			return data
		}, "damaged Arrow batch"},
		{"missing", func(t *testing.T, f *stagepb.InputFile, data []byte) []byte {
			if err := os.Remove(f.Path); err != nil {
				t.Fatal(err)
			}
			return nil
		}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			path := filepath.Join(t.TempDir(), "in.arrow")
			f, data := good(t, path)
			data = tt.damage(t, f, data)
			if tt.name != "missing" {
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := func() error {
				r, err := OpenFiles("input", []*stagepb.InputFile{f}, mem)
				if err != nil {
					return err
				}
				defer r.Release()
				for r.Next() {
				}
				return r.Err()
			}()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s and say %q", err, path, tt.want)
			}
			if got := LiveMappings(); got != 0 {
				t.Errorf("LiveMappings() = %d after a failed read", got)
			}
			mem.AssertSize(t, 0)
		})
	}
}

func TestFileReaderRefusesOtherSchema(t *testing.T) {
	if !FilesSupported {
		testenv.Missing(t, "%v", ErrFilesUnsupported)
	}
	dir := t.TempDir()
	rec := makeBatch(memory.DefaultAllocator, 0, 10, 3)
	defer rec.Release()
	other := arrow.NewSchema([]arrow.Field{{Name: "z", Type: arrow.PrimitiveTypes.Int8}}, nil)
	files := []*stagepb.InputFile{
		writeFile(t, filepath.Join(dir, "a.arrow"), testSchema, rec),
		writeFile(t, filepath.Join(dir, "b.arrow"), other),
	}
	_, err := OpenFiles("input", files, nil)
	if err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("err = %v, want a schema difference", err)
	}
	if got := LiveMappings(); got != 0 {
		t.Errorf("LiveMappings() = %d after a refused open", got)
	}
}
