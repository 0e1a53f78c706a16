package dataset

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// loadBoth loads data record by record with encoding/csv (the reading
// every text file once had) and with the block parser at a block size, and
// fails unless both give the same table or the same error.
func loadBoth(t *testing.T, name string, data []byte, o LoadOptions, blockSize int) (*Table, error) {
	t.Helper()
	seq := o
	seq.sequential = true
	want, werr := Load(name, bytes.NewReader(data), seq)
	fast := o
	fast.blockSize = blockSize
	got, gerr := Load(name, bytes.NewReader(data), fast)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("%s, block size %d: error %v, record by record %v", name, blockSize, gerr, werr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("%s, block size %d: tables differ (-record by record +blocks):\n%s", name, blockSize, diff)
	}
	return got, gerr
}

func readMaybeGzip(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return b
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The block parser reads every shipped dataset and every bad file as
// encoding/csv does, at block sizes from smaller than a line up, with and
// without samples.
func TestBlocksMatchRecords(t *testing.T) {
	var files []string
	for _, dir := range []string{sklearnDir, badDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), "DEBIAN") && !e.IsDir() && e.Name() != "descr" {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	opts := []LoadOptions{{}, {MaxRows: 7}, {MaxRows: 7, Sample: SampleRandom, Seed: 3}, {MaxRows: 100000}}
	for _, path := range files {
		data := readMaybeGzip(t, path)
		name := strings.TrimSuffix(filepath.Base(path), ".gz")
		for _, o := range opts {
			for _, size := range []int{1, 64, 1000, 1 << 20} {
				loadBoth(t, name, data, o, size)
			}
		}
	}
}

func TestBlocksMatchRecordsCases(t *testing.T) {
	var long strings.Builder
	long.WriteString("a,b,y\n")
	for i := range 3000 {
		long.WriteString(strings.Repeat(" ", i%3))
		long.WriteString("1.5,-2e3,")
		long.WriteString([]string{"cat", "dog", "emu"}[i%3])
		long.WriteString([]string{"\n", "\r\n", "\n\n"}[i%3])
	}
	base := long.String()
	cases := map[string]string{
		"long.csv":          base,
		"quote-late.csv":    base + "1,2,\"quoted, label\"\n3,4,cat\n",
		"newline-in-quote":  base + "1,2,\"two\nlines\"\n3,4,cat\n",
		"bad-quote.csv":     base + "1,2,ca\"t\n",
		"error-late.csv":    base + "1,x,cat\n",
		"ragged-late.csv":   base + "1,2\n",
		"extra-late.csv":    base + "1,2,3,cat\n",
		"empty-target.csv":  base + "1,2, \n",
		"no-newline.csv":    strings.TrimRight(base, "\n") + "\r",
		"tsv.tsv":           strings.ReplaceAll(base, ",", "\t") + "1\t2\t\"q\"x\n",
		"ws.txt":            strings.ReplaceAll(base, ",", " \t ") + "1\u00a02 cat\n3\v4\fdog\n",
		"unicode-space.csv": base + "\u00a01,\u20032\u2028,cat\u0085\n",
		"nan-late.csv":      base + "1,NaN,cat\n",
		"numbers.csv":       "x,y\n0x1p-2,1\n1_0,2\n",
		"numbers2.csv":      "x,y\n1e400,1\n",
		"hex.csv":           "x,y\n0x10,1\ninf,2\n",
		"bom.csv":           "\ufeff a,b\n1,2\n3,4\n",
		"count.csv":         "4,2,p,q\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n",
		"count-short.csv":   "5,2,p,q\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n",
		"blank.csv":         "\n\n\r\n1,2\n\n3,4\n  \n",
	}
	// Rows far shorter after the first megabyte outgrow the rows reserved
	// from the first ones.
	cases["shrinking.csv"] = "a,b,y\n" + strings.Repeat("1.000000000000000000000001,2.0000000000000000000000000000000001,cat\n", 20000) +
		strings.Repeat("1,2,a\n\n", 100000)
	for name, text := range cases {
		for _, o := range []LoadOptions{{}, {MaxRows: 2500}, {MaxRows: 5, Sample: SampleRandom}, {Task: Regression}} {
			for _, size := range []int{1, 100, 4096, 1 << 20} {
				loadBoth(t, name, []byte(text), o, size)
			}
		}
	}
}

// A quote past the first block hands the rest of the file to
// encoding/csv, which reads a quoted field holding the delimiter and a
// newline as one cell.
func TestBlocksQuotedLabelLate(t *testing.T) {
	text := "a,y\n" + strings.Repeat("1,cat\n", 500) + "2,\"big,\ncat\"\n" + strings.Repeat("3,cat\n", 10)
	tab, err := Load("q.csv", strings.NewReader(text), LoadOptions{blockSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	if tab.Rows() != 511 || tab.Classes != 2 || !cmp.Equal(tab.ClassNames, []string{"big,\ncat", "cat"}) {
		t.Fatalf("%d rows, classes %q; want 511 rows, classes [\"big,\\ncat\" \"cat\"]", tab.Rows(), tab.ClassNames)
	}
	if tab.Labels[500] != 0 || tab.Features[0][500] != 2 || tab.Features[0][510] != 3 {
		t.Fatalf("row 501: label %d, a = %g; row 511: a = %g", tab.Labels[500], tab.Features[0][500], tab.Features[0][510])
	}
	// A bad value after the quoted field is still placed on its line.
	_, err = Load("q.csv", strings.NewReader(text+"x,cat\n"), LoadOptions{blockSize: 256})
	if err == nil || !strings.HasPrefix(err.Error(), `q.csv:514: column "a" (field 1): "x" is not a number`) {
		t.Fatalf("error %v, want one at q.csv:514", err)
	}
}

// A bad value deep in a file read in many blocks is reported at its line.
func TestBlocksErrorLine(t *testing.T) {
	text := "a,b,y\n" + strings.Repeat("1,2,0\n\n", 4000) + "1,oops,1\n" + strings.Repeat("1,2,1\n", 10)
	_, err := Load("e.csv", strings.NewReader(text), LoadOptions{blockSize: 512})
	want := `e.csv:8002: column "b" (field 2): "oops" is not a number`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func FuzzTextParsers(f *testing.F) {
	f.Add([]byte("a,b,y\n1,2,p\n3,4,q\n5,6,p\n"), uint8(0), uint8(3))
	f.Add([]byte("1 2 3\n4 5 6\n\n7 8 9\n"), uint8(2), uint8(0))
	f.Add([]byte("x\ty\n1\t\"a\"\n2\tb\n"), uint8(1), uint8(1))
	f.Add([]byte("1,2,\"a\nb\"\n3,4,c\n"), uint8(0), uint8(2))
	f.Add([]byte("a,b,y\r\n1.5,-2,p\r\n3.,.4,q\r\n\r\n-0.0000001,+7,p"), uint8(0), uint8(0))
	f.Add([]byte("x,y\n12345678.5,1\n1e3,2\n1.2.3,4\n"), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, format, maxRows uint8) {
		o := LoadOptions{Format: []Format{FormatCSV, FormatTSV, FormatWhitespace, ""}[format%4], MaxRows: int(maxRows % 8)}
		if maxRows >= 128 {
			o.Sample = SampleRandom
		}
		for _, size := range []int{1, 7, 64} {
			if tab, err := loadBoth(t, "fuzz.txt", data, o, size); err == nil {
				checkConsistent(t, tab)
			}
		}
	})
}

// Numbers in every spelling the record-by-record reader takes (and some
// it refuses), CRLF and blank lines among them, read in blocks of many
// sizes give the same table and errors as read record by record.
func TestBlocksNumberSpellings(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	spell := func() string {
		v := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-6))
		switch rng.IntN(8) {
		case 0:
			return strconv.FormatFloat(v, 'g', -1, 64)
		case 1:
			return strconv.FormatFloat(v, 'e', rng.IntN(10), 64)
		case 2:
			return "+" + strconv.FormatFloat(math.Abs(v), 'f', rng.IntN(9), 64)
		case 3:
			return strconv.Itoa(rng.IntN(1e9) - 5e8)
		case 4:
			return strings.TrimLeft(strconv.FormatFloat(math.Abs(v), 'f', 1+rng.IntN(7), 64), "0")
		default:
			return strconv.FormatFloat(v, 'f', rng.IntN(9), 64)
		}
	}
	for trial := range 20 {
		var b strings.Builder
		b.WriteString("a,b,c,y\n")
		for range 300 {
			for range 3 {
				b.WriteString(spell())
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(rng.IntN(3)))
			switch rng.IntN(10) {
			case 0:
				b.WriteString("\r\n")
			case 1:
				b.WriteString("\n\n")
			default:
				b.WriteByte('\n')
			}
		}
		text := b.String()
		if trial%4 == 3 {
			// A cell strconv refuses, at some row.
			i := rng.IntN(len(text) - 10)
			i += strings.IndexByte(text[i:], ',') + 1
			j := i + strings.IndexAny(text[i:], ",\r\n")
			text = text[:i] + []string{"1.2.3", "1e", "--1", " 5", "0x1p3", "1_0"}[rng.IntN(6)] + text[j:]
		}
		for _, size := range []int{1, 17, 256, 4096, 1 << 20} {
			loadBoth(t, "n.csv", []byte(text), LoadOptions{}, size)
		}
	}
}
