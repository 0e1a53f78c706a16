package dataset

// chunked is a column built in parts, so that growing it never copies
// what it holds (append's doubling would need three times the column at
// the moment it moves) and a parser's block can be taken over whole.
type chunked[T any] struct {
	parts [][]T
	n     int
}

// maxPart bounds a part that push grows, so that its slack stays small.
const maxPart = 1 << 16

func (c *chunked[T]) push(v T) {
	if k := len(c.parts); k > 0 {
		if last := c.parts[k-1]; len(last) < cap(last) {
			c.parts[k-1] = append(last, v)
			c.n++
			return
		}
	}
	part := make([]T, 1, min(max(c.n, 64), maxPart))
	part[0] = v
	c.parts = append(c.parts, part)
	c.n++
}

// add takes part over as the next values.
func (c *chunked[T]) add(part []T) {
	if len(part) == 0 {
		return
	}
	c.parts = append(c.parts, part[:len(part):len(part)])
	c.n += len(part)
}

// set replaces value i (i < n).
func (c *chunked[T]) set(i int, v T) {
	for _, p := range c.parts {
		if i < len(p) {
			p[i] = v
			return
		}
		i -= len(p)
	}
}

// flatten returns the values in one slice and lets go of the parts.
func (c *chunked[T]) flatten() []T {
	out := make([]T, c.n)
	o := 0
	for k, p := range c.parts {
		o += copy(out[o:], p)
		c.parts[k] = nil
	}
	c.parts, c.n = nil, 0
	return out
}

// column is a column of the rows kept: first a slice reserved for the rows
// a file of known size can hold, which parsers fill in place (reserved
// and untouched memory is not resident), then parts for rows beyond it.
type column[T any] struct {
	flat []T
	more chunked[T]
}

func (c *column[T]) len() int { return len(c.flat) + c.more.n }

func (c *column[T]) push(v T) {
	if c.more.n == 0 && len(c.flat) < cap(c.flat) {
		c.flat = append(c.flat, v)
		return
	}
	c.more.push(v)
}

func (c *column[T]) set(i int, v T) {
	if i < len(c.flat) {
		c.flat[i] = v
		return
	}
	c.more.set(i-len(c.flat), v)
}

// adopt appends values a parser wrote in place at flat[at:at+n] (at is
// at least len(flat)), or, when the parser had its own slice, that slice.
func (c *column[T]) adopt(vals []T, at int, inPlace bool) {
	if !inPlace {
		c.more.add(vals)
		return
	}
	n := len(c.flat)
	if at != n {
		copy(c.flat[n:n+len(vals)], vals)
	}
	c.flat = c.flat[:n+len(vals)]
}

// whole returns the column as one slice, letting go of the parts.
func (c *column[T]) whole() []T {
	if c.more.n == 0 {
		return c.flat[:len(c.flat):len(c.flat)]
	}
	out := make([]T, c.len())
	n := copy(out, c.flat)
	c.flat = nil
	copy(out[n:], c.more.flatten())
	return out
}
