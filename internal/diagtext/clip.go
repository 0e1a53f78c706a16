package diagtext

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// maxLineRunes is the longest line a rendered diagnostic keeps. Source
// lines can be any length (a minified value, a 1 MB string): printed
// whole, one diagnostic would flood the terminal and bury its own
// message, so a longer line shows a window of it around the problem.
const maxLineRunes = 200

// snippetLine matches a source line of HCL's snippet, "  12: text".
var snippetLine = regexp.MustCompile(`^(\s*)(\d+): (.*)$`)

// ansiEscape matches the color codes of a colored rendering.
var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// clipLines shortens every line of out longer than maxLineRunes. A snippet
// line keeps the window that starts a little before column col of line
// (the diagnostic's subject; col 0 when there is none), and says how much
// it left out on each side. A clipped line loses its colors.
func clipLines(out []byte, line, col int) []byte {
	lines := bytes.SplitAfter(out, []byte("\n"))
	changed := false
	for i, l := range lines {
		body := bytes.TrimSuffix(l, []byte("\n"))
		if utf8.RuneCount(body) <= maxLineRunes {
			continue
		}
		plain := ansiEscape.ReplaceAll(body, nil)
		if utf8.RuneCount(plain) <= maxLineRunes {
			continue
		}
		prefix, text, start := []byte(nil), plain, 0
		if m := snippetLine.FindSubmatch(plain); m != nil {
			prefix = plain[:len(plain)-len(m[3])]
			text = m[3]
			if n, _ := strconv.Atoi(string(m[2])); n == line && col > 1 {
				start = max(0, col-1-maxLineRunes/4)
			}
		}
		lines[i] = append(window(prefix, text, start), l[len(body):]...)
		changed = true
	}
	if !changed {
		return out
	}
	return bytes.Join(lines, nil)
}

// window is prefix, then at most maxLineRunes runes of text from rune
// start on, with what it leaves out counted on either side.
func window(prefix, text []byte, start int) []byte {
	runes := []rune(string(text))
	start = min(start, len(runes))
	end := min(len(runes), start+maxLineRunes)
	out := append([]byte(nil), prefix...)
	if start > 0 {
		out = fmt.Appendf(out, "[%d characters] …", start)
	}
	out = append(out, string(runes[start:end])...)
	if rest := len(runes) - end; rest > 0 {
		out = fmt.Appendf(out, "… [%d more characters]", rest)
	}
	return out
}
