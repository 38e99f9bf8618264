package guard

import (
	"bytes"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// errUnreadableData: a file's base64 data that says it is text does not
// decode. Unread, it may not cross: Inspect refuses the request.
var errUnreadableData = errors.New("text data that is not base64")

// encodedData are, per kind of endpoint, the paths of files sent inline
// as base64 with a media type: Gemini's inlineData, Anthropic's base64
// source (also in sourceData: which one it is, its type says), a Chat
// file part's and a Responses input_file's file_data (a data URL). When
// the media type is text (textMedia), the data is decoded and read like
// any text, and re-encoded when a value in it is masked or redacted; a
// PDF's or an image's bytes are left alone.
var encodedData = map[string][][]string{
	"chat":      paths("messages.#.content.#.file.file_data"),
	"responses": paths("input.#.content.#.file_data", "input.#.output.#.file_data", "input.#.file_data"),
	"messages":  sourceData["messages"],
	"contents": paths("contents.#.parts.#.inlineData.data", "contents.#.parts.#.inline_data.data",
		"systemInstruction.parts.#.inlineData.data", "system_instruction.parts.#.inline_data.data"),
}

// encodedFile is the media type and the base64 payload of a file's data,
// the string text at w's place (unquoted), and the data URL's header
// before the payload (none when the media type is a sibling member:
// Gemini's mimeType, Anthropic's media_type). A data URL that is not
// base64 (percent-encoded text) has a nil payload: it is not read. ok is false
// when the data is not base64 (Anthropic's plain-text source, read as
// text elsewhere).
func (ins *inspection) encodedFile(w *walker, text []byte) (media string, header, payload []byte, ok bool) {
	obj := w.starts[len(w.starts)-1]
	last := string(w.path[len(w.path)-1])
	switch {
	case keyIs("file_data", []byte(last)):
		rest, isURL := bytes.CutPrefix(text, []byte("data:"))
		if !isURL {
			return "", nil, text, true // a bare payload: its bytes say what it is
		}
		meta, data, found := bytes.Cut(rest, []byte(","))
		if !found || !bytes.HasSuffix(bytes.ToLower(meta), []byte(";base64")) {
			// Percent-encoded, or no data URL at all: unread.
			return "", nil, nil, true
		}
		return string(meta[:len(meta)-len(";base64")]), text[:len(text)-len(data)], data, true
	case keyIs("inlineData", w.path[len(w.path)-2]) || keyIs("inline_data", w.path[len(w.path)-2]):
		return mediaType(ins.body, obj, "mimeType", "mime_type"), nil, text, true
	}
	if !base64Source(ins.body, obj) {
		return "", nil, nil, false
	}
	return mediaType(ins.body, obj, "media_type"), nil, text, true
}

// textMedia reports whether a file of media type mt is text a model reads
// as such: text/*, JSON, XML, YAML, JavaScript. With no media type, the
// data's first bytes decide, as http.DetectContentType sniffs them.
func textMedia(mt string, data []byte) bool {
	if strings.TrimSpace(mt) == "" {
		mt = http.DetectContentType(data)
	}
	t, _, err := mime.ParseMediaType(mt)
	if err != nil {
		t = strings.ToLower(strings.TrimSpace(mt)) // unparsable parameters: the type still says
		t, _, _ = strings.Cut(t, ";")
	}
	switch {
	case strings.HasPrefix(t, "text/"), strings.HasSuffix(t, "+json"), strings.HasSuffix(t, "+xml"):
		return true
	}
	switch t {
	case "application/json", "application/x-ndjson", "application/jsonl", "application/xml", "application/yaml",
		"application/x-yaml", "application/javascript", "application/x-javascript", "application/sql", "application/csv",
		"application/x-sh", "application/x-python", "application/rtf":
		return true
	}
	return false
}

// base64Encodings are the spellings a provider accepts (Gemini's proto
// JSON takes the URL alphabet and missing padding too), tried in turn.
var base64Encodings = []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}

// decodeBase64 appends the bytes payload encodes to dst, with the
// encoding it is in. Each try is linear in payload, which the request's
// size limit bounds.
func decodeBase64(dst, payload []byte) ([]byte, *base64.Encoding, error) {
	for _, enc := range base64Encodings {
		out, err := enc.AppendDecode(dst[:0], payload)
		if err == nil {
			return out, enc, nil
		}
		dst = out
	}
	return dst, nil, errUnreadableData
}

// visitEncoded judges a file's base64 data, the string literal lit at s
// at w's place: text data is decoded and judged (judgeText) and, when a
// value in it is masked or redacted, encoded again as the client's was.
// handled is false when the data is not base64 at all.
func (ins *inspection) visitEncoded(w *walker, s span, lit []byte) (handled bool, err error) {
	text, buf, err := unquote(ins.text, lit)
	ins.text = buf
	if err != nil {
		return true, err
	}
	media, header, payload, ok := ins.encodedFile(w, text)
	switch {
	case !ok:
		return false, nil
	case payload == nil:
		return true, errUnreadableData
	}
	if strings.TrimSpace(media) != "" && !textMedia(media, nil) {
		return true, nil // a PDF's, an image's bytes
	}
	decoded, enc, err := decodeBase64(ins.decoded, payload)
	ins.decoded = decoded
	if err != nil {
		return true, err
	}
	if media == "" && !textMedia("", decoded) {
		return true, nil
	}
	view := jsonView(ins.view[:0], decoded)
	target := decoded
	if view != nil {
		ins.view, target = view, view
	}
	ins.finds = ins.find(target, view)
	if !ins.counted() {
		return true, nil
	}
	ins.plain = ins.replaced(ins.plain[:0], target, false)
	ins.open(s)
	ins.out = appendEscaped(ins.out, header, utf8.Valid(header))
	ins.out = append(enc.AppendEncode(ins.out, ins.plain), '"')
	ins.prev = s.end
	return true, nil
}

// mediaType is the media type the object at doc[start] gives in a member
// named one of names (as Go's decoder reads names), or "". Of several
// such members a text type wins: parsers differ on which one counts (Go's
// takes the last), and a PDF's type before a text one must not hide the
// text. It looks ahead of the walk, which has not yet checked the object.
func mediaType(doc []byte, start int, names ...string) string {
	found := ""
	members(doc, start, func(key, val []byte) bool {
		for _, n := range names {
			if !keyIs(n, key) {
				continue
			}
			v := string(val)
			switch {
			case len(val) >= 2 && val[0] == '"':
				v, _ = decodeString(val)
			case v == "null": // Go decodes it as ""
				v = ""
			}
			found = v
			return !textMedia(v, nil)
		}
		return true
	})
	return found
}
