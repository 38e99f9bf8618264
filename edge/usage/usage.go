// Package usage reads token usage out of provider responses as they stream
// past the edge, for all three API families, and normalises it into one
// record: uncached input, cache reads and writes, output (with reasoning
// or thinking tokens inside it). When the provider does not report usage
// (a stream cut short, an endpoint without usage) it estimates from what
// was actually delivered and says so.
package usage

import (
	"encoding/json"
)

// Usage is one request's tokens.
type Usage struct {
	Input      int64 `json:"input"`       // prompt tokens not served from a cache
	CacheRead  int64 `json:"cache_read"`  // prompt tokens read from the provider's cache
	CacheWrite int64 `json:"cache_write"` // prompt tokens written to the cache (Anthropic)
	Output     int64 `json:"output"`      // generated tokens, reasoning included
	Reasoning  int64 `json:"reasoning"`   // of Output: reasoning / thinking tokens
	// Estimated is true when any part was not reported by the provider.
	Estimated bool `json:"estimated"`
}

// Total is every token the request consumed, the unit of token quotas.
func (u Usage) Total() int64 { return u.Input + u.CacheRead + u.CacheWrite + u.Output }

// Add sums o into u.
func (u *Usage) Add(o Usage) {
	u.Input += o.Input
	u.CacheRead += o.CacheRead
	u.CacheWrite += o.CacheWrite
	u.Output += o.Output
	u.Reasoning += o.Reasoning
	u.Estimated = u.Estimated || o.Estimated
}

// EstimateTokens is the rough token count of n bytes of text (about four
// bytes per token for English and code; CJK text is closer to one token per
// character, i.e. three bytes, so this errs on the low side there).
func EstimateTokens(n int) int64 { return int64(n+3) / 4 }

// wireUsage is the union of the usage objects of OpenAI Chat Completions,
// Embeddings, Responses and Anthropic Messages.
type wireUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
	InputTokens        int64 `json:"input_tokens"`
	OutputTokens       int64 `json:"output_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

// geminiUsage is Gemini's usageMetadata.
type geminiUsage struct {
	PromptTokenCount        int64 `json:"promptTokenCount"`
	CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
	CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
	ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount"`
}

// message is the union of the JSON bodies and stream events of the three
// families, reduced to what usage accounting needs.
type message struct {
	Type    string     `json:"type"`
	Usage   *wireUsage `json:"usage"`
	Message *struct {
		Usage *wireUsage `json:"usage"`
	} `json:"message"` // Anthropic message_start
	Response *struct {
		Usage *wireUsage `json:"usage"`
	} `json:"response"` // OpenAI Responses response.completed
	UsageMetadata *geminiUsage `json:"usageMetadata"`
	Choices       []struct {
		Delta struct {
			Content          string `json:"content"`
			ReasoningContent string `json:"reasoning_content"`
		} `json:"delta"`
	} `json:"choices"`
	Delta      json.RawMessage `json:"delta"` // Anthropic: object; OpenAI Responses: string
	Candidates []struct {
		FinishReason string `json:"finishReason"`
		Content      struct {
			Parts []struct {
				Text string `json:"text"`
			} `json:"parts"`
		} `json:"content"`
	} `json:"candidates"`
}

type anthropicDelta struct {
	Text        string `json:"text"`
	Thinking    string `json:"thinking"`
	PartialJSON string `json:"partial_json"`
}

// deliveredText is the length of the generated text a message carries.
func (m *message) deliveredText() int {
	n := 0
	for _, c := range m.Choices {
		n += len(c.Delta.Content) + len(c.Delta.ReasoningContent)
	}
	for _, c := range m.Candidates {
		for _, p := range c.Content.Parts {
			n += len(p.Text)
		}
	}
	if len(m.Delta) > 0 {
		switch m.Delta[0] {
		case '"':
			var s string
			if json.Unmarshal(m.Delta, &s) == nil {
				n += len(s)
			}
		case '{':
			var d anthropicDelta
			if json.Unmarshal(m.Delta, &d) == nil {
				n += len(d.Text) + len(d.Thinking) + len(d.PartialJSON)
			}
		}
	}
	return n
}

// fromOpenAI normalises an OpenAI usage object: prompt_tokens (and the
// Responses API's input_tokens) include the cached tokens.
func fromOpenAI(w *wireUsage) Usage {
	if w.InputTokens != 0 || w.OutputTokens != 0 {
		cached := w.InputTokensDetails.CachedTokens
		return Usage{Input: w.InputTokens - cached, CacheRead: cached, Output: w.OutputTokens,
			Reasoning: w.OutputTokensDetails.ReasoningTokens}
	}
	cached := w.PromptTokensDetails.CachedTokens
	return Usage{Input: w.PromptTokens - cached, CacheRead: cached, Output: w.CompletionTokens,
		Reasoning: w.CompletionTokensDetails.ReasoningTokens}
}

// fromGemini normalises usageMetadata: promptTokenCount includes the cached
// content, and thinking tokens are billed as output but counted apart.
func fromGemini(g *geminiUsage) Usage {
	return Usage{Input: g.PromptTokenCount + g.ToolUsePromptTokenCount - g.CachedContentTokenCount,
		CacheRead: g.CachedContentTokenCount, Output: g.CandidatesTokenCount + g.ThoughtsTokenCount,
		Reasoning: g.ThoughtsTokenCount}
}
