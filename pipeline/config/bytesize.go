package config

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// byteUnits are the units a size may end with. Binary units (KiB, MiB...)
// are what memory is counted in; decimal ones (kB, MB...) are accepted
// because people write them, and mean powers of 1000, as they say.
var byteUnits = map[string]int64{
	"B":   1,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
	"TiB": 1 << 40,
	"kB":  1e3,
	"KB":  1e3,
	"MB":  1e6,
	"GB":  1e9,
	"TB":  1e12,
}

// maxByteSize keeps sizes far inside int64 and far above any machine.
const maxByteSize = 1 << 60

// ParseByteSize reads a size such as "512MiB", "1.5 GiB" or "800MB" into
// bytes. The unit is required (a bare number is too easily taken for the
// wrong unit), the number is a plain decimal (digits with at most one
// point), at most one space separates them, and the result must be at least
// one byte: anything else is an error saying what is expected.
func ParseByteSize(text string) (int64, error) {
	i := 0
	for i < len(text) && (text[i] >= '0' && text[i] <= '9' || text[i] == '.') {
		i++
	}
	num, unit := text[:i], strings.TrimPrefix(text[i:], " ")
	if num == "" {
		return 0, errors.New("it must start with a number")
	}
	if strings.Count(num, ".") > 1 || num[0] == '.' || num[len(num)-1] == '.' {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	if len(num) > 30 {
		return 0, errors.New("the number is too long")
	}
	mult, ok := byteUnits[unit]
	if !ok {
		if unit == "" {
			return 0, errors.New("it needs a unit, such as MiB or GiB")
		}
		return 0, fmt.Errorf("%q is not a unit of size (use B, KiB, MiB, GiB or TiB; kB, MB, GB or TB for powers of 1000)", unit)
	}
	// Exact arithmetic: 1.1 GiB is a whole number of bytes, give or take the
	// fraction, and no float rounding should decide which.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() || n.Int64() > maxByteSize {
		return 0, fmt.Errorf("it is more than %d bytes", int64(maxByteSize))
	}
	if n.Sign() <= 0 {
		return 0, errors.New("it must be at least one byte")
	}
	return n.Int64(), nil
}
