// Package usage reads token usage out of provider responses as they stream
// past the edge, for all three API families, and normalises it into one
// record: uncached input, cache reads and writes, output (with reasoning
// or thinking tokens inside it). When the provider does not report usage
// (a stream cut short, an endpoint without usage) it estimates from what
// was actually delivered and says so.
package usage

import (
	"encoding/json"

	"github.com/strait/strait/proto/llmapi"
)

// Usage is one request's tokens (llmapi.Usage: one record for every
// family, also what relay/convert normalises to).
type Usage = llmapi.Usage

// EstimateTokens is the rough token count of n bytes of text (about four
// bytes per token for English and code; CJK text is closer to one token per
// character, i.e. three bytes, so this errs on the low side there).
func EstimateTokens(n int) int64 { return int64(n+3) / 4 }

// message is the union of the JSON bodies and stream events of the three
// families, reduced to what usage accounting needs.
type message struct {
	Type    string            `json:"type"`
	Usage   *llmapi.WireUsage `json:"usage"`
	Message *struct {
		Usage *llmapi.WireUsage `json:"usage"`
	} `json:"message"` // Anthropic message_start
	Response *struct {
		Usage *llmapi.WireUsage `json:"usage"`
	} `json:"response"` // OpenAI Responses response.completed
	UsageMetadata *llmapi.GeminiUsage `json:"usageMetadata"`
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
