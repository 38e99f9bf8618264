package convert

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/url"
	"strings"

	"github.com/strait/strait/proto/llmapi"
)

// Embeddings across OpenAI and Gemini: POST /v1/embeddings reaches Gemini
// embedding models through batchEmbedContents, and Gemini's embedContent
// and batchEmbedContents reach OpenAI embedding models. Anthropic has no
// embeddings API.

// embedRequest is an embeddings request in neutral form.
type embedRequest struct {
	Model      string
	Inputs     []string
	Dimensions int
	TaskType   string // Gemini's; OpenAI has none
	Base64     bool   // the OpenAI client asked for encoding_format=base64
	Batch      bool   // the Gemini client used batchEmbedContents
}

// embedResponse is the vectors, in input order, and the prompt tokens.
type embedResponse struct {
	Vectors [][]float64
	Tokens  int
	Model   string
}

// isEmbedPath reports an embeddings endpoint of either API.
func isEmbedPath(path string) bool {
	return strings.HasSuffix(path, "/embeddings") || strings.HasSuffix(path, ":embedContent") ||
		strings.HasSuffix(path, ":batchEmbedContents")
}

func decodeOpenAIEmbed(body []byte) (*embedRequest, error) {
	var in struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		Dimensions     int             `json:"dimensions"`
		EncodingFormat string          `json:"encoding_format"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, invalid("request body is not valid JSON: %v", err)
	}
	r := &embedRequest{Model: in.Model, Dimensions: in.Dimensions, Base64: in.EncodingFormat == "base64"}
	var one string
	if json.Unmarshal(in.Input, &one) == nil {
		r.Inputs = []string{one}
	} else if json.Unmarshal(in.Input, &r.Inputs) != nil {
		return nil, invalid("input must be a string or an array of strings for this model (token arrays cannot be converted)")
	}
	if len(r.Inputs) == 0 {
		return nil, invalid("input must not be empty")
	}
	return r, nil
}

func encodeOpenAIEmbed(r *embedRequest) (string, string, []byte, error) {
	out := obj{"model": r.Model, "input": r.Inputs, "encoding_format": "float"}
	if r.Dimensions > 0 {
		out["dimensions"] = r.Dimensions
	}
	return "/v1/embeddings", "", mustJSON(out), nil
}

func decodeOpenAIEmbedResponse(body []byte) (*embedResponse, error) {
	var in struct {
		Model string `json:"model"`
		Data  []struct {
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	out := &embedResponse{Vectors: make([][]float64, len(in.Data)), Tokens: in.Usage.PromptTokens, Model: in.Model}
	for i, d := range in.Data {
		if d.Index < 0 || d.Index >= len(in.Data) {
			return nil, errMissing("data index")
		}
		out.Vectors[d.Index] = in.Data[i].Embedding
	}
	return out, nil
}

func encodeOpenAIEmbedResponse(r *embedResponse, req *embedRequest) []byte {
	data := make([]any, len(r.Vectors))
	for i, v := range r.Vectors {
		var e any = v
		if req.Base64 {
			e = float32Base64(v)
		}
		data[i] = obj{"object": "embedding", "index": i, "embedding": e}
	}
	return mustJSON(obj{"object": "list", "data": data, "model": cmpOr(r.Model, req.Model),
		"usage": obj{"prompt_tokens": r.Tokens, "total_tokens": r.Tokens}})
}

// float32Base64 is OpenAI's encoding_format=base64: little-endian float32s.
func float32Base64(v []float64) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(f)))
	}
	return base64.StdEncoding.EncodeToString(b)
}

type geminiEmbedContent struct {
	Content struct {
		Parts []struct {
			Text string `json:"text"`
		} `json:"parts"`
	} `json:"content"`
	TaskType             string `json:"taskType"`
	OutputDimensionality int    `json:"outputDimensionality"`
}

func (g *geminiEmbedContent) text() string {
	var b strings.Builder
	for _, p := range g.Content.Parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// decodeGeminiEmbed reads embedContent or (batch) batchEmbedContents.
func decodeGeminiEmbed(body []byte, batch bool) (*embedRequest, error) {
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, invalid("request body is not valid JSON: %v", err)
	}
	body = mustJSON(camelKeys(raw))
	var reqs []geminiEmbedContent
	if batch {
		var in struct {
			Requests []geminiEmbedContent `json:"requests"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, invalid("request body does not match BatchEmbedContentsRequest: %v", err)
		}
		reqs = in.Requests
	} else {
		var in geminiEmbedContent
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, invalid("request body does not match EmbedContentRequest: %v", err)
		}
		reqs = []geminiEmbedContent{in}
	}
	if len(reqs) == 0 {
		return nil, invalid("requests must not be empty")
	}
	r := &embedRequest{Batch: batch, TaskType: reqs[0].TaskType, Dimensions: reqs[0].OutputDimensionality}
	for _, q := range reqs {
		if q.OutputDimensionality != r.Dimensions {
			return nil, invalid("every request of a batch must ask for the same outputDimensionality for this model")
		}
		r.Inputs = append(r.Inputs, q.text())
	}
	return r, nil
}

func encodeGeminiEmbed(r *embedRequest) (string, string, []byte, error) {
	reqs := make([]any, len(r.Inputs))
	for i, in := range r.Inputs {
		q := obj{"model": "models/" + r.Model, "content": obj{"parts": []any{obj{"text": in}}}}
		if r.Dimensions > 0 {
			q["outputDimensionality"] = r.Dimensions
		}
		if r.TaskType != "" {
			q["taskType"] = r.TaskType
		}
		reqs[i] = q
	}
	return "/v1beta/models/" + url.PathEscape(r.Model) + ":batchEmbedContents", "", mustJSON(obj{"requests": reqs}), nil
}

func decodeGeminiEmbedResponse(body []byte) (*embedResponse, error) {
	var in struct {
		Embeddings []struct {
			Values []float64 `json:"values"`
		} `json:"embeddings"`
		Embedding *struct {
			Values []float64 `json:"values"`
		} `json:"embedding"`
		UsageMetadata *llmapi.GeminiUsage `json:"usageMetadata"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	out := &embedResponse{}
	for _, e := range in.Embeddings {
		out.Vectors = append(out.Vectors, e.Values)
	}
	if in.Embedding != nil {
		out.Vectors = append(out.Vectors, in.Embedding.Values)
	}
	if in.UsageMetadata != nil {
		out.Tokens = int(in.UsageMetadata.PromptTokenCount)
	}
	return out, nil
}

func encodeGeminiEmbedResponse(r *embedResponse, req *embedRequest) []byte {
	if !req.Batch && len(r.Vectors) == 1 {
		return mustJSON(obj{"embedding": obj{"values": r.Vectors[0]}})
	}
	out := make([]any, len(r.Vectors))
	for i, v := range r.Vectors {
		out[i] = obj{"values": v}
	}
	return mustJSON(obj{"embeddings": out})
}

// estimateTokens stands in for a provider that reports no usage for
// embeddings (Gemini's batchEmbedContents): about four characters a token,
// so metering is never zero.
func estimateTokens(inputs []string) int {
	n := 0
	for _, in := range inputs {
		n += (len(in) + 3) / 4
	}
	return n
}

// embedPlan is the embeddings half of a Plan.
type embedPlan struct {
	req *embedRequest
}

func newEmbedPlan(client, provider llmapi.Dialect, path string, body []byte, model string) (*Plan, error) {
	var req *embedRequest
	var err error
	switch {
	case client == llmapi.ChatCompletions && provider == llmapi.GenerateContent:
		req, err = decodeOpenAIEmbed(body)
	case client == llmapi.GenerateContent && provider == llmapi.ChatCompletions:
		req, err = decodeGeminiEmbed(body, strings.HasSuffix(path, ":batchEmbedContents"))
	default:
		return nil, invalid("model %q is served by the %s API, which has no embeddings endpoint", model, provider.Family().Name())
	}
	if err != nil {
		return nil, err
	}
	if req.Model, err = targetModel(req.Model, model); err != nil {
		return nil, err
	}
	enc := encodeGeminiEmbed
	if provider == llmapi.ChatCompletions {
		enc = encodeOpenAIEmbed
	}
	outPath, query, out, err := enc(req)
	if err != nil {
		return nil, err
	}
	return &Plan{Client: client, Provider: provider, Path: outPath, RawQuery: query, Body: out, embed: &embedPlan{req: req}}, nil
}

// answer converts a provider's embeddings answer for the client.
func (e *embedPlan) answer(client, provider llmapi.Dialect, body []byte) ([]byte, error) {
	var resp *embedResponse
	var err error
	if provider == llmapi.GenerateContent {
		resp, err = decodeGeminiEmbedResponse(body)
	} else {
		resp, err = decodeOpenAIEmbedResponse(body)
	}
	if err != nil {
		return nil, err
	}
	if len(resp.Vectors) != len(e.req.Inputs) {
		return nil, errMissing("one embedding per input")
	}
	if resp.Tokens == 0 {
		resp.Tokens = estimateTokens(e.req.Inputs)
	}
	if client == llmapi.GenerateContent {
		return encodeGeminiEmbedResponse(resp, e.req), nil
	}
	return encodeOpenAIEmbedResponse(resp, e.req), nil
}
