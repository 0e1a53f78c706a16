package dataset

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// readChars returns the bytes this process has read through read(2)
// and its kin (rchar in /proc/self/io).
func readChars(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no rchar in /proc/self/io")
	return 0
}

// writeGzipBomb writes a gzip file of members, each 16 MiB of "0,0\n"
// lines: a valid CSV that decompresses to members*16 MiB.
func writeGzipBomb(t *testing.T, members int) (string, int64) {
	t.Helper()
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	if _, err := zw.Write(bytes.Repeat([]byte("0,0\n"), 4<<20)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bomb.csv.gz")
	if err := os.WriteFile(path, bytes.Repeat(member.Bytes(), members), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, int64(member.Len() * members)
}

// A gzip file of 1 GiB of data in about a megabyte is refused once 64
// times its size has come out, having read a small part of it.
func TestGzipBombStops(t *testing.T) {
	path, stored := writeGzipBomb(t, 64)
	limit := max(int64(64<<20), 64*stored)
	if limit >= 1<<30 {
		t.Fatalf("the bomb is %d bytes compressed; the test needs a ratio above 64", stored)
	}
	before := readChars(t)
	_, err := LoadFile(path, LoadOptions{})
	read := readChars(t) - before
	var tooLarge *errTooLarge
	if !errors.As(err, &tooLarge) || tooLarge.limit != limit || !strings.HasPrefix(err.Error(), path+":") ||
		!strings.Contains(err.Error(), "decompresses to more than") {
		t.Fatalf("error %v, want the file named and a limit of %d bytes", err, limit)
	}
	// Stopping at the limit reads what decompresses to it (plus buffers),
	// a sixteenth of this file.
	if read > stored/4 {
		t.Errorf("read %d of the %d compressed bytes; want at most a quarter", read, stored)
	}
	// An explicit limit above the data lets the whole file through.
	tab, err := LoadFile(path, LoadOptions{MaxBytes: 2 << 30, MaxRows: 10, Task: Regression})
	if err != nil || tab.Rows() != 10 {
		t.Fatalf("with max_bytes = 2GiB: %v", err)
	}
	_, err = LoadFile(path, LoadOptions{MaxBytes: 1 << 20})
	if !errors.As(err, &tooLarge) || tooLarge.limit != 1<<20 || !strings.Contains(err.Error(), "1 MiB, the max_bytes set") {
		t.Fatalf("with max_bytes = 1MiB: error %v", err)
	}
}

func TestRegularFileOverMaxBytes(t *testing.T) {
	path := writeTemp(t, "d.csv", "a,y\n1,0\n2,1\n3,0\n")
	_, err := LoadFile(path, LoadOptions{MaxBytes: 8})
	var tooLarge *errTooLarge
	if !errors.As(err, &tooLarge) || err.Error() != path+": holds more than 8 bytes, the max_bytes set" {
		t.Fatalf("error %v", err)
	}
	if _, err := LoadFile(path, LoadOptions{MaxBytes: 64}); err != nil {
		t.Fatal(err)
	}
}

// loadWithin fails the test if loading takes more than a minute: a pipe
// that blocks would otherwise hang it.
func loadWithin(t *testing.T, path string, o LoadOptions) (*Table, error) {
	t.Helper()
	type result struct {
		tab *Table
		err error
	}
	done := make(chan result, 1)
	go func() {
		tab, err := LoadFile(path, o)
		done <- result{tab, err}
	}()
	select {
	case r := <-done:
		return r.tab, r.err
	case <-time.After(time.Minute):
		t.Fatalf("loading %s blocked", path)
		return nil, nil
	}
}

func TestSpecialFilesRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "data.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, want string }{
		{fifo, fifo + ": is a named pipe (FIFO)"},
		{"/dev/zero", "/dev/zero: is a character device"},
		{t.TempDir(), ": is a directory; name a file"},
	}
	for _, c := range cases {
		_, err := loadWithin(t, c.path, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.path, err, c.want)
		}
	}
	// The config names them at validate time.
	for _, path := range []string{fifo, "/dev/zero"} {
		_, err := New(Config{Path: path})
		var ds sdk.Diagnostics
		if !errors.As(err, &ds) || len(ds) != 1 || ds[0].Summary != "Dataset path is not a regular file" || ds[0].Path[0] != "path" {
			t.Errorf("New with path %s: %v", path, err)
		}
		if _, err := New(Config{Path: path, AllowSpecialFiles: ptr(true)}); err != nil {
			t.Errorf("New with path %s and allow_special_files: %v", path, err)
		}
	}
}

func TestSpecialFilesAllowed(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "data.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	text := "a,b,y\n" + strings.Repeat("1.5,2,p\n3,4.25,q\n", 50000)
	written := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			written <- err
			return
		}
		_, err = f.WriteString(text)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		written <- err
	}()
	tab, err := loadWithin(t, fifo, LoadOptions{AllowSpecialFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if tab.Rows() != 100000 || tab.Features[1][99999] != 4.25 || tab.Classes != 2 {
		t.Fatalf("%d rows, last b %g, %d classes", tab.Rows(), tab.Features[1][tab.Rows()-1], tab.Classes)
	}
	// /dev/zero never ends: max_bytes stops it.
	_, err = loadWithin(t, "/dev/zero", LoadOptions{AllowSpecialFiles: true, MaxBytes: 1 << 20})
	var tooLarge *errTooLarge
	if !errors.As(err, &tooLarge) {
		t.Fatalf("/dev/zero: error %v, want max_bytes exceeded", err)
	}
}

func TestMaxBytesConfig(t *testing.T) {
	path := writeTemp(t, "d.csv", "a,y\n1,0\n2,1\n3,0\n")
	for text, want := range map[string]int64{"2GiB": 2 << 30, "500 MB": 500e6, "1024": 1024, "1.5KiB": 1536} {
		n, err := parseSize(text)
		if err != nil || n != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", text, n, err, want)
		}
	}
	_, err := New(Config{Path: path, MaxBytes: "lots"})
	var ds sdk.Diagnostics
	if !errors.As(err, &ds) || len(ds) != 1 || ds[0].Path[0] != "max_bytes" || !strings.Contains(ds[0].Detail, `"lots" is not a size`) {
		t.Fatalf("max_bytes = \"lots\": %v", err)
	}
	_, err = New(Config{Generator: "blobs", MaxBytes: "1GiB"})
	if !errors.As(err, &ds) || ds[0].Summary != "Argument only for files" {
		t.Fatalf("max_bytes on a generator: %v", err)
	}
}
