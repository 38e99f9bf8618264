// Package convert translates requests, responses, streams and errors between
// the OpenAI Chat Completions, OpenAI Responses, Anthropic Messages and
// Gemini APIs. It does no I/O beyond the readers and writers it is handed.
//
// Every dialect is decoded into one neutral form and encoded from it, so a
// direction is a pair (decoder of the provider's dialect, encoder of the
// client's). Streams go through the same pair as explicit state machines:
// the provider-side decoder turns each upstream event into neutral events
// (start, block start, delta, block stop, finish, usage, error, end) and the
// client-side encoder writes each of them out at once; neither holds back a
// delta.
package convert

import "github.com/strait/strait/proto/llmapi"

import "encoding/json"

// Role is the author of a message.
type Role string

// Roles of the neutral form; tool results are user messages, as in
// Anthropic's and Gemini's APIs.
const (
	User      Role = "user"
	Assistant Role = "assistant"
)

// PartKind is what a content part holds.
type PartKind int

// Part kinds.
const (
	PartText PartKind = iota
	PartImage
	PartToolCall
	PartToolResult
	PartThinking
	PartRedactedThinking // Anthropic's redacted_thinking; Text holds its data
	PartDocument         // a PDF: Image holds its data or URL, Text its file name or title
	PartRefusal          // the model declining to answer (OpenAI's refusal); Text holds it
)

// Part is one piece of message content.
type Part struct {
	Kind PartKind
	// Text is the text, the thinking text, or the redacted thinking's data.
	Text string
	// Signature is a thinking block's signature, or the Gemini
	// thoughtSignature of a text or tool-call part; it goes back verbatim.
	Signature string
	Image     *Image
	Call      *ToolCall
	Result    *ToolResult
	// Cache is Anthropic's cache_control marker, kept verbatim.
	Cache json.RawMessage
}

// Image is an image given by URL or inline as base64 data.
type Image struct {
	URL       string // http(s) URL, when not inline
	MediaType string
	Data      string // base64
}

// ToolCall is a model's call of a tool. Args is a JSON object.
type ToolCall struct {
	ID, Name string
	Args     json.RawMessage
}

// ToolResult answers a ToolCall.
type ToolResult struct {
	CallID  string
	Name    string // filled from the history when the dialect omits it
	Content []Part // text and image parts
	IsError bool
}

// Message is one turn of the conversation.
type Message struct {
	Role  Role
	Parts []Part
}

// Tool is a function the model may call. Schema is a JSON Schema object.
type Tool struct {
	Name, Description string
	Schema            json.RawMessage
	Cache             json.RawMessage
}

// ToolChoice says whether and which tool the model must call.
type ToolChoice struct {
	Mode string // "auto", "none", "required" or "tool"
	Name string // for "tool"
}

// Format asks for JSON output, optionally matching a schema.
type Format struct {
	Name   string
	Schema json.RawMessage // nil for plain JSON mode
}

// Thinking asks for extended thinking / reasoning.
type Thinking struct {
	Budget int    // tokens; 0 when only an effort was given
	Effort string // "low", "medium", "high" (OpenAI reasoning_effort)
}

// Request is a generation request in neutral form.
type Request struct {
	Model             string
	System            []Part
	Messages          []Message
	Tools             []Tool
	ToolChoice        *ToolChoice
	ParallelToolCalls *bool
	MaxTokens         int
	Temperature, TopP *float64
	// TopK, Seed and the penalties go to the providers whose API has them
	// (Gemini all four, Anthropic top_k, Chat the seed and penalties), and
	// are left out for the others. TopK is a float because the genai
	// Python SDK sends topK as one (40.0).
	TopK                              *float64
	Seed                              *int64
	PresencePenalty, FrequencyPenalty *float64
	Stop                              []string
	Stream                            bool
	// IncludeUsage is the OpenAI client's stream_options.include_usage:
	// whether the client wants the final usage chunk.
	IncludeUsage bool
	Format       *Format
	Thinking     *Thinking
	// Modalities are the kinds of output ("text", "image") a client asked
	// for when it asked for images: Chat's modalities ["text","image"] or
	// ["image"], the convention of OpenRouter and LiteLLM. Nil when no
	// image was asked for, so that only image requests carry it: Gemini
	// answers 400 to responseModalities IMAGE for a model that cannot
	// make images. Only the Gemini encoder reads it.
	Modalities []string
}

// Stop is why generation ended.
type Stop int

// Stop reasons.
const (
	StopNone Stop = iota // not known (yet)
	StopEnd
	StopMaxTokens
	StopSequence
	StopTool
	StopFilter
)

// Usage is the one usage record of a call, normalised by the families'
// usage objects in proto/llmapi (ChatUsage, AnthropicUsage, GeminiUsage,
// ResponsesUsage), which also render it back.
type Usage = llmapi.Usage

// Response is a complete (non-streaming) answer in neutral form.
type Response struct {
	ID, Model string
	Parts     []Part // assistant content
	Stop      Stop
	StopSeq   string // the stop sequence that matched, when known
	Usage     Usage
}
