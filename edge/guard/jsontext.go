package guard

import (
	"unicode/utf8"

	"github.com/strait/strait/edge/guard/detect"
)

// Values inside JSON texts: a tool call's arguments, a tool's result, a
// JSON file, and the JSON texts in their strings. A value found there
// lives in one of the text's strings (or numbers), and a placeholder or a
// restored value must stay inside it, escaped for every string it stands
// in: else the text the model or the client reads is no longer JSON.

// jsonFind is what findJSON keeps of a find beside its place: its value
// as it reads, in inspection.reading, and for a find in a number, the
// depth of the JSON text the number stands in (whose quotes make the
// number a string when it is rewritten), else 0.
type jsonFind struct {
	value span
	quote int
}

// quotes are, per depth of a JSON text inside the document read (1: the
// document itself), how the document writes that text's quotes.
var quotes = func() (q [maxInnerDepth + 1][]byte) {
	for d := 1; d <= maxInnerDepth; d++ {
		q[d] = []byte{'"'}
		for range d - 1 {
			q[d] = appendMinimal(nil, q[d])
		}
	}
	return q
}()

// findJSON is the finds in doc, a JSON object or array, made in each of
// its strings, keys and numbers apart, as the model reads them: escapes
// resolved, down through the JSON texts in its strings. A find never
// reaches across a quote, a comma or a brace of the document, which its
// placeholder would cut out; a custom pattern C:\\Users\\\w+ reads the
// C:\Users\bob that the document writes C:\\Users\\bob; a phone number
// after a line break (\n138…) is not part of a word. A find in a number
// takes the whole number, which becomes a string when it is rewritten.
// ins.jfinds holds each find's value and quoting.
func (ins *inspection) findJSON(doc []byte) []detect.Match {
	ins.reading, ins.offsets, ins.finds = ins.reading[:0], ins.offsets[:0], ins.finds[:0]
	ins.leaves(doc, nil, 1)
	return ins.finds
}

// leaves finds in the strings and numbers of src, a JSON text at depth
// (1: the document), whose byte i stands at the document's offset
// offs[i] (i when offs is nil; offs has one more, src's end). A string
// that is itself a JSON text is read the same way one level down.
func (ins *inspection) leaves(src []byte, offs []int32, depth int) {
	for i := 0; i < len(src); {
		c := src[i]
		end := i + 1
		switch {
		case c == '"':
			end = stringEnd(src, i)
			a := len(ins.reading)
			for r := i + 1; r < end-1; {
				n := 1
				if src[r] == '\\' {
					ins.reading, n = appendUnescaped(ins.reading, src, r)
				} else {
					ins.reading = append(ins.reading, src[r])
				}
				for len(ins.offsets) < len(ins.reading) {
					ins.offsets = append(ins.offsets, offsetAt(offs, r))
				}
				r += n
			}
			b := len(ins.reading)
			// A byte past the value, at the closing quote: where a find
			// that ends with the value ends in the document.
			ins.reading, ins.offsets = append(ins.reading, 0), append(ins.offsets, offsetAt(offs, end-1))
			if value := ins.reading[a:b]; depth < maxInnerDepth && jsonText(value) {
				ins.leaves(value, ins.offsets[a:b+1], depth+1)
			} else {
				ins.leaf(a, b, 0)
			}
		case c == '-' || c >= '0' && c <= '9':
			for end < len(src) && !endsLiteral(src[end]) {
				end++
			}
			a := len(ins.reading)
			for r := i; r <= end; r++ {
				ins.offsets = append(ins.offsets, offsetAt(offs, r))
			}
			ins.reading = append(append(ins.reading, src[i:end]...), 0)
			ins.leaf(a, a+end-i, depth)
		}
		i = end
	}
}

// offsetAt is the document's offset of a JSON text's byte i (leaves).
func offsetAt(offs []int32, i int) int32 {
	if offs == nil {
		return int32(i)
	}
	return offs[i]
}

// leaf adds the finds in ins.reading[a:b], a string's value or, when
// quote is set, a number in a JSON text at that depth.
func (ins *inspection) leaf(a, b, quote int) {
	ins.seg = ins.p.find(ins.seg[:0], ins.reading[a:b])
	for _, f := range ins.seg {
		v := span{a + f.Start, a + f.End}
		if quote > 0 {
			v = span{a, b} // the whole number
		}
		f.Start, f.End = int(ins.offsets[v.start]), int(ins.offsets[v.end])
		if n := len(ins.finds); n > 0 && ins.finds[n-1].End > f.Start {
			continue // a second find in one number: the number is taken
		}
		ins.finds = append(ins.finds, f)
		ins.jfinds = append(ins.jfinds, jsonFind{v, quote})
	}
}

// jsonLexer follows a JSON text as it is written, whole or piece by
// piece (a tool call's arguments streamed), far enough to tell how many
// strings deep each byte stands, down through the JSON texts in its
// strings (arguments holding a JSON string): a value restored there is
// escaped once per string it stands in. The zero value is at the start
// of a text.
type jsonLexer struct {
	levels [maxInnerDepth]lexLevel
	// strings counts the strings opened and closed at every level, for
	// mark.
	strings int
}

// lexLevel is the lexer's state in a JSON text at one depth: level 0 is
// the text itself, level k+1 the value of the string level k is in, when
// that value is a JSON text.
type lexLevel struct {
	inString bool
	started  bool // in a string, a byte other than space was read
	json     bool // the string's value is a JSON text, followed a level down
	esc      int  // 1 after a backslash, 2 to 5 in a \u escape's digits
	hex      rune
}

// write follows s.
func (l *jsonLexer) write(s string) {
	if l == nil {
		return
	}
	for i := 0; i < len(s); i++ {
		l.byteAt(0, s[i])
	}
}

// depth is the number of strings the next byte stands in.
func (l *jsonLexer) depth() int {
	for k := range l.levels {
		if lv := &l.levels[k]; !lv.inString || !lv.json {
			if lv.inString {
				return k + 1
			}
			return k
		}
	}
	return len(l.levels)
}

// mark tells where the next byte stands: in which string (two marks are
// equal when no string began or ended between them), and whether it is
// within the value of a string that is not a JSON text, not inside an
// escape.
func (l *jsonLexer) mark() (int, bool) {
	for k := range l.levels {
		lv := &l.levels[k]
		if !lv.inString || lv.esc != 0 {
			return l.strings, false
		}
		if !lv.json {
			return l.strings, true
		}
	}
	return l.strings, false
}

// byteAt follows c at level k.
func (l *jsonLexer) byteAt(k int, c byte) {
	lv := &l.levels[k]
	switch {
	case !lv.inString:
		// A backslash outside a string (a value restored, escaped, where
		// the model wrote a bare placeholder) escapes the next byte, so
		// that the text restored reads as the text written.
		switch {
		case lv.esc == 1:
			lv.esc = 0
		case c == '\\':
			lv.esc = 1
		case c == '"':
			*lv = lexLevel{inString: true}
			l.strings++
		}
	case lv.esc == 1 && c == 'u':
		lv.esc, lv.hex = 2, 0
	case lv.esc == 1:
		lv.esc = 0
		switch c { // only quotes, backslashes and spaces matter below
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'b', 'f':
			c = '\b'
		}
		l.decoded(k, rune(c))
	case lv.esc > 1:
		lv.hex, lv.esc = lv.hex<<4|max(0, hexValue(c)), lv.esc+1
		if lv.esc == 6 {
			lv.esc = 0
			l.decoded(k, lv.hex)
		}
	case c == '\\':
		lv.esc = 1
	case c == '"':
		lv.inString = false
		l.strings++
	default:
		l.decoded(k, rune(c))
	}
}

// decoded follows r, a character of the value of the string level k is
// in: its first one not space says whether the value is a JSON text.
func (l *jsonLexer) decoded(k int, r rune) {
	lv := &l.levels[k]
	if !lv.started {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return
		}
		lv.started = true
		if lv.json = (r == '{' || r == '[') && k+1 < len(l.levels); lv.json {
			l.levels[k+1] = lexLevel{}
		}
	}
	if !lv.json {
		return
	}
	if r >= utf8.RuneSelf {
		r = 'a' // not special at any level
	}
	l.byteAt(k+1, byte(r))
}
