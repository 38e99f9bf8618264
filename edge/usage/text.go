package usage

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// Most events of a stream carry a few characters of text and no usage, and
// the edge meters every one of them: decoding each into message with
// encoding/json cost more of the edge's CPU than writing it to the client
// did (a lab profile at 256 streams: 17–24 %). fastText reads only what
// deliveredText needs, with no allocation, and gives up (ok false) on
// anything that could carry usage or that the decoder might read otherwise,
// so the answer is always the one observe would reach; FuzzFastText checks
// that against the decoder.

// textPath says where in a message the scanner is, so it counts exactly the
// strings message.deliveredText counts.
type textPath uint8

const (
	pathOther       textPath = iota // nothing below is counted
	pathRoot                        // the message object
	pathChoices                     // choices: [...]
	pathChoice                      // choices[i]
	pathChoiceDelta                 // choices[i].delta: content, reasoning_content
	pathCandidates                  // candidates: [...]
	pathCandidate                   // candidates[i]
	pathCandContent                 // candidates[i].content
	pathParts                       // candidates[i].content.parts: [...]
	pathPart                        // ...parts[j]: text
	pathDelta                       // delta (Anthropic's object): text, thinking, partial_json
)

// fastText returns the length of the generated text in data, a JSON
// message, as deliveredText would count it for a message without usage.
// ok is false when data needs the full decode: it may carry usage
// (usage, usageMetadata, message or response not null) or it has a shape the scanner
// does not follow (a key with an escape or in another case than the field's,
// a counted field repeated or of an unexpected type).
func fastText(data []byte) (n int, ok bool) {
	if !json.Valid(data) {
		return 0, true // json.Unmarshal fails on it too: nothing is counted
	}
	s := textScanner{b: data}
	n = s.value(pathRoot)
	return n, !s.giveUp
}

// textScanner walks valid JSON (fastText checked it first).
type textScanner struct {
	b      []byte
	i      int
	giveUp bool
}

func (s *textScanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// str consumes a string and returns its contents (between the quotes) and
// whether it has an escape.
func (s *textScanner) str() (raw []byte, escaped bool) {
	start := s.i + 1
	for s.i = start; s.b[s.i] != '"'; s.i++ {
		if s.b[s.i] == '\\' {
			escaped = true
			s.i++
		}
	}
	s.i++
	return s.b[start : s.i-1], escaped
}

// value consumes one value at path p and returns the text counted in it.
func (s *textScanner) value(p textPath) int {
	s.ws()
	switch s.b[s.i] {
	case '{':
		return s.object(p)
	case '[':
		return s.array(p)
	case '"':
		s.str()
	default: // number, true, false, null
		for s.i < len(s.b) && !endsLiteral(s.b[s.i]) {
			s.i++
		}
	}
	return 0
}

// endsLiteral reports whether c ends a number, true, false or null.
func endsLiteral(c byte) bool {
	switch c {
	case ',', ']', '}', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

func (s *textScanner) array(p textPath) int {
	elem := pathOther
	switch p {
	case pathChoices:
		elem = pathChoice
	case pathCandidates:
		elem = pathCandidate
	case pathParts:
		elem = pathPart
	}
	n := 0
	s.i++ // [
	for !s.giveUp {
		s.ws()
		if s.b[s.i] == ']' {
			s.i++
			return n
		}
		if elem != pathOther && !s.isObjectOrNull() {
			s.giveUp = true
			return n
		}
		n += s.value(elem)
		s.ws()
		if s.b[s.i] == ',' {
			s.i++
		}
	}
	return n
}

func (s *textScanner) object(p textPath) int {
	n := 0
	var seen uint16 // the fields of this object that matter, by bit
	s.i++           // {
	for !s.giveUp {
		s.ws()
		if s.b[s.i] == '}' {
			s.i++
			return n
		}
		key, escaped := s.str()
		s.ws()
		s.i++ // :
		s.ws()
		if escaped {
			s.giveUp = true
			return n
		}
		bit, child, count := s.field(p, key)
		if bit != 0 {
			if seen&bit != 0 {
				s.giveUp = true // a repeated field: the decoder's merge is not ours
				return n
			}
			seen |= bit
		}
		if count {
			n += s.text()
		} else {
			n += s.value(child)
		}
		s.ws()
		if s.b[s.i] == ',' {
			s.i++
		}
	}
	return n
}

// fieldRule is one field of message the scanner follows at some path.
type fieldRule struct {
	name  string
	child textPath // the path of its value
	count bool     // its value is counted text
}

// fieldRules are the fields deliveredText reads, by the path of the object
// that has them; the index of a rule is its bit in object's seen.
var fieldRules = [...][]fieldRule{
	pathRoot: {{"choices", pathChoices, false}, {"candidates", pathCandidates, false},
		{"delta", pathDelta, false}, {"type", pathOther, false}},
	pathChoice:      {{"delta", pathChoiceDelta, false}},
	pathChoiceDelta: {{"content", pathOther, true}, {"reasoning_content", pathOther, true}},
	pathCandidate:   {{"content", pathCandContent, false}, {"finishReason", pathOther, false}},
	pathCandContent: {{"parts", pathParts, false}},
	pathPart:        {{"text", pathOther, true}},
	pathDelta:       {{"text", pathOther, true}, {"thinking", pathOther, true}, {"partial_json", pathOther, true}},
	pathOther:       nil,
}

// usageFields are the message fields that may hold usage: a message where
// one is not null is decoded in full.
var usageFields = [...]string{"usage", "usageMetadata", "message", "response"}

// field classifies key in an object at path p: its bit among the fields
// that matter (0: none), the path of its value, and whether its value is
// counted text. A key that only matches a field case-insensitively (as
// encoding/json would match it), one that may hold usage, or a value of
// another type than message declares stops the scan.
func (s *textScanner) field(p textPath, key []byte) (bit uint16, child textPath, count bool) {
	if p == pathRoot {
		for _, k := range usageFields {
			if bytes.EqualFold(key, []byte(k)) {
				// null leaves the field as it was (OpenAI's chunks under
				// include_usage end with "usage":null); anything else may
				// be usage, which observe reads.
				s.giveUp = s.b[s.i] != 'n'
				return 0, pathOther, false
			}
		}
	}
	if int(p) >= len(fieldRules) {
		return 0, pathOther, false
	}
	for i, r := range fieldRules[p] {
		if !bytes.EqualFold(key, []byte(r.name)) {
			continue
		}
		if string(key) != r.name || !s.fits(p, r) {
			s.giveUp = true
			return 0, pathOther, false
		}
		if p == pathRoot && r.name == "delta" && s.b[s.i] == '"' {
			return 1 << i, pathOther, true // the Responses API's text delta
		}
		return 1 << i, r.child, r.count
	}
	return 0, pathOther, false
}

// fits reports whether the value ahead has the type message declares for
// field r (null fits every one): with another, json.Unmarshal fails and
// counts nothing, which the full decode must decide, not the scanner.
func (s *textScanner) fits(p textPath, r fieldRule) bool {
	c := s.b[s.i]
	switch {
	case c == 'n':
		return true
	case p == pathRoot && r.name == "delta":
		return true // json.RawMessage: deliveredText reads a string or an object, ignores the rest
	case r.count, r.name == "type", r.name == "finishReason":
		return c == '"'
	case r.child == pathChoices, r.child == pathCandidates, r.child == pathParts:
		return c == '['
	}
	return c == '{'
}

// isObjectOrNull reports whether the value ahead is an object or null, as
// the elements of choices, candidates and parts must be.
func (s *textScanner) isObjectOrNull() bool {
	return s.b[s.i] == '{' || s.b[s.i] == 'n'
}

// text consumes a counted value and returns its decoded length: a string,
// or null (no text).
func (s *textScanner) text() int {
	if s.b[s.i] == 'n' {
		s.i += len("null")
		return 0
	}
	start := s.i
	raw, escaped := s.str()
	if !escaped && utf8.Valid(raw) {
		return len(raw)
	}
	var v string // the decoder's own reading of escapes and invalid UTF-8 (U+FFFD)
	if json.Unmarshal(s.b[start:s.i], &v) != nil {
		s.giveUp = true
		return 0
	}
	return len(v)
}
