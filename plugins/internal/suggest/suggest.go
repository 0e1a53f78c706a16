// Package suggest finds the name a user probably meant, for "Did you mean"
// hints. First-party plugins do not import the host's HCL packages (the
// allow-list in plugins/builtin's TestPluginImports), so this is a small
// Levenshtein distance rather than hcl's didyoumean package (which the host
// uses, with the same threshold).
package suggest

import "strings"

// Name returns the option closest to given, or "" when none is close enough
// to be a plausible typo (edit distance of 3 or more, as hcl's didyoumean).
// Case differences count as half an edit, so "Species" suggests "species".
func Name(given string, options []string) string {
	best, bestDist := "", 3.0
	for _, o := range options {
		d := float64(Distance(strings.ToLower(given), strings.ToLower(o)))
		if o != given && strings.EqualFold(o, given) {
			d = 0.5
		}
		if d < bestDist {
			best, bestDist = o, d
		}
	}
	return best
}

// Hint returns " Did you mean "x"?" or "".
func Hint(given string, options []string) string {
	if s := Name(given, options); s != "" {
		return " Did you mean \"" + s + "\"?"
	}
	return ""
}

// Distance is the Levenshtein edit distance between a and b, over runes.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
