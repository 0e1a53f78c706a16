package dataset

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/regularfile"
)

// DefaultMaxBytes bounds what a file that is not a regular file (a pipe,
// a device) may yield when max_bytes is not set: such a file has no size
// to go by and may never end.
const DefaultMaxBytes = 16 << 30

// Decompressed data are bounded by default to compressionRatio times the
// compressed file, and never to less than minMaxBytes. Numeric text rarely
// shrinks more than ten times; a gzip bomb expands a thousand times.
const (
	compressionRatio = 64
	minMaxBytes      = 64 << 20
)

// openInput opens a dataset file, refusing anything but a regular file
// unless allowSpecial (regularfile.Open: checked on the open file, never
// waiting on a pipe it refuses), with the dataset's own wording.
func openInput(path string, allowSpecial bool) (*os.File, error) {
	f, err := regularfile.Open(path, allowSpecial)
	var nr *regularfile.NotRegularError
	if errors.As(err, &nr) {
		if nr.Kind == "a directory" {
			return nil, &DataError{File: path, Err: errors.New("is a directory; name a file")}
		}
		return nil, &DataError{File: path, Err: fmt.Errorf("is %s; only regular files are read unless allow_special_files = true", nr.Kind)}
	}
	return f, err
}

// errTooLarge says a file yielded more than max_bytes.
type errTooLarge struct {
	limit      int64
	compressed bool
	explicit   bool
}

func (e *errTooLarge) Error() string {
	what := "holds more than " + formatSize(e.limit)
	if e.compressed {
		what = "decompresses to more than " + formatSize(e.limit)
	}
	switch {
	case e.explicit:
		return what + ", the max_bytes set"
	case e.compressed:
		return fmt.Sprintf("%s, the default limit (max_bytes: %d times the compressed size, at least %s), as a decompression bomb would; set max_bytes if the data really are this large",
			what, compressionRatio, formatSize(minMaxBytes))
	}
	return fmt.Sprintf("%s, the default limit for a file that is not a regular file; set max_bytes if the data really are this large", what)
}

// cappedReader yields at most limit bytes of r, then fails with
// errTooLarge if r has more.
type cappedReader struct {
	r    io.Reader
	left int64
	err  *errTooLarge
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, c.err
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// maxBytes returns the limit on what a file yields: stored is the file's
// size when regular (its data compressed or not), -1 otherwise.
func maxBytes(o LoadOptions, stored int64, compressed bool) (int64, bool) {
	switch {
	case o.MaxBytes > 0:
		return o.MaxBytes, true
	case stored < 0:
		return DefaultMaxBytes, false
	case compressed:
		return max(minMaxBytes, compressionRatio*stored), false
	}
	return 0, false // a regular file is bounded by its size
}

// limitInput caps r (the data of a file of stored bytes, -1 when not a
// regular file) as o says; a regular uncompressed file larger than an
// explicit max_bytes is refused before it is read.
func limitInput(path string, r io.Reader, stored int64, compressed bool, o LoadOptions) (io.Reader, error) {
	limit, explicit := maxBytes(o, stored, compressed)
	if limit <= 0 {
		return r, nil
	}
	tooLarge := &errTooLarge{limit: limit, compressed: compressed, explicit: explicit}
	if !compressed && stored >= 0 {
		if stored > limit {
			return nil, &DataError{File: path, Err: tooLarge}
		}
		return r, nil
	}
	return &cappedReader{r: r, left: limit, err: tooLarge}, nil
}

var sizeUnits = []struct {
	suffix string
	bytes  int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"kB", 1e3}, {"B", 1},
}

// parseSize reads a size such as "2GiB", "500 MB" or "1048576".
func parseSize(text string) (int64, error) {
	s := strings.TrimSpace(text)
	unit := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, unit = strings.TrimSpace(rest), u.bytes
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || v*float64(unit) > 1<<60 {
		return 0, fmt.Errorf("%q is not a size: write a positive number of bytes with an optional unit, such as \"2GiB\" or \"500MB\"", text)
	}
	return int64(v * float64(unit)), nil
}

// formatSize writes n bytes in the largest binary unit that divides it
// into at least 1.
func formatSize(n int64) string {
	for _, u := range sizeUnits[:4] {
		if n >= u.bytes {
			return strconv.FormatFloat(float64(n)/float64(u.bytes), 'g', 4, 64) + " " + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// peekGzip says whether a stream starts with gzip's magic number.
func peekGzip(br *bufio.Reader) bool {
	head, _ := br.Peek(len(magicGzip))
	return string(head) == string(magicGzip)
}
