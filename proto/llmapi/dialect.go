package llmapi

import "strings"

// Dialect is one generation API's wire format: a family has one or more
// (OpenAI has two). Conversion translates between dialects.
type Dialect string

// The dialects, one list: adding one touches Dialects, ClientDialect,
// Family.Dialect and Dialect.Family, and relay/convert for its codecs.
const (
	ChatCompletions Dialect = "openai-chat"      // POST /v1/chat/completions
	Responses       Dialect = "openai-responses" // POST /v1/responses
	Messages        Dialect = "anthropic"        // POST /v1/messages
	GenerateContent Dialect = "gemini"           // POST /v1beta/models/{m}:generateContent
)

// Dialects lists every dialect.
var Dialects = [...]Dialect{ChatCompletions, Responses, Messages, GenerateContent}

// ClientDialect names the dialect of a client request from the API family
// the edge detected and the path; ok is false for an endpoint that has no
// conversion (models, files, …). Token counting and embeddings name the
// dialect of their family; relay/convert tells them apart by the path.
func ClientDialect(family Family, method, path string) (d Dialect, ok bool) {
	if method != "POST" {
		return "", false
	}
	switch {
	case family == OpenAI && strings.HasSuffix(path, "/chat/completions"):
		return ChatCompletions, true
	case family == OpenAI && strings.HasSuffix(path, "/responses"):
		return Responses, true
	case family == Anthropic && path == "/v1/messages":
		return Messages, true
	case family == Gemini && (strings.HasSuffix(path, ":generateContent") || strings.HasSuffix(path, ":streamGenerateContent")):
		return GenerateContent, true
	case family == OpenAI && path == "/v1/responses/input_tokens":
		return Responses, true
	case family == Anthropic && path == "/v1/messages/count_tokens":
		return Messages, true
	case family == OpenAI && strings.HasSuffix(path, "/embeddings"):
		return ChatCompletions, true
	case family == Gemini && (strings.HasSuffix(path, ":countTokens") || strings.HasSuffix(path, ":embedContent") ||
		strings.HasSuffix(path, ":batchEmbedContents")):
		return GenerateContent, true
	}
	return "", false
}

// Dialect is the dialect a provider of family f speaks for generation.
func (f Family) Dialect() Dialect {
	switch f {
	case Anthropic:
		return Messages
	case Gemini:
		return GenerateContent
	}
	return ChatCompletions
}

// Family is the family whose API d belongs to.
func (d Dialect) Family() Family {
	switch d {
	case Messages:
		return Anthropic
	case GenerateContent:
		return Gemini
	}
	return OpenAI
}
