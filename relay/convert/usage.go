package convert

import "time"

// now stamps "created" fields; tests replace it for stable output.
var now = time.Now

// anthropicUsage is Anthropic's usage object: input_tokens excludes cache
// reads and writes.
type anthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

func (u anthropicUsage) neutral() Usage {
	return Usage{Input: u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens, Output: u.OutputTokens,
		CacheRead: u.CacheReadInputTokens, CacheWrite: u.CacheCreationInputTokens}
}

func (u Usage) anthropic() anthropicUsage {
	return anthropicUsage{InputTokens: max(0, u.Input-u.CacheRead-u.CacheWrite), CacheCreationInputTokens: u.CacheWrite,
		CacheReadInputTokens: u.CacheRead, OutputTokens: u.Output}
}

// chatUsage is OpenAI's Chat Completions usage: prompt_tokens includes the
// cached tokens, completion_tokens the reasoning tokens.
type chatUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
		// CacheWriteTokens is not in OpenAI's API; it keeps an Anthropic
		// cache write visible to an OpenAI client (omitted when zero).
		CacheWriteTokens int `json:"cache_write_tokens,omitempty"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

func (u chatUsage) neutral() Usage {
	return Usage{Input: u.PromptTokens, Output: u.CompletionTokens, CacheRead: u.PromptTokensDetails.CachedTokens,
		CacheWrite: u.PromptTokensDetails.CacheWriteTokens, Reasoning: u.CompletionTokensDetails.ReasoningTokens}
}

func (u Usage) chat() chatUsage {
	c := chatUsage{PromptTokens: u.Input, CompletionTokens: u.Output, TotalTokens: u.Input + u.Output}
	c.PromptTokensDetails.CachedTokens = u.CacheRead
	c.PromptTokensDetails.CacheWriteTokens = u.CacheWrite
	c.CompletionTokensDetails.ReasoningTokens = u.Reasoning
	return c
}

// geminiUsage is Gemini's usageMetadata: candidatesTokenCount excludes the
// thoughts, promptTokenCount includes the cached content.
type geminiUsage struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount"`
	TotalTokenCount         int `json:"totalTokenCount"`
}

func (u geminiUsage) neutral() Usage {
	return Usage{Input: u.PromptTokenCount, Output: u.CandidatesTokenCount + u.ThoughtsTokenCount,
		CacheRead: u.CachedContentTokenCount, Reasoning: u.ThoughtsTokenCount}
}

// responsesUsage is the Responses API's usage.
func (u Usage) responses() obj {
	in := obj{"cached_tokens": u.CacheRead}
	if u.CacheWrite > 0 {
		// Not in OpenAI's API, like chatUsage's: keeps an Anthropic cache
		// write visible to a Responses client.
		in["cache_write_tokens"] = u.CacheWrite
	}
	return obj{
		"input_tokens":          u.Input,
		"input_tokens_details":  in,
		"output_tokens":         u.Output,
		"output_tokens_details": obj{"reasoning_tokens": u.Reasoning},
		"total_tokens":          u.Input + u.Output,
	}
}
