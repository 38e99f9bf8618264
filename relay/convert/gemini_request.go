package convert

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
)

// Gemini has no tool-call ids on the wire that clients could rely on, and a
// thinking model's functionCall part carries a thoughtSignature that must
// come back verbatim on the next turn. Both travel in the id the other
// dialects give the call: "<id>__ts__<base64url(signature)>". Every client
// sends the id back unchanged with the call and its result, so the
// signature returns without any client cooperation. The alphabet stays
// within Anthropic's tool_use id pattern [a-zA-Z0-9_-].
const sigSep = "__ts__"

// callID builds the id of a Gemini function call.
func callID(base, signature string) string {
	if signature == "" {
		return base
	}
	return base + sigSep + base64.RawURLEncoding.EncodeToString([]byte(signature))
}

// splitCallID recovers the signature from an id made by callID.
func splitCallID(id string) (base, signature string) {
	base, enc, ok := strings.Cut(id, sigSep)
	if !ok {
		return id, ""
	}
	sig, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return id, ""
	}
	return base, string(sig)
}

// newID returns a random id suffix; tests replace it for stable output.
var newID = func() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func encodeGeminiRequest(r *Request) (string, string, []byte, error) {
	out := obj{}
	if len(r.System) > 0 {
		out["systemInstruction"] = obj{"parts": geminiParts(r.System, nil)}
	}
	names := map[string]string{} // call id → function name, for functionResponse
	contents := make([]any, 0, len(r.Messages))
	for _, m := range r.Messages {
		role := "user"
		if m.Role == Assistant {
			role = "model"
		}
		for _, p := range m.Parts {
			if p.Kind == PartToolCall {
				names[p.Call.ID] = p.Call.Name
			}
		}
		parts := geminiParts(m.Parts, names)
		if len(parts) > 0 {
			contents = append(contents, obj{"role": role, "parts": parts})
		}
	}
	out["contents"] = contents
	if len(r.Tools) > 0 {
		decls := r.toolDecls("parametersJsonSchema", func(_ Tool, d obj) any { return d })
		out["tools"] = []any{obj{"functionDeclarations": decls}}
	}
	if tc := r.ToolChoice; tc != nil {
		cfg := obj{"mode": map[string]string{"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}[tc.Mode]}
		if tc.Mode == "tool" {
			cfg["allowedFunctionNames"] = []string{tc.Name}
		}
		out["toolConfig"] = obj{"functionCallingConfig": cfg}
	}
	gen := obj{}
	setCommon(gen, r, "maxOutputTokens", "temperature", "topP", "stopSequences")
	setSampling(gen, r, "topK", "seed", "presencePenalty", "frequencyPenalty")
	if r.Format != nil {
		gen["responseMimeType"] = "application/json"
		if r.Format.Schema != nil {
			gen["responseJsonSchema"] = r.Format.Schema
		}
	}
	if r.Thinking != nil {
		gen["thinkingConfig"] = obj{"thinkingBudget": r.Thinking.budget(), "includeThoughts": true}
	}
	if len(r.Modalities) > 0 {
		// Gemini names the modalities in upper case: ["TEXT","IMAGE"].
		modes := make([]string, len(r.Modalities))
		for i, m := range r.Modalities {
			modes[i] = strings.ToUpper(m)
		}
		gen["responseModalities"] = modes
	}
	if len(gen) > 0 {
		out["generationConfig"] = gen
	}
	path := "/v1beta/models/" + url.PathEscape(r.Model) + ":generateContent"
	query := ""
	if r.Stream {
		path, query = "/v1beta/models/"+url.PathEscape(r.Model)+":streamGenerateContent", "alt=sse"
	}
	return path, query, mustJSON(out), nil
}

// geminiParts renders parts; names resolves a tool result's function name.
func geminiParts(ps []Part, names map[string]string) []any {
	out := make([]any, 0, len(ps))
	for _, p := range ps {
		var g obj
		switch p.Kind {
		case PartText:
			if p.Text == "" {
				continue
			}
			g = obj{"text": p.Text}
		case PartImage:
			if p.Image.URL != "" {
				g = obj{"fileData": obj{"fileUri": p.Image.URL, "mimeType": cmpOr(p.Image.MediaType, mimeFromURL(p.Image.URL))}}
			} else {
				g = obj{"inlineData": obj{"mimeType": p.Image.MediaType, "data": p.Image.Data}}
			}
		case PartDocument:
			g = p.geminiDocument()
		case PartThinking:
			continue // thought summaries need not go back; signatures travel on calls
		case PartToolCall:
			_, sig := splitCallID(p.Call.ID)
			g = obj{"functionCall": obj{"name": p.Call.Name, "args": p.Call.Args}}
			if sig != "" {
				g["thoughtSignature"] = sig
			}
		case PartToolResult:
			name := p.Result.Name
			if name == "" {
				name = names[p.Result.CallID]
			}
			// A functionResponse holds JSON only: the result's images and
			// documents follow it as parts of the same user turn.
			out = append(out, obj{"functionResponse": obj{"name": name, "response": resultObject(p.Result)}})
			out = append(out, geminiParts(p.Result.media(), nil)...)
			continue
		default:
			continue // redacted thinking is Anthropic's alone
		}
		if p.Signature != "" {
			g["thoughtSignature"] = p.Signature
		}
		out = append(out, g)
	}
	return out
}

// resultObject is a tool result as the JSON object Gemini wants: the text
// itself when it is an object, else wrapped.
func resultObject(res *ToolResult) json.RawMessage {
	t := strings.TrimSpace(paragraphs(res.Content))
	key := "result"
	if res.IsError {
		key = "error"
	}
	if !res.IsError && strings.HasPrefix(t, "{") && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	return mustJSON(obj{key: t})
}

// mimeFromURL guesses an image type from a URL's extension; Gemini's
// fileData wants one.
func mimeFromURL(u string) string {
	switch {
	case strings.HasSuffix(u, ".png"):
		return "image/png"
	case strings.HasSuffix(u, ".gif"):
		return "image/gif"
	case strings.HasSuffix(u, ".webp"):
		return "image/webp"
	}
	return "image/jpeg"
}
