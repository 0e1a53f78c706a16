package dataset

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// idxFile builds an IDX file: magic, dimensions, then the payload as is.
func idxFile(typ byte, dims []uint32, payload []byte) []byte {
	b := []byte{0, 0, typ, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, payload...)
}

// writeFile writes content to dir/name, gzipped when the name ends in .gz.
func writeFile(t testing.TB, dir, name string, content []byte) string {
	t.Helper()
	if strings.HasSuffix(name, ".gz") {
		content = gzipped(content)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Tiny MNIST: images of 3x2 ubyte pixels, row i's pixel j being
// (7i + 13j) mod 256, and label i mod 4. Since 7 is odd, pixel 0 tells the
// row for up to 256 rows.
const (
	tinyH, tinyW = 3, 2
	tinyClasses  = 4
)

func tinyPixel(i, j int) byte { return byte((7*i + 13*j) % 256) }

func tinyImages(n int) []byte {
	var px []byte
	for i := range n {
		for j := range tinyH * tinyW {
			px = append(px, tinyPixel(i, j))
		}
	}
	return idxFile(0x08, []uint32{uint32(n), tinyH, tinyW}, px)
}

func tinyLabels(n int) []byte {
	var l []byte
	for i := range n {
		l = append(l, byte(i%tinyClasses))
	}
	return idxFile(0x08, []uint32{uint32(n)}, l)
}

// writeTinyMNIST writes the pair under MNIST's names.
func writeTinyMNIST(t testing.TB, dir string, n int, gz bool) (images, labels string) {
	t.Helper()
	ext := ""
	if gz {
		ext = ".gz"
	}
	return writeFile(t, dir, "train-images-idx3-ubyte"+ext, tinyImages(n)), writeFile(t, dir, "train-labels-idx1-ubyte"+ext, tinyLabels(n))
}

// checkTiny checks that tab holds tiny MNIST rows, aligned with their
// labels, and returns which rows.
func checkTiny(t *testing.T, tab *Table, scale float64) []int {
	t.Helper()
	if len(tab.Features) != tinyH*tinyW {
		t.Fatalf("%d features, want %d", len(tab.Features), tinyH*tinyW)
	}
	var rows []int
	for r := range tab.Labels {
		i := -1
		for k := range 256 {
			if float64(tinyPixel(k, 0))/scale == tab.Features[0][r] {
				i = k
			}
		}
		if i < 0 {
			t.Fatalf("row %d: pixel_0 = %g is no tiny MNIST row's", r, tab.Features[0][r])
		}
		for j := range tab.Features {
			if want := float64(tinyPixel(i, j)) / scale; tab.Features[j][r] != want {
				t.Errorf("row %d (image %d) pixel_%d = %g, want %g", r, i, j, tab.Features[j][r], want)
			}
		}
		if tab.Labels[r] != int64(i%tinyClasses) {
			t.Errorf("row %d (image %d): label %d, want %d", r, i, tab.Labels[r], i%tinyClasses)
		}
		rows = append(rows, i)
	}
	return rows
}

func TestIDXRoundTrip(t *testing.T) {
	for _, gz := range []bool{false, true} {
		for _, raw := range []bool{false, true} {
			t.Run("gz="+strconv.FormatBool(gz)+"/raw="+strconv.FormatBool(raw), func(t *testing.T) {
				images, labels := writeTinyMNIST(t, t.TempDir(), 12, gz)
				tab, err := LoadFile(images, LoadOptions{TargetPath: labels, RawPixels: raw})
				if err != nil {
					t.Fatal(err)
				}
				scale := 255.0
				if raw {
					scale = 1
				}
				want := make([]int, 12)
				for i := range want {
					want[i] = i
				}
				if diff := cmp.Diff(want, checkTiny(t, tab, scale)); diff != "" {
					t.Errorf("rows (-want +got):\n%s", diff)
				}
				type summary struct {
					Names               []string
					Target, Source      string
					Format              Format
					Task                Task
					Classes             int
					ClassNames          []string
					Sample              string
					MinFeature, MaxFeat float64
				}
				lo, hi := math.Inf(1), math.Inf(-1)
				for _, c := range tab.Features {
					for _, v := range c {
						lo, hi = min(lo, v), max(hi, v)
					}
				}
				wantHi := 0.0
				for i := range 12 {
					for j := range tinyH * tinyW {
						wantHi = max(wantHi, float64(tinyPixel(i, j)))
					}
				}
				got := summary{tab.FeatureNames, tab.TargetName, tab.Source, tab.Format, tab.Task, tab.Classes, tab.ClassNames, tab.Sample, lo, hi}
				wantS := summary{[]string{"pixel_0", "pixel_1", "pixel_2", "pixel_3", "pixel_4", "pixel_5"}, "label", images + " + " + labels,
					FormatIDX, Classification, tinyClasses, nil, "", 0, wantHi / scale}
				if diff := cmp.Diff(wantS, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
}

// IDX files are recognised by their magic number whatever their name, and
// gzip by its own.
func TestIDXDetectedByContent(t *testing.T) {
	dir := t.TempDir()
	images := writeFile(t, dir, "images.bin", gzipped(tinyImages(8)))
	labels := writeFile(t, dir, "labels", tinyLabels(8))
	tab, err := LoadFile(images, LoadOptions{TargetPath: labels})
	if err != nil {
		t.Fatal(err)
	}
	checkTiny(t, tab, 255)
	if tab.Format != FormatIDX {
		t.Errorf("format %q, want idx", tab.Format)
	}
}

// Every IDX value type reads back; a 2-D file's columns are x0, x1, ...
func TestIDXTypes(t *testing.T) {
	vals := []float64{-2, 1, 3, 100, -7, 0}
	enc := map[byte]func(float64) []byte{
		0x09: func(v float64) []byte { return []byte{byte(int8(v))} },
		0x0B: func(v float64) []byte { return binary.BigEndian.AppendUint16(nil, uint16(int16(v))) },
		0x0C: func(v float64) []byte { return binary.BigEndian.AppendUint32(nil, uint32(int32(v))) },
		0x0D: func(v float64) []byte { return binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(v+0.5))) },
		0x0E: func(v float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(v/3)) },
	}
	want := map[byte]func(float64) float64{
		0x0D: func(v float64) float64 { return v + 0.5 },
		0x0E: func(v float64) float64 { return v / 3 },
	}
	for typ, e := range enc {
		t.Run(idxTypes[typ].name, func(t *testing.T) {
			var payload []byte
			for _, v := range vals {
				payload = append(payload, e(v)...)
			}
			dir := t.TempDir()
			x := writeFile(t, dir, "x.idx", idxFile(typ, []uint32{3, 2}, payload))
			// Labels as 32-bit ints, to read another type as a target.
			var lp []byte
			for _, l := range []int32{5, 6, 5} {
				lp = binary.BigEndian.AppendUint32(lp, uint32(l))
			}
			y := writeFile(t, dir, "y.idx", idxFile(0x0C, []uint32{3}, lp))
			tab, err := LoadFile(x, LoadOptions{TargetPath: y})
			if err != nil {
				t.Fatal(err)
			}
			f := want[typ]
			if f == nil {
				f = func(v float64) float64 { return v }
			}
			wantF := [][]float64{{f(vals[0]), f(vals[2]), f(vals[4])}, {f(vals[1]), f(vals[3]), f(vals[5])}}
			if diff := cmp.Diff(wantF, tab.Features); diff != "" {
				t.Errorf("features (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"x0", "x1"}, tab.FeatureNames); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int64{0, 1, 0}, tab.Labels); diff != "" || !cmp.Equal([]string{"5", "6"}, tab.ClassNames) {
				t.Errorf("labels %v, class names %v", tab.Labels, tab.ClassNames)
			}
		})
	}
}

// Broken IDX files give the file, and the offset and row where it broke.
func TestIDXBadData(t *testing.T) {
	good := tinyImages(5)
	nanPayload := binary.BigEndian.AppendUint32(nil, math.Float32bits(1))
	nanPayload = binary.BigEndian.AppendUint32(nanPayload, math.Float32bits(float32(math.NaN())))
	cases := []struct {
		name   string
		images []byte
		labels []byte
		file   string // "images" or "labels": where the error is
		row    int
		offset int64 // -1: none
		column string
		msg    string
	}{
		{name: "wrong magic", images: append([]byte{0, 0, 0x08, 0}, good[4:]...), file: "images", offset: 0, msg: "not an IDX file: magic number 0x00000800"},
		{name: "text", images: []byte("a,b\n1,2\n"), file: "images", offset: 0, msg: "magic number 0x612c620a"},
		{name: "short magic", images: []byte{0, 0}, file: "images", offset: 2, msg: "inside the 4-byte magic number"},
		{name: "truncated header", images: good[:10], file: "images", offset: 10, msg: "truncated header"},
		{name: "truncated data", images: good[:16+6*3+4], file: "images", row: 4, offset: 16 + 6*3 + 4, msg: "truncated: the header announces 5 rows of 6 unsigned byte values (6 bytes each) but the data ends inside row 4"},
		{name: "trailing data", images: append(append([]byte{}, good...), 9, 9), file: "images", offset: 16 + 6*5, msg: "has data after the 5 rows"},
		{name: "no rows", images: idxFile(0x08, []uint32{0, 3, 2}, nil), labels: idxFile(0x08, []uint32{0}, nil), file: "images", offset: 16, msg: "no data rows"},
		{name: "huge rows", images: idxFile(0x08, []uint32{1, 1 << 16, 1 << 16}, nil), file: "images", offset: 12, msg: "more than 1048576 values"},
		{name: "NaN", images: idxFile(0x0D, []uint32{1, 2}, nanPayload), labels: idxFile(0x08, []uint32{1}, []byte{0}),
			file: "images", row: 1, offset: 12 + 4, column: "x1", msg: "NaN is not a finite number"},
		{name: "fewer labels", labels: tinyLabels(4), file: "labels", offset: -1, msg: "has 4 data rows but"},
		{name: "images as labels", labels: good, file: "labels", offset: -1, msg: "did you swap path and target_path?"},
		{name: "gzip checksum", images: badChecksum(gzipped(good)), file: "images", offset: 16 + 6*5, msg: "gzip: invalid checksum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.images == nil {
				c.images = good
			}
			if c.labels == nil {
				c.labels = tinyLabels(5)
			}
			images := writeFile(t, dir, "i-idx3-ubyte", c.images)
			labels := writeFile(t, dir, "l-idx1-ubyte", c.labels)
			_, err := LoadFile(images, LoadOptions{TargetPath: labels})
			var de *DataError
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want a *DataError", err, err)
			}
			want := images
			if c.file == "labels" {
				want = labels
			}
			type loc struct {
				File      string
				Row       int
				HasOffset bool
				Offset    int64
				Column    string
			}
			wantLoc := loc{want, c.row, c.offset >= 0, max(c.offset, 0), c.column}
			if diff := cmp.Diff(wantLoc, loc{de.File, de.Row, de.HasOffset, de.Offset, de.Column}); diff != "" {
				t.Errorf("location (-want +got):\n%s", diff)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, want) || !strings.Contains(msg, c.msg) {
				t.Errorf("error %q does not start with %q and mention %q", msg, want, c.msg)
			}
			if c.offset >= 0 && !strings.Contains(msg, "offset "+strconv.FormatInt(c.offset, 10)) {
				t.Errorf("error %q does not give offset %d", msg, c.offset)
			}
		})
	}
}

// badChecksum spoils a gzip stream's CRC-32, which gzip checks at the end.
func badChecksum(gz []byte) []byte {
	gz[len(gz)-8] ^= 0xff
	return gz
}

// An IDX images file alone has no target: the config must name the labels.
func TestIDXWithoutLabels(t *testing.T) {
	images, _ := writeTinyMNIST(t, t.TempDir(), 4, false)
	_, err := LoadFile(images, LoadOptions{})
	var diags sdk.Diagnostics
	if !errors.As(err, &diags) || diags[0].Path[0] != "target_path" || !strings.Contains(diags[0].Detail, "train-labels-idx1-ubyte.gz") {
		t.Errorf("got %v, want a diagnostic on target_path naming the labels file", err)
	}
}

// max_rows reads only the rows it keeps: a file cut after them still loads.
// A random sample keeps images and labels together.
func TestIDXMaxRows(t *testing.T) {
	dir := t.TempDir()
	images, labels := writeTinyMNIST(t, dir, 200, true)
	cut := writeFile(t, dir, "cut-idx3-ubyte", tinyImages(200)[:16+6*20+3])
	tab, err := LoadFile(cut, LoadOptions{TargetPath: labels, MaxRows: 20})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, checkTiny(t, tab, 255)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if tab.Sample != "first 20 rows" {
		t.Errorf("sample %q", tab.Sample)
	}
	r, err := LoadFile(images, LoadOptions{TargetPath: labels, MaxRows: 40, Sample: SampleRandom, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	rows := checkTiny(t, r, 255)
	if len(rows) != 40 || rows[len(rows)-1] < 150 || r.Sample != "random 40 of 200 rows, seed 11" {
		t.Errorf("random sample: rows %v, sample %q", rows, r.Sample)
	}
	for k := 1; k < len(rows); k++ {
		if rows[k] <= rows[k-1] {
			t.Fatalf("sampled rows %v are not in file order", rows)
		}
	}
}

// fashionDir is where Debian's dataset-fashion-mnist package installs
// Fashion-MNIST (apt-get install dataset-fashion-mnist).
const fashionDir = "/usr/share/datasets/fashion-mnist"

func fashion(t testing.TB, set string) (images, labels string) {
	images = filepath.Join(fashionDir, set+"-images-idx3-ubyte.gz")
	labels = filepath.Join(fashionDir, set+"-labels-idx1-ubyte.gz")
	if _, err := os.Stat(images); err != nil {
		testenv.Missing(t, "Fashion-MNIST is not installed (`make python-torch` installs Debian's dataset-fashion-mnist): %v", err)
	}
	return images, labels
}

func TestFashionMNIST(t *testing.T) {
	images, labels := fashion(t, "train")
	start := time.Now()
	tab, err := LoadFile(images, LoadOptions{TargetPath: labels, MaxRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first 1000 of train in %v", time.Since(start))
	if tab.Rows() != 1000 || len(tab.Features) != 784 || tab.Classes != 10 || tab.FeatureNames[783] != "pixel_783" {
		t.Errorf("got %d rows x %d features, %d classes, last feature %q; want 1000 x 784, 10, pixel_783", tab.Rows(), len(tab.Features), tab.Classes, tab.FeatureNames[len(tab.FeatureNames)-1])
	}
	for _, c := range classCounts(tab) {
		if c < 50 {
			t.Errorf("class counts %v: the first 1000 rows should hold about 100 of each", classCounts(tab))
			break
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range tab.Features {
		for _, v := range c {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if lo != 0 || hi != 1 {
		t.Errorf("pixels in [%g, %g], want [0, 1]", lo, hi)
	}

	if testing.Short() {
		return
	}
	images, labels = fashion(t, "t10k")
	test, err := LoadFile(images, LoadOptions{TargetPath: labels})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}, classCounts(test)); diff != "" {
		t.Errorf("t10k class counts (-want +got):\n%s", diff)
	}
}

func BenchmarkLoadFashionMNIST(b *testing.B) {
	images, labels := fashion(b, "train")
	for _, c := range []struct {
		name string
		o    LoadOptions
	}{
		{"train/all", LoadOptions{}},
		{"train/first_10000", LoadOptions{MaxRows: 10000}},
		{"train/random_10000", LoadOptions{MaxRows: 10000, Sample: SampleRandom}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.o.TargetPath = labels
			for b.Loop() {
				tab, err := LoadFile(images, c.o)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(tab.Rows()), "rows")
			}
		})
	}
}

// FuzzLoadIDX feeds arbitrary bytes to the IDX reader as images and as
// labels: it must return a table or an error, never panic.
func FuzzLoadIDX(f *testing.F) {
	f.Add(tinyImages(3), tinyLabels(3), uint8(0))
	f.Add(tinyImages(3), tinyLabels(3), uint8(2))
	f.Add(idxFile(0x0D, []uint32{2, 2}, make([]byte, 16)), idxFile(0x0C, []uint32{2, 1}, []byte{0, 0, 0, 1, 0, 0, 0, 0}), uint8(0))
	f.Add(idxFile(0x0E, []uint32{1, 1}, make([]byte, 8)), idxFile(0x09, []uint32{1}, []byte{0xff}), uint8(1))
	f.Fuzz(func(t *testing.T, images, labels []byte, maxRows uint8) {
		o := LoadOptions{MaxRows: int(maxRows % 8), Sample: SampleFirst}
		if maxRows >= 128 {
			o.Sample = SampleRandom
		}
		ctx := t.Context()
		raw, err := readIDX(ctx, "images", bufioReader(images), o, featuresOnly)
		if err != nil {
			return
		}
		tr, err := readIDX(ctx, "labels", bufioReader(labels), o, targetOnly)
		if err != nil {
			return
		}
		if err := raw.join(tr); err != nil {
			return
		}
		tab, err := raw.finish("")
		if err != nil {
			return
		}
		checkConsistent(t, tab)
	})
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
