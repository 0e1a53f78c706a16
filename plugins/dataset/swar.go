package dataset

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// Plain decimals of at most seven digits before and after the point (most
// cells of most numeric CSV files) are read here eight bytes at a time,
// with no branch that depends on how many digits there are or on the
// sign: on such cells a byte-at-a-time loop mispredicts the end of each
// run of digits, which costs more than all its other work.

// pow10u64 and pow10f64 hold 10^n for the digit counts of one word.
var (
	pow10u64 = [9]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}
	pow10f64 = [9]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}
)

// digitRun returns the number of decimal digits that the little-endian
// word w starts with, at most 7 (the eighth byte always counts as the
// end, which keeps the count's instruction free of a zero test: a caller
// that must know finds a digit at the end), and w with each digit byte
// turned into its value. A byte is a digit when its value xor '0' is
// below 10; the test adds within each byte and never carries into the
// next.
func digitRun(w uint64) (t uint64, n int) {
	t = w ^ 0x3030303030303030
	nondigit := ((t & 0x7f7f7f7f7f7f7f7f) + 0x7676767676767676 | t | 1<<63) & 0x8080808080808080
	return t, bits.TrailingZeros64(nondigit) >> 3
}

// digitsValue is the number that the first n (at most 7) digit values of
// t spell, the first byte the most significant: the digits are moved to
// the top of the word, behind zeros, and the eight bytes are combined in
// pairs, then fours, then eights.
func digitsValue(t uint64, n int) uint64 {
	// The shifts are masked so that they compile to one instruction
	// each; with n = 0 the mask clears the word.
	v := (t & (1<<(uint(8*n)&63) - 1)) << (uint(64-8*n) & 63)
	v = v*10 + v>>8
	v = ((v&0x000000ff000000ff)*(100+1000000<<32) + (v>>16&0x000000ff000000ff)*(1+10000<<32)) >> 32
	return v & 0xffffffff
}

// signs turns a sign bit into a factor.
var signs = [2]float64{1, -1}

// swarDecimal reads the decimal [+-]digits[.digits] at b[i], at most seven
// digits on either side of the point, and returns its value (as
// strconv.ParseFloat would: at most 14 digits are exact in a float64, and
// so is the one division by a power of ten) and where it ends. It reads
// up to 17 bytes from i whatever the cell's length, so b should run on
// past the cell; ok is false when fewer bytes remain, when the text is
// anything else, or when the number goes on (an exponent, more digits):
// the caller then reads the cell another way. The caller checks the byte
// at end.
func swarDecimal(b []byte, i int) (v float64, end int, ok bool) {
	if i < 0 || i+17 > len(b) {
		return 0, 0, false
	}
	// Every read below is within the 17 bytes from i just checked.
	p := unsafe.Pointer(unsafe.SliceData(b))
	c := *(*byte)(unsafe.Add(p, i))
	neg := b2u(c == '-')
	i += int(neg | b2u(c == '+'))
	t, nd := digitRun(load64(p, i))
	mant := digitsValue(t, nd)
	i += nd
	fd := 0
	if *(*byte)(unsafe.Add(p, i)) == '.' {
		var tf uint64
		tf, fd = digitRun(load64(p, i+1))
		mant = mant*pow10u64[fd&7] + digitsValue(tf, fd)
		i += 1 + fd
	}
	if c := *(*byte)(unsafe.Add(p, i)); c-'0' < 10 || c|0x20 == 'e' || nd+fd == 0 {
		return 0, 0, false
	}
	return float64(int64(mant)) / pow10f64[fd&7] * signs[neg&1], i, true
}

// load64 reads the little-endian word at p+i.
func load64(p unsafe.Pointer, i int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, i))[:])
}

// b2u is 1 for true; the compiler makes it a flag move, not a branch.
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
