package describe

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Limits on the HCL text a host or a plugin parses. hclsyntax parses by
// recursive descent and evaluates by recursing over the syntax tree, and
// Go cannot recover from a stack overflow: 70,000 nested parentheses
// (140 KB) or a sum of 1,000,000 terms end the process with "fatal error:
// stack overflow", and 40,000 take seconds and a gigabyte of stack.
// CheckSource refuses text beyond these limits before hclsyntax reads it.
// Each is far above what a pipeline, a variables file or a deferred
// expression needs.
const (
	// MaxSourceBytes bounds one text: a pipeline file, a variables file, a
	// -var value, a deferred expression. hclsyntax takes seconds and some
	// 300 MB of heap to parse a MiB of short tokens (a long list of small
	// numbers), so 1 MiB bounds what one text can cost. Pipelines are a few
	// KB (the examples are 1 to 3 KB); data belong in dataset files.
	MaxSourceBytes = 1 << 20
	// MaxNesting bounds the levels open at one place: brackets, braces
	// (blocks and objects), parentheses, strings and heredocs, their
	// interpolations and template directives (%{ if } and %{ for }). The
	// parser recurses about a dozen calls per level, so 256 levels cost
	// little; written configurations nest ten or so.
	MaxNesting = 256
	// MaxExpressionDepth bounds how deep an expression's syntax tree can
	// be, as the text shows it: every operator, function call, index,
	// bracket and nesting level on the way from the start of an attribute
	// to a point in it counts one (an element of a list or an argument of
	// a call starts afresh from its bracket's count). hclsyntax builds a
	// chain a + b + c ... as a tree as deep as its operators, and
	// evaluates it by one recursive call per level, so depth, not nesting,
	// is what a long chain exhausts. 1024 allows a sum of a thousand terms.
	MaxExpressionDepth = 1024
)

// CheckSource checks the text of an HCL native-syntax configuration file
// (what hclsyntax.ParseConfig reads) against MaxSourceBytes, MaxNesting
// and MaxExpressionDepth before it is parsed, in one pass over its bytes
// and without allocating per byte, and returns an error diagnostic at the
// first place where the text goes beyond one, or nil. filename and start
// place the diagnostic as the parser places its own (hcl.InitialPos for a
// whole file). Text that passes parses and evaluates within those bounds.
//
// It reads the text as hclsyntax's lexer does (strings, heredocs,
// interpolations and comments included) but does not parse it: syntax
// errors are the parser's to report, with two exceptions. A /* comment
// that is never closed is reported here, since hclsyntax's lexer takes
// time quadratic in the text's length over every such comment; and so is
// a byte that is not UTF-8 outside strings and comments, which
// hclsyntax's identifier tables take, with whatever byte follows it (a
// closing parenthesis, a quote), for a letter.
func CheckSource(src []byte, filename string, start hcl.Pos) hcl.Diagnostics {
	return checkSource(src, filename, start, false)
}

// CheckExpressionSource is CheckSource for the text of one expression
// (what hclsyntax.ParseExpression reads), where newlines do not end the
// expression: 1 +, a newline, and 1 is one sum.
func CheckExpressionSource(src []byte, filename string, start hcl.Pos) hcl.Diagnostics {
	return checkSource(src, filename, start, true)
}

func checkSource(src []byte, filename string, start hcl.Pos, bare bool) hcl.Diagnostics {
	s := sourceScan{src: src, bare: bare, maxBytes: MaxSourceBytes, maxNesting: MaxNesting, maxDepth: MaxExpressionDepth}
	if s.run() {
		return nil
	}
	return hcl.Diagnostics{s.diagnostic(filename, start)}
}

// The problems CheckSource reports.
const (
	problemNone = iota
	problemSize
	problemNesting
	problemDepth
	problemComment
	problemEncoding
)

// tokUnclosedComment is what sourceScan traces at a /* that no */
// follows; hclsyntax's lexer takes the two characters as tokens of their
// own (TokenSlash, TokenStar), which the scan traces next.
const tokUnclosedComment hclsyntax.TokenType = '☹'

// scanFrame is one level open in the text.
type scanFrame struct {
	// kind is the opening character: 0 for a configuration file, 'x' for
	// an expression's text, '(', '[', '{', '$' for an interpolation, '%'
	// for a directive sequence, '"' for a quoted template and '<' for a
	// heredoc.
	kind byte
	// at and end are the opener's bytes.
	at, end int
	// base is the expression depth where the frame opens.
	base int
	// ops counts, in an expression frame, the operators, calls, indexes
	// and brackets of its current item; in a template frame ('"', '<'),
	// its open directives.
	ops int
	// forExpr marks a '{' that opens a for expression, where newlines do
	// not end an item.
	forExpr bool
	// braces is, for '$' and '%', the lexer's brace count at which a }
	// closes the sequence.
	braces int
	// keyword is a directive sequence's keyword (if, for, endif, ...).
	keyword []byte
	// marker is a heredoc's closing marker; bol is true at the start of
	// one of its lines.
	marker []byte
	bol    bool
}

func (f *scanFrame) template() bool { return f.kind == '"' || f.kind == '<' }

// sourceScan is CheckSource's pass over the text. It follows hclsyntax's
// lexer (scan_tokens.rl) as far as nesting needs: it switches between
// expressions, quoted templates and heredocs where the lexer does, with
// the same brace count deciding where an interpolation ends.
type sourceScan struct {
	src []byte
	// bare is set for the text of one expression rather than a file:
	// newlines do not end its items.
	bare                           bool
	maxBytes, maxNesting, maxDepth int

	frames []scanFrame
	// nest is the nesting: frames but the first, and open directives.
	nest int
	// braces counts { less }, as the lexer does; rets holds the indexes
	// in frames of the open interpolations and directive sequences.
	braces int
	rets   []int
	// noCommentEnd is set once a /* finds no */ after it: none will.
	noCommentEnd bool
	// stopped is set where the lexer stops (a lone carriage return in a
	// heredoc): it takes the rest as one invalid token.
	stopped bool
	// letters caches whether a rune starts (bit 1) or continues (bit 2)
	// an identifier, as hclsyntax decides it.
	letters map[rune]uint8

	// trace, when set, sees every token the scan takes notice of, as
	// hclsyntax's lexer would type it; tests compare the two.
	trace func(typ hclsyntax.TokenType, start, end int)

	problem  int
	at, end  int
	reported int // the limit exceeded, for the message
}

func (s *sourceScan) emit(typ hclsyntax.TokenType, start, end int) {
	if s.trace != nil {
		s.trace(typ, start, end)
	}
}

func (s *sourceScan) fail(problem, at, end int) bool {
	s.problem, s.at, s.end = problem, at, end
	return false
}

func (s *sourceScan) top() *scanFrame { return &s.frames[len(s.frames)-1] }

// run scans the whole text; false means a problem was found.
func (s *sourceScan) run() bool {
	i := 0
	if bytes.HasPrefix(s.src, []byte("\xef\xbb\xbf")) {
		i = 3 // the lexer skips a byte order mark
	}
	root := scanFrame{}
	if s.bare {
		root.kind = 'x'
	}
	s.frames = append(s.frames[:0], root)
	for i < len(s.src) && !s.stopped {
		if i >= s.maxBytes {
			return s.tooLarge()
		}
		var ok bool
		switch s.top().kind {
		case '"':
			i, ok = s.quoted(i)
		case '<':
			i, ok = s.heredoc(i)
		default:
			i, ok = s.expression(i)
		}
		if !ok {
			return false
		}
	}
	if len(s.src) > s.maxBytes {
		return s.tooLarge()
	}
	return true
}

// tooLarge reports the first character past maxBytes. The scan goes that
// far only, so that what comes before is reported first.
func (s *sourceScan) tooLarge() bool {
	end := s.maxBytes + 1
	if _, n := utf8.DecodeRune(s.src[s.maxBytes:]); n > 1 {
		end = s.maxBytes + n
	}
	s.reported = s.maxBytes
	return s.fail(problemSize, s.maxBytes, end)
}

// expression takes one token of expression text at i.
func (s *sourceScan) expression(i int) (int, bool) {
	src := s.src
	c := src[i]
	next := byte(0)
	if i+1 < len(src) {
		next = src[i+1]
	}
	switch c {
	case ' ', '\t':
		return i + 1, true
	case '\n':
		return i + 1, s.newline(i, i+1)
	case '\r':
		if next == '\n' {
			return i + 2, s.newline(i, i+2)
		}
		return i + 1, true
	case '#':
		return s.lineComment(i), true
	case '/':
		switch next {
		case '/':
			return s.lineComment(i), true
		case '*':
			if end, ok := s.blockComment(i); ok {
				return end, true
			}
			s.emit(tokUnclosedComment, i, i+2)
			if s.trace == nil {
				return i, s.fail(problemComment, i, i+2)
			}
		}
		return i + 1, s.op(hclsyntax.TokenSlash, i, i+1)
	case '"':
		return i + 1, s.open(scanFrame{kind: '"'}, hclsyntax.TokenOQuote, i, i+1)
	case '<':
		if next == '<' {
			if end, marker, ok := s.heredocIntro(i); ok {
				// The opener without its line end, for the diagnostic.
				eol := end - 1
				if src[eol-1] == '\r' {
					eol--
				}
				return end, s.open(scanFrame{kind: '<', marker: marker, bol: true}, hclsyntax.TokenOHeredoc, i, eol)
			}
		}
		if next == '=' {
			return i + 2, s.op(hclsyntax.TokenLessThanEq, i, i+2)
		}
		return i + 1, s.op(hclsyntax.TokenLessThan, i, i+1)
	case '>':
		if next == '=' {
			return i + 2, s.op(hclsyntax.TokenGreaterThanEq, i, i+2)
		}
		return i + 1, s.op(hclsyntax.TokenGreaterThan, i, i+1)
	case '=':
		switch next {
		case '=':
			return i + 2, s.op(hclsyntax.TokenEqualOp, i, i+2)
		case '>':
			return i + 2, true
		}
		return i + 1, true
	case '!':
		if next == '=' {
			return i + 2, s.op(hclsyntax.TokenNotEqual, i, i+2)
		}
		return i + 1, s.op(hclsyntax.TokenBang, i, i+1)
	case '&':
		if next == '&' {
			return i + 2, s.op(hclsyntax.TokenAnd, i, i+2)
		}
		return i + 1, true
	case '|':
		if next == '|' {
			return i + 2, s.op(hclsyntax.TokenOr, i, i+2)
		}
		return i + 1, true
	case '+', '-', '*', '%', '?':
		return i + 1, s.op(hclsyntax.TokenType(c), i, i+1)
	case '(', '[':
		return i + 1, s.open(scanFrame{kind: c}, hclsyntax.TokenType(c), i, i+1)
	case ')', ']':
		s.emit(hclsyntax.TokenType(c), i, i+1)
		open := byte('(')
		if c == ']' {
			open = '['
		}
		if s.top().kind == open {
			s.pop()
		}
		return i + 1, true
	case '{':
		s.braces++
		w := s.wordAfter(i + 1)
		return i + 1, s.open(scanFrame{kind: '{', forExpr: string(w) == "for"}, hclsyntax.TokenOBrace, i, i+1)
	case '}':
		return i + 1, s.closeBrace(i, i+1, false)
	case '~':
		if next == '}' {
			return i + 2, s.closeBrace(i, i+2, true)
		}
		return i + 1, true
	case ',':
		s.emit(hclsyntax.TokenComma, i, i+1)
		s.top().ops = 0
		return i + 1, true
	}
	if '0' <= c && c <= '9' {
		return s.number(i), true
	}
	if end := s.ident(i); end > i {
		s.emit(hclsyntax.TokenIdent, i, end)
		return end, true
	}
	if c < utf8.RuneSelf {
		return i + 1, true
	}
	r, n := utf8.DecodeRune(src[i:])
	if r == utf8.RuneError && n <= 1 {
		return i, s.fail(problemEncoding, i, i+1)
	}
	return i + n, true
}

// newline ends an item where newlines are significant: in a body (a
// file, or a block's braces) and in an object constructor.
func (s *sourceScan) newline(start, end int) bool {
	s.emit(hclsyntax.TokenNewline, start, end)
	if f := s.top(); f.kind == 0 || (f.kind == '{' && !f.forExpr) {
		f.ops = 0
	}
	return true
}

// lineComment returns where a # or // comment ends: at its newline, which
// ends an item as any newline does.
func (s *sourceScan) lineComment(i int) int {
	if j := bytes.IndexByte(s.src[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(s.src)
}

// blockComment returns the end of the /* comment at i.
func (s *sourceScan) blockComment(i int) (int, bool) {
	if !s.noCommentEnd {
		if j := bytes.Index(s.src[i+2:], []byte("*/")); j >= 0 {
			return i + 2 + j + 2, true
		}
		s.noCommentEnd = true
	}
	return 0, false
}

// op counts an operator in the current item.
func (s *sourceScan) op(typ hclsyntax.TokenType, start, end int) bool {
	s.emit(typ, start, end)
	f := s.top()
	f.ops++
	if f.base+f.ops > s.maxDepth {
		s.reported = s.maxDepth
		return s.fail(problemDepth, start, end)
	}
	return true
}

// open opens a frame at the opener [start, end). In an expression the
// opener counts as an operator of the current item (a call, an index, an
// operand); in a template an interpolation adds nesting only.
func (s *sourceScan) open(f scanFrame, typ hclsyntax.TokenType, start, end int) bool {
	s.emit(typ, start, end)
	parent := s.top()
	if !parent.template() {
		parent.ops++
	}
	f.at, f.end = start, end
	f.base = parent.base + parent.ops
	s.frames = append(s.frames, f)
	s.nest++
	if s.nest > s.maxNesting {
		s.reported = s.maxNesting
		return s.fail(problemNesting, start, end)
	}
	if f.base > s.maxDepth {
		s.reported = s.maxDepth
		return s.fail(problemDepth, start, end)
	}
	return true
}

// pop closes the innermost frame, with the directives left open in it.
func (s *sourceScan) pop() {
	f := s.top()
	s.nest--
	if f.template() {
		s.nest -= f.ops
	}
	s.frames = s.frames[:len(s.frames)-1]
}

// closeBrace takes } or ~} as the lexer does: it ends the innermost
// interpolation or directive sequence when the brace count is back to
// where that opened, and closes a brace otherwise.
func (s *sourceScan) closeBrace(start, end int, tilde bool) bool {
	if n := len(s.rets); n > 0 && s.frames[s.rets[n-1]].braces == s.braces {
		s.emit(hclsyntax.TokenTemplateSeqEnd, start, end)
		s.braces--
		at := s.rets[n-1]
		s.rets = s.rets[:n-1]
		for len(s.frames) > at+1 {
			s.pop()
		}
		seq := *s.top()
		s.pop()
		return s.directive(seq)
	}
	if tilde {
		s.emit(hclsyntax.TokenTemplateSeqEnd, start, end)
	} else {
		s.emit(hclsyntax.TokenCBrace, start, end)
	}
	s.braces--
	if s.top().kind == '{' {
		s.pop()
	}
	return true
}

// directive opens or closes a template directive when a directive
// sequence (%{ if x }, %{ endif }) ends: if and for nest what follows
// them until their endif or endfor.
func (s *sourceScan) directive(seq scanFrame) bool {
	if seq.kind != '%' {
		return true
	}
	t := s.top()
	if !t.template() {
		return true
	}
	switch string(seq.keyword) {
	case "if", "for":
		t.ops++
		s.nest++
		if s.nest > s.maxNesting {
			s.reported = s.maxNesting
			return s.fail(problemNesting, seq.at, seq.end)
		}
		if t.base+t.ops > s.maxDepth {
			s.reported = s.maxDepth
			return s.fail(problemDepth, seq.at, seq.end)
		}
	case "endif", "endfor":
		if t.ops > 0 {
			t.ops--
			s.nest--
		}
	}
	return true
}

// openSequence opens an interpolation ("${") or a directive sequence
// ("%{") in a template.
func (s *sourceScan) openSequence(kind byte, i int) (int, bool) {
	typ := hclsyntax.TokenTemplateInterp
	if kind == '%' {
		typ = hclsyntax.TokenTemplateControl
	}
	end := i + 2
	if end < len(s.src) && s.src[end] == '~' {
		end++
	}
	if t := s.top(); t.kind == '<' {
		t.bol = false
	}
	s.braces++
	f := scanFrame{kind: kind, braces: s.braces}
	if kind == '%' {
		f.keyword = s.wordAfter(end)
	}
	s.rets = append(s.rets, len(s.frames))
	return end, s.open(f, typ, i, end)
}

// templateChar takes a $ or % in a template: an interpolation or a
// directive sequence, the escapes $${ and %%{, or a literal character.
func (s *sourceScan) templateChar(i int) (int, bool) {
	c := s.src[i]
	switch {
	case i+1 < len(s.src) && s.src[i+1] == '{':
		return s.openSequence(c, i)
	case i+2 < len(s.src) && s.src[i+1] == c && s.src[i+2] == '{':
		return i + 3, true
	}
	return i + 1, true
}

// quoted scans a quoted template from i up to the next token of
// interest.
func (s *sourceScan) quoted(i int) (int, bool) {
	src := s.src
	for i < len(src) {
		j := bytes.IndexAny(src[i:], "\"\\$%")
		if j < 0 {
			return len(src), true
		}
		i += j
		switch src[i] {
		case '"':
			s.emit(hclsyntax.TokenCQuote, i, i+1)
			s.pop()
			return i + 1, true
		case '\\':
			// An escape takes the next character, unless that ends the line.
			if i+1 < len(src) && src[i+1] != '\n' && src[i+1] != '\r' {
				i += 2
			} else {
				i++
			}
		default:
			return s.templateChar(i)
		}
	}
	return i, true
}

// heredoc scans a heredoc from i: its closing marker at the start of a
// line, or up to the next token of interest.
func (s *sourceScan) heredoc(i int) (int, bool) {
	src := s.src
	f := s.top()
	if f.bol {
		// The lexer takes bytes that are not UTF-8 as tokens of their own,
		// still at the start of the line.
		for i < len(src) && src[i] >= utf8.RuneSelf && utf8Len(src[i:]) == 0 {
			i++
		}
		if nl := bytes.IndexByte(src[i:], '\n'); nl >= 0 {
			line := bytes.TrimSuffix(src[i:i+nl], []byte("\r"))
			if bytes.IndexByte(line, '\r') < 0 && bytes.Equal(bytes.TrimSpace(line), f.marker) {
				s.emit(hclsyntax.TokenCHeredoc, i, i+len(line))
				s.pop()
				return i + len(line), true // the newline ends the item
			}
		}
		f.bol = false
	}
	for i < len(src) {
		j := bytes.IndexAny(src[i:], "\n\r$%")
		if j < 0 {
			return len(src), true
		}
		i += j
		switch src[i] {
		case '\n':
			f.bol = true
			return i + 1, true
		case '\r':
			if i+1 < len(src) && src[i+1] == '\n' {
				f.bol = true
				return i + 2, true
			}
			// A carriage return alone matches nothing in a heredoc: the
			// lexer stops, and the rest is one invalid token.
			s.stopped = true
			return len(src), true
		default:
			return s.templateChar(i)
		}
	}
	return i, true
}

// heredocIntro reads a heredoc introducer (<<EOT or <<-EOT, and the
// newline) at i: its end and closing marker.
func (s *sourceScan) heredocIntro(i int) (int, []byte, bool) {
	src := s.src
	k := i + 2
	if k < len(src) && src[k] == '-' {
		k++
	}
	j := k
	for j < len(src) && (isIdentASCII(src[j]) || src[j] >= utf8.RuneSelf) {
		j++
	}
	marker := src[k:j]
	if j < len(src) && src[j] == '\r' {
		j++
	}
	// A marker that is not UTF-8 is refused when the scan reaches it.
	if j >= len(src) || src[j] != '\n' || !utf8.Valid(marker) || !validMarker(marker) {
		return 0, nil, false
	}
	return j + 1, marker, true
}

func validMarker(m []byte) bool {
	if len(m) == 0 {
		return false
	}
	for i, c := range m {
		switch {
		case c >= utf8.RuneSelf:
			// The lexer's tables decide.
			return hclsyntax.ValidIdentifier(string(m))
		case !isIdentASCII(c), i == 0 && (c == '-' || '0' <= c && c <= '9'):
			return false
		}
	}
	return true
}

// wordAfter returns the identifier that is the next token after i,
// skipping spaces, newlines and comments as the parser does where
// newlines do not matter; nil if the next token is something else.
func (s *sourceScan) wordAfter(i int) []byte {
	src := s.src
	for i < len(src) {
		switch c := src[i]; {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '\r' && i+1 < len(src) && src[i+1] == '\n':
			i += 2
		case c == '#' || c == '/' && i+1 < len(src) && src[i+1] == '/':
			i = s.lineComment(i)
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end, ok := s.blockComment(i)
			if !ok {
				return nil
			}
			i = end
		default:
			if end := s.ident(i); end > i {
				return src[i:end]
			}
			return nil
		}
	}
	return nil
}

// number returns the end of the number literal at i, so that the sign of
// an exponent (1e-5) is not taken for an operator.
func (s *sourceScan) number(i int) int {
	src := s.src
	j := i + 1
	for j < len(src) {
		c := src[j]
		if '0' <= c && c <= '9' || c == '.' {
			j++
			continue
		}
		if c == 'e' || c == 'E' {
			k := j + 1
			if k < len(src) && (src[k] == '+' || src[k] == '-') {
				k++
			}
			if k < len(src) && '0' <= src[k] && src[k] <= '9' {
				j = k + 1
				continue
			}
		}
		break
	}
	return j
}

// ident returns the end of the identifier at i, i if there is none.
// Identifiers take dashes (a-b is one name, not a subtraction). It stops
// before a byte that is not UTF-8.
func (s *sourceScan) ident(i int) int {
	src := s.src
	j := i
	for j < len(src) {
		c := src[j]
		if c < utf8.RuneSelf {
			if !isIdentASCII(c) || j == i && (c == '-' || '0' <= c && c <= '9') {
				break
			}
			j++
			continue
		}
		r, n := utf8.DecodeRune(src[j:])
		if r == utf8.RuneError && n <= 1 || !s.letter(r, j == i) {
			break
		}
		j += n
	}
	return j
}

// letter reports whether r can start (first) or continue an identifier,
// as hclsyntax's tables decide (Unicode's ID_Start and ID_Continue, of the
// Unicode version hclsyntax was generated from).
func (s *sourceScan) letter(r rune, first bool) bool {
	if s.letters == nil {
		s.letters = map[rune]uint8{}
	}
	bits, ok := s.letters[r]
	if !ok {
		bits = 4
		if hclsyntax.ValidIdentifier(string(r)) {
			bits |= 1
		}
		if hclsyntax.ValidIdentifier("a" + string(r)) {
			bits |= 2
		}
		s.letters[r] = bits
	}
	if first {
		return bits&1 != 0
	}
	return bits&2 != 0
}

func isIdentASCII(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// utf8Len is the length of the UTF-8 sequence at the start of b as the
// lexer reads it (which, unlike unicode/utf8, takes overlong forms and
// surrogates), 0 for a byte it takes as invalid.
func utf8Len(b []byte) int {
	cont := func(n int) bool {
		if len(b) < n {
			return false
		}
		for _, c := range b[1:n] {
			if c < 0x80 || c > 0xBF {
				return false
			}
		}
		return true
	}
	switch c := b[0]; {
	case c < 0x80:
		return 1
	case 0xC0 <= c && c <= 0xDF && cont(2):
		return 2
	case 0xE0 <= c && c <= 0xEF && cont(3):
		return 3
	case 0xF0 <= c && c <= 0xF7 && cont(4):
		return 4
	}
	return 0
}

// diagnostic describes the problem found, placed as hclsyntax places its
// own diagnostics.
func (s *sourceScan) diagnostic(filename string, start hcl.Pos) *hcl.Diagnostic {
	d := &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Subject: &hcl.Range{
			Filename: filename,
			Start:    s.pos(start, s.at),
			End:      s.pos(start, s.end),
		},
	}
	switch s.problem {
	case problemSize:
		d.Summary = "Input too large"
		d.Detail = fmt.Sprintf("This text is longer than %d bytes (1 MiB), the most that is read as HCL: parsing more would take seconds and gigabytes. Keep data in dataset files.",
			MaxSourceBytes)
	case problemNesting:
		d.Summary = "Nesting too deep"
		d.Detail = fmt.Sprintf("Here brackets, braces, parentheses, strings, interpolations and template directives are nested more than %d levels deep. The parser recurses once per level, and deeper nesting could exhaust its stack, so it is refused. Nest less deeply, for example by naming parts as locals.",
			s.reported)
	case problemDepth:
		d.Summary = "Expression too deep"
		d.Detail = fmt.Sprintf("By this point the expression chains more than %d operators, function calls, indexes and brackets (each term of a + b + ... counts one). It is evaluated by one recursive call per level, and a deeper chain could exhaust the stack, so it is refused. Split it into smaller expressions, such as locals.",
			s.reported)
	case problemComment:
		d.Summary = "Unterminated comment"
		d.Detail = "This /* comment has no closing */. Close it, or start each line of the comment with #."
	case problemEncoding:
		// hclsyntax's own words for such a byte.
		d.Summary = "Invalid character encoding"
		d.Detail = "All input files must be UTF-8 encoded. Ensure that UTF-8 encoding is selected in your editor."
	}
	return d
}

// pos is the position of byte off of the text, counted from start as
// hclsyntax counts it: lines end at "\n" (a lone "\r" does not end one)
// and columns count grapheme clusters.
func (s *sourceScan) pos(start hcl.Pos, off int) hcl.Pos {
	src := s.src[:off]
	p := hcl.Pos{Byte: start.Byte + off, Line: start.Line, Column: start.Column}
	line := src
	if nl := bytes.LastIndexByte(src, '\n'); nl >= 0 {
		p.Line += bytes.Count(src, []byte("\n"))
		p.Column = 1
		line = src[nl+1:]
	} else if bytes.HasPrefix(line, []byte("\xef\xbb\xbf")) {
		line = line[3:]
	}
	// hcl.RangeScanner counts grapheme clusters as the lexer does, but
	// takes a lone "\r" for a line end: count the pieces between.
	for piece := range bytes.SplitSeq(line, []byte("\r")) {
		sc := hcl.NewRangeScanner(piece, "", func(data []byte, _ bool) (int, []byte, error) {
			return len(data), data, nil
		})
		if sc.Scan() {
			p.Column += sc.Range().End.Column - 1
		}
		p.Column++
	}
	p.Column-- // one "\r" fewer than pieces
	return p
}
