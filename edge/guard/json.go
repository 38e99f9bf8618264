package guard

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// errBadJSON: the body is not one JSON value.
var errBadJSON = errors.New("not valid JSON")

// span is a string literal in a JSON document: doc[start:end] including
// its quotes; channel names where it sits (see walker.channel).
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
	// index holds, per path level, the "index" member of the enclosing
	// object if one came before (streamed deltas name their choice, tool
	// call or content block this way).
	index []string
	visit func(w *walker, s span) error
}

// anyElement is the path entry of an array element.
var anyElement = []byte("#")

// walk scans doc, calling visit for every string value (not keys).
func walk(doc []byte, visit func(w *walker, s span) error) error {
	w := &walker{doc: doc, visit: visit, path: make([][]byte, 0, 8), index: make([]string, 0, 8)}
	w.space()
	if err := w.value(); err != nil {
		return err
	}
	w.space()
	if w.pos != len(doc) {
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
	w.pos++
	w.space()
	if w.pos < len(w.doc) && w.doc[w.pos] == '}' {
		w.pos++
		return nil
	}
	level := len(w.path)
	w.path = append(w.path, nil)
	w.index = append(w.index, "")
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
		if string(w.path[level]) == "index" {
			w.index[level] = string(w.doc[vs:w.pos])
		}
		w.space()
		if w.pos < len(w.doc) && w.doc[w.pos] == ',' {
			w.pos++
			continue
		}
		if w.pos < len(w.doc) && w.doc[w.pos] == '}' {
			w.pos++
			w.path, w.index = w.path[:level], w.index[:level]
			return nil
		}
		return errBadJSON
	}
}

func (w *walker) array() error {
	w.pos++
	w.space()
	if w.pos < len(w.doc) && w.doc[w.pos] == ']' {
		w.pos++
		return nil
	}
	level := len(w.path)
	w.path = append(w.path, anyElement)
	w.index = append(w.index, "")
	for n := 0; ; n++ {
		w.index[level] = strconv.Itoa(n)
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
			w.path, w.index = w.path[:level], w.index[:level]
			return nil
		}
		return errBadJSON
	}
}

// channel names the place of the current string across the events of a
// stream: its path, with array positions and the "index" members of the
// objects on the way (choices[].index, tool_calls[].index, Anthropic's
// content block index).
func (w *walker) channel() string {
	var b []byte
	for k, p := range w.path {
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
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", errBadJSON
	}
	return s, nil
}

// appendString appends s as a JSON string literal. Unlike encoding/json it
// leaves <, > and & as they are: the documents are not HTML. Runs of bytes
// that need no escape are copied whole.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	valid := utf8.ValidString(s)
	dst = append(dst, '"')
	run := 0 // start of the bytes not yet copied
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			if valid && !(c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&0xFE == 0xA8) {
				i++ // copied with its run; only U+2028 and U+2029 are escaped
				continue
			}
			r, size := utf8.DecodeRuneInString(s[i:])
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
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[run:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		i++
		run = i
	}
	dst = append(dst, s[run:]...)
	return append(dst, '"')
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
