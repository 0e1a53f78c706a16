package dataset

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// exactPow10 holds the powers of ten a float64 represents exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat is strconv.ParseFloat(string(b), 64), bit for bit, without
// allocating. Plain decimals of at most 19 significant digits whose value
// is an exact integer times an exact power of ten (Clinger's fast path:
// one correctly rounded multiplication or division) are converted here;
// everything else (more digits, large exponents, hexadecimal, inf, nan,
// syntax errors) goes to strconv.
func parseFloat(b []byte) (float64, error) {
	if v, ok := fastDecimal(b); ok {
		return v, nil
	}
	if len(b) == 0 {
		return strconv.ParseFloat("", 64)
	}
	// strconv copies the text into any error it returns, so it may read b
	// in place.
	return strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
}

// fastDecimal converts [+-]digits[.digits][(e|E)[+-]digits] when it can do
// so exactly; ok is false when it cannot, not only when b is malformed.
func fastDecimal(b []byte) (v float64, ok bool) {
	v, n, ok := scanDecimal(b, 0)
	return v, ok && n == len(b)
}

// scanDecimal is fastDecimal on b up to its first stop byte (or its end),
// and returns the bytes it read; a byte that is neither part of a plain
// decimal nor stop makes ok false.
func scanDecimal(b []byte, stop byte) (v float64, n int, ok bool) {
	i, neg := 0, false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	// Every digit counts, leading zeros too: 19 decimal digits always fit
	// in a uint64, and the rare longer cell goes to strconv.
	var mant uint64
	start := i
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			break
		}
		mant = mant*10 + uint64(d)
	}
	digits, exp := i-start, 0
	if i < len(b) && b[i] == '.' {
		i++
		frac := i
		for ; i < len(b); i++ {
			d := b[i] - '0'
			if d > 9 {
				break
			}
			mant = mant*10 + uint64(d)
		}
		digits += i - frac
		exp = frac - i
	}
	if digits == 0 || digits > 19 {
		return 0, 0, false
	}
	if i < len(b) && b[i] != stop {
		if b[i] != 'e' && b[i] != 'E' {
			return 0, 0, false
		}
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		e, ed := 0, 0
		for ; i < len(b) && b[i] != stop; i++ {
			d := b[i] - '0'
			if d > 9 {
				return 0, 0, false
			}
			ed++
			if e < 10000 {
				e = e*10 + int(d)
			}
		}
		if ed == 0 {
			return 0, 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if mant > 1<<53 {
		return 0, 0, false
	}
	f := float64(mant)
	switch {
	case mant == 0:
	case exp == 0:
	case exp > 0 && exp < len(exactPow10):
		f *= exactPow10[exp]
	case exp < 0 && -exp < len(exactPow10):
		f /= exactPow10[-exp]
	default:
		return 0, 0, false
	}
	if neg {
		f = -f
	}
	return f, i, true
}

// parseNumber reads one feature cell. Missing values are refused rather
// than silently imputed: the user decides how to fill them.
func parseNumber(s string) (float64, error) {
	return parseNumberBytes(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// parseNumberBytes is parseNumber on the bytes of a cell; it never writes
// to them.
func parseNumberBytes(b []byte) (float64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty cell: fill or drop missing values before loading")
	}
	v, err := parseFloat(b)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%s is not a number", quoteShort(string(b)))
	case math.IsNaN(v):
		return 0, fmt.Errorf("%s is a missing value: fill or drop missing values before loading", quoteShort(string(b)))
	case math.IsInf(v, 0):
		return 0, fmt.Errorf("%s is not a finite number", quoteShort(string(b)))
	}
	return v, nil
}
