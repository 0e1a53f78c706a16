package dataset

import (
	"unsafe"
)

// spellings numbers the distinct spellings of a target column in the order
// they first appear, so that what is decided about a label (is it a
// number, which class is it) is decided once per spelling, not once per
// row. The text parsers intern labels (one string per spelling and
// worker), so most rows hold a string already seen at the same address:
// a small cache keyed by the string's address and length answers those
// without hashing the text. Equal address and length mean equal text
// while the strings are alive, and every label is alive while the column
// is indexed; a miss falls back to the map of texts. (An empty slot, and
// an empty string, have no address: they always miss.)
type spellings struct {
	byText   map[string]int32
	distinct []string
	limit    int
	cache    [64]spellingSlot
}

type spellingSlot struct {
	p *byte
	n int
	k int32
}

// newSpellings indexes at most limit distinct spellings (no bound when
// limit <= 0): a column of unique values would otherwise index every row.
func newSpellings(limit int) *spellings {
	return &spellings{byText: map[string]int32{}, limit: limit}
}

// index returns s's number and whether s was added by this call; k is -1
// when s is new and the index is full.
func (x *spellings) index(s string) (k int32, added bool) {
	p := unsafe.StringData(s)
	slot := &x.cache[uint64(uintptr(unsafe.Pointer(p)))*0x9E3779B97F4A7C15>>58]
	if slot.p == p && slot.n == len(s) && p != nil {
		return slot.k, false
	}
	k, ok := x.byText[s]
	if !ok {
		if x.limit > 0 && len(x.distinct) >= x.limit {
			return -1, true
		}
		k = int32(len(x.distinct))
		x.byText[s] = k
		x.distinct = append(x.distinct, s)
		added = true
	}
	*slot = spellingSlot{p: p, n: len(s), k: k}
	return k, added
}
