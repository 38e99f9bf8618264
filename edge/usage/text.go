package usage

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/strait/strait/proto/llmapi"
)

// Most events of a stream carry a few characters of text and no usage, and
// the edge meters every one of them: decoding each into message with
// encoding/json cost more of the edge's CPU than writing it to the client
// did (a lab profile at 256 streams: 17–24 %). fastMessage reads only what
// deliveredText needs, with no allocation, hands back a top-level usage
// object for the meter to decode alone, and gives up (ok false) on anything
// else that could carry usage or that the decoder might read otherwise, so
// the answer is always the one the full decode would reach; FuzzFastText
// checks that against the decoder.

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

// The last event of a stream and every whole JSON body (a unary answer)
// carry a top-level "usage" object, OpenAI's and Anthropic's place for it.
// Decoding such a body whole with encoding/json was the largest single
// cost of the edge's policy path at the lab's closed-loop rate (5–6 % of
// the edge's CPU, issue 13): fastMessage also hands back that object's
// bytes, and "type", and the meter decodes only them. The other usage
// fields (usageMetadata, message, response) still send the message to the
// full decode.

// scanned is what fastMessage read from a message.
type scanned struct {
	text  int    // bytes of generated text, as deliveredText counts them
	usage []byte // the top-level "usage" value when it is an object; nil otherwise
	typ   []byte // the top-level "type" value when it is a string (with its quotes); nil otherwise
}

// fastMessage reads a JSON message as decode would: the text deliveredText
// counts, and the raw "usage" and "type" values for the meter to decode.
// ok is false when data needs the full decode: it may carry usage elsewhere
// (usageMetadata, message or response not null, or a "usage" key in another
// case, repeated, or not an object) or it has a shape the scanner does not
// follow (a key with an escape or in another case than the field's, a
// counted field repeated or of an unexpected type).
func fastMessage(data []byte) (f scanned, ok bool) {
	if !json.Valid(data) {
		return scanned{}, true // json.Unmarshal fails on it too: nothing is counted
	}
	s := textScanner{b: data}
	f.text = s.value(pathRoot)
	f.usage, f.typ = s.usage, s.typ
	return f, !s.giveUp
}

// textScanner walks valid JSON (fastMessage checked it first).
type textScanner struct {
	b      []byte
	i      int
	giveUp bool
	// usage and typ are the top-level values of "usage" and "type";
	// usageKeys counts the top-level keys that match "usage" in any case.
	usage, typ []byte
	usageKeys  int
	// capture says which of them receives the next value the object scan
	// consumes (an index, not a pointer: s must stay on the stack).
	capture capture
}

// capture names a value the scan keeps.
type capture uint8

const (
	captureNone capture = iota
	captureUsage
	captureType
)

func (s *textScanner) ws() { s.i = llmapi.SkipSpace(s.b, s.i) }

// str consumes a string and returns its contents (between the quotes) and
// whether it has an escape.
func (s *textScanner) str() (raw []byte, escaped bool) {
	start := s.i
	s.i, escaped = llmapi.SkipString(s.b, s.i)
	return s.b[start+1 : s.i-1], escaped
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
		s.i = llmapi.SkipLiteral(s.b, s.i)
	}
	return 0
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
		start, capture := s.i, s.capture
		s.capture = captureNone
		if count {
			n += s.text()
		} else {
			n += s.value(child)
		}
		switch capture {
		case captureUsage:
			s.usage = s.b[start:s.i]
		case captureType:
			s.typ = s.b[start:s.i]
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
// ("usage" itself is read by the scanner.)
var usageFields = [...]string{"usageMetadata", "message", "response"}

// field classifies key in an object at path p: its bit among the fields
// that matter (0: none), the path of its value, and whether its value is
// counted text. A key that only matches a field case-insensitively (as
// encoding/json would match it), one that may hold usage, or a value of
// another type than message declares stops the scan.
func (s *textScanner) field(p textPath, key []byte) (bit uint16, child textPath, count bool) {
	if p == pathRoot {
		if bytes.EqualFold(key, []byte("usage")) {
			// One "usage" object, spelt exactly so, is handed to the
			// meter (s.usage); null is no usage (OpenAI's chunks under
			// include_usage end with "usage":null). Two keys (a null
			// would undo an object) or another spelling or type go to
			// the full decode.
			s.usageKeys++
			switch {
			case s.usageKeys > 1 || s.b[s.i] != 'n' && (string(key) != "usage" || s.b[s.i] != '{'):
				s.giveUp = true
			case s.b[s.i] == '{':
				s.capture = captureUsage
			}
			return 0, pathOther, false
		}
		for _, k := range usageFields {
			if bytes.EqualFold(key, []byte(k)) {
				// null leaves the field nil; anything else may be usage,
				// which the full decode reads.
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
		if p == pathRoot && r.name == "type" && s.b[s.i] == '"' {
			s.capture = captureType
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
