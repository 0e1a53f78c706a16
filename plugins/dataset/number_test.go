package dataset

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// sameFloat says two results of a float parse agree bit for bit, errors
// alike.
func sameFloat(t *testing.T, s string) {
	t.Helper()
	want, werr := strconv.ParseFloat(s, 64)
	got, gerr := parseFloat([]byte(s))
	if math.Float64bits(got) != math.Float64bits(want) || (werr == nil) != (gerr == nil) {
		t.Fatalf("parseFloat(%q) = %v (%016x), %v; strconv says %v (%016x), %v",
			s, got, math.Float64bits(got), gerr, want, math.Float64bits(want), werr)
	}
	if werr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("parseFloat(%q) error %q, strconv's %q", s, gerr, werr)
	}
}

func TestParseFloatMatchesStrconv(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "+0", "0.0", "-0.000", "1", "-1", "12.5", ".5", "5.", "-.5", "1e3", "1E-3", "1e+22", "1e22", "1e23",
		"9007199254740992", "9007199254740993", "9007199254740993.0", "1234567890123456789", "12345678901234567890",
		"0.1", "0.2", "0.3", "3.14159265358979323846", "1.7976931348623157e308", "1.8e308", "4.9e-324", "2e-324",
		"1e-22", "123456789e-22", "123.456e-20", "0.000000000000000000000000001", "00012", "000.000",
		"", "-", "+", ".", "e5", "1e", "1e+", "1.2.3", "1_000", "0x1p-2", "inf", "-Infinity", "NaN", "nan",
		" 1", "1 ", "1,5", "١", "1e99999999999", "1e-99999999999",
	} {
		sameFloat(t, s)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		v := math.Float64frombits(rng.Uint64())
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		format := []byte{'e', 'f', 'g'}[rng.IntN(3)]
		prec := rng.IntN(20) - 1
		if format == 'f' && math.Abs(v) > 1e30 {
			format = 'e'
		}
		sameFloat(t, strconv.FormatFloat(v, format, prec, 64))
		sameFloat(t, strconv.FormatFloat(rng.NormFloat64()*math.Pow(10, float64(rng.IntN(30)-15)), 'f', rng.IntN(12), 64))
	}
}

func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"0", "-1.25", "1e22", "9007199254740993", ".5e-3", "nan", "0x1p3", "1_0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { sameFloat(t, s) })
}

func BenchmarkParseFloat(b *testing.B) {
	cells := [][]byte{[]byte("-123.4567"), []byte("0.000123"), []byte("98765.4321"), []byte("1e-5")}
	for i := 0; b.Loop(); i++ {
		if _, err := parseFloat(cells[i%len(cells)]); err != nil {
			b.Fatal(err)
		}
	}
}
