package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
)

// idxName matches MNIST-style names such as train-images-idx3-ubyte and
// t10k-labels.idx1-ubyte (a .gz is removed first).
var idxName = regexp.MustCompile(`idx[0-9]+-ubyte$`)

// FormatFromName returns the binary format a file's name announces
// (parquet, arrow or idx), or "" for anything else, whose format is found
// when it is read.
func FormatFromName(path string) Format {
	base := strings.TrimSuffix(strings.ToLower(filepath.Base(path)), ".gz")
	switch filepath.Ext(base) {
	case ".parquet", ".parq", ".pq":
		return FormatParquet
	case ".arrow", ".arrows", ".feather", ".ipc":
		return FormatArrow
	case ".idx":
		return FormatIDX
	}
	if idxName.MatchString(base) {
		return FormatIDX
	}
	return ""
}

// Magic numbers at the start of the binary formats.
var (
	magicParquet     = []byte("PAR1")
	magicArrowFile   = []byte("ARROW1")
	magicArrowStream = []byte{0xff, 0xff, 0xff, 0xff}
	magicFeatherV1   = []byte("FEA1")
	magicGzip        = []byte{0x1f, 0x8b}
)

// sniffMagic returns the binary format whose magic number starts head, or
// "". No text starts with these bytes: NUL and 0xff never begin UTF-8.
func sniffMagic(head []byte) Format {
	switch {
	case bytes.HasPrefix(head, magicParquet):
		return FormatParquet
	case bytes.HasPrefix(head, magicArrowFile), bytes.HasPrefix(head, magicArrowStream), bytes.HasPrefix(head, magicFeatherV1):
		return FormatArrow
	case len(head) >= 4 && head[0] == 0 && head[1] == 0 && idxTypes[head[2]].size > 0 && head[3] > 0:
		return FormatIDX
	}
	return ""
}

// readerAtSeeker is what Parquet and Arrow IPC file readers need: they
// read the footer first.
type readerAtSeeker interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

func readFile(ctx context.Context, path string, o LoadOptions, mode parseMode) (*rawTable, error) {
	f, err := openInput(path, o.AllowSpecialFiles)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stored := inputSize(f)
	named := strings.HasSuffix(strings.ToLower(path), ".gz")
	var src io.Reader = f
	gzipped := named
	if stored >= 0 {
		var head [2]byte
		n, _ := f.ReadAt(head[:], 0)
		gzipped = gzipped || bytes.Equal(head[:n], magicGzip)
	} else {
		// A pipe cannot be read twice: look at its first bytes through
		// the buffer that reads it.
		br := bufio.NewReaderSize(f, 64<<10)
		gzipped = gzipped || peekGzip(br)
		src = br
	}
	if !gzipped {
		r, err := limitInput(path, src, stored, false, o)
		if err != nil {
			return nil, err
		}
		return readStream(ctx, path, r, false, o, mode)
	}
	if stored >= 0 {
		src = bufio.NewReaderSize(f, 64<<10)
	}
	zr, err := gzip.NewReader(src)
	if err != nil {
		why := "the name ends in .gz"
		if !named {
			why = "it starts with gzip's magic number"
		}
		return nil, &DataError{File: path, Err: fmt.Errorf("not a gzip file (%s): %w", why, err)}
	}
	defer zr.Close()
	r, err := limitInput(path, zr, stored, true, o)
	if err != nil {
		return nil, err
	}
	return readStream(ctx, path, r, true, o, mode)
}

// readStream reads one file's data from r, decompressed; Parquet and Arrow
// IPC files need r to be a readerAtSeeker, which a decompressed stream is
// not.
func readStream(ctx context.Context, name string, r io.Reader, compressed bool, o LoadOptions, mode parseMode) (*rawTable, error) {
	format := o.Format
	if format == "" {
		format = FormatFromName(name)
	}
	ra, seekable := r.(readerAtSeeker)
	randomAccess := func(what string) error {
		if compressed {
			return &DataError{File: name, Err: fmt.Errorf("%s cannot be read compressed: it is read from its footer, which needs random access; decompress the file (%s compresses its own data)", what, what)}
		}
		return &DataError{File: name, Err: fmt.Errorf("%s is read from its footer, which needs random access: give a file, not a stream", what)}
	}
	if format == FormatParquet {
		if !seekable {
			return nil, randomAccess("a Parquet file")
		}
		return readParquet(ctx, name, ra, o, mode)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	// Peek returns what it has even when the file is shorter than asked.
	head, _ := br.Peek(8)
	if format == "" {
		format = sniffMagic(head)
	}
	switch format {
	case FormatParquet:
		if !seekable {
			return nil, randomAccess("a Parquet file")
		}
		return readParquet(ctx, name, ra, o, mode)
	case FormatArrow:
		switch {
		case bytes.HasPrefix(head, magicFeatherV1):
			return nil, &DataError{File: name, Err: errors.New("is a Feather version 1 file, which predates Arrow IPC; write it again as Feather version 2 (pyarrow.feather.write_feather's default) or as Parquet")}
		case bytes.HasPrefix(head, magicArrowFile):
			if !seekable {
				return nil, randomAccess("an Arrow IPC file")
			}
			return readArrowFile(ctx, name, ra, o, mode)
		}
		size := int64(-1)
		if !compressed {
			size = inputSize(r)
		}
		return readArrowStream(ctx, name, br, size, o, mode)
	case FormatIDX:
		if mode == withTarget {
			return nil, idxNeedsLabels(name)
		}
		return readIDX(ctx, name, br, o, mode)
	}
	size := int64(-1)
	if !compressed {
		size = inputSize(r)
	}
	return parse(ctx, name, br, size, o, mode)
}

// FileFormats lists every value of the format attribute.
var FileFormats = []Format{FormatCSV, FormatTSV, FormatWhitespace, FormatParquet, FormatArrow, FormatIDX}
