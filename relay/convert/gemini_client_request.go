package convert

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Gemini as the client's dialect: a generateContent request from the
// google-genai SDKs (or curl, which the docs write in snake_case) decoded
// into neutral form, so the call can go to a Chat, Anthropic or Responses
// provider.

// geminiRequest is the part of a GenerateContentRequest that converts.
type geminiRequest struct {
	Contents          []geminiContent `json:"contents"`
	SystemInstruction *geminiContent  `json:"systemInstruction"`
	Tools             []struct {
		FunctionDeclarations []struct {
			Name                 string          `json:"name"`
			Description          string          `json:"description"`
			Parameters           json.RawMessage `json:"parameters"`
			ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema"`
		} `json:"functionDeclarations"`
		Other map[string]json.RawMessage `json:"-"`
	} `json:"tools"`
	ToolConfig *struct {
		FunctionCallingConfig *struct {
			Mode                 string   `json:"mode"`
			AllowedFunctionNames []string `json:"allowedFunctionNames"`
		} `json:"functionCallingConfig"`
	} `json:"toolConfig"`
	GenerationConfig *struct {
		MaxOutputTokens    int             `json:"maxOutputTokens"`
		Temperature        *float64        `json:"temperature"`
		TopP               *float64        `json:"topP"`
		TopK               *float64        `json:"topK"`
		Seed               *int64          `json:"seed"`
		PresencePenalty    *float64        `json:"presencePenalty"`
		FrequencyPenalty   *float64        `json:"frequencyPenalty"`
		StopSequences      []string        `json:"stopSequences"`
		CandidateCount     int             `json:"candidateCount"`
		ResponseModalities []string        `json:"responseModalities"`
		ResponseMimeType   string          `json:"responseMimeType"`
		ResponseSchema     json.RawMessage `json:"responseSchema"`
		ResponseJSONSchema json.RawMessage `json:"responseJsonSchema"`
		ThinkingConfig     *struct {
			ThinkingBudget  *int   `json:"thinkingBudget"`
			IncludeThoughts bool   `json:"includeThoughts"`
			ThinkingLevel   string `json:"thinkingLevel"`
		} `json:"thinkingConfig"`
	} `json:"generationConfig"`
	CachedContent string `json:"cachedContent"`
}

type geminiContent struct {
	Role  string            `json:"role"`
	Parts []geminiPartInput `json:"parts"`
}

// geminiPartInput is one part of a client's content.
type geminiPartInput struct {
	Text             *string     `json:"text"`
	Thought          bool        `json:"thought"`
	ThoughtSignature string      `json:"thoughtSignature"`
	InlineData       *geminiBlob `json:"inlineData"`
	FileData         *struct {
		MimeType string `json:"mimeType"`
		FileURI  string `json:"fileUri"`
	} `json:"fileData"`
	FunctionCall *struct {
		ID   string          `json:"id"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	} `json:"functionCall"`
	FunctionResponse *struct {
		ID       string          `json:"id"`
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	} `json:"functionResponse"`
	ExecutableCode      json.RawMessage `json:"executableCode"`
	CodeExecutionResult json.RawMessage `json:"codeExecutionResult"`
}

// Thought signatures cross to Gemini clients base64-wrapped: the genai SDKs
// hold thoughtSignature as bytes and re-encode them in standard base64, so
// only a base64 value survives their round trip unchanged. An Anthropic
// redacted_thinking block travels the same way, marked by a prefix.
const redactedPrefix = "strait-redacted:"

func wrapSignature(sig string) string { return base64.StdEncoding.EncodeToString([]byte(sig)) }

func unwrapSignature(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return s
	}
	return string(b)
}

func decodeGeminiRequest(body []byte) (*Request, error) {
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, invalid("request body is not valid JSON: %v", err)
	}
	// The REST API accepts snake_case and camelCase field names alike.
	var in geminiRequest
	if err := json.Unmarshal(mustJSON(camelKeys(raw)), &in); err != nil {
		return nil, invalid("request body does not match GenerateContentRequest: %v", err)
	}
	if in.CachedContent != "" {
		return nil, invalid("cachedContent is not supported for this model")
	}
	r := &Request{}
	if in.SystemInstruction != nil {
		parts, err := (&geminiHistory{}).parts(in.SystemInstruction.Parts)
		if err != nil {
			return nil, err
		}
		r.System = parts
	}
	if err := in.tools(r); err != nil {
		return nil, err
	}
	if err := in.generation(r); err != nil {
		return nil, err
	}
	h := &geminiHistory{pending: map[string][]string{}}
	for _, c := range in.Contents {
		parts, err := h.parts(c.Parts)
		if err != nil {
			return nil, err
		}
		role := User
		if c.Role == "model" {
			role = Assistant
		}
		r.Messages = appendMessage(r.Messages, Message{Role: role, Parts: parts})
	}
	return r, nil
}

func (in *geminiRequest) tools(r *Request) error {
	for _, t := range in.Tools {
		if len(t.FunctionDeclarations) == 0 {
			return invalid("only functionDeclarations tools are supported for this model (not Google Search, code execution, …)")
		}
		for _, f := range t.FunctionDeclarations {
			schema := f.ParametersJSONSchema
			if len(schema) == 0 && len(f.Parameters) > 0 {
				schema = openAPISchema(f.Parameters)
			}
			r.Tools = append(r.Tools, Tool{Name: f.Name, Description: f.Description, Schema: rawOr(schema, `{"type":"object","properties":{}}`)})
		}
	}
	if tc := in.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
		fc := tc.FunctionCallingConfig
		switch fc.Mode {
		case "NONE":
			r.ToolChoice = &ToolChoice{Mode: "none"}
		case "ANY", "VALIDATED":
			r.ToolChoice = &ToolChoice{Mode: "required"}
			if len(fc.AllowedFunctionNames) == 1 {
				r.ToolChoice = &ToolChoice{Mode: "tool", Name: fc.AllowedFunctionNames[0]}
			}
		case "AUTO", "", "MODE_UNSPECIFIED":
			r.ToolChoice = &ToolChoice{Mode: "auto"}
		default:
			return invalid("functionCallingConfig mode %q is not supported", fc.Mode)
		}
	}
	return nil
}

func (in *geminiRequest) generation(r *Request) error {
	g := in.GenerationConfig
	if g == nil {
		return nil
	}
	if g.CandidateCount > 1 {
		return invalid("candidateCount > 1 is not supported for this model")
	}
	for _, m := range g.ResponseModalities {
		if !strings.EqualFold(m, "TEXT") {
			return invalid("responseModalities %s is not supported for this model (text only)", m)
		}
	}
	r.MaxTokens, r.Temperature, r.TopP, r.Stop = g.MaxOutputTokens, g.Temperature, g.TopP, g.StopSequences
	r.TopK, r.Seed, r.PresencePenalty, r.FrequencyPenalty = g.TopK, g.Seed, g.PresencePenalty, g.FrequencyPenalty
	switch {
	case len(g.ResponseJSONSchema) > 0:
		r.Format = &Format{Name: "response", Schema: g.ResponseJSONSchema}
	case len(g.ResponseSchema) > 0:
		r.Format = &Format{Name: "response", Schema: openAPISchema(g.ResponseSchema)}
	case g.ResponseMimeType == "application/json":
		r.Format = &Format{}
	}
	if tc := g.ThinkingConfig; tc != nil {
		switch {
		case tc.ThinkingBudget != nil && *tc.ThinkingBudget > 0:
			r.Thinking = &Thinking{Budget: *tc.ThinkingBudget}
		case tc.ThinkingLevel != "" && tc.ThinkingLevel != "THINKING_LEVEL_UNSPECIFIED":
			r.Thinking = &Thinking{Effort: strings.ToLower(tc.ThinkingLevel)}
		case tc.ThinkingBudget != nil && *tc.ThinkingBudget < 0, tc.ThinkingBudget == nil && tc.IncludeThoughts:
			r.Thinking = &Thinking{Effort: "medium"} // dynamic thinking
		}
	}
	return nil
}

// geminiHistory resolves the ids Gemini content may leave out: a
// functionCall without one gets a stable id from its position, and a
// functionResponse without one answers the oldest open call of its name.
// The whole history comes with every request, so the ids agree from one
// turn to the next.
type geminiHistory struct {
	calls   int
	pending map[string][]string // function name → open call ids
}

func (h *geminiHistory) parts(in []geminiPartInput) ([]Part, error) {
	out := make([]Part, 0, len(in))
	for i := range in {
		p := &in[i]
		switch {
		case p.FunctionCall != nil:
			h.calls++
			id := p.FunctionCall.ID
			if id == "" {
				id = "call_" + itoa(h.calls)
			}
			if h.pending != nil {
				h.pending[p.FunctionCall.Name] = append(h.pending[p.FunctionCall.Name], id)
			}
			out = append(out, Part{Kind: PartToolCall, Call: &ToolCall{ID: id, Name: p.FunctionCall.Name, Args: rawOr(p.FunctionCall.Args, "{}")}})
		case p.FunctionResponse != nil:
			res, err := h.result(p)
			if err != nil {
				return nil, err
			}
			out = append(out, Part{Kind: PartToolResult, Result: res})
		case p.Thought:
			out = appendThought(out, p)
		case p.Text != nil:
			if *p.Text != "" {
				out = append(out, Part{Kind: PartText, Text: *p.Text})
			}
		case p.InlineData != nil:
			part, err := geminiMedia(p.InlineData.MimeType, &Image{MediaType: p.InlineData.MimeType, Data: p.InlineData.Data})
			if err != nil {
				return nil, err
			}
			out = append(out, part)
		case p.FileData != nil:
			part, err := geminiMedia(p.FileData.MimeType, &Image{MediaType: p.FileData.MimeType, URL: p.FileData.FileURI})
			if err != nil {
				return nil, err
			}
			out = append(out, part)
		case p.ExecutableCode != nil, p.CodeExecutionResult != nil:
			return nil, invalid("code execution parts are not supported for this model")
		}
	}
	return out, nil
}

// geminiMedia is an inline or file part: images convert; other media types
// have no counterpart in the provider's API.
func geminiMedia(mimeType string, img *Image) (Part, error) {
	if mimeType == pdfType && img.URL == "" {
		return document("", "data:"+pdfType+";base64,"+img.Data)
	}
	if mimeType == pdfType && strings.HasPrefix(img.URL, "http") {
		return document("", img.URL)
	}
	if !strings.HasPrefix(mimeType, "image/") && mimeType != pdfType {
		return Part{}, invalid("%s content is not supported for this model (only images)", cmpOr(mimeType, "untyped"))
	}
	if img.URL != "" && !strings.HasPrefix(img.URL, "https://") && !strings.HasPrefix(img.URL, "http://") {
		return Part{}, invalid("fileData %q is a Gemini Files API reference, which this model cannot read; send the image inline", img.URL)
	}
	return Part{Kind: PartImage, Image: img}, nil
}

// appendThought adds a thought part, merging consecutive thought parts (a
// stream delivers one per chunk) into one signed thinking part.
func appendThought(out []Part, p *geminiPartInput) []Part {
	text := ""
	if p.Text != nil {
		text = *p.Text
	}
	sig := ""
	if p.ThoughtSignature != "" {
		sig = unwrapSignature(p.ThoughtSignature)
	}
	if data, ok := strings.CutPrefix(sig, redactedPrefix); ok {
		return append(out, Part{Kind: PartRedactedThinking, Text: data})
	}
	if n := len(out); n > 0 && out[n-1].Kind == PartThinking && out[n-1].Signature == "" {
		out[n-1].Text += text
		out[n-1].Signature = sig
		return out
	}
	return append(out, Part{Kind: PartThinking, Text: text, Signature: sig})
}

func (h *geminiHistory) result(p *geminiPartInput) (*ToolResult, error) {
	fr := p.FunctionResponse
	id := fr.ID
	if q := h.pending[fr.Name]; len(q) > 0 {
		if id == "" {
			id = q[0]
		}
		for i, open := range q {
			if open == id {
				h.pending[fr.Name] = append(q[:i:i], q[i+1:]...)
				break
			}
		}
	}
	if id == "" {
		return nil, invalid("functionResponse %q answers no earlier functionCall", fr.Name)
	}
	res := &ToolResult{CallID: id, Name: fr.Name}
	var resp map[string]json.RawMessage
	_ = json.Unmarshal(fr.Response, &resp)
	if e, ok := resp["error"]; ok && len(resp) == 1 {
		res.IsError = true
		res.Content = []Part{{Kind: PartText, Text: jsonText(e)}}
		return res, nil
	}
	for _, k := range []string{"output", "result"} {
		if v, ok := resp[k]; ok && len(resp) == 1 {
			res.Content = []Part{{Kind: PartText, Text: jsonText(v)}}
			return res, nil
		}
	}
	res.Content = []Part{{Kind: PartText, Text: string(rawOr(fr.Response, "{}"))}}
	return res, nil
}

// jsonText is a JSON string's value, or the JSON itself for other values.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// camelKeys renames snake_case object keys to camelCase, except inside
// the values the user owns (function arguments and responses, schemas),
// where a key is a name and must stay as written.
func camelKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			ck := camel(k)
			switch ck {
			case "args", "response", "parameters", "parametersJsonSchema", "responseSchema", "responseJsonSchema", "responseJsonSchemaOrdered":
				out[ck] = val
			default:
				out[ck] = camelKeys(val)
			}
		}
		return out
	case []any:
		for i := range x {
			x[i] = camelKeys(x[i])
		}
		return x
	}
	return v
}

func camel(k string) string {
	if !strings.Contains(k, "_") {
		return k
	}
	parts := strings.Split(k, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// openAPISchema turns Gemini's Schema (an OpenAPI 3.0 subset with
// upper-case types: "OBJECT", "STRING") into the JSON Schema the other
// APIs take: types lower-cased, nullable folded into the type, Gemini's
// ordering hint dropped.
func openAPISchema(raw json.RawMessage) json.RawMessage {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	return mustJSON(lowerSchema(v))
}

func lowerSchema(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			switch k {
			case "type":
				if s, ok := val.(string); ok {
					val = strings.ToLower(s)
				}
			case "propertyOrdering", "nullable":
				continue
			case "properties":
				props, ok := val.(map[string]any)
				if ok {
					lowered := make(map[string]any, len(props))
					for name, s := range props {
						lowered[name] = lowerSchema(s)
					}
					val = lowered
				}
			default:
				val = lowerSchema(val)
			}
			out[k] = val
		}
		if n, _ := x["nullable"].(bool); n {
			if t, ok := out["type"].(string); ok {
				out["type"] = []any{t, "null"}
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = lowerSchema(x[i])
		}
		return out
	}
	return v
}
