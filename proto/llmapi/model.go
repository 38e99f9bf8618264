// The model of a request.
//
// Parse is the one
// parser of the model that the edge (allow-lists, budgets, prices) and the
// relay (routing) share: when two parsers read the same request, a request
// crafted to be read differently by each passes the edge's policy as one
// model and reaches the provider as another. The edge sends the model it
// read in the tunnel's request header; the relay reads the body again with
// this parser and refuses a body that disagrees.
//
// The parser is strict where providers and Go's encoding/json differ: member
// names match exactly (encoding/json matches "Model" and "MODEL" too), a
// second "model" member is an error (parsers differ on which one wins), and
// nothing may follow the object.

package llmapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest model name accepted. Model names are client input
// that reaches storage keys, logs and metric labels; real ones are under
// 100 bytes.
const MaxLen = 256

var (
	// ErrNotJSON reports a non-empty body that is not one JSON object (a
	// multipart upload, binary data, malformed JSON): it names no model
	// this parser can read.
	ErrNotJSON = errors.New("request body is not a JSON object")
	// ErrBadModel reports a model that is there but unusable: not a
	// string, named twice, or longer than MaxLen. Always a client error.
	ErrBadModel = errors.New("invalid model")
)

// Request is what Parse found.
type Request struct {
	// Model is the body's top-level "model" or, for Gemini, the {model}
	// of .../models/{model}:{method}; empty when the request names none.
	Model string
	// InPath is true when Model came from a Gemini path.
	InPath bool
	// Stream is "stream": true, or Gemini's streamGenerateContent.
	Stream bool
}

// Visit receives the top-level members of the body other than "model" and
// "stream" (for Gemini, other than "stream" and nothing else is special),
// in order; value is the raw JSON and is valid only during the call.
type Visit func(name string, value []byte)

// Parse reads the model of a request of the given API family. It returns
// ErrBadModel for a model no policy can judge, and ErrNotJSON for a body
// that is not a JSON object; a Gemini path's model is returned even then.
// An empty body is no error. visit, when not nil, sees the other members.
func Parse(family Family, path string, body []byte, visit Visit) (Request, error) {
	var r Request
	if family == Gemini {
		model, method, err := FromPath(path)
		if err != nil {
			return r, err
		}
		r.Model, r.InPath, r.Stream = model, model != "", method == "streamGenerateContent"
	}
	if len(bytes.TrimLeft(body, " \t\r\n")) == 0 {
		return r, nil
	}
	fromPath := r
	if err := parseBody(&r, body, visit); err != nil {
		if errors.Is(err, ErrBadModel) {
			return Request{}, err
		}
		return fromPath, err // nothing read from a broken body counts
	}
	return r, nil
}

// parseBody reads a body's top-level members. A valid JSON body, nearly
// every request, is walked in place (parseValid); anything else goes through
// encoding/json's Decoder (parseStream), whose order of errors decides
// whether a broken body is ErrBadModel or ErrNotJSON: a second "model"
// before a syntax error is refused as a bad model.
func parseBody(r *Request, body []byte, visit Visit) error {
	if json.Valid(body) {
		return parseValid(r, body, visit)
	}
	return parseStream(r, body, visit)
}

// parseValid is parseStream for a body json.Valid accepted, without the
// Decoder: the Decoder's tokens, buffers and per-member errors were 71
// allocations and most of the time of a chat request's parse, on every
// request at the edge and again at the relay (issue 13). The members reach
// parser.UnmarshalJSON in order, named as the Decoder names them (escapes
// decoded), with the value's bytes as the Decoder hands them over; with no
// syntax error possible, the errors are the parser's own, in the same order.
func parseValid(r *Request, body []byte, visit Visit) error {
	p := parser{r: r, visit: visit}
	i := SkipSpace(body, 0)
	if body[i] != '{' {
		return ErrNotJSON
	}
	i++
	for {
		i = SkipSpace(body, i)
		if body[i] == '}' {
			return nil // json.Valid: only whitespace follows
		}
		keyStart := i
		i, _ = SkipString(body, i)
		key := body[keyStart:i]
		i = SkipSpace(body, i) + 1 // past the colon
		i = SkipSpace(body, i)
		start := i
		i = SkipValue(body, i)
		if err := p.member(key, body[start:i]); err != nil {
			if errors.Is(err, ErrBadModel) {
				return err
			}
			return ErrNotJSON
		}
		i = SkipSpace(body, i)
		if body[i] == ',' {
			i++
		}
	}
}

// member hands one member to UnmarshalJSON under the name the Decoder
// would give it. A name with an escape or invalid UTF-8 is decoded as the
// Decoder decodes it; "model" and "stream" are constants; another name is
// made a string only for a visitor, the only one to read it.
func (p *parser) member(rawKey, value []byte) error {
	name := rawKey[1 : len(rawKey)-1]
	switch {
	case bytes.IndexByte(name, '\\') >= 0 || !utf8.Valid(name):
		var err error
		if p.name, err = decodeString(rawKey); err != nil {
			return err
		}
	case string(name) == "model":
		p.name = "model"
	case string(name) == "stream":
		p.name = "stream"
	case p.visit != nil:
		p.name = string(name)
	default:
		p.name = "" // neither read nor visited
	}
	return p.UnmarshalJSON(value)
}

// decodeString decodes a JSON string as encoding/json does (escapes, and
// U+FFFD for invalid UTF-8).
func decodeString(v []byte) (string, error) {
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// parseStream reads the members with encoding/json's Decoder, for a body
// that is not valid JSON: what it reports first decides the error.
func parseStream(r *Request, body []byte, visit Visit) error {
	// The Decoder keeps what it is handed: a copy of the request escapes,
	// not the caller's.
	local := *r
	defer func() { *r = local }()
	p := parser{r: &local, visit: visit}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ErrNotJSON
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ErrNotJSON
		}
		p.name, _ = tok.(string)
		if err := dec.Decode(&p); err != nil {
			if errors.Is(err, ErrBadModel) {
				return err
			}
			return ErrNotJSON
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return ErrNotJSON
	}
	if _, err := dec.Token(); err != io.EOF { // nothing after the object
		return ErrNotJSON
	}
	return nil
}

// parser receives each member's value through json.Unmarshaler, so values
// are checked by the decoder but never copied or decoded unless wanted.
type parser struct {
	r         *Request
	visit     Visit
	name      string
	sawModel  bool
	sawStream bool
}

// UnmarshalJSON handles the value of the member p.name.
func (p *parser) UnmarshalJSON(v []byte) error {
	switch {
	case p.name == "model" && !p.r.InPath:
		if p.sawModel {
			return fmt.Errorf("%w: the body names \"model\" twice", ErrBadModel)
		}
		p.sawModel = true
		if len(v) == 0 || v[0] != '"' {
			return fmt.Errorf("%w: \"model\" is not a string", ErrBadModel)
		}
		// v is a whole, valid JSON string (json.Valid or the Decoder
		// checked it): without an escape or invalid UTF-8 its value is
		// the bytes between the quotes, as json.Unmarshal would decode it.
		s := string(v[1 : len(v)-1])
		if bytes.IndexByte(v, '\\') >= 0 || !utf8.Valid(v) {
			var err error
			if s, err = decodeString(v); err != nil {
				return fmt.Errorf("%w: \"model\" is not a string", ErrBadModel)
			}
		}
		if len(s) > MaxLen {
			return tooLong(len(s))
		}
		p.r.Model = s
	case p.name == "stream" && !p.r.InPath:
		if p.sawStream {
			return fmt.Errorf("%w: the body names \"stream\" twice", ErrBadModel)
		}
		p.sawStream = true
		p.r.Stream = string(v) == "true"
	case p.visit != nil:
		p.visit(p.name, v)
	}
	return nil
}

func tooLong(n int) error {
	return fmt.Errorf("%w: model name of %d bytes is longer than the limit of %d", ErrBadModel, n, MaxLen)
}

// FromPath splits a Gemini path /v1beta/models/{model}:{method} (also
// /v1/... and /v1alpha/..., and GET .../models/{model} without a method)
// with GeminiModelPath, the reader the edge's family detection uses
// too. A path under models/ that is not one model is ErrBadModel: what the
// provider would make of it is not something a policy can judge. Other
// paths name no model.
func FromPath(p string) (model, method string, err error) {
	if !UnderGeminiModels(p) {
		return "", "", nil
	}
	model, method, ok := GeminiModelPath(p)
	switch {
	case !ok:
		return "", "", fmt.Errorf("%w: %q is not a path to one model", ErrBadModel, Truncate(p))
	case len(model) > MaxLen:
		return "", "", tooLong(len(model))
	}
	return model, method, nil
}

// Truncate shortens a client-controlled string for a log line or an error
// message: at most MaxLen bytes, cut on a rune boundary, marked with "…".
func Truncate(s string) string {
	if len(s) <= MaxLen {
		return s
	}
	cut := MaxLen
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// MemberSpan finds the byte range of the value of a top-level member of a
// JSON object (the first, if it is named twice), so a caller can rewrite
// that value and pass every other byte as the client sent it.
func MemberSpan(body []byte, name string) (start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, 0, false
		}
		if t == name {
			end := int(dec.InputOffset())
			return end - len(raw), end, true
		}
	}
	return 0, 0, false
}

// ErrNoModel reports a body without a top-level string "model" to replace.
var ErrNoModel = errors.New("request body has no top-level model")

// ReplaceModel swaps the value of the top-level "model" member of a JSON
// object, leaving every other byte in place.
func ReplaceModel(body []byte, model string) ([]byte, error) {
	start, end, ok := MemberSpan(body, "model")
	if !ok || body[start] != '"' {
		return nil, ErrNoModel
	}
	v, _ := json.Marshal(model) // a string always marshals
	out := make([]byte, 0, len(body)-(end-start)+len(v))
	out = append(append(append(out, body[:start]...), v...), body[end:]...)
	return out, nil
}

// ReplacePathModel swaps the {model} of a Gemini path whose model is
// model (as Parse read it from that path).
func ReplacePathModel(path, model, with string) string {
	i := strings.Index(path, "/models/") + len("/models/")
	return path[:i] + with + path[i+len(model):]
}
