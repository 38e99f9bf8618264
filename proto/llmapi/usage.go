package llmapi

// Usage is one call's tokens in one record for every family: the edge's
// metering unit. Input excludes the cached prompt tokens, Output includes
// the reasoning or thinking tokens.
type Usage struct {
	Input      int64 `json:"input"`       // prompt tokens neither read from nor written to a cache
	CacheRead  int64 `json:"cache_read"`  // prompt tokens read from the provider's cache
	CacheWrite int64 `json:"cache_write"` // prompt tokens written to the cache (Anthropic)
	Output     int64 `json:"output"`      // generated tokens, reasoning included
	Reasoning  int64 `json:"reasoning"`   // of Output: reasoning / thinking tokens
	// Estimated is true when any part was not reported by the provider.
	Estimated bool `json:"estimated"`
}

// Prompt is every prompt token, cached or not (OpenAI's prompt_tokens).
func (u Usage) Prompt() int64 { return u.Input + u.CacheRead + u.CacheWrite }

// Total is every token the request consumed, the unit of token quotas.
func (u Usage) Total() int64 { return u.Prompt() + u.Output }

// Add sums o into u.
func (u *Usage) Add(o Usage) {
	u.Input += o.Input
	u.CacheRead += o.CacheRead
	u.CacheWrite += o.CacheWrite
	u.Output += o.Output
	u.Reasoning += o.Reasoning
	u.Estimated = u.Estimated || o.Estimated
}

// ChatUsage is OpenAI's Chat Completions (and embeddings) usage:
// prompt_tokens includes the cached tokens, completion_tokens the
// reasoning tokens.
type ChatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
		// CacheWriteTokens is not in OpenAI's API; Strait's conversion
		// adds it to keep an Anthropic cache write visible to an OpenAI
		// client (omitted when zero).
		CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// Normal is u as a Usage.
func (u ChatUsage) Normal() Usage {
	cached, written := u.PromptTokensDetails.CachedTokens, u.PromptTokensDetails.CacheWriteTokens
	return Usage{Input: u.PromptTokens - cached - written, CacheRead: cached, CacheWrite: written,
		Output: u.CompletionTokens, Reasoning: u.CompletionTokensDetails.ReasoningTokens}
}

// ChatUsageOf is u as Chat Completions reports it.
func ChatUsageOf(u Usage) ChatUsage {
	c := ChatUsage{PromptTokens: u.Prompt(), CompletionTokens: u.Output, TotalTokens: u.Total()}
	c.PromptTokensDetails.CachedTokens = u.CacheRead
	c.PromptTokensDetails.CacheWriteTokens = u.CacheWrite
	c.CompletionTokensDetails.ReasoningTokens = u.Reasoning
	return c
}

// ResponsesUsage is OpenAI's Responses API usage: input_tokens includes
// the cached tokens.
type ResponsesUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
		// CacheWriteTokens is not in OpenAI's API; like ChatUsage's, it
		// keeps an Anthropic cache write visible (omitted when zero).
		CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

// Normal is u as a Usage.
func (u ResponsesUsage) Normal() Usage {
	cached, written := u.InputTokensDetails.CachedTokens, u.InputTokensDetails.CacheWriteTokens
	return Usage{Input: u.InputTokens - cached - written, CacheRead: cached, CacheWrite: written, Output: u.OutputTokens,
		Reasoning: u.OutputTokensDetails.ReasoningTokens}
}

// ResponsesUsageOf is u as the Responses API reports it.
func ResponsesUsageOf(u Usage) ResponsesUsage {
	r := ResponsesUsage{InputTokens: u.Prompt(), OutputTokens: u.Output, TotalTokens: u.Total()}
	r.InputTokensDetails.CachedTokens = u.CacheRead
	r.InputTokensDetails.CacheWriteTokens = u.CacheWrite
	r.OutputTokensDetails.ReasoningTokens = u.Reasoning
	return r
}

// AnthropicUsage is Anthropic's usage: input_tokens excludes cache reads
// and writes.
type AnthropicUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
}

// Normal is u as a Usage.
func (u AnthropicUsage) Normal() Usage {
	return Usage{Input: u.InputTokens, CacheRead: u.CacheReadInputTokens, CacheWrite: u.CacheCreationInputTokens,
		Output: u.OutputTokens}
}

// AnthropicUsageOf is u as Anthropic reports it.
func AnthropicUsageOf(u Usage) AnthropicUsage {
	return AnthropicUsage{InputTokens: max(0, u.Input), CacheCreationInputTokens: u.CacheWrite,
		CacheReadInputTokens: u.CacheRead, OutputTokens: u.Output}
}

// GeminiUsage is Gemini's usageMetadata: promptTokenCount includes the
// cached content and excludes the tool-use prompt; candidatesTokenCount
// excludes the thoughts.
type GeminiUsage struct {
	PromptTokenCount        int64 `json:"promptTokenCount"`
	CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int64 `json:"thoughtsTokenCount,omitempty"`
	CachedContentTokenCount int64 `json:"cachedContentTokenCount,omitempty"`
	ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount,omitempty"`
	TotalTokenCount         int64 `json:"totalTokenCount"`
}

// GeminiUsageOf is u as Gemini reports it, for a Gemini client of another
// provider: the prompt count includes the cache, the candidates count
// excludes the thoughts.
func GeminiUsageOf(u Usage) GeminiUsage {
	return GeminiUsage{PromptTokenCount: u.Prompt(), CandidatesTokenCount: max(0, u.Output-u.Reasoning),
		ThoughtsTokenCount: u.Reasoning, CachedContentTokenCount: u.CacheRead, TotalTokenCount: u.Total()}
}

// Normal is u as a Usage: thinking tokens are billed as output but
// counted apart.
func (u GeminiUsage) Normal() Usage {
	return Usage{Input: u.PromptTokenCount + u.ToolUsePromptTokenCount - u.CachedContentTokenCount,
		CacheRead: u.CachedContentTokenCount, Output: u.CandidatesTokenCount + u.ThoughtsTokenCount,
		Reasoning: u.ThoughtsTokenCount}
}

// WireUsage is the union of the "usage" objects of OpenAI (Chat
// Completions, embeddings, Responses) and Anthropic, for a reader that
// does not know which endpoint answered.
type WireUsage struct {
	ChatUsage
	AnthropicUsage
	InputTokensDetails struct {
		CachedTokens     int64 `json:"cached_tokens"`
		CacheWriteTokens int64 `json:"cache_write_tokens"` // Strait's extension, see ResponsesUsage
	} `json:"input_tokens_details"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
}

// OpenAI is w read as an OpenAI usage object: the Responses API's when it
// has input or output tokens, Chat Completions' otherwise.
func (w *WireUsage) OpenAI() Usage {
	if w.InputTokens != 0 || w.OutputTokens != 0 {
		cached, written := w.InputTokensDetails.CachedTokens, w.InputTokensDetails.CacheWriteTokens
		return Usage{Input: w.InputTokens - cached - written, CacheRead: cached, CacheWrite: written, Output: w.OutputTokens,
			Reasoning: w.OutputTokensDetails.ReasoningTokens}
	}
	return w.ChatUsage.Normal()
}
