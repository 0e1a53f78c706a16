package dataset

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// digitsByBytes is digitRun and digitsValue by their definitions: the
// count of leading ASCII digits of the word's first seven bytes, and their
// value.
func digitsByBytes(b []byte) (n int, v uint64) {
	for n < 7 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + uint64(b[n]-'0')
		n++
	}
	return n, v
}

func checkDigitWord(t *testing.T, b []byte) {
	t.Helper()
	wantN, wantV := digitsByBytes(b)
	w := uint64(0)
	for k := 7; k >= 0; k-- {
		w = w<<8 | uint64(b[k])
	}
	tw, n := digitRun(w)
	if n != wantN {
		t.Fatalf("digitRun(%q) = %d digits, want %d", b, n, wantN)
	}
	if v := digitsValue(tw, n); v != wantV {
		t.Fatalf("digitsValue(%q) = %d, want %d", b, v, wantV)
	}
}

func TestDigitRun(t *testing.T) {
	// Every byte value in every position, the others digits, and random
	// words mostly of digits.
	for pos := range 8 {
		for c := range 256 {
			b := []byte("12345678")
			b[pos] = byte(c)
			checkDigitWord(t, b)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte("0123456789.,-+eE\n\r \x00\x2f\x3a\xb0\xff")
	for range 200000 {
		b := make([]byte, 8)
		for k := range b {
			if rng.IntN(4) > 0 {
				b[k] = '0' + byte(rng.IntN(10))
			} else {
				b[k] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		checkDigitWord(t, b)
	}
}

// checkSwar reads the cell at the start of text (a number, then what
// follows it) with swarDecimal and checks what it returns against
// strconv: the bytes up to end must be a number strconv reads to the same
// bits, and the byte at end must not go on with it. want says the cell is
// one swarDecimal must take.
func checkSwar(t *testing.T, text []byte, want bool) {
	t.Helper()
	padded := append(text[:len(text):len(text)], make([]byte, 17)...)
	v, end, ok := swarDecimal(padded, 0)
	if !ok {
		if want {
			t.Fatalf("swarDecimal(%q) refused a plain decimal", text)
		}
		return
	}
	cell := string(padded[:end])
	s, err := strconv.ParseFloat(cell, 64)
	if err != nil || math.Float64bits(s) != math.Float64bits(v) {
		t.Fatalf("swarDecimal(%q) = %v (%016x) up to %d; strconv reads %q as %v (%016x), %v",
			text, v, math.Float64bits(v), end, cell, s, math.Float64bits(s), err)
	}
	// A second point ("1.2.3") is the caller's to refuse, as any byte
	// but its delimiter.
	if c := padded[end]; c >= '0' && c <= '9' || c == 'e' || c == 'E' {
		t.Fatalf("swarDecimal(%q) stopped at %q, inside the number", text, c)
	}
}

func TestSwarDecimalMatchesStrconv(t *testing.T) {
	for _, s := range []string{
		"0,", "-0,", "+0,", "0.0,", "-0.000\n", "1,", "-1,", "12.5,", ".5,", "5.,", "-.5,", "+.5,",
		"1234567,", "1234567.1234567,", "-9999999.9999999,", "0.0000001,", "9999999,",
		"12345678,", "1.12345678,", "1e3,", "1E-3,", "1.5e2,", "-,", "+,", ".,", "-.,", "--1,", "+-1,",
		"1.2.3,", "1_000,", "0x10,", "inf,", "nan,", "1,5", "\n", ",", "\x00", "12\r\n", "3.25\t",
		"00000001.5000000,", "0.1,", "0.2,", "0.3,", "8.0000001,",
	} {
		checkSwar(t, []byte(s), false)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 300000 {
		var b []byte
		switch rng.IntN(3) {
		case 0:
			b = append(b, '-')
		case 1:
			if rng.IntN(8) == 0 {
				b = append(b, '+')
			}
		}
		nd, fd := rng.IntN(8), rng.IntN(8)
		for range nd {
			b = append(b, '0'+byte(rng.IntN(10)))
		}
		dot := fd > 0 || rng.IntN(4) == 0
		if dot {
			b = append(b, '.')
			for range fd {
				b = append(b, '0'+byte(rng.IntN(10)))
			}
		}
		plain := nd+fd > 0
		b = append(b, ",\n\r\t "[rng.IntN(5)])
		for range rng.IntN(20) {
			b = append(b, byte(rng.IntN(256)))
		}
		checkSwar(t, b, plain)
		// Cut anywhere, it must still never misread.
		checkSwar(t, b[:rng.IntN(len(b)+1)], false)
	}
	// Near the end of its buffer it refuses rather than read past it.
	if _, _, ok := swarDecimal([]byte("1.5,123456789012"), 0); ok {
		t.Fatal("swarDecimal read a cell within 17 bytes of the end")
	}
}

func FuzzSwarDecimal(f *testing.F) {
	for _, s := range []string{"-123.4567,", "0.5\n", "1e5,", "12345678,", ".5,", "5.,", "-,"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		plain := false
		if i := bytes.IndexAny(text, ",\n"); i >= 0 {
			cell := bytes.TrimLeft(text[:i], "+-")
			int, frac, dot := bytes.Cut(cell, []byte("."))
			plain = len(text[:i])-len(cell) <= 1 && len(int) < 8 && len(frac) < 8 && len(int)+len(frac) > 0 &&
				allDigits(int) && allDigits(frac) && (dot || len(frac) == 0)
		}
		checkSwar(t, text, plain)
	})
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
