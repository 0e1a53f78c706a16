package dataset

import (
	"encoding/binary"
	"math"
	"math/bits"
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
// word w starts with (8 when all its bytes are digits), and w with each
// digit byte turned into its value. A byte is a digit when its value
// xor '0' is below 10; the test adds within each byte and never carries
// into the next.
func digitRun(w uint64) (t uint64, n int) {
	t = w ^ 0x3030303030303030
	nondigit := ((t & 0x7f7f7f7f7f7f7f7f) + 0x7676767676767676 | t) & 0x8080808080808080
	return t, bits.TrailingZeros64(nondigit) >> 3
}

// digitsValue is the number that the first n (at most 8) digit values of
// t spell, the first byte the most significant: the digits are moved to
// the top of the word, behind zeros, and the eight bytes are combined in
// pairs, then fours, then eights.
func digitsValue(t uint64, n int) uint64 {
	v := t << (64 - 8*uint(n)) // a shift by 64 gives 0, the value of no digits
	v = v*10 + v>>8
	v = ((v&0x000000ff000000ff)*(100+1000000<<32) + (v>>16&0x000000ff000000ff)*(1+10000<<32)) >> 32
	return v & 0xffffffff
}

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
	c := b[i]
	neg := b2u(c == '-')
	i += int(neg | b2u(c == '+'))
	t, nd := digitRun(binary.LittleEndian.Uint64(b[i:]))
	mant := digitsValue(t, nd)
	i += nd
	fd := 0
	if b[i] == '.' {
		var tf uint64
		tf, fd = digitRun(binary.LittleEndian.Uint64(b[i+1:]))
		mant = mant*pow10u64[fd] + digitsValue(tf, fd)
		i += 1 + fd
	}
	if nd == 8 || fd == 8 || nd+fd == 0 || b[i]|0x20 == 'e' {
		return 0, 0, false
	}
	f := float64(mant) / pow10f64[fd]
	return math.Float64frombits(math.Float64bits(f) | neg<<63), i, true
}

// b2u is 1 for true; the compiler makes it a flag move, not a branch.
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
