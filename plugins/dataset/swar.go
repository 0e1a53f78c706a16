package dataset

import "math/bits"

// Word-at-a-time ("SWAR": SIMD within a register) helpers for the text
// parser: eight bytes of a cell are loaded as one little-endian uint64, so
// the first byte of the text is the word's lowest byte.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// pow10u64[n] is 10ⁿ for the digit counts leadingDigits returns.
var pow10u64 = [9]uint64{1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8}

// nonZeroBytes returns w with the high bit of each byte set when that
// byte of w is not zero, and every other bit clear. No carry crosses a
// byte: (x & 0x7f) + 0x7f is at most 0xfe.
func nonZeroBytes(w uint64) uint64 {
	return (w | (w&^highs + 0x7f*ones)) & highs
}

// leadingDigits returns how many of w's bytes, from its first, are ASCII
// digits before the first that is not (8 when all are). A byte is a digit
// when its high nibble is 3 and adding 6 keeps it 3 ('0'..'9' are 0x30..0x39).
// The addition carries only out of a byte of 0xfa or more, which is not a
// digit, and a carry moves to the next byte of the text, past the first
// byte that is not a digit: the bytes counted are never changed by it.
func leadingDigits(w uint64) int {
	const nibbles = 0xf0 * ones
	notDigit := (w&nibbles ^ 0x30*ones) | ((w+0x06*ones)&nibbles ^ 0x30*ones)
	return bits.TrailingZeros64(nonZeroBytes(notDigit)) >> 3
}

// digitsValue returns the value of w's first n bytes read as decimal
// digits (n ≤ leadingDigits(w)). Subtracting '0' borrows only out of a
// byte below '0', past the digits. Shifting the digits to the top of the
// word puts n-8 zero digits before them, and the eight digits are then
// combined in pairs, fours and eights with three multiplications.
func digitsValue(w uint64, n int) uint64 {
	d := (w - 0x30*ones) << (64 - 8*uint(n)) // n = 0 shifts everything out
	d = d*10 + d>>8                          // byte 2k+1: digits 2k and 2k+1
	const (
		mask = 0x000000ff000000ff
		mul1 = 100 + 1000000<<32
		mul2 = 1 + 10000<<32
	)
	return ((d&mask)*mul1 + (d>>16&mask)*mul2) >> 32
}
