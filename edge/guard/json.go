package guard

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/strait/strait/edge/guard/internal/chars"
)

// errBadJSON: the body is not one JSON value.
var errBadJSON = errors.New("not valid JSON")

// span is a string literal in a JSON document, doc[start:end] including
// its quotes, or a number (walker.numbers).
type span struct {
	start, end int
}

// walker visits the string values of a JSON document with their path, so
// that only text fields are read and rewritten and every other byte stays
// as the client sent it. It is a scanner, not a decoder: nothing is built
// but the path.
type walker struct {
	doc []byte
	pos int
	// path holds the object keys (slices of doc, so walking allocates
	// nothing) and "#" for array elements.
	path [][]byte
	// starts holds, per path level, the offset of the object or array at
	// that level.
	starts []int
	// index holds, per path level, the array element's position or, when
	// the element is an object with an "index" member, that member
	// (streamed deltas name their choice or tool call this way, wherever
	// the member stands in the object and wherever the object stands in
	// its array); for an object that is not an array element, its
	// "index" member (Anthropic's content block). Kept only when channels
	// is set: requests are not streams.
	index    []string
	channels bool
	// numbers: visit numbers too, not only strings (a request's: a
	// number in a tool's input is text the model reads).
	numbers bool
	visit   func(w *walker, s span) error
	// keys, when set, is called for every key, with the key last on the
	// path.
	keys func(w *walker, s span) error
	// meta is what a first pass found of each object with an index or a
	// finish reason, by the object's offset (see walk); collect: this is
	// that pass.
	meta    map[int]objMeta
	collect bool
	// finishing counts the objects around the current string that carry
	// a finish reason; ends are the channel prefixes of those met so far.
	finishing int
	ends      []string
}

// objMeta is what walk's first pass keeps of an object: its "index"
// member, and whether it carries a finish reason (an OpenAI choice's, a
// Gemini candidate's): the end of that choice's text.
type objMeta struct {
	index  string
	finish bool
}

// anyElement is the path entry of an array element.
var anyElement = []byte("#")

// walk scans doc, calling visit for every string value, with the channel
// of each (walker.channel) and whether a finish reason ends it
// (walker.finishing), and keys, when not nil, for every object key. A
// first pass reads each object's index and finish reason, which may come
// after its text. It returns the channel prefixes of the objects with a
// finish reason.
func walk(doc []byte, visit, keys func(w *walker, s span) error) ([]string, error) {
	w := &walker{doc: doc, visit: func(*walker, span) error { return nil }, path: make([][]byte, 0, 8), index: make([]string, 0, 8),
		channels: true, collect: true, meta: map[int]objMeta{}}
	if err := w.run(); err != nil {
		return nil, err
	}
	w.visit, w.keys, w.collect = visit, keys, false
	err := w.run()
	return w.ends, err
}

// walkPlain scans doc, calling visit for every string value with its
// path only, and keys, when not nil, for every object key.
func walkPlain(doc []byte, visit, keys func(w *walker, s span) error) error {
	w := &walker{doc: doc, visit: visit, keys: keys, path: make([][]byte, 0, 8)}
	return w.run()
}

// run walks w.doc from its start, reusing w's path.
func (w *walker) run() error {
	w.pos, w.path, w.starts, w.index = 0, w.path[:0], w.starts[:0], w.index[:0]
	w.space()
	if err := w.value(); err != nil {
		return err
	}
	w.space()
	if w.pos != len(w.doc) {
		return errBadJSON
	}
	return nil
}

func (w *walker) space() {
	for w.pos < len(w.doc) {
		switch w.doc[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *walker) value() error {
	if w.pos >= len(w.doc) {
		return errBadJSON
	}
	switch c := w.doc[w.pos]; {
	case c == '{':
		return w.object()
	case c == '[':
		return w.array()
	case c == '"':
		start := w.pos
		if err := w.skipString(); err != nil {
			return err
		}
		return w.visit(w, span{start, w.pos})
	default:
		start := w.pos
		for w.pos < len(w.doc) && !endsLiteral(w.doc[w.pos]) {
			w.pos++
		}
		if !json.Valid(w.doc[start:w.pos]) {
			return errBadJSON
		}
		if c := w.doc[start]; w.numbers && (c == '-' || c >= '0' && c <= '9') {
			return w.visit(w, span{start, w.pos})
		}
		return nil
	}
}

func endsLiteral(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// skipString moves past a string literal. The closing quote is found with
// IndexByte (vectorised), then checked for an escaping backslash run.
func (w *walker) skipString() error {
	from := w.pos + 1
	for {
		i := bytes.IndexByte(w.doc[from:], '"')
		if i < 0 {
			return errBadJSON
		}
		q := from + i
		bs := 0
		for k := q - 1; k > w.pos && w.doc[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			w.pos = q + 1
			return nil
		}
		from = q + 1
	}
}

func (w *walker) object() error {
	start := w.pos
	w.pos++
	w.space()
	if w.pos < len(w.doc) && w.doc[w.pos] == '}' {
		w.pos++
		return nil
	}
	level := len(w.path)
	w.path, w.starts = append(w.path, nil), append(w.starts, start)
	var m objMeta
	if w.channels {
		w.index = append(w.index, "")
		if !w.collect {
			m = w.enter(start, level)
		}
	}
	for {
		w.space()
		if w.pos >= len(w.doc) || w.doc[w.pos] != '"' {
			return errBadJSON
		}
		ks := w.pos
		if err := w.skipString(); err != nil {
			return err
		}
		key := w.doc[ks+1 : w.pos-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			k, err := decodeString(w.doc[ks:w.pos])
			if err != nil {
				return err
			}
			w.path[level] = []byte(k)
		} else {
			w.path[level] = key
		}
		if w.keys != nil {
			if err := w.keys(w, span{ks, w.pos}); err != nil {
				return err
			}
		}
		w.space()
		if w.pos >= len(w.doc) || w.doc[w.pos] != ':' {
			return errBadJSON
		}
		w.pos++
		w.space()
		vs := w.pos
		if err := w.value(); err != nil {
			return err
		}
		if w.collect {
			switch string(w.path[level]) {
			case "index":
				m.index = string(w.doc[vs:w.pos])
			case "finish_reason", "finishReason":
				m.finish = w.pos-vs > 2 && w.doc[vs] == '"' // not null, not ""
			}
		}
		w.space()
		if w.pos < len(w.doc) && w.doc[w.pos] == ',' {
			w.pos++
			continue
		}
		if w.pos < len(w.doc) && w.doc[w.pos] == '}' {
			w.pos++
			switch {
			case w.collect && m != (objMeta{}):
				w.meta[start] = m
			case m.finish:
				w.finishing--
			}
			w.up(level)
			return nil
		}
		return errBadJSON
	}
}

func (w *walker) array() error {
	start := w.pos
	w.pos++
	w.space()
	if w.pos < len(w.doc) && w.doc[w.pos] == ']' {
		w.pos++
		return nil
	}
	level := len(w.path)
	w.path, w.starts = append(w.path, anyElement), append(w.starts, start)
	if w.channels {
		w.index = append(w.index, "")
	}
	for n := 0; ; n++ {
		if w.channels {
			w.index[level] = strconv.Itoa(n)
		}
		w.space()
		if err := w.value(); err != nil {
			return err
		}
		w.space()
		if w.pos < len(w.doc) && w.doc[w.pos] == ',' {
			w.pos++
			continue
		}
		if w.pos < len(w.doc) && w.doc[w.pos] == ']' {
			w.pos++
			w.up(level)
			return nil
		}
		return errBadJSON
	}
}

// enter applies what the first pass found of the object at start, at
// level: its index names its place in the channel, and a finish reason
// ends the text within it.
func (w *walker) enter(start, level int) objMeta {
	m := w.meta[start]
	if m.index != "" {
		if level > 0 && string(w.path[level-1]) == "#" {
			w.index[level-1] = m.index // the element's own index, not its position
		} else {
			w.index[level] = m.index
		}
	}
	if m.finish {
		w.finishing++
		w.ends = append(w.ends, w.prefix(level))
	}
	return m
}

// up leaves the object or array at level.
func (w *walker) up(level int) {
	w.path, w.starts = w.path[:level], w.starts[:level]
	if w.channels {
		w.index = w.index[:level]
	}
}

// channel names the place of the current string across the events of a
// stream: its path, with array positions and the "index" members of the
// objects on the way (choices[].index, tool_calls[].index, Anthropic's
// content block index).
func (w *walker) channel() string { return w.prefix(len(w.path)) }

// prefix is the channel of the current place's first levels: what the
// channels of every string in the object at that level begin with.
func (w *walker) prefix(levels int) string {
	var b []byte
	for k, p := range w.path[:levels] {
		b = append(b, p...)
		if w.index[k] != "" {
			b = append(b, '=')
			b = append(b, w.index[k]...)
		}
		b = append(b, '.')
	}
	return string(b)
}

// decodeString decodes a JSON string literal (with its quotes).
func decodeString(lit []byte) (string, error) {
	body := lit[1 : len(lit)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), nil
	}
	b, err := appendUnquoted(make([]byte, 0, len(body)), lit)
	return string(b), err
}

// unquote is the value of the JSON string literal lit (with its quotes):
// lit's own bytes when it has no escapes (the common case: nothing is
// copied), else decoded into buf (returned for reuse).
func unquote(buf, lit []byte) (text, newBuf []byte, err error) {
	body := lit[1 : len(lit)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return body, buf, nil
	}
	buf, err = appendUnquoted(buf[:0], lit)
	return buf, buf, err
}

// appendUnquoted appends the value of the JSON string literal lit (with
// its quotes) to dst, as encoding/json decodes it: escapes resolved, a
// lone surrogate and invalid UTF-8 become U+FFFD, and a control character
// or an unknown escape is an error. It exists so that a text with a \n in
// it is not decoded by reflection into a new string.
func appendUnquoted(dst, lit []byte) ([]byte, error) {
	s := lit[1 : len(lit)-1]
	for r := 0; r < len(s); {
		switch c := s[r]; {
		case c == '\\':
			var n int
			if dst, n = appendUnescaped(dst, s, r); n == 0 {
				return dst, errBadJSON
			}
			r += n
		case c == '"' || c < ' ':
			return dst, errBadJSON
		case c < utf8.RuneSelf:
			n := r + 1 // a run of plain bytes at once
			for n < len(s) && s[n] >= ' ' && s[n] < utf8.RuneSelf && s[n] != '\\' && s[n] != '"' {
				n++
			}
			dst = append(dst, s[r:n]...)
			r = n
		default:
			rr, size := utf8.DecodeRune(s[r:])
			if rr == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, rr)
			} else {
				dst = append(dst, s[r:r+size]...)
			}
			r += size
		}
	}
	return dst, nil
}

// appendUnescaped appends what the escape at s[r] (a backslash) stands
// for, as encoding/json reads it, and returns its length in s: 0 when it
// is no escape.
func appendUnescaped(dst, s []byte, r int) ([]byte, int) {
	if r+1 >= len(s) {
		return dst, 0
	}
	switch e := s[r+1]; e {
	case '"', '\\', '/':
		return append(dst, e), 2
	case 'b':
		return append(dst, '\b'), 2
	case 'f':
		return append(dst, '\f'), 2
	case 'n':
		return append(dst, '\n'), 2
	case 'r':
		return append(dst, '\r'), 2
	case 't':
		return append(dst, '\t'), 2
	case 'u':
		rr := getu4(s[r:])
		if rr < 0 {
			return dst, 0
		}
		if utf16.IsSurrogate(rr) {
			if dec := utf16.DecodeRune(rr, getu4(s[r+6:])); dec != unicode.ReplacementChar {
				return utf8.AppendRune(dst, dec), 12 // a valid pair
			}
			rr = unicode.ReplacementChar
		}
		return utf8.AppendRune(dst, rr), 6
	}
	return dst, 0
}

// getu4 reads \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		v := hexValue(c)
		if v < 0 {
			return -1
		}
		r = r*16 + v
	}
	return r
}

// hexValue is the value of the hex digit c, or -1.
func hexValue(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// appendString appends s as a JSON string literal. Unlike encoding/json it
// leaves <, > and & as they are: the documents are not HTML.
func appendString[T chars.Text](dst []byte, s T) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s, chars.Valid(s))
	return append(dst, '"')
}

// plain marks the bytes copied as they are inside a JSON string, in valid
// UTF-8 (plainValid: all but controls, quote, backslash, and 0xE2, which
// may start U+2028 or U+2029) or not (plainASCII: then every byte from
// 0x80 on is decoded, and invalid ones become U+FFFD).
var plainValid, plainASCII = func() (v, a [256]bool) {
	for c := 0x20; c < 256; c++ {
		v[c] = c != '"' && c != '\\' && c != 0xE2
		a[c] = v[c] && c < utf8.RuneSelf
	}
	return v, a
}()

// appendEscaped appends the body of a JSON string literal holding s; valid
// says whether s is valid UTF-8. Runs of bytes that need no escape are
// copied whole. It is rune by rune, so escaping the pieces of a text one
// after the other gives what escaping the whole would.
func appendEscaped[T chars.Text](dst []byte, s T, valid bool) []byte {
	const hex = "0123456789abcdef"
	plain := &plainASCII
	if valid {
		plain = &plainValid
	}
	run := 0 // start of the bytes not yet copied
	for i := 0; i < len(s); {
		for i < len(s) && plain[s[i]] {
			i++
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			if valid && !(c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&0xFE == 0xA8) {
				i++ // copied with its run; only U+2028 and U+2029 are escaped
				continue
			}
			r, size := chars.DecodeRune(s, i)
			dst = append(dst, s[run:i]...)
			switch {
			case r == utf8.RuneError && size == 1:
				dst = append(dst, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				dst = append(dst, `\u202`...)
				dst = append(dst, hex[r&0xF])
			default:
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			run = i
			continue
		}
		dst = appendEscapedByte(append(dst, s[run:i]...), c)
		i++
		run = i
	}
	return append(dst, s[run:]...)
}

// appendEscapedByte appends the escape of c, a quote, a backslash or a
// control character, in its shortest form.
func appendEscapedByte(dst []byte, c byte) []byte {
	const hex = "0123456789abcdef"
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, `\b`...)
	case '\f':
		return append(dst, `\f`...)
	case '\n':
		return append(dst, `\n`...)
	case '\r':
		return append(dst, `\r`...)
	case '\t':
		return append(dst, `\t`...)
	}
	return append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
}

// edit replaces a span of a document.
type edit struct {
	span
	text string // the new string value, encoded by apply
}

// apply returns doc with the edits (sorted, not overlapping) applied.
func apply(doc []byte, edits []edit) []byte {
	if len(edits) == 0 {
		return doc
	}
	out := make([]byte, 0, len(doc)+len(doc)/8)
	prev := 0
	for _, e := range edits {
		out = append(out, doc[prev:e.start]...)
		out = appendString(out, e.text)
		prev = e.end
	}
	return append(out, doc[prev:]...)
}

// maxInnerDepth bounds how deep JSON texts nested in JSON strings are
// unescaped for inspection (a tool call's arguments holding a JSON string
// that holds JSON, and so on).
const maxInnerDepth = 4

// jsonView is how a text that is itself a JSON document with escapes (a
// tool call's arguments, a tool's result) is inspected: the same document
// with every escape a reader resolves resolved (\u5f20, \/), down through
// JSON texts in its strings, and only the quote, the backslash and
// control characters left escaped, so that it stays the JSON it was. A
// model reads \u5f20 as 张: a detector or word list reading the escapes
// would let such text across unread. It returns nil when text is not a
// JSON object or array holding a backslash: the text is then its own view.
// The view is never longer than text.
func jsonView(dst, text []byte) []byte {
	if !innerJSON(text) {
		return nil
	}
	return appendView(dst, text, 0)
}

// innerJSON reports whether text is a JSON object or array with escapes.
func innerJSON(text []byte) bool {
	return bytes.IndexByte(text, '\\') >= 0 && jsonText(text)
}

// jsonText reports whether text is a JSON object or array.
func jsonText[T chars.Text](text T) bool {
	i := 0
	for i < len(text) && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n') {
		i++
	}
	return i < len(text) && (text[i] == '{' || text[i] == '[') && json.Valid([]byte(text[i:]))
}

// appendView appends the view of the valid JSON document doc (jsonView).
func appendView(dst, doc []byte, depth int) []byte {
	for i := 0; i < len(doc); {
		if doc[i] != '"' {
			j := bytes.IndexByte(doc[i:], '"')
			if j < 0 {
				return append(dst, doc[i:]...)
			}
			dst = append(dst, doc[i:i+j]...)
			i += j
			continue
		}
		end := stringEnd(doc, i)
		lit := doc[i:end]
		i = end
		if bytes.IndexByte(lit, '\\') < 0 {
			dst = append(dst, lit...)
			continue
		}
		s, _ := appendUnquoted(nil, lit) // doc is valid JSON
		if depth+1 < maxInnerDepth && innerJSON(s) {
			s = appendView(nil, s, depth+1)
		}
		dst = appendMinimal(append(dst, '"'), s)
		dst = append(dst, '"')
	}
	return dst
}

// stringEnd is the end of the string literal starting at doc[start] (after
// its closing quote), or len(doc).
func stringEnd(doc []byte, start int) int {
	for k := start + 1; k < len(doc); k++ {
		switch doc[k] {
		case '\\':
			k++
		case '"':
			return k + 1
		}
	}
	return len(doc)
}

// appendMinimal appends s (valid UTF-8) escaped as the body of a JSON
// string with only what JSON requires escaped, each escape no longer than
// the one it stands for in the view (jsonView), and the quote, the
// backslash and controls of a restored value in a JSON text.
func appendMinimal[T chars.Text](dst []byte, s T) []byte {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c != '"' && c != '\\' {
			continue
		}
		dst = appendEscapedByte(append(dst, s[run:i]...), c)
		run = i + 1
	}
	return append(dst, s[run:]...)
}

// base64Source reports whether the object at doc[start], a document's or
// an image's source, says its data is base64: it has a "type" member and
// every one it has is "base64" as such. Its data is then a PDF's or an
// image's bytes, not text. Any other type (a plain-text source's "text"),
// none, or one spelled with escapes, and the data is read as text: a
// client must not hide text behind a type the provider (or the relay's
// converter, which reads "TYPE" as "type") reads otherwise.
// It looks ahead of the walk, which has not yet checked the object.
func base64Source(doc []byte, start int) bool {
	found := false
	complete := members(doc, start, func(key, val []byte) bool {
		if keyIs("type", key) {
			found = string(val) == `"base64"`
			return found
		}
		return true
	})
	return complete && found
}

// members calls f with each member's key (unquoted) and value (as it
// stands) of the object at doc[start], until f returns false. It reports
// whether it reached the object's end (or a fault the walk will meet)
// without f stopping it. It looks ahead of the walk, which has not yet
// checked the object.
func members(doc []byte, start int, f func(key, val []byte) bool) bool {
	for pos := start + 1; ; {
		pos = skipSpace(doc, pos)
		if pos >= len(doc) || doc[pos] != '"' {
			return true
		}
		end := stringEnd(doc, pos)
		key := doc[pos:end]
		if bytes.IndexByte(key, '\\') >= 0 && end-pos >= 2 {
			if k, err := decodeString(key); err == nil {
				key = []byte(`"` + k + `"`)
			}
		}
		pos = skipSpace(doc, end)
		if pos >= len(doc) || doc[pos] != ':' {
			return false
		}
		pos = skipSpace(doc, pos+1)
		end = valueEnd(doc, pos)
		if len(key) >= 2 && !f(key[1:len(key)-1], doc[pos:end]) {
			return false
		}
		if pos = skipSpace(doc, end); pos < len(doc) && doc[pos] == ',' {
			pos++
		}
	}
}

func skipSpace(doc []byte, pos int) int {
	for pos < len(doc) && (doc[pos] == ' ' || doc[pos] == '\t' || doc[pos] == '\n' || doc[pos] == '\r') {
		pos++
	}
	return pos
}

// valueEnd is the end of the JSON value at doc[pos], not checked.
func valueEnd(doc []byte, pos int) int {
	if pos >= len(doc) {
		return pos
	}
	switch doc[pos] {
	case '"':
		return stringEnd(doc, pos)
	case '{', '[':
		depth := 0
		for k := pos; k < len(doc); k++ {
			switch doc[k] {
			case '"':
				k = stringEnd(doc, k) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return k + 1
				}
			}
		}
		return len(doc)
	}
	for pos < len(doc) && !endsLiteral(doc[pos]) {
		pos++
	}
	return pos
}
