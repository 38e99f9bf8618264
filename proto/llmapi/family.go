package llmapi

import (
	"net/http"
	"strings"
)

// Family is an API family: the wire vocabulary a client's SDK speaks. It
// decides routing, the credential location, the model's place and the
// error shape. Its string is what the tunnel's request header carries.
type Family string

// The API families Strait serves.
const (
	OpenAI    Family = "openai"    // Chat Completions, Responses, embeddings, files, … (/v1/...)
	Anthropic Family = "anthropic" // Messages (/v1/messages, anthropic-version header)
	Gemini    Family = "gemini"    // generateContent (/v1beta/models/{model}:{method})
)

// Families lists every family, in the order configuration and logs name
// them. Adding a family starts here and in specs.
var Families = [...]Family{OpenAI, Anthropic, Gemini}

// spec is what differs between families beyond the path rules of Detect
// and the shapes of errors.go, usage.go and endpoint.go.
type spec struct {
	name string // for people: "OpenAI"
	// keyHeader is where the family's SDKs send the key (besides Gemini's
	// ?key=): Strait's edge takes it from there, the relay puts the
	// provider's key there.
	keyHeader string
	// ping is an SSE keep-alive the family's SDKs ignore. Gemini's is an
	// empty event: google-genai splits the stream on blank lines and
	// rejects any event but data:.
	ping string
	// listKey is the member of a model listing that holds the entries.
	listKey string
}

var specs = map[Family]spec{
	OpenAI:    {name: "OpenAI", keyHeader: "Authorization", ping: ": ping\n\n", listKey: "data"},
	Anthropic: {name: "Anthropic", keyHeader: "X-Api-Key", ping: "event: ping\ndata: {\"type\": \"ping\"}\n\n", listKey: "data"},
	Gemini:    {name: "Gemini", keyHeader: "X-Goog-Api-Key", ping: "\n\n", listKey: "models"},
}

// Known reports whether f is one of Families.
func (f Family) Known() bool {
	_, ok := specs[f]
	return ok
}

// Name is the family's name for people ("OpenAI"); an unknown family's
// own string.
func (f Family) Name() string {
	if s, ok := specs[f]; ok {
		return s.name
	}
	return string(f)
}

// Ping is an SSE keep-alive event the family's SDKs skip; an unknown
// family gets OpenAI's comment line.
func (f Family) Ping() []byte {
	if s, ok := specs[f]; ok {
		return []byte(s.ping)
	}
	return []byte(specs[OpenAI].ping)
}

// ListKey is the member of the family's model listing that holds the
// entries ("data", Gemini's "models").
func (f Family) ListKey() string { return specs[f].listKey }

// Detect finds the family of a request from the first segment of its path
// (first, e.g. "v1"), the rest of the path after it (rest, with its leading
// /) and, where OpenAI and Anthropic share a path such as /v1/models, the
// anthropic-version header every Anthropic SDK sends. ok is false for a
// segment no family uses.
func Detect(first, rest string, h http.Header) (Family, bool) {
	switch first {
	case "v1beta", "v1alpha", "upload":
		return Gemini, true
	case "v1":
		second, _ := SplitPath(rest)
		switch {
		case second == "messages" || second == "complete":
			return Anthropic, true
		case second == "models" && isGeminiCall("/v1"+rest):
			return Gemini, true // /v1/models/{model}:generateContent, not OpenAI's /v1/models/ft:…
		case h.Get("Anthropic-Version") != "":
			return Anthropic, true
		}
		return OpenAI, true
	}
	return "", false
}

func isGeminiCall(p string) bool {
	_, method, ok := GeminiModelPath(p)
	return ok && method != ""
}

// SplitPath returns the first segment of p and the rest (with its leading /).
func SplitPath(p string) (first, rest string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// Guess picks a family for a request Detect could not place, from where
// its SDK put the credential, so even a 404 comes in a shape the caller's
// SDK parses.
func Guess(h http.Header, rawQuery string) Family {
	switch {
	case h.Get("X-Goog-Api-Key") != "" || strings.Contains(rawQuery, "key="):
		return Gemini
	case h.Get("Anthropic-Version") != "" || h.Get("X-Api-Key") != "":
		return Anthropic
	}
	return OpenAI
}
