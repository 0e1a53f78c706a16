package dataset

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"testing"
)

// leadingDigitsByByte and digitsValueByByte are the byte-at-a-time
// definitions the word-at-a-time helpers must agree with.
func leadingDigitsByByte(b []byte) int {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}

func digitsValueByByte(b []byte) uint64 {
	v := uint64(0)
	for _, c := range b {
		v = v*10 + uint64(c-'0')
	}
	return v
}

func checkWord(t *testing.T, b []byte) {
	t.Helper()
	w := binary.LittleEndian.Uint64(b)
	n := leadingDigits(w)
	if want := leadingDigitsByByte(b); n != want {
		t.Fatalf("leadingDigits(%q) = %d, want %d", b, n, want)
	}
	if got, want := digitsValue(w, n), digitsValueByByte(b[:n]); got != want {
		t.Fatalf("digitsValue(%q, %d) = %d, want %d", b, n, got, want)
	}
	if got := nonZeroBytes(w); got != nonZeroByByte(b) {
		t.Fatalf("nonZeroBytes(%q) = %016x, want %016x", b, got, nonZeroByByte(b))
	}
}

func nonZeroByByte(b []byte) uint64 {
	var m uint64
	for i, c := range b {
		if c != 0 {
			m |= 0x80 << (8 * i)
		}
	}
	return m
}

// Every byte value in every position, after every count of digits, and
// random words weighted toward digits and the bytes around them.
func TestSWARDigits(t *testing.T) {
	b := make([]byte, 8)
	for n := range 8 {
		for pos := n; pos < 8; pos++ {
			for c := range 256 {
				for i := range b {
					b[i] = '0' + byte((i*7+n)%10)
				}
				b[pos] = byte(c)
				checkWord(t, b)
			}
		}
	}
	checkWord(t, []byte("99999999"))
	checkWord(t, []byte("00000000"))
	rng := rand.New(rand.NewPCG(5, 6))
	near := []byte("0123456789/:.,-+eE\n\r\t \x00\x7f\x80\xf9\xfa\xff")
	for range 1_000_000 {
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = byte(rng.Uint32())
			} else {
				b[i] = near[rng.IntN(len(near))]
			}
		}
		checkWord(t, b)
	}
}

// A number read inside a longer buffer, as the block parser reads it
// (word by word, past the cell's end), agrees with strconv and with the
// cell read alone, and ends where the cell ends.
func sameEmbedded(t *testing.T, s string) {
	t.Helper()
	alone, aloneOK := fastDecimal([]byte(s))
	for _, rest := range []string{"", ",", "\n1,2,3,4,5,6", ",-12345678.9", "\r\n", "x"} {
		for _, pad := range []int{0, 3} {
			buf := []byte(string(make([]byte, pad)) + s + rest)
			v, end, ok := scanNumber(buf, pad)
			if ok && end == pad+len(s) {
				if !aloneOK {
					t.Fatalf("scanNumber(%q + %q) took %q, which fastDecimal leaves to strconv", s, rest, s)
				}
				if v != alone || (v == 0 && (1/v > 0) != (1/alone > 0)) {
					t.Fatalf("scanNumber(%q + %q) = %v, alone %v", s, rest, v, alone)
				}
			} else if aloneOK && (rest == "" || rest[0] != 'x' && rest[0] != '1' && rest[0] != '-') {
				// A delimiter or a newline ends a number: it is read whole.
				t.Fatalf("scanNumber(%q + %q) = %v, %d, %v; alone it reads as %v", s, rest, v, end, ok, alone)
			}
		}
	}
}

func TestScanNumberEmbedded(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range []string{"0", "-0", "1", "12345678", "123456789", "1234567890123456789", "12345678901234567890",
		"-12345678.12345678", "0.00000001", "99999999.99999999", "1.5e10", "1e", "1e+", "-", ".", "+.5", "5.", "1.2.3"} {
		sameEmbedded(t, s)
		sameFloat(t, s)
	}
	for range 200_000 {
		var s []byte
		switch rng.IntN(3) {
		case 0:
			s = fmtFloat(rng.NormFloat64()*100, 'f', rng.IntN(8))
		case 1:
			s = fmtFloat(rng.NormFloat64()*1e6, 'e', rng.IntN(10))
		default:
			for range rng.IntN(22) {
				s = append(s, "0123456789.-e"[rng.IntN(13)])
			}
		}
		sameEmbedded(t, string(s))
		sameFloat(t, string(s))
	}
}

func fmtFloat(v float64, format byte, prec int) []byte {
	return strconv.AppendFloat(nil, v, format, prec, 64)
}
